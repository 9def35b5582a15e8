//! The tokenizer and special tokens a GGUF file describes.

use std::sync::Arc;

use wisp_formats::gguf::MetaValue;
use wisp_formats::GgufFile;

use crate::tokenizer::spm::DEFAULT_ADD_SPACE_PREFIX;
use crate::tokenizer::{BpeTokenizer, SpmTokenizer, TokenKind, Tokenizer};
use crate::EngineError;

/// Texts of control tokens that end generation (llama.cpp's end-of-generation
/// set: end-of-text/turn markers and the FIM repo/separator/pad tokens).
const EOG_TEXTS: &[&str] = &[
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|end_of_text|>",
    "<EOT>",
    "<reponame>",
    "<|repo_name|>",
    "<|fim_pad|>",
    "<|file_sep|>",
];

/// llama.cpp's end-of-generation texts for SentencePiece (`llama`) vocabularies,
/// matched on every token whatever its GGUF type (llama.cpp re-types them as
/// control, as [`SpmTokenizer`] does): end of turn/message/text markers, and
/// the fill-in-the-middle pad, repo and file-separator tokens. For Gemma 3 that
/// is `<eos>`, `<end_of_turn>` and `</s>`.
const SPM_EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    // fill in the middle: pad, repo, file separator
    "<|fim_pad|>",
    "<fim-pad>",
    "<fim_pad>",
    "<PAD>",
    "[PAD]",
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
    "<|file_sep|>",
];

/// Special token ids and flags of a vocabulary.
#[derive(Clone, Debug, Default)]
pub struct SpecialTokens {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Whether encode() for a prompt starts with BOS (`tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    /// Tokens that end generation.
    pub eog: Vec<u32>,
}

/// Builds the tokenizer named by `tokenizer.ggml.model`.
pub fn load_tokenizer(f: &GgufFile) -> Result<(Arc<dyn Tokenizer>, SpecialTokens), EngineError> {
    let model = f.get_str("tokenizer.ggml.model")?;
    let tokens = f.get_str_array("tokenizer.ggml.tokens")?;
    let kinds: Vec<TokenKind> = match f.get("tokenizer.ggml.token_type") {
        Some(_) => f
            .get_int_array("tokenizer.ggml.token_type")?
            .into_iter()
            .map(|v| TokenKind::from_gguf(v as i32))
            .collect(),
        None => vec![TokenKind::Normal; tokens.len()],
    };
    let tok: Arc<dyn Tokenizer> = match model {
        "gpt2" => {
            let merges = f.get_str_array("tokenizer.ggml.merges")?;
            let pre = match f.get("tokenizer.ggml.pre") {
                Some(_) => f.get_str("tokenizer.ggml.pre")?,
                None => "default",
            };
            Arc::new(BpeTokenizer::new(
                tokens.clone(),
                kinds.clone(),
                &merges,
                pre,
            )?)
        }
        "llama" => {
            let scores = match f.get("tokenizer.ggml.scores") {
                Some(_) => f32_array(f, "tokenizer.ggml.scores")?,
                None => Vec::new(),
            };
            let add_space_prefix = match f.get("tokenizer.ggml.add_space_prefix") {
                Some(_) => f.get_bool("tokenizer.ggml.add_space_prefix")?,
                None => DEFAULT_ADD_SPACE_PREFIX,
            };
            Arc::new(SpmTokenizer::new(
                tokens.clone(),
                scores,
                kinds.clone(),
                add_space_prefix,
            )?)
        }
        other => {
            return Err(EngineError::Unsupported(format!(
                "tokenizer model {other:?} (supported: gpt2, llama)"
            )))
        }
    };
    let n = tokens.len() as u64;
    let id = |key: &str| -> Result<Option<u32>, EngineError> {
        match f.get(key) {
            None => Ok(None),
            Some(_) => {
                let v = f.get_u64(key)?;
                if v >= n {
                    return Err(EngineError::InvalidModel(format!(
                        "{key} = {v} is outside the vocabulary of {n}"
                    )));
                }
                Ok(Some(v as u32))
            }
        }
    };
    let bos = id("tokenizer.ggml.bos_token_id")?;
    let eos = id("tokenizer.ggml.eos_token_id")?;
    // Without the key llama.cpp adds BOS for SentencePiece vocabularies only.
    let add_bos = match f.get("tokenizer.ggml.add_bos_token") {
        Some(_) => f.get_bool("tokenizer.ggml.add_bos_token")?,
        None => model == "llama",
    };
    let mut eog: Vec<u32> = eos.into_iter().collect();
    if model == "llama" {
        // The tokenizer's kinds are llama.cpp's, after re-typing by text.
        for (i, t) in (0u32..).zip(&tokens) {
            if tok.token_kind(i) == Some(TokenKind::Control) && SPM_EOG_TEXTS.contains(&t.as_str())
            {
                eog.push(i);
            }
        }
    } else {
        for (i, (t, k)) in tokens.iter().zip(&kinds).enumerate() {
            if matches!(k, TokenKind::Control | TokenKind::UserDefined)
                && EOG_TEXTS.contains(&t.as_str())
            {
                eog.push(i as u32);
            }
        }
    }
    eog.sort_unstable();
    eog.dedup();
    Ok((
        tok,
        SpecialTokens {
            bos,
            eos,
            add_bos,
            eog,
        },
    ))
}

/// A metadata array of numbers as f32 (`tokenizer.ggml.scores`).
fn f32_array(f: &GgufFile, key: &str) -> Result<Vec<f32>, EngineError> {
    let bad = || EngineError::InvalidModel(format!("{key} is not an array of numbers"));
    match f.get(key) {
        Some(MetaValue::Array(items)) => items
            .iter()
            .map(|v| match v {
                MetaValue::F32(x) => Ok(*x),
                v => v.as_f64().map(|x| x as f32).ok_or_else(bad),
            })
            .collect(),
        _ => Err(bad()),
    }
}
