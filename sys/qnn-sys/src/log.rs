//! Logging: levels, the C callback type, and a bridge that turns QNN's `va_list` callback into a
//! Rust closure receiving a finished string.
//!
//! QNN calls `void cb(const char* fmt, QnnLog_Level_t level, uint64_t timestamp, va_list args)`.
//! Stable Rust cannot read a `va_list`, so a few lines of C (`csrc/log_shim.c`, built by `cc`)
//! format the message with `vsnprintf` and pass the plain string to a Rust function, which hands
//! it to the handler installed with [`set_log_handler`]. Pass [`log_callback`] to `logCreate`.
//!
//! The `va_list` parameter is typed [`VaList`] = `*mut c_void`: on every 64-bit ABI QNN ships for
//! (x86_64 SysV: array type decaying to a pointer; AAPCS64: a 32-byte struct, which is passed by
//! reference; Apple / Windows: `char*`) a `va_list` argument travels as one pointer. Rust code
//! never dereferences it; only the C shim does, with the real `va_list` type.

use core::ffi::{c_char, c_void, CStr};
use std::sync::{Arc, RwLock};

/// Severity of a log message.
pub type QnnLog_Level_t = u32;
/// Errors.
pub const QNN_LOG_LEVEL_ERROR: QnnLog_Level_t = 1;
/// Warnings.
pub const QNN_LOG_LEVEL_WARN: QnnLog_Level_t = 2;
/// Informational messages.
pub const QNN_LOG_LEVEL_INFO: QnnLog_Level_t = 3;
/// Verbose messages.
pub const QNN_LOG_LEVEL_VERBOSE: QnnLog_Level_t = 4;
/// Debug messages (may be very chatty).
pub const QNN_LOG_LEVEL_DEBUG: QnnLog_Level_t = 5;
/// Above every level, i.e. log everything.
pub const QNN_LOG_LEVEL_MAX: QnnLog_Level_t = 6;

/// A C `va_list` argument as it is passed on QNN's 64-bit targets: one pointer (see module docs).
pub type VaList = *mut c_void;

/// The log callback registered with `logCreate`.
pub type QnnLog_Callback_t = Option<
    unsafe extern "C" fn(fmt: *const c_char, level: QnnLog_Level_t, timestamp: u64, args: VaList),
>;

/// A Rust log handler: level, backend timestamp, formatted message.
pub type LogHandler = dyn Fn(QnnLog_Level_t, u64, &str) + Send + Sync;

static HANDLER: RwLock<Option<Arc<LogHandler>>> = RwLock::new(None);

/// The Rust side of the bridge: the C shim calls this with a formatted, NUL-terminated message.
type SinkFn = unsafe extern "C" fn(msg: *const c_char, level: QnnLog_Level_t, timestamp: u64);

unsafe extern "C" {
    /// C shim: formats `fmt` + `args` and forwards the result to the registered sink.
    fn wisp_qnn_log_trampoline(
        fmt: *const c_char,
        level: QnnLog_Level_t,
        timestamp: u64,
        args: VaList,
    );
    /// C shim: registers the function the trampoline forwards to (NULL drops messages).
    fn wisp_qnn_log_set_sink(sink: Option<SinkFn>);
    /// C shim test helper: a variadic function that calls the trampoline with its own `va_list`,
    /// so tests can exercise the real formatting path without a QNN library.
    fn wisp_qnn_log_emit_for_test(level: QnnLog_Level_t, timestamp: u64, fmt: *const c_char, ...);
}

/// Receives formatted messages from the C shim and passes them to the installed handler.
unsafe extern "C" fn rust_sink(msg: *const c_char, level: QnnLog_Level_t, timestamp: u64) {
    if msg.is_null() {
        return;
    }
    // SAFETY: the shim passes a NUL-terminated buffer that stays valid for this call.
    let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
    let handler = match HANDLER.read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    if let Some(handler) = handler {
        // A panic must not unwind into C (the vendor library's logging thread).
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handler(level, timestamp, &text)
        }));
    }
}

/// Installs (or with `None` removes) the process-wide handler for QNN log messages. Process-wide
/// because the C callback carries no user pointer to tell loggers apart.
pub fn set_log_handler(handler: Option<Arc<LogHandler>>) {
    let mut slot = match HANDLER.write() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    *slot = handler;
}

/// The callback to pass to `logCreate`: the C trampoline, with the Rust sink registered so that
/// messages reach the handler from [`set_log_handler`].
pub fn log_callback() -> QnnLog_Callback_t {
    // SAFETY: registering a valid `extern "C"` function pointer; the shim stores it atomically.
    unsafe { wisp_qnn_log_set_sink(Some(rust_sink)) };
    Some(wisp_qnn_log_trampoline)
}

/// Formats `fmt` with one `i32` and one string argument through the C shim exactly as a QNN
/// library's log call would, delivering the result to the installed handler. Exists so tests can
/// prove the `va_list` path end to end; not useful otherwise.
#[doc(hidden)]
pub fn emit_test_message(level: QnnLog_Level_t, timestamp: u64, fmt: &CStr, n: i32, s: &CStr) {
    let _ = log_callback();
    // SAFETY: `fmt` is expected to contain exactly one `%d`-like and one `%s` conversion in that
    // order (test-only helper); the arguments are an `int` and a valid NUL-terminated string.
    unsafe { wisp_qnn_log_emit_for_test(level, timestamp, fmt.as_ptr(), n, s.as_ptr()) };
}
