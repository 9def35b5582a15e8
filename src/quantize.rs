//! `wisp quantize`: write a GGUF with matmul weights in a block-quantized
//! type, from a Hugging Face BERT folder (safetensors) or from a GGUF.
//!
//! BERT output follows llama.cpp's `bert` conventions (tensor names, metadata
//! keys, the WordPiece vocabulary spelled as llama.cpp spells it), so the file
//! loads in llama.cpp too. Which tensors are quantized: 2-D `.weight` tensors
//! whose rows are whole blocks (the projections and the token embedding);
//! norms, biases, position and token-type embeddings stay f32, as llama.cpp
//! keeps them. Quantization uses the reference quantizers (byte-exact with
//! llama.cpp's).

use std::path::Path;

use wisp_engine::model::bert::tensor_names;
use wisp_engine::model::quantized::{convert, quantizes, QuantizedWeights};
use wisp_engine::EngineError;
use wisp_formats::gguf_writer::GgufWriter;
use wisp_formats::{GgmlType, GgufFile, MetaValue};
use wisp_ops::DType;

use crate::EncoderModel;

/// Parses `--type`.
pub fn parse_type(s: &str) -> Result<DType, EngineError> {
    match s {
        "q8_0" => Ok(DType::Q8_0),
        "q4_0" => Ok(DType::Q4_0),
        "q4_1" => Ok(DType::Q4_1),
        "q5_0" => Ok(DType::Q5_0),
        "q5_1" => Ok(DType::Q5_1),
        "q4_k" | "q4_K" => Ok(DType::Q4_K),
        "q5_k" | "q5_K" => Ok(DType::Q5_K),
        "q6_k" | "q6_K" => Ok(DType::Q6_K),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        "f32" => Ok(DType::F32),
        o => Err(EngineError::InvalidArgument(format!(
            "quantization type {o:?} (supported: q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K, f16, bf16, f32)"
        ))),
    }
}

/// llama.cpp's `general.file_type` for a tensor type.
fn file_type(dt: DType) -> u32 {
    match dt {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::Q4_0 => 2,
        DType::Q4_1 => 3,
        DType::Q8_0 => 7,
        DType::BF16 => 32,
        DType::Q5_0 => 8,
        DType::Q5_1 => 9,
        DType::Q4_K => 15,
        DType::Q5_K => 17,
        DType::Q6_K => 18,
        DType::I32 => 0,
    }
}

fn ggml(dt: DType) -> GgmlType {
    GgmlType::from_id(dt.ggml_id()).unwrap_or(GgmlType::F32)
}

/// Quantizes a loaded encoder into a llama.cpp-style `bert` GGUF at `out`.
/// `progress(done, total)` is called after each tensor.
pub fn quantize_encoder(
    model: &EncoderModel,
    target: DType,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<u64, EngineError> {
    let cfg = model.config();
    let mut w = GgufWriter::new();
    let io = |e: wisp_formats::GgufWriteError| EngineError::InvalidArgument(e.to_string());
    let meta: Vec<(&str, MetaValue)> = vec![
        ("general.architecture", MetaValue::String("bert".into())),
        (
            "general.name",
            MetaValue::String(format!("encoder quantized by wisp ({})", target.name())),
        ),
        ("general.file_type", MetaValue::U32(file_type(target))),
        ("general.quantization_version", MetaValue::U32(2)),
        ("bert.block_count", MetaValue::U32(cfg.n_layer as u32)),
        (
            "bert.context_length",
            MetaValue::U32(cfg.max_positions as u32),
        ),
        ("bert.embedding_length", MetaValue::U32(cfg.n_embd as u32)),
        ("bert.feed_forward_length", MetaValue::U32(cfg.n_ff as u32)),
        (
            "bert.attention.head_count",
            MetaValue::U32(cfg.n_head as u32),
        ),
        ("bert.attention.layer_norm_epsilon", MetaValue::F32(cfg.eps)),
        ("bert.attention.causal", MetaValue::Bool(false)),
        ("bert.pooling_type", MetaValue::U32(1)),
    ];
    for (k, v) in meta {
        w.add_metadata(k, v).map_err(io)?;
    }
    let tok = model.tokenizer();
    let vocab = tok.gguf_vocab();
    w.add_metadata("tokenizer.ggml.model", MetaValue::String("bert".into()))
        .map_err(io)?;
    w.add_metadata("tokenizer.ggml.pre", MetaValue::String("jina-v2-en".into()))
        .map_err(io)?;
    w.add_metadata(
        "tokenizer.ggml.tokens",
        MetaValue::Array(
            vocab
                .iter()
                .map(|(t, _)| MetaValue::String(t.clone()))
                .collect(),
        ),
    )
    .map_err(io)?;
    w.add_metadata(
        "tokenizer.ggml.token_type",
        MetaValue::Array(vocab.iter().map(|(_, k)| MetaValue::I32(*k)).collect()),
    )
    .map_err(io)?;
    for (k, id) in [
        ("tokenizer.ggml.bos_token_id", tok.cls_id()),
        ("tokenizer.ggml.eos_token_id", tok.sep_id()),
        ("tokenizer.ggml.unknown_token_id", tok.unk_id()),
        ("tokenizer.ggml.seperator_token_id", tok.sep_id()),
        ("tokenizer.ggml.padding_token_id", tok.pad_id()),
    ] {
        w.add_metadata(k, MetaValue::U32(id)).map_err(io)?;
    }
    w.add_metadata("tokenizer.ggml.add_bos_token", MetaValue::Bool(true))
        .map_err(io)?;
    w.add_metadata("tokenizer.ggml.add_eos_token", MetaValue::Bool(true))
        .map_err(io)?;
    w.add_metadata(
        "tokenizer.ggml.normalizer.lowercase",
        MetaValue::Bool(tok.config().lowercase),
    )
    .map_err(io)?;

    // The same in-memory conversion `EncoderModel::quantized` serves, so the
    // file and the in-memory model compute identical numbers.
    let q = QuantizedWeights::new(model.weights(), &tensor_names(cfg), target, progress)?;
    for (name, ty, bytes) in q.tensors() {
        let dims: Vec<u64> = ty.shape.iter().rev().map(|&d| d as u64).collect();
        w.add_tensor(name, &dims, ggml(ty.dtype), bytes.clone())
            .map_err(io)?;
    }
    w.write_to_path(out).map_err(io)
}

/// Re-quantizes a GGUF (any architecture): metadata copied, eligible weights converted.
pub fn quantize_gguf(
    input: &GgufFile,
    target: DType,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<u64, EngineError> {
    let io = |e: wisp_formats::GgufWriteError| EngineError::InvalidArgument(e.to_string());
    let mut w = GgufWriter::new();
    for (k, v) in input.metadata() {
        let v = if k == "general.file_type" {
            MetaValue::U32(file_type(target))
        } else {
            v.clone()
        };
        w.add_metadata(k, v).map_err(io)?;
    }
    let total = input.tensors().len();
    for (i, t) in input.tensors().iter().enumerate() {
        let shape: Vec<usize> = t.dims.iter().rev().map(|&d| d as usize).collect();
        let from = DType::from_ggml_id(t.dtype.id());
        let data = input.tensor_data(i);
        let (to, bytes) = match from {
            Some(from) if quantizes(&t.name, &shape, target) && from != DType::I32 => {
                (ggml(target), convert(from, data, &shape, target))
            }
            _ => (t.dtype, data.to_vec()),
        };
        w.add_tensor(&t.name, &t.dims, to, bytes).map_err(io)?;
        progress(i + 1, total);
    }
    w.write_to_path(out).map_err(io)
}
