//! Static post-training quantization support: activation ranges recorded
//! from calibration inputs, their file format, and the fake-quant graph pass
//! that simulates uint8/uint16 activations exactly as an NPU computes them.
//!
//! File format (`wisp calibrate -o MODEL.calib`), UTF-8 text:
//!
//! ```text
//! # wisp calibration v1
//! inputs <number of calibration inputs>
//! percentile <p, e.g. 99.99; 100 means min/max>
//! <value name>\t<min>\t<max>\t<lo>\t<hi>\t<bits>
//! ...
//! ```
//!
//! `bits` is the suggested activation width: 8, or 16 for a tensor whose
//! full range is dominated by outliers (an 8-bit grid over [min, max] would
//! give its central 98% of values fewer than 50 steps). Simulating 16 bits
//! there and 8 bits elsewhere is how outliers are handled (QNN's HTP runs
//! uint16 activations natively).
//!
//! One line per f32 activation of the graph, keyed by the graph's stable
//! value names (`blk.3.ffn_gelu`). `min`/`max` are the observed extremes;
//! `lo`/`hi` the percentile range (the `(100 − p)`-th and `p`-th
//! percentiles), which clips rare outliers. Graph inputs (token ids,
//! positions, the attention mask) are never listed: they are not quantized.

use std::collections::HashMap;

use wisp_ops::{DType, Op};

use crate::graph::{Graph, GraphError, Rebuilder, ValueKind};
use crate::EngineError;

/// The recorded range of one activation.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibEntry {
    pub name: String,
    pub min: f32,
    pub max: f32,
    pub lo: f32,
    pub hi: f32,
    /// Suggested activation bits (8 or 16).
    pub bits: u32,
}

/// Ranges of every activation of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    pub inputs: usize,
    pub percentile: f64,
    pub entries: Vec<CalibEntry>,
}

const HEADER: &str = "# wisp calibration v1";
const BINS: usize = 4096;

impl Calibration {
    /// The file text.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{HEADER}\ninputs {}\npercentile {}\n",
            self.inputs, self.percentile
        );
        for e in &self.entries {
            s.push_str(&format!(
                "{}\t{:e}\t{:e}\t{:e}\t{:e}\t{}\n",
                e.name, e.min, e.max, e.lo, e.hi, e.bits
            ));
        }
        s
    }

    /// Parses a calibration file; every error names the line.
    pub fn parse(text: &str) -> Result<Calibration, EngineError> {
        let bad = |n: usize, why: &str| {
            EngineError::InvalidArgument(format!("calibration file line {n}: {why}"))
        };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, l)) if l.trim() == HEADER => {}
            _ => return Err(bad(1, "not a wisp calibration file (header missing)")),
        }
        let mut field = |key: &str| -> Result<String, EngineError> {
            let (n, l) = lines.next().ok_or_else(|| bad(0, "truncated header"))?;
            l.strip_prefix(key)
                .map(|v| v.trim().to_string())
                .ok_or_else(|| bad(n, &format!("expected `{key} …`")))
        };
        let inputs: usize = field("inputs ")?
            .parse()
            .map_err(|_| bad(2, "inputs is not a number"))?;
        let percentile: f64 = field("percentile ")?
            .parse()
            .map_err(|_| bad(3, "percentile is not a number"))?;
        let mut entries = Vec::new();
        for (n, l) in lines {
            if l.trim().is_empty() {
                continue;
            }
            let parts: Vec<&str> = l.split('\t').collect();
            if parts.len() != 6 {
                return Err(bad(
                    n,
                    "expected name, 4 numbers and bits separated by tabs",
                ));
            }
            let num = |s: &str| -> Result<f32, EngineError> {
                s.parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| bad(n, &format!("{s:?} is not a finite number")))
            };
            let e = CalibEntry {
                name: parts[0].to_string(),
                min: num(parts[1])?,
                max: num(parts[2])?,
                lo: num(parts[3])?,
                hi: num(parts[4])?,
                bits: match parts[5].trim() {
                    "8" => 8,
                    "16" => 16,
                    o => return Err(bad(n, &format!("bits {o:?} (8 or 16)"))),
                },
            };
            if !(e.min <= e.lo && e.lo <= e.hi && e.hi <= e.max) {
                return Err(bad(n, "ranges must satisfy min ≤ lo ≤ hi ≤ max"));
            }
            entries.push(e);
        }
        Ok(Calibration {
            inputs,
            percentile,
            entries,
        })
    }

    /// The entry of a value name.
    pub fn get(&self, name: &str) -> Option<&CalibEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// Records activation ranges in two passes over the same inputs: extremes
/// first, then a histogram per activation over its extremes for percentiles.
#[derive(Default)]
pub struct RangeRecorder {
    order: Vec<String>,
    minmax: HashMap<String, (f32, f32)>,
    hist: HashMap<String, Vec<u64>>,
    second_pass: bool,
}

impl RangeRecorder {
    /// A recorder in its first pass.
    pub fn new() -> RangeRecorder {
        RangeRecorder::default()
    }

    /// Switches to the histogram pass (feed the same inputs again).
    pub fn start_second_pass(&mut self) {
        self.second_pass = true;
    }

    /// Observes one activation (the [`crate::backend::Observer`] callback).
    pub fn observe(&mut self, name: &str, data: &[f32]) {
        if !self.second_pass {
            let e = self
                .minmax
                .entry(name.to_string())
                .or_insert_with(|| (f32::INFINITY, f32::NEG_INFINITY));
            if e.0 == f32::INFINITY && !self.order.iter().any(|n| n == name) {
                self.order.push(name.to_string());
            }
            for &v in data.iter().filter(|v| v.is_finite()) {
                e.0 = e.0.min(v);
                e.1 = e.1.max(v);
            }
            return;
        }
        let Some(&(lo, hi)) = self.minmax.get(name) else {
            return;
        };
        let h = self
            .hist
            .entry(name.to_string())
            .or_insert_with(|| vec![0; BINS]);
        let width = (hi - lo).max(f32::MIN_POSITIVE);
        for &v in data.iter().filter(|v| v.is_finite()) {
            let b = (((v - lo) / width) * BINS as f32) as usize;
            h[b.min(BINS - 1)] += 1;
        }
    }

    /// The calibration, with ranges clipped at `percentile` (100 keeps min/max).
    pub fn finish(&self, inputs: usize, percentile: f64) -> Calibration {
        let p = percentile.clamp(50.0, 100.0) / 100.0;
        let entries = self
            .order
            .iter()
            .filter_map(|name| {
                let &(min, max) = self.minmax.get(name)?;
                if !(min.is_finite() && max.is_finite()) {
                    return None;
                }
                let (mut lo, mut hi) = (min, max);
                let mut bits = 8;
                if let Some(h) = self.hist.get(name) {
                    if p < 1.0 {
                        (lo, hi) = hist_range(h, min, max, 1.0 - p);
                    }
                    // Outlier test: the central 98% against an 8-bit grid over everything.
                    let (c_lo, c_hi) = hist_range(h, min, max, 0.01);
                    if (max - min) / 255.0 > 0.02 * (c_hi - c_lo) {
                        bits = 16;
                    }
                }
                Some(CalibEntry {
                    name: name.clone(),
                    min,
                    max,
                    lo,
                    hi,
                    bits,
                })
            })
            .collect();
        Calibration {
            inputs,
            percentile,
            entries,
        }
    }
}

/// The range of a histogram over [min, max] without `tail` of the mass on each side.
fn hist_range(h: &[u64], min: f32, max: f32, tail: f64) -> (f32, f32) {
    let total: u64 = h.iter().sum();
    let width = (max - min) / h.len() as f32;
    let cut = (tail * total as f64) as u64;
    let (mut lo, mut hi) = (min, max);
    let mut acc = 0;
    for (i, &c) in h.iter().enumerate() {
        acc += c;
        if acc > cut {
            lo = min + i as f32 * width;
            break;
        }
    }
    acc = 0;
    for (i, &c) in h.iter().enumerate().rev() {
        acc += c;
        if acc > cut {
            hi = min + (i + 1) as f32 * width;
            break;
        }
    }
    let lo = lo.clamp(min, max);
    (lo, hi.clamp(lo, max))
}

/// Quantization parameters (QNN convention) of a range for `bits` (8 or 16).
pub fn qparams(lo: f32, hi: f32, bits: u32) -> (f32, i32, u32) {
    let qmax = if bits >= 16 { 65535 } else { 255 };
    // Zero must be exactly representable (padding, ReLU-like zeros).
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = ((hi - lo) / qmax as f32).max(f32::MIN_POSITIVE);
    let offset = (lo / scale).round() as i32;
    (scale, offset, qmax)
}

/// How the simulation picks each activation's precision and range.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Activation bits (8 or 16); 0 takes each tensor's suggested bits from
    /// the calibration (8, or 16 for outlier-dominated tensors).
    pub bits: u32,
    /// Value-name substrings that get 16 bits (e.g. residual sums with outliers).
    pub wide: Vec<String>,
    /// Use the percentile range (`lo`/`hi`) instead of min/max.
    pub clip: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            bits: 0,
            wide: Vec::new(),
            clip: true,
        }
    }
}

/// Inserts a `fake_quant` after every f32 activation the calibration lists
/// (except graph outputs), so the float graph computes what an NPU with
/// static uint8/uint16 activations would. Weights keep their own format;
/// inputs (ids, positions, masks) are never quantized.
pub fn insert_fake_quant(
    g: &Graph,
    calib: &Calibration,
    opts: &SimOptions,
) -> Result<(Graph, usize), GraphError> {
    let mut rb = Rebuilder::new(g);
    let mut inserted = 0;
    for n in &g.nodes {
        let new = rb.emit(n, n.op.clone(), &n.inputs)?;
        let val = g.value(n.output);
        let quantize = matches!(val.kind, ValueKind::Activation)
            && val.ty.dtype == DType::F32
            && !g.outputs.contains(&n.output);
        if let Some(e) = calib.get(&val.name).filter(|_| quantize) {
            let wide = opts.wide.iter().any(|w| val.name.contains(w.as_str()));
            let bits = match (wide, opts.bits) {
                (true, _) => 16,
                (false, 0) => e.bits,
                (false, b) => b,
            };
            // 16-bit tensors keep their outliers; 8-bit ones clip them when asked.
            let (lo, hi) = if opts.clip && bits == 8 {
                (e.lo, e.hi)
            } else {
                (e.min, e.max)
            };
            let (scale, offset, qmax) = qparams(lo, hi, bits);
            let fq = rb.out.op(
                &format!("{}.fq", val.name),
                Op::FakeQuant {
                    scale,
                    offset,
                    qmax,
                },
                &[new],
            )?;
            rb.redirect(n.output, fq);
            inserted += 1;
        }
    }
    let out = rb.finish()?;
    Ok((out, inserted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_round_trip_and_errors() {
        let c = Calibration {
            inputs: 3,
            percentile: 99.9,
            entries: vec![CalibEntry {
                name: "blk.0.attn".into(),
                min: -2.0,
                max: 5.0,
                lo: -1.5,
                hi: 4.0,
                bits: 8,
            }],
        };
        assert_eq!(Calibration::parse(&c.to_text()).unwrap(), c);
        assert!(Calibration::parse("nope").is_err());
        let bad = c.to_text().replace("-1.5e0", "9e0");
        assert!(Calibration::parse(&bad).is_err());
    }

    #[test]
    fn percentiles_clip_outliers() {
        let mut r = RangeRecorder::new();
        let mut data: Vec<f32> = (0..10000).map(|i| (i % 100) as f32 / 100.0).collect();
        data.push(1000.0);
        r.observe("x", &data);
        r.start_second_pass();
        r.observe("x", &data);
        let c = r.finish(1, 99.9);
        let e = c.get("x").unwrap();
        assert_eq!(e.max, 1000.0);
        assert!(e.hi < 2.0, "hi {}", e.hi);
        assert_eq!(r.finish(1, 100.0).get("x").unwrap().hi, 1000.0);
    }

    #[test]
    fn qparams_represent_zero() {
        let (s, o, q) = qparams(-1.0, 2.0, 8);
        assert_eq!(q, 255);
        assert_eq!(wisp_ops::reference::fake_quant(0.0, s, o, q), 0.0);
        let (_, o, _) = qparams(0.5, 2.0, 8);
        assert_eq!(o, 0);
    }
}
