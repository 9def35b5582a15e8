//! The reference quantizers reproduce llama.cpp's bytes exactly, and the
//! dequantizers decode them, for every type wisp writes
//! (fixture: tests/fixtures/quantize_reference.json, from ggml 0.25.3).

use base64::Engine;
use wisp_ops::quant::{dequantize_row, quantize_row};
use wisp_ops::DType;

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("fixture base64")
}

#[test]
fn quantizers_match_llama_cpp_bytes() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/quantize_reference.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for case in doc["cases"].as_array().unwrap() {
        let ty = case["type"].as_str().unwrap();
        let dtype = match ty {
            "q4_0" => DType::Q4_0,
            "q4_1" => DType::Q4_1,
            "q5_0" => DType::Q5_0,
            "q5_1" => DType::Q5_1,
            "q8_0" => DType::Q8_0,
            "q4_K" => DType::Q4_K,
            "q5_K" => DType::Q5_K,
            "q6_K" => DType::Q6_K,
            "f16" => DType::F16,
            "bf16" => DType::BF16,
            other => panic!("fixture case of unknown type {other}"),
        };
        let rows: usize = case["rows"].as_u64().unwrap() as usize;
        let n: usize = case["n_per_row"].as_u64().unwrap() as usize;
        let input: Vec<f32> = b64(case["input_f32_le_b64"].as_str().unwrap())
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let want = b64(case["output_b64"].as_str().unwrap());
        assert_eq!(input.len(), rows * n);
        let rb = dtype.bytes_for(n).unwrap();
        let mut got = vec![0u8; rows * rb];
        for r in 0..rows {
            quantize_row(
                dtype,
                &input[r * n..(r + 1) * n],
                &mut got[r * rb..(r + 1) * rb],
            );
        }
        assert_eq!(got.len(), want.len(), "{} {ty}", case["source"]);
        let differing = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
            mismatches.push(format!(
                "{} {ty}: {differing} of {} bytes differ, first at byte {i} (row {}, block {}, byte {} of the block)",
                case["source"],
                got.len(),
                i / rb,
                i % rb / dtype.block_bytes(),
                i % dtype.block_bytes(),
            ));
        }
        // Decoding llama.cpp's bytes lands within a quantization step of the
        // input (per block, or per K-quant sub-block; see `step`).
        let mut back = vec![0f32; n];
        let group = match dtype {
            DType::F16 | DType::BF16 => n,
            DType::Q6_K => 16,
            _ => 32,
        };
        for r in 0..rows {
            let row = &want[r * rb..(r + 1) * rb];
            dequantize_row(dtype, row, &mut back);
            let x = &input[r * n..(r + 1) * n];
            for (g, (xs, ys)) in x.chunks(group).zip(back.chunks(group)).enumerate() {
                let b = g * group / dtype.block_len();
                let block = &row[b * dtype.block_bytes()..(b + 1) * dtype.block_bytes()];
                let tol = step(dtype, xs, block);
                for (a, b) in xs.iter().zip(ys) {
                    assert!(
                        (a - b).abs() <= tol,
                        "{} {ty}: row {r} group {g}: {a} decodes as {b} (tolerance {tol})",
                        case["source"]
                    );
                }
            }
        }
        checked += 1;
    }
    assert!(
        mismatches.is_empty(),
        "byte mismatches:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(checked, 27, "fixture cases checked");
}

/// One quantization step of the values `xs` that share a scale in `block`,
/// with a little slack for f16 rounding of the scales.
///
/// Symmetric types: max|x| over half their levels (the value opposite the
/// extreme may clamp a whole step). Asymmetric ones: the range over their
/// steps (the K-quants' range includes 0). The K-quants add what rounding a
/// sub-block's scale (and minimum) to its 6- or 8-bit code against the f16
/// super-block scale can cost: half a scale code times the largest value
/// code, plus half a minimum code.
fn step(dtype: DType, xs: &[f32], block: &[u8]) -> f32 {
    let f16 = |b: &[u8]| half_to_f32(u16::from_le_bytes([b[0], b[1]]));
    let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
    let hi = xs.iter().fold(f32::MIN, |m, &v| m.max(v));
    let lo = xs.iter().fold(f32::MAX, |m, &v| m.min(v));
    let range0 = hi.max(0.0) - lo.min(0.0);
    let step = match dtype {
        DType::Q4_0 => amax / 8.0,
        DType::Q5_0 => amax / 16.0,
        DType::Q8_0 => amax / 127.0,
        DType::Q4_1 => (hi - lo) / 15.0,
        DType::Q5_1 => (hi - lo) / 31.0,
        DType::Q4_K => range0 / 15.0 + (15.0 * f16(&block[0..]) + f16(&block[2..])) / 2.0,
        DType::Q5_K => range0 / 31.0 + (31.0 * f16(&block[0..]) + f16(&block[2..])) / 2.0,
        DType::Q6_K => amax / 32.0 + 32.0 * f16(&block[208..]).abs() / 2.0,
        // Half-precision rows: the old whole-row bound.
        DType::F16 | DType::BF16 => amax / 100.0,
        _ => unreachable!(),
    };
    step + amax * 2e-3 + 1e-6
}

/// IEEE half to f32 (the test does not depend on `half`).
fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let man = (h & 0x3ff) as f32;
    sign * match exp {
        0 => man * 2f32.powi(-24),
        31 => f32::INFINITY,
        e => (1.0 + man / 1024.0) * 2f32.powi(e - 15),
    }
}
