//! The tokenizer and special tokens a GGUF file describes.

use std::sync::Arc;

use wisp_formats::GgufFile;

use crate::tokenizer::{BpeTokenizer, TokenKind, Tokenizer};
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
        other => {
            return Err(EngineError::Unsupported(format!(
                "tokenizer model {other:?} (supported: gpt2)"
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
    let add_bos = match f.get("tokenizer.ggml.add_bos_token") {
        Some(_) => f.get_bool("tokenizer.ggml.add_bos_token")?,
        None => false,
    };
    let mut eog: Vec<u32> = eos.into_iter().collect();
    for (i, (t, k)) in tokens.iter().zip(&kinds).enumerate() {
        if matches!(k, TokenKind::Control | TokenKind::UserDefined)
            && EOG_TEXTS.contains(&t.as_str())
        {
            eog.push(i as u32);
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
