//! The backend's error type: every way the QNN path can fail, typed, so a
//! caller can tell "no NPU here" from "this graph could not be built" from
//! "the device failed while running" (and decide whether to fall back).

use wisp_engine::EngineError;
use wisp_qnn_sys::{error_code, error_name, Qnn_ErrorHandle_t};

/// Why the QNN backend could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum QnnError {
    /// No usable QNN library (missing file, not a QNN backend, wrong API
    /// version). The message starts with `unavailable:`.
    #[error("{0}")]
    Unavailable(String),
    /// A QNN entry point returned an error code.
    #[error("{entry} failed with error {code} ({name}){detail}")]
    Call {
        /// The function-table entry (`graphFinalize`, `graphExecute`, ...).
        entry: &'static str,
        /// The masked QNN error code.
        code: u64,
        /// Its symbolic name, when known.
        name: &'static str,
        /// The library's last logged message, if any (prefixed with `: `).
        detail: String,
    },
    /// The library's table lacks an entry wisp needs.
    #[error("the QNN library does not implement {0}")]
    MissingEntry(&'static str),
    /// A partition could not be expressed in the pinned op set.
    #[error("lowering: {0}")]
    Lowering(String),
    /// A cached context could not be used (it is rebuilt; this is reported as a warning).
    #[error("context cache: {0}")]
    Cache(String),
}

impl QnnError {
    /// The error of a failed call, with the library's last log line.
    pub fn call(entry: &'static str, handle: Qnn_ErrorHandle_t) -> QnnError {
        let detail = crate::runtime::take_last_log()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        QnnError::Call {
            entry,
            code: error_code(handle),
            name: error_name(handle).unwrap_or("unknown code"),
            detail,
        }
    }

    /// Whether this is the failure of `entry` (for tests and fallback policy).
    pub fn is_call(&self, entry: &str) -> bool {
        matches!(self, QnnError::Call { entry: e, .. } if *e == entry)
    }
}

impl From<QnnError> for EngineError {
    fn from(e: QnnError) -> EngineError {
        EngineError::Backend {
            backend: "qnn".into(),
            message: e.to_string(),
        }
    }
}
