//! A JSON-lines record of every entry-point call, in the spirit of QNN's Saver backend, so a run
//! in CI can be compared with a run on a device and tests can assert the call sequence.
//!
//! Enabled by `WISP_QNN_EMU_TRACE=/path/to/file`; one line is appended per call:
//!
//! ```json
//! {"seq":12,"call":"graphAddNode","handles":{"graph":4128},"detail":"FullyConnected","result":0,"injected":false}
//! ```
//!
//! `handles` holds the handle arguments and any handle the call created (`"out"`), as integers;
//! `detail` names the op, graph or tensor involved (never tensor data); `result` is the returned
//! QNN code. The variable is re-read per call, and the file is opened in append mode per line, so
//! several processes may share one trace file.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the trace file.
pub const TRACE_ENV: &str = "WISP_QNN_EMU_TRACE";

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Escapes a string for a JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Appends one line for a finished call, if tracing is enabled. I/O errors are ignored: tracing
/// must never change the outcome of a call.
pub fn record(call: &str, handles: &[(&str, usize)], detail: &str, result: u64, injected: bool) {
    let Some(path) = std::env::var_os(TRACE_ENV).filter(|p| !p.is_empty()) else {
        return;
    };
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let handles: Vec<String> = handles
        .iter()
        .map(|(k, v)| format!("{}:{v}", json_str(k)))
        .collect();
    let line = format!(
        "{{\"seq\":{seq},\"call\":{},\"handles\":{{{}}},\"detail\":{},\"result\":{result},\"injected\":{injected}}}\n",
        json_str(call),
        handles.join(","),
        json_str(detail)
    );
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(line.as_bytes());
    }
}
