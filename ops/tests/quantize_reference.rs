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
    for case in doc["cases"].as_array().unwrap() {
        let ty = case["type"].as_str().unwrap();
        let dtype = match ty {
            "q4_0" => DType::Q4_0,
            "q4_1" => DType::Q4_1,
            "q8_0" => DType::Q8_0,
            "f16" => DType::F16,
            "bf16" => DType::BF16,
            _ => continue, // K-quants and Q5_x come with their own issue
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
        let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
        assert_eq!(got.len(), want.len(), "{} {ty}", case["source"]);
        assert!(
            first_diff.is_none(),
            "{} {ty}: first differing byte {first_diff:?}",
            case["source"]
        );
        // Decoding llama.cpp's bytes lands within one quantization step of the input.
        let mut back = vec![0f32; n];
        for r in 0..rows {
            dequantize_row(dtype, &want[r * rb..(r + 1) * rb], &mut back);
            let x = &input[r * n..(r + 1) * n];
            let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            let step = match dtype {
                DType::Q4_0 | DType::Q4_1 => amax / 3.0,
                DType::Q8_0 => amax / 60.0,
                _ => amax / 100.0,
            };
            for (a, b) in x.iter().zip(&back) {
                assert!((a - b).abs() <= step + 1e-6, "{ty}: {a} vs {b}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} cases checked");
}
