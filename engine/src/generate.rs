//! The generation loop: prefill the prompt, then sample token by token until
//! the budget is spent or an end-of-generation token appears. Shared by the
//! CLI, the C/Rust facade and the tests.

use std::time::Instant;

use crate::sampling::{top_k, Sampler};
use crate::session::Session;
use crate::EngineError;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Record the top-K raw logits each generated token was chosen from (0: none).
    pub n_probs: usize,
    /// Stop at an end-of-generation token (it is included in the ids).
    pub stop_on_eog: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 128,
            n_probs: 0,
            stop_on_eog: true,
        }
    }
}

/// The result of one generation, with timings (sizes and times only: no text is logged).
#[derive(Clone, Debug, Default)]
pub struct Generated {
    pub ids: Vec<u32>,
    /// Per generated token, the top-K `(id, logit)` it was chosen from.
    pub top: Vec<Vec<(u32, f32)>>,
    pub stopped_on_eog: bool,
    pub prompt_tokens: usize,
    pub prompt_ms: f64,
    /// Time of the decode steps (every generated token after the first).
    pub decode_ms: f64,
}

impl Generated {
    /// Prompt tokens per second.
    pub fn prompt_tps(&self) -> f64 {
        self.prompt_tokens as f64 / (self.prompt_ms / 1e3).max(1e-9)
    }

    /// Generated tokens per second over the decode steps.
    pub fn decode_tps(&self) -> f64 {
        let steps = self.ids.len().saturating_sub(1);
        steps as f64 / (self.decode_ms / 1e3).max(1e-9)
    }
}

/// Runs `prompt` through `session` (appending to what it already holds) and
/// generates. `on_token` sees each new id and may return false to stop.
pub fn generate(
    session: &mut Session,
    prompt: &[u32],
    sampler: &mut Sampler,
    opts: &GenerateOptions,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<Generated, EngineError> {
    let mut out = Generated {
        prompt_tokens: prompt.len(),
        ..Default::default()
    };
    if opts.max_tokens == 0 {
        return Ok(out);
    }
    let mut history: Vec<u32> = prompt.to_vec();
    let t0 = Instant::now();
    let mut t1 = t0;
    // Tokens to evaluate next: the prompt, then each sampled token.
    let mut pending: Vec<u32> = prompt.to_vec();
    loop {
        let logits = session.eval_last(&pending)?;
        if out.ids.is_empty() {
            // The first evaluation is the prompt's.
            out.prompt_ms = t0.elapsed().as_secs_f64() * 1e3;
            t1 = Instant::now();
        }
        if opts.n_probs > 0 {
            out.top.push(top_k(logits, opts.n_probs));
        }
        let id = sampler.sample(logits, &history);
        out.ids.push(id);
        history.push(id);
        let eog = session.model().is_eog(id);
        let go_on = on_token(id);
        if eog && opts.stop_on_eog {
            out.stopped_on_eog = true;
            break;
        }
        if !go_on || out.ids.len() >= opts.max_tokens {
            break;
        }
        if session.n_past() >= session.options().n_ctx {
            break;
        }
        pending.clear();
        pending.push(id);
    }
    out.decode_ms = t1.elapsed().as_secs_f64() * 1e3;
    Ok(out)
}

/// Turns a stream of token bytes into text, holding back an incomplete UTF-8
/// sequence until its remaining bytes arrive.
#[derive(Default, Debug)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds bytes; returns the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    text.push_str(s);
                    self.pending.clear();
                    return text;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    text.push_str(std::str::from_utf8(&self.pending[..good]).unwrap_or_default());
                    match e.error_len() {
                        // Invalid bytes: replace them and continue.
                        Some(n) => {
                            text.push('\u{fffd}');
                            self.pending.drain(..good + n);
                        }
                        // Incomplete at the end: wait for more.
                        None => {
                            self.pending.drain(..good);
                            return text;
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left (incomplete bytes become U+FFFD).
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_stream_holds_back_split_characters() {
        let mut s = Utf8Stream::default();
        let e = "é".as_bytes();
        assert_eq!(s.push(&[b'a', e[0]]), "a");
        assert_eq!(s.push(&e[1..]), "é");
        assert_eq!(s.push(&[0xff, b'b']), "\u{fffd}b");
        assert_eq!(s.push(&[0xe2, 0x82]), "");
        assert_eq!(s.finish(), "\u{fffd}");
    }
}
