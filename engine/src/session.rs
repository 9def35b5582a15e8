//! A session: one conversation's KV cache and scratch arena over a shared
//! [`Model`]. Sessions are independent; many can run concurrently.

use std::sync::Arc;

use wisp_ops::DType;

use crate::buffer::AlignedBuf;
use crate::model::loaded::Model;
use crate::model::{GraphShape, LogitsMode};
use crate::EngineError;

/// Largest context a session may ask for.
pub const MAX_CTX: usize = 1 << 20;

/// Session settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Positions the KV cache holds.
    pub n_ctx: usize,
    /// KV-cache element type: F16 (half the memory) or F32 (exact).
    pub kv_dtype: DType,
    /// Most tokens evaluated in one graph run; longer inputs are split.
    pub n_batch: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            n_ctx: 2048,
            kv_dtype: DType::F16,
            n_batch: 512,
        }
    }
}

/// One conversation's state.
pub struct Session {
    model: Arc<Model>,
    opts: SessionOptions,
    states: Vec<AlignedBuf>,
    arena: AlignedBuf,
    n_past: usize,
}

impl Session {
    /// Allocates the KV cache for `opts.n_ctx` positions.
    pub fn new(model: Arc<Model>, opts: SessionOptions) -> Result<Session, EngineError> {
        if opts.n_ctx == 0 || opts.n_ctx > MAX_CTX {
            return Err(EngineError::InvalidArgument(format!(
                "context size {} is outside 1..={MAX_CTX}",
                opts.n_ctx
            )));
        }
        if opts.n_batch == 0 {
            return Err(EngineError::InvalidArgument(
                "batch size must be at least 1".into(),
            ));
        }
        if !matches!(opts.kv_dtype, DType::F16 | DType::F32) {
            return Err(EngineError::InvalidArgument(format!(
                "KV cache type {} (use f16 or f32)",
                opts.kv_dtype
            )));
        }
        let cfg = model.config();
        let row = opts
            .kv_dtype
            .bytes_for(cfg.kv_dim())
            .ok_or_else(|| EngineError::Internal("kv row size".into()))?;
        let per_state = row
            .checked_mul(opts.n_ctx)
            .ok_or_else(|| EngineError::InvalidArgument("KV cache size overflows".into()))?;
        let states = (0..cfg.n_layer * 2)
            .map(|_| AlignedBuf::zeroed(per_state))
            .collect();
        Ok(Session {
            model,
            opts,
            states,
            arena: AlignedBuf::default(),
            n_past: 0,
        })
    }

    /// The model this session runs.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Settings.
    pub fn options(&self) -> &SessionOptions {
        &self.opts
    }

    /// Positions already in the KV cache.
    pub fn n_past(&self) -> usize {
        self.n_past
    }

    /// Forgets everything (the cache is overwritten as new tokens come).
    pub fn reset(&mut self) {
        self.n_past = 0;
    }

    /// Keeps only the first `n` positions (e.g. to re-run from a common prefix).
    pub fn truncate(&mut self, n: usize) {
        self.n_past = self.n_past.min(n);
    }

    /// Bytes held by the KV cache.
    pub fn kv_bytes(&self) -> usize {
        self.states.iter().map(|s| s.len()).sum()
    }

    /// Evaluates `tokens` at the next positions and returns logits: the last
    /// token's (`Last`, one row) or every token's (`All`, one row each).
    pub fn eval(&mut self, tokens: &[u32], mode: LogitsMode) -> Result<Vec<f32>, EngineError> {
        self.eval_observed(tokens, mode, None)
    }

    /// [`Session::eval`] with [`LogitsMode::Last`], returning the logits in
    /// place (a view of the session's arena, valid until the next call): a
    /// decode loop then copies no vocabulary-sized row per token.
    pub fn eval_last(&mut self, tokens: &[u32]) -> Result<&[f32], EngineError> {
        self.check_tokens(tokens)?;
        let r = self.run_to_last(tokens, None)?;
        Ok(bytemuck::cast_slice::<u8, f32>(&self.arena.bytes()[r]))
    }

    /// Runs `tokens` in chunks of `n_batch`, each scoring its last position
    /// only; returns the arena bytes of the last chunk's logits.
    fn run_to_last<'o>(
        &mut self,
        tokens: &[u32],
        mut observer: Option<&mut crate::backend::Observer<'o>>,
    ) -> Result<std::ops::Range<usize>, EngineError> {
        let mut r = 0..0;
        for chunk in tokens.chunks(self.opts.n_batch) {
            r = self.run_chunk(chunk, LogitsMode::Last, observer.as_deref_mut())?;
        }
        Ok(r)
    }

    /// The checks every evaluation starts with.
    fn check_tokens(&self, tokens: &[u32]) -> Result<(), EngineError> {
        if tokens.is_empty() {
            return Err(EngineError::InvalidArgument("no tokens to evaluate".into()));
        }
        let needed = self.n_past + tokens.len();
        if needed > self.opts.n_ctx {
            return Err(EngineError::ContextFull {
                needed,
                n_ctx: self.opts.n_ctx,
            });
        }
        let n_vocab = self.model.config().n_vocab;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(EngineError::InvalidArgument(format!(
                "token id {bad} is outside the vocabulary of {n_vocab}"
            )));
        }
        Ok(())
    }

    /// Like [`Session::eval`], handing every activation to `observer` as it
    /// is produced (calibration).
    pub fn eval_observed<'o>(
        &mut self,
        tokens: &[u32],
        mode: LogitsMode,
        mut observer: Option<&mut crate::backend::Observer<'o>>,
    ) -> Result<Vec<f32>, EngineError> {
        self.check_tokens(tokens)?;
        if mode == LogitsMode::Last {
            let r = self.run_to_last(tokens, observer)?;
            return Ok(bytemuck::cast_slice::<u8, f32>(&self.arena.bytes()[r]).to_vec());
        }
        let mut out = Vec::with_capacity(self.model.config().n_vocab * tokens.len());
        for chunk in tokens.chunks(self.opts.n_batch) {
            let r = self.run_chunk(chunk, LogitsMode::All, observer.as_deref_mut())?;
            out.extend_from_slice(bytemuck::cast_slice::<u8, f32>(&self.arena.bytes()[r]));
        }
        Ok(out)
    }

    /// Runs one chunk; returns the arena bytes of its logits.
    fn run_chunk<'o>(
        &mut self,
        tokens: &[u32],
        mode: LogitsMode,
        observer: Option<&mut crate::backend::Observer<'o>>,
    ) -> Result<std::ops::Range<usize>, EngineError> {
        let shape = GraphShape {
            n_tokens: tokens.len(),
            n_ctx: self.opts.n_ctx,
            kv_dtype: self.opts.kv_dtype,
            logits: mode,
        };
        let cg = self.model.compiled(&shape)?;
        if self.arena.len() < cg.arena_bytes() {
            self.arena.resize(cg.arena_bytes());
        }
        let g = &cg.graph;
        let (tok_v, pos_v) = (g.inputs[0], g.inputs[1]);
        let arena = self.arena.bytes_mut();
        let r = cg.value_range(tok_v)?;
        for (c, t) in arena[r].chunks_exact_mut(4).zip(tokens) {
            c.copy_from_slice(&(*t as i32).to_le_bytes());
        }
        let r = cg.value_range(pos_v)?;
        for (i, c) in arena[r].chunks_exact_mut(4).enumerate() {
            c.copy_from_slice(&((self.n_past + i) as i32).to_le_bytes());
        }
        match observer {
            Some(obs) => {
                cg.run_observed(self.model.weights(), &mut self.arena, &mut self.states, obs)?
            }
            None => cg.run(self.model.weights(), &mut self.arena, &mut self.states)?,
        }
        self.n_past += tokens.len();
        cg.value_range(g.outputs[0])
    }
}
