//! The BERT encoder as a graph (all-MiniLM-L6-v2 and kin): embeddings
//! (word + position + token type, layer norm), post-norm blocks of
//! multi-head attention with biases and a padding mask and an erf-GELU
//! feed-forward, then mean pooling over the mask and L2 normalisation.
//!
//! Tensor names follow llama.cpp's `bert` GGUF convention; safetensors
//! checkpoints are read through [`hf_name`].

use wisp_ops::{DType, Op, TensorType};

use super::source::WeightSource;
use crate::graph::{Graph, ValueId};
use crate::EngineError;

/// A BERT encoder's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderConfig {
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_vocab: usize,
    pub n_types: usize,
    pub max_positions: usize,
    pub eps: f32,
}

impl EncoderConfig {
    /// The head size.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Checks the numbers before anything is sized by them.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |w: String| Err(EngineError::InvalidModel(w));
        let dims = [
            self.n_layer,
            self.n_embd,
            self.n_ff,
            self.n_head,
            self.n_vocab,
            self.n_types,
            self.max_positions,
        ];
        if dims.iter().any(|&d| d == 0 || d > 1 << 22) || self.n_layer > 1024 {
            return bad(format!("encoder dimensions out of range: {self:?}"));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return bad(format!(
                "{} dims do not split into {} heads",
                self.n_embd, self.n_head
            ));
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return bad(format!("layer norm epsilon {}", self.eps));
        }
        Ok(())
    }
}

/// The batch shape a graph is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EncoderShape {
    pub batch: usize,
    pub seq: usize,
}

/// The Hugging Face name of a tensor given in GGUF naming (`None` if unknown).
pub fn hf_name(gguf: &str) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("embeddings.word_embeddings.weight"),
        "position_embd.weight" => Some("embeddings.position_embeddings.weight"),
        "token_types.weight" => Some("embeddings.token_type_embeddings.weight"),
        "token_embd_norm.weight" => Some("embeddings.LayerNorm.weight"),
        "token_embd_norm.bias" => Some("embeddings.LayerNorm.bias"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, kind) = rest.rsplit_once('.')?;
    let hf = match part {
        "attn_q" => "attention.self.query",
        "attn_k" => "attention.self.key",
        "attn_v" => "attention.self.value",
        "attn_output" => "attention.output.dense",
        "attn_output_norm" => "attention.output.LayerNorm",
        "ffn_up" => "intermediate.dense",
        "ffn_down" => "output.dense",
        "layer_output_norm" => "output.LayerNorm",
        _ => return None,
    };
    Some(format!("encoder.layer.{layer}.{hf}.{kind}"))
}

/// Tensor names of a BERT encoder in GGUF naming, with their shapes.
pub fn tensor_names(cfg: &EncoderConfig) -> Vec<(String, Vec<usize>)> {
    let (d, f) = (cfg.n_embd, cfg.n_ff);
    let mut v = vec![
        ("token_embd.weight".to_string(), vec![cfg.n_vocab, d]),
        ("token_types.weight".to_string(), vec![cfg.n_types, d]),
        (
            "position_embd.weight".to_string(),
            vec![cfg.max_positions, d],
        ),
        ("token_embd_norm.weight".to_string(), vec![d]),
        ("token_embd_norm.bias".to_string(), vec![d]),
    ];
    for l in 0..cfg.n_layer {
        for (t, out, inp) in [
            ("attn_q", d, d),
            ("attn_k", d, d),
            ("attn_v", d, d),
            ("attn_output", d, d),
            ("ffn_up", f, d),
            ("ffn_down", d, f),
        ] {
            v.push((format!("blk.{l}.{t}.weight"), vec![out, inp]));
            v.push((format!("blk.{l}.{t}.bias"), vec![out]));
        }
        for n in ["attn_output_norm", "layer_output_norm"] {
            v.push((format!("blk.{l}.{n}.weight"), vec![d]));
            v.push((format!("blk.{l}.{n}.bias"), vec![d]));
        }
    }
    v
}

/// Builds the encoder for `shape.batch` sequences of `shape.seq` tokens.
/// Inputs: `tokens`, `token_types`, `positions` (i32 [B·S]) and `mask` (f32 [B, S]);
/// output: `embedding` (f32 [B, D], unit length).
pub fn build(
    cfg: &EncoderConfig,
    w: &dyn WeightSource,
    shape: &EncoderShape,
) -> Result<Graph, EngineError> {
    let (b, s, d, f) = (shape.batch, shape.seq, cfg.n_embd, cfg.n_ff);
    let n = b * s;
    let mut g = Graph::new();
    let weight = |g: &mut Graph, name: &str, sh: &[usize]| -> Result<ValueId, EngineError> {
        let (id, ty) = w.require(name, sh)?;
        Ok(g.weight(name, ty, id))
    };
    let ids = g.input("tokens", TensorType::new(DType::I32, &[n]));
    let types = g.input("token_types", TensorType::new(DType::I32, &[n]));
    let pos = g.input("positions", TensorType::new(DType::I32, &[n]));
    let mask = g.input("mask", TensorType::new(DType::F32, &[b, s]));

    let tok = weight(&mut g, "token_embd.weight", &[cfg.n_vocab, d])?;
    let typ = weight(&mut g, "token_types.weight", &[cfg.n_types, d])?;
    let pe = weight(&mut g, "position_embd.weight", &[cfg.max_positions, d])?;
    let e = g.op("embd_tok", Op::GetRows, &[tok, ids])?;
    let t = g.op("embd_type", Op::GetRows, &[typ, types])?;
    let p = g.op("embd_pos", Op::GetRows, &[pe, pos])?;
    let x = g.op("embd_sum", Op::Add, &[e, t])?;
    let x = g.op("embd_sum_pos", Op::Add, &[x, p])?;
    let ln = Op::LayerNorm { eps: cfg.eps };
    let nw = weight(&mut g, "token_embd_norm.weight", &[d])?;
    let nb = weight(&mut g, "token_embd_norm.bias", &[d])?;
    let mut x = g.op("embd_norm", ln.clone(), &[x, nw, nb])?;

    let hd = cfg.head_dim();
    for l in 0..cfg.n_layer {
        let nm = |s: &str| format!("blk.{l}.{s}");
        // y = x·Wᵀ + b
        let linear = |g: &mut Graph,
                      x: ValueId,
                      t: &str,
                      out: usize,
                      inp: usize|
         -> Result<ValueId, EngineError> {
            let wv = weight(g, &nm(&format!("{t}.weight")), &[out, inp])?;
            let bv = weight(g, &nm(&format!("{t}.bias")), &[out])?;
            let y = g.op(&nm(t), Op::MatMul, &[x, wv])?;
            Ok(g.op(&nm(&format!("{t}_b")), Op::Add, &[y, bv])?)
        };
        let q = linear(&mut g, x, "attn_q", d, d)?;
        let k = linear(&mut g, x, "attn_k", d, d)?;
        let v = linear(&mut g, x, "attn_v", d, d)?;
        let attn = Op::EncoderAttention {
            n_head: cfg.n_head,
            head_dim: hd,
            scale: 1.0 / (hd as f32).sqrt(),
        };
        let a = g.op(&nm("attn"), attn, &[q, k, v, mask])?;
        let o = linear(&mut g, a, "attn_output", d, d)?;
        let r = g.op(&nm("attn_res"), Op::Add, &[x, o])?;
        let (w1, b1) = (
            weight(&mut g, &nm("attn_output_norm.weight"), &[d])?,
            weight(&mut g, &nm("attn_output_norm.bias"), &[d])?,
        );
        x = g.op(&nm("attn_output_norm"), ln.clone(), &[r, w1, b1])?;
        let h = linear(&mut g, x, "ffn_up", f, d)?;
        let h = g.op(&nm("ffn_gelu"), Op::Gelu, &[h])?;
        let h = linear(&mut g, h, "ffn_down", d, f)?;
        let r = g.op(&nm("ffn_res"), Op::Add, &[x, h])?;
        let (w2, b2) = (
            weight(&mut g, &nm("layer_output_norm.weight"), &[d])?,
            weight(&mut g, &nm("layer_output_norm.bias"), &[d])?,
        );
        x = g.op(&nm("layer_output_norm"), ln.clone(), &[r, w2, b2])?;
    }
    let pooled = g.op("mean_pool", Op::MeanPool, &[x, mask])?;
    let emb = g.op("embedding", Op::L2Norm { eps: 1e-12 }, &[pooled])?;
    g.output(emb);
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_names_map() {
        assert_eq!(
            hf_name("token_embd.weight").unwrap(),
            "embeddings.word_embeddings.weight"
        );
        assert_eq!(
            hf_name("blk.5.attn_output_norm.bias").unwrap(),
            "encoder.layer.5.attention.output.LayerNorm.bias"
        );
        assert_eq!(
            hf_name("blk.0.ffn_down.weight").unwrap(),
            "encoder.layer.0.output.dense.weight"
        );
        assert_eq!(hf_name("blk.x.ffn_down.weight"), None);
        assert_eq!(hf_name("output.weight"), None);
    }
}
