//! Fault injection: make the Nth call of an entry point fail with a chosen code, so the backend's
//! error mapping and CPU fallback can be tested without a device (the pattern of ONNX Runtime's
//! mock-SSR library).
//!
//! Syntax of `WISP_QNN_EMU_FAIL`: a comma- or semicolon-separated list of `ENTRY:NTH:CODE`, where
//!
//! - `ENTRY` is a function-table name as in `QnnInterface.h` (`graphFinalize`, `contextCreate`,
//!   `graphExecute`, ...) or `getProviders` for `QnnInterface_getProviders`;
//! - `NTH` is the 1-based index of the call to fail, counting calls of that entry since the
//!   variable last changed, or `*` for every call;
//! - `CODE` is the QNN error code to return, decimal or `0x` hex.
//!
//! Example: `WISP_QNN_EMU_FAIL=graphFinalize:1:1002,graphExecute:*:6033` fails the first finalize
//! with `QNN_COMMON_ERROR_MEM_ALLOC` (what HTP returns when it cannot build an op) and every execute
//! with `QNN_GRAPH_ERROR_TIMED_OUT`. An injected failure happens before the call does anything.
//! The variable is re-read on every call; a changed value resets the counters. Malformed entries
//! are reported once on stderr and ignored.

use std::collections::HashMap;
use std::sync::Mutex;

/// The environment variable holding the fault rules.
pub const FAIL_ENV: &str = "WISP_QNN_EMU_FAIL";

#[derive(Clone, Debug, PartialEq)]
struct Rule {
    entry: String,
    nth: Option<u64>,
    code: u64,
}

#[derive(Default)]
struct Faults {
    spec: String,
    rules: Vec<Rule>,
    calls: HashMap<String, u64>,
}

static FAULTS: Mutex<Option<Faults>> = Mutex::new(None);

fn parse(spec: &str) -> Vec<Rule> {
    spec.split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|item| {
            let rule = (|| {
                let mut parts = item.split(':');
                let entry = parts.next()?.trim().to_owned();
                let nth = match parts.next()?.trim() {
                    "*" => None,
                    n => Some(n.parse::<u64>().ok().filter(|&n| n > 0)?),
                };
                let code = parts.next()?.trim();
                let code = match code.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16).ok()?,
                    None => code.parse().ok()?,
                };
                (parts.next().is_none() && !entry.is_empty()).then_some(Rule { entry, nth, code })
            })();
            if rule.is_none() {
                eprintln!("wisp-qnn-emulator: ignoring malformed {FAIL_ENV} entry {item:?} (want ENTRY:NTH:CODE)");
            }
            rule
        })
        .collect()
}

/// Counts this call of `entry` and returns the code to fail it with, if a rule says so.
pub fn injected(entry: &str) -> Option<u64> {
    let spec = std::env::var(FAIL_ENV).unwrap_or_default();
    let mut guard = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
    let faults = guard.get_or_insert_with(Faults::default);
    if faults.spec != spec {
        *faults = Faults {
            rules: parse(&spec),
            spec,
            calls: HashMap::new(),
        };
    }
    if faults.rules.is_empty() {
        return None;
    }
    let count = faults.calls.entry(entry.to_owned()).or_insert(0);
    *count += 1;
    let n = *count;
    faults
        .rules
        .iter()
        .find(|r| r.entry == entry && r.nth.is_none_or(|k| k == n))
        .map(|r| r.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_syntax() {
        let rules = parse("graphFinalize:1:1002, graphExecute:*:0x1791;bad;x:0:1");
        assert_eq!(
            rules,
            vec![
                Rule {
                    entry: "graphFinalize".into(),
                    nth: Some(1),
                    code: 1002
                },
                Rule {
                    entry: "graphExecute".into(),
                    nth: None,
                    code: 0x1791
                },
            ]
        );
    }
}
