//! Builds the C log shim (always) and, with the `bindgen` feature and `QNN_SDK_ROOT` set,
//! generates bindings from the real SDK headers for the layout-comparison test.

fn main() {
    println!("cargo::rerun-if-changed=csrc/log_shim.c");
    println!("cargo::rustc-check-cfg=cfg(qnn_sdk_bindings)");
    cc::Build::new()
        .file("csrc/log_shim.c")
        .warnings(true)
        .compile("wisp_qnn_log_shim");

    #[cfg(feature = "bindgen")]
    sdk_bindings::generate();
}

#[cfg(feature = "bindgen")]
mod sdk_bindings {
    use std::path::PathBuf;

    /// Runs bindgen over `$QNN_SDK_ROOT/include/QNN/QnnInterface.h` (which includes every
    /// component header) when the variable is set; otherwise does nothing, so enabling the
    /// feature without an SDK still builds.
    pub fn generate() {
        println!("cargo::rerun-if-env-changed=QNN_SDK_ROOT");
        let Some(root) = std::env::var_os("QNN_SDK_ROOT") else {
            println!(
                "cargo::warning=feature `bindgen` is on but QNN_SDK_ROOT is not set; skipping"
            );
            return;
        };
        let include = PathBuf::from(root).join("include").join("QNN");
        let header = include.join("QnnInterface.h");
        println!("cargo::rerun-if-changed={}", header.display());
        let common = std::fs::read_to_string(include.join("QnnCommon.h"))
            .expect("QNN_SDK_ROOT/include/QNN/QnnCommon.h must be readable");
        let major = define(&common, "QNN_API_VERSION_MAJOR");
        let minor = define(&common, "QNN_API_VERSION_MINOR");
        let bindings = bindgen::Builder::default()
            .header(header.to_string_lossy())
            .clang_arg(format!("-I{}", include.display()))
            .allowlist_type("Qnn.*")
            .allowlist_var("QNN_.*")
            .derive_default(false)
            .layout_tests(false)
            .generate()
            .expect("bindgen failed on the QNN headers");
        let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("qnn_sdk_bindings.rs");
        let mut text = bindings.to_string();
        // A version-neutral alias so the test can name the table of whatever SDK was given.
        text.push_str(&format!(
            "\npub type SdkInterfaceTable = QnnInterface_ImplementationV{major}_{minor}_t;\n\
             pub const SDK_API_VERSION: (u32, u32) = ({major}, {minor});\n"
        ));
        std::fs::write(&out, text).expect("write bindings");
        println!("cargo::rustc-cfg=qnn_sdk_bindings");
    }

    /// Reads `#define NAME value` from a header.
    fn define(text: &str, name: &str) -> u32 {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("#define "))
            .filter_map(|l| l.strip_prefix(name))
            .find_map(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not found in QnnCommon.h"))
    }
}
