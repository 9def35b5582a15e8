//! The `va_list` log bridge, end to end through the C shim: a variadic C call formats with
//! `vsnprintf` and the Rust handler receives the finished string.

use std::sync::{Arc, Mutex};

use wisp_qnn_sys::log::{emit_test_message, log_callback, set_log_handler, QNN_LOG_LEVEL_WARN};

#[test]
fn formats_va_list_messages_and_delivers_them_to_the_handler() {
    let seen: Arc<Mutex<Vec<(u32, u64, String)>>> = Arc::default();
    let sink = Arc::clone(&seen);
    set_log_handler(Some(Arc::new(move |level, ts, msg: &str| {
        sink.lock().unwrap().push((level, ts, msg.to_owned()))
    })));
    assert!(log_callback().is_some());

    emit_test_message(
        QNN_LOG_LEVEL_WARN,
        77,
        c"graph %d uses op %s",
        3,
        c"Softmax",
    );
    // Longer than the shim's stack buffer, to cover the heap path.
    let long = "x".repeat(2000);
    let long_c = std::ffi::CString::new(long.clone()).unwrap();
    emit_test_message(QNN_LOG_LEVEL_WARN, 78, c"%d:%s", 9, &long_c);

    set_log_handler(None);
    emit_test_message(QNN_LOG_LEVEL_WARN, 79, c"dropped %d %s", 0, c"");

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0],
        (QNN_LOG_LEVEL_WARN, 77, "graph 3 uses op Softmax".to_owned())
    );
    assert_eq!(seen[1].2, format!("9:{long}"));
}
