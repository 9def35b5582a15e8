//! `QnnLibrary::load` failure modes that need no QNN library: a missing file and a library that
//! is not a QNN backend. (Success and version refusal are covered by the emulator crate's tests,
//! which load a real provider.)

use wisp_qnn_sys::{default_library_path, QnnLibrary, QnnLoadError, LIBRARY_ENV};

#[test]
fn missing_library_is_a_typed_unavailable_error() {
    let err = QnnLibrary::load("/nonexistent/libQnnHtp.so").unwrap_err();
    assert!(
        matches!(err, QnnLoadError::LibraryNotFound { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("unavailable: cannot open QNN library /nonexistent/libQnnHtp.so"),
        "{msg}"
    );
    assert!(msg.contains(LIBRARY_ENV), "{msg}");
}

#[cfg(target_os = "linux")]
#[test]
fn library_without_the_provider_symbol_is_rejected() {
    // The C math library is always present and certainly not a QNN backend.
    let err = QnnLibrary::load("libm.so.6").unwrap_err();
    assert!(matches!(err, QnnLoadError::MissingSymbol { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("unavailable: libm.so.6 is not a QNN backend library"),
        "{msg}"
    );
    assert!(msg.contains("QnnInterface_getProviders"), "{msg}");
}

#[test]
fn default_path_is_the_htp_backend_unless_overridden() {
    // Only asserts the un-overridden default when the variable is not set by the environment.
    if std::env::var_os(LIBRARY_ENV).is_none() {
        let want = if cfg!(windows) {
            "QnnHtp.dll"
        } else {
            "libQnnHtp.so"
        };
        assert_eq!(default_library_path(), want);
    }
}
