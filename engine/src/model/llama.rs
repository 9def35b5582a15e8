//! The llama-family decoder as a graph (SmolLM2, Llama, Mistral layouts).
//!
//! Read it top to bottom: embedding lookup, then per block a pre-norm
//! attention with rotary positions and a KV cache, a pre-norm SwiGLU
//! feed-forward, both residual; a final norm and the output projection
//! (tied to the embedding when the file has no `output.weight`).

use wisp_ops::{DType, Op, TensorType};

use super::config::DecoderConfig;
use super::source::WeightSource;
use super::weights::GgufWeights;
use super::{GraphShape, LogitsMode};
use crate::graph::{Graph, ValueId};
use crate::EngineError;

/// Builds the forward pass for `shape.n_tokens` new tokens.
pub fn build(
    cfg: &DecoderConfig,
    w: &GgufWeights,
    shape: &GraphShape,
) -> Result<Graph, EngineError> {
    let n = shape.n_tokens;
    let (d, dff, hd) = (cfg.n_embd, cfg.n_ff, cfg.head_dim);
    let kv = cfg.kv_dim();
    let mut g = Graph::new();
    let weight = |g: &mut Graph, name: &str, s: &[usize]| -> Result<ValueId, EngineError> {
        let (id, ty) = w.require(name, s)?;
        Ok(g.weight(name, ty, id))
    };

    let tokens = g.input("tokens", TensorType::new(DType::I32, &[n]));
    let pos = g.input("positions", TensorType::new(DType::I32, &[n]));
    let tok_embd = weight(&mut g, "token_embd.weight", &[cfg.n_vocab, d])?;
    let mut x = g.op("embd", Op::GetRows, &[tok_embd, tokens])?;

    let rope = |n_dims| Op::Rope {
        head_dim: hd,
        n_dims,
        base: cfg.rope_base,
        mode: cfg.rope_mode,
    };
    let norm = Op::RmsNorm { eps: cfg.rms_eps };
    for l in 0..cfg.n_layer {
        let p = |s: &str| format!("blk.{l}.{s}");
        // Attention.
        let attn_norm = weight(&mut g, &p("attn_norm.weight"), &[d])?;
        let h = g.op(&p("attn_norm"), norm.clone(), &[x])?;
        let h = g.op(&p("attn_norm_w"), Op::Mul, &[h, attn_norm])?;
        let wq = weight(&mut g, &p("attn_q.weight"), &[d, d])?;
        let wk = weight(&mut g, &p("attn_k.weight"), &[kv, d])?;
        let wv = weight(&mut g, &p("attn_v.weight"), &[kv, d])?;
        let q = g.op(&p("q"), Op::MatMul, &[h, wq])?;
        let k = g.op(&p("k"), Op::MatMul, &[h, wk])?;
        let v = g.op(&p("v"), Op::MatMul, &[h, wv])?;
        let q = g.op(&p("q_rope"), rope(cfg.rope_dims), &[q, pos])?;
        let k = g.op(&p("k_rope"), rope(cfg.rope_dims), &[k, pos])?;
        let cache_ty = TensorType::new(shape.kv_dtype, &[shape.n_ctx, kv]);
        let k_cache = g.state(&p("cache_k"), cache_ty.clone());
        let v_cache = g.state(&p("cache_v"), cache_ty);
        let k_cache = g.write_state(Op::KvStore, &[k, pos], k_cache)?;
        let v_cache = g.write_state(Op::KvStore, &[v, pos], v_cache)?;
        let attn = Op::Attention {
            n_head: cfg.n_head,
            n_kv_head: cfg.n_kv_head,
            head_dim: hd,
            scale: 1.0 / (hd as f32).sqrt(),
            window: None,
        };
        let a = g.op(&p("attn"), attn, &[q, k_cache, v_cache, pos])?;
        let wo = weight(&mut g, &p("attn_output.weight"), &[d, d])?;
        let a = g.op(&p("attn_out"), Op::MatMul, &[a, wo])?;
        x = g.op(&p("attn_res"), Op::Add, &[x, a])?;

        // Feed-forward.
        let ffn_norm = weight(&mut g, &p("ffn_norm.weight"), &[d])?;
        let h = g.op(&p("ffn_norm"), norm.clone(), &[x])?;
        let h = g.op(&p("ffn_norm_w"), Op::Mul, &[h, ffn_norm])?;
        let wg = weight(&mut g, &p("ffn_gate.weight"), &[dff, d])?;
        let wu = weight(&mut g, &p("ffn_up.weight"), &[dff, d])?;
        let wd = weight(&mut g, &p("ffn_down.weight"), &[d, dff])?;
        let gate = g.op(&p("ffn_gate"), Op::MatMul, &[h, wg])?;
        let up = g.op(&p("ffn_up"), Op::MatMul, &[h, wu])?;
        let act = g.op(&p("ffn_swiglu"), Op::SwiGlu, &[gate, up])?;
        let down = g.op(&p("ffn_down"), Op::MatMul, &[act, wd])?;
        x = g.op(&p("ffn_res"), Op::Add, &[x, down])?;
    }

    if shape.logits == LogitsMode::Last && n > 1 {
        x = g.op(
            "last_row",
            Op::TakeRows {
                start: n - 1,
                len: 1,
            },
            &[x],
        )?;
    }
    let out_norm = weight(&mut g, "output_norm.weight", &[d])?;
    let h = g.op("output_norm", norm, &[x])?;
    let h = g.op("output_norm_w", Op::Mul, &[h, out_norm])?;
    let out_w = if w.get("output.weight").is_some() {
        weight(&mut g, "output.weight", &[cfg.n_vocab, d])?
    } else {
        tok_embd
    };
    let logits = g.op("logits", Op::MatMul, &[h, out_w])?;
    g.output(logits);
    Ok(g)
}
