//! Gemma 3 as a graph (the text decoder of the 270M and 1B layouts).
//!
//! Read it top to bottom: embedding lookup scaled by √n_embd; then per block
//! a pre-norm attention whose queries and keys are RMS-normalised per head
//! before rotary positions (NeoX pairing), over a sliding window in five of
//! every six layers (with their own rope base) and over the whole cache in
//! the sixth, normalised again after the output projection and added to the
//! residual; a pre-norm feed-forward gated by the tanh GELU, normalised after
//! and added; a final norm and the output projection tied to the embedding.
//!
//! Gemma's RMS norm multiplies by (1 + w); GGUF files already store 1 + w
//! (llama.cpp's converter adds the one), so every norm here is the plain
//! `rms_norm` → `mul`. The attention scale is the config's (1/√head_dim;
//! llama.cpp scales the queries by it, wisp the scores: the same product).

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
    let (qd, kv) = (cfg.q_dim(), cfg.kv_dim());
    let mut g = Graph::new();
    let weight = |g: &mut Graph, name: &str, s: &[usize]| -> Result<ValueId, EngineError> {
        let (id, ty) = w.require(name, s)?;
        Ok(g.weight(name, ty, id))
    };
    // x / rms(x) · w, row by row.
    let rms_norm = |g: &mut Graph, name: &str, x: ValueId, w: ValueId| {
        let h = g.op(name, Op::RmsNorm { eps: cfg.rms_eps }, &[x])?;
        g.op(&format!("{name}_w"), Op::Mul, &[h, w])
    };
    // The same per head: [n, heads·hd] viewed as [n·heads, hd] rows and back.
    let head_norm = |g: &mut Graph, name: &str, x: ValueId, heads: usize, w: ValueId| {
        let rows = TensorType::new(DType::F32, &[n * heads, hd]);
        let x = g.reshape(&format!("{name}_heads"), x, rows)?;
        let h = rms_norm(g, name, x, w)?;
        g.reshape(
            &format!("{name}_rows"),
            h,
            TensorType::new(DType::F32, &[n, heads * hd]),
        )
    };

    let tokens = g.input("tokens", TensorType::new(DType::I32, &[n]));
    let pos = g.input("positions", TensorType::new(DType::I32, &[n]));
    let tok_embd = weight(&mut g, "token_embd.weight", &[cfg.n_vocab, d])?;
    let x = g.op("embd", Op::GetRows, &[tok_embd, tokens])?;
    let embd_scale = Op::Scale {
        factor: (d as f32).sqrt(),
    };
    let mut x = g.op("embd_scaled", embd_scale, &[x])?;

    for l in 0..cfg.n_layer {
        let p = |s: &str| format!("blk.{l}.{s}");
        let window = cfg.layer_window(l);
        let rope = Op::Rope {
            head_dim: hd,
            n_dims: cfg.rope_dims,
            base: cfg.layer_rope_base(l),
            mode: cfg.rope_mode,
        };

        // Attention.
        let attn_norm = weight(&mut g, &p("attn_norm.weight"), &[d])?;
        let h = rms_norm(&mut g, &p("attn_norm"), x, attn_norm)?;
        let wq = weight(&mut g, &p("attn_q.weight"), &[qd, d])?;
        let wk = weight(&mut g, &p("attn_k.weight"), &[kv, d])?;
        let wv = weight(&mut g, &p("attn_v.weight"), &[kv, d])?;
        let q = g.op(&p("q"), Op::MatMul, &[h, wq])?;
        let k = g.op(&p("k"), Op::MatMul, &[h, wk])?;
        let v = g.op(&p("v"), Op::MatMul, &[h, wv])?;
        let q_norm = weight(&mut g, &p("attn_q_norm.weight"), &[hd])?;
        let k_norm = weight(&mut g, &p("attn_k_norm.weight"), &[hd])?;
        let q = head_norm(&mut g, &p("q_norm"), q, cfg.n_head, q_norm)?;
        let k = head_norm(&mut g, &p("k_norm"), k, cfg.n_kv_head, k_norm)?;
        let q = g.op(&p("q_rope"), rope.clone(), &[q, pos])?;
        let k = g.op(&p("k_rope"), rope, &[k, pos])?;
        let cache_ty = TensorType::new(shape.kv_dtype, &[shape.n_ctx, kv]);
        let k_cache = g.state(&p("cache_k"), cache_ty.clone());
        let v_cache = g.state(&p("cache_v"), cache_ty);
        let k_cache = g.write_state(Op::KvStore, &[k, pos], k_cache)?;
        let v_cache = g.write_state(Op::KvStore, &[v, pos], v_cache)?;
        let attn = Op::Attention {
            n_head: cfg.n_head,
            n_kv_head: cfg.n_kv_head,
            head_dim: hd,
            scale: cfg.attn_scale,
            window,
        };
        let a = g.op(&p("attn"), attn, &[q, k_cache, v_cache, pos])?;
        let wo = weight(&mut g, &p("attn_output.weight"), &[d, qd])?;
        let a = g.op(&p("attn_out"), Op::MatMul, &[a, wo])?;
        let post_attn_norm = weight(&mut g, &p("post_attention_norm.weight"), &[d])?;
        let a = rms_norm(&mut g, &p("post_attention_norm"), a, post_attn_norm)?;
        x = g.op(&p("attn_res"), Op::Add, &[x, a])?;

        // Feed-forward.
        let ffn_norm = weight(&mut g, &p("ffn_norm.weight"), &[d])?;
        let h = rms_norm(&mut g, &p("ffn_norm"), x, ffn_norm)?;
        let wg = weight(&mut g, &p("ffn_gate.weight"), &[dff, d])?;
        let wu = weight(&mut g, &p("ffn_up.weight"), &[dff, d])?;
        let wd = weight(&mut g, &p("ffn_down.weight"), &[d, dff])?;
        let gate = g.op(&p("ffn_gate"), Op::MatMul, &[h, wg])?;
        let up = g.op(&p("ffn_up"), Op::MatMul, &[h, wu])?;
        let act = g.op(&p("ffn_geglu"), Op::GeGlu, &[gate, up])?;
        let down = g.op(&p("ffn_down"), Op::MatMul, &[act, wd])?;
        let post_ffw_norm = weight(&mut g, &p("post_ffw_norm.weight"), &[d])?;
        let down = rms_norm(&mut g, &p("post_ffw_norm"), down, post_ffw_norm)?;
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
    let h = rms_norm(&mut g, "output_norm", x, out_norm)?;
    let out_w = if w.get("output.weight").is_some() {
        weight(&mut g, "output.weight", &[cfg.n_vocab, d])?
    } else {
        tok_embd
    };
    let logits = g.op("logits", Op::MatMul, &[h, out_w])?;
    g.output(logits);
    Ok(g)
}
