//! Perplexity the way llama.cpp's `llama-perplexity` computes it, so figures
//! compare directly: the text is cut into non-overlapping windows of `n_ctx`
//! tokens, each evaluated from an empty cache, and only the second half of
//! each window is scored (every prediction has at least n_ctx/2 tokens of context).

use crate::model::LogitsMode;
use crate::session::{Session, SessionOptions};
use crate::{EngineError, Model};

/// Result of a perplexity run.
#[derive(Clone, Debug, PartialEq)]
pub struct Perplexity {
    pub ppl: f64,
    /// llama.cpp's standard-error estimate of the perplexity.
    pub ppl_stderr: f64,
    /// Scored tokens.
    pub tokens: usize,
    pub windows: usize,
    /// Running estimate after each window.
    pub running: Vec<f64>,
}

/// Progress after each window: (windows done, windows total, running ppl).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, f64);

/// Scores `tokens` in windows of `n_ctx`. With `bos`, each window starts with
/// that token in place of its first text token (as llama.cpp does for models
/// that add BOS).
pub fn perplexity(
    model: &std::sync::Arc<Model>,
    tokens: &[u32],
    n_ctx: usize,
    bos: Option<u32>,
    kv_dtype: wisp_ops::DType,
    progress: Progress,
) -> Result<Perplexity, EngineError> {
    if n_ctx < 4 {
        return Err(EngineError::InvalidArgument(format!(
            "context {n_ctx} is too small for perplexity"
        )));
    }
    let windows = tokens.len() / n_ctx;
    if windows == 0 {
        return Err(EngineError::InvalidArgument(format!(
            "the text has {} tokens, fewer than one window of {n_ctx}",
            tokens.len()
        )));
    }
    let n_vocab = model.config().n_vocab;
    let mut session = Session::new(
        model.clone(),
        SessionOptions {
            n_ctx,
            kv_dtype,
            n_batch: n_ctx,
        },
    )?;
    let first = n_ctx / 2;
    let (mut nll, mut nll2, mut count) = (0f64, 0f64, 0usize);
    let mut running = Vec::with_capacity(windows);
    for w in 0..windows {
        let mut chunk = tokens[w * n_ctx..(w + 1) * n_ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        session.reset();
        let logits = session.eval(&chunk, LogitsMode::All)?;
        for j in first..n_ctx - 1 {
            let row = &logits[j * n_vocab..(j + 1) * n_vocab];
            let target = tokens[w * n_ctx + j + 1] as usize;
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
            let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
            let lp = row[target] as f64 - max - sum.ln();
            nll -= lp;
            nll2 += lp * lp;
            count += 1;
        }
        let ppl = (nll / count as f64).exp();
        running.push(ppl);
        progress(w + 1, windows, ppl);
    }
    let mean = nll / count as f64;
    let var = nll2 / count as f64 - mean * mean;
    let stderr = if var > 0.0 && count > 1 {
        (var / (count - 1) as f64).sqrt()
    } else {
        0.0
    };
    let ppl = mean.exp();
    Ok(Perplexity {
        ppl,
        ppl_stderr: stderr * ppl,
        tokens: count,
        windows,
        running,
    })
}
