//! The `wisp` binary with `--backend qnn`: one clear line when no QNN
//! library is present, and `wisp diff` on the emulator.

use std::process::Command;

fn wisp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wisp"))
}

#[test]
fn without_a_library_run_exits_with_one_clear_line() {
    let out = wisp()
        .args(["run", "--backend", "qnn", "-p", "hi", "-n", "1"])
        .env("WISP_QNN_LIB", "/nonexistent/libQnnHtp.so")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error: backend qnn: unavailable: cannot open QNN library")
            && lines[0].contains("WISP_QNN_LIB"),
        "{err}"
    );
}

#[test]
fn diff_on_the_emulator_reports_every_value() {
    let lib = wisp_qnn_emulator::locate_cdylib().expect("emulator cdylib");
    let model = wisp::default_encoder_path();
    let out = wisp()
        .args([
            "diff",
            "--backend",
            "qnn",
            "--qnn-no-cache",
            "-p",
            "The quick brown fox",
        ])
        .arg("-m")
        .arg(&model)
        .env("WISP_QNN_LIB", &lib)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("blk.5.layer_output_norm"), "{text}");
    assert!(text.contains("all 116 values within tolerance"), "{text}");
}
