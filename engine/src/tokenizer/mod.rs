//! Text <-> token id conversion.
//!
//! Every tokenizer family the engine supports implements the [`Tokenizer`]
//! trait so that the generation loop, the chat template code and the CLI never
//! need to know which family a model uses. Today only GGUF `gpt2`-style
//! byte-level BPE ([`BpeTokenizer`]) exists; WordPiece and SentencePiece will
//! slot in behind the same trait.
//!
//! The behaviour deliberately mirrors llama.cpp so that prompts tokenize to the
//! exact ids the reference implementation produces (the golden tests check
//! this against ids captured from llama.cpp).

pub mod bpe;
pub mod pretokenize;
pub mod spm;
pub mod wordpiece;

pub use bpe::BpeTokenizer;
pub use pretokenize::{PreTokenizer, PreTokenizerKind};
pub use spm::SpmTokenizer;
pub use wordpiece::WordPieceTokenizer;

/// The role of a vocabulary entry, as stored in GGUF `tokenizer.ggml.token_type`.
///
/// The kind decides how a token takes part in encoding (control tokens are only
/// recognised in text when special parsing is requested, user-defined tokens
/// always are) and how it is rendered when decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// An ordinary piece of text produced by the BPE merges (GGUF value 1).
    Normal,
    /// The unknown-token placeholder (GGUF value 2); treated like a control token.
    Unknown,
    /// A control token such as `<|im_start|>` (GGUF value 3); never produced from
    /// plain text unless special parsing is enabled, rendered only on request.
    Control,
    /// A token added by the model author (GGUF value 4); always matched verbatim
    /// in input text and always rendered verbatim.
    UserDefined,
    /// A reserved slot that carries no text (GGUF value 5).
    Unused,
    /// A raw byte token, spelled `<0xXX>` (GGUF value 6).
    Byte,
}

impl TokenKind {
    /// Converts a GGUF `tokenizer.ggml.token_type` value. Values outside the
    /// documented 1..=6 range are treated as [`TokenKind::Normal`] so that an
    /// odd file still loads.
    pub fn from_gguf(v: i32) -> TokenKind {
        match v {
            2 => TokenKind::Unknown,
            3 => TokenKind::Control,
            4 => TokenKind::UserDefined,
            5 => TokenKind::Unused,
            6 => TokenKind::Byte,
            _ => TokenKind::Normal,
        }
    }
}

/// Everything that can go wrong while building a tokenizer or using it.
///
/// Construction errors describe malformed GGUF tokenizer metadata; run-time
/// errors describe bad ids passed in by callers or a vocabulary that cannot
/// represent some input byte.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// `tokenizer.ggml.tokens` and `tokenizer.ggml.token_type` disagree in length.
    #[error("vocabulary has {tokens} tokens but {kinds} token types")]
    KindsLengthMismatch {
        /// Number of token strings.
        tokens: usize,
        /// Number of token kinds.
        kinds: usize,
    },
    /// The vocabulary is larger than a `u32` token id can address.
    #[error("vocabulary of {0} tokens is too large for u32 token ids")]
    VocabTooLarge(usize),
    /// A merge rule is not of the form `"left right"`.
    #[error("malformed merge {merge:?} at index {index}: expected \"left right\"")]
    MalformedMerge {
        /// Position of the rule in `tokenizer.ggml.merges` (its rank).
        index: usize,
        /// The offending rule text.
        merge: String,
    },
    /// `tokenizer.ggml.pre` names a pre-tokenizer this engine does not implement.
    #[error("unknown pre-tokenizer name {0:?}")]
    UnknownPreTokenizer(String),
    /// A token id outside `0..vocab_size` was passed in.
    #[error("token id {id} out of range (vocabulary size {vocab_size})")]
    IdOutOfRange {
        /// The offending id.
        id: u32,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// The pre-tokenizer regex failed to compile or to run.
    #[error("pre-tokenizer regex error: {0}")]
    Regex(String),
    /// A tokenizer description (vocabulary, model folder, settings) is unusable.
    #[error("invalid tokenizer: {0}")]
    Invalid(String),
}

/// One interface for every tokenizer family (BPE now; WordPiece and
/// SentencePiece later), so model-agnostic code can encode prompts and stream
/// decoded output without knowing the family.
pub trait Tokenizer: Send + Sync {
    /// Encode text. `parse_special`: text like "<|im_start|>" becomes its single
    /// control token id (as llama.cpp's parse_special=true); otherwise it is
    /// tokenized as plain text. Does NOT add BOS/EOS.
    fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>, TokenizerError>;

    /// Bytes of one token: for normal tokens the byte-level-decoded bytes;
    /// control tokens give their text only if `render_special`, else empty.
    fn token_bytes(&self, id: u32, render_special: bool) -> Result<Vec<u8>, TokenizerError>;

    /// Concatenated token_bytes (may be invalid UTF-8 mid-stream; callers buffer).
    fn decode(&self, ids: &[u32], render_special: bool) -> Result<Vec<u8>, TokenizerError>;

    /// Number of entries in the vocabulary (ids are `0..vocab_size`).
    fn vocab_size(&self) -> usize;

    /// Id of an exact token string, if any (used to find "<|im_end|>").
    fn token_id(&self, text: &str) -> Option<u32>;

    /// Kind of a token id, or `None` if the id is out of range.
    fn token_kind(&self, id: u32) -> Option<TokenKind>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_kind_from_gguf_maps_documented_values() {
        assert_eq!(TokenKind::from_gguf(1), TokenKind::Normal);
        assert_eq!(TokenKind::from_gguf(2), TokenKind::Unknown);
        assert_eq!(TokenKind::from_gguf(3), TokenKind::Control);
        assert_eq!(TokenKind::from_gguf(4), TokenKind::UserDefined);
        assert_eq!(TokenKind::from_gguf(5), TokenKind::Unused);
        assert_eq!(TokenKind::from_gguf(6), TokenKind::Byte);
    }

    #[test]
    fn token_kind_from_gguf_defaults_unknown_values_to_normal() {
        assert_eq!(TokenKind::from_gguf(0), TokenKind::Normal);
        assert_eq!(TokenKind::from_gguf(7), TokenKind::Normal);
        assert_eq!(TokenKind::from_gguf(-1), TokenKind::Normal);
    }

    #[test]
    fn errors_render_useful_messages() {
        let e = TokenizerError::MalformedMerge {
            index: 7,
            merge: "abc".into(),
        };
        let msg = e.to_string();
        assert!(msg.contains("\"abc\"") && msg.contains('7'), "{msg}");
        let e = TokenizerError::UnknownPreTokenizer("llama-bpe".into());
        assert!(e.to_string().contains("llama-bpe"));
    }

    #[test]
    fn tokenizer_trait_is_object_safe() {
        fn takes(_: Option<&dyn Tokenizer>) {}
        takes(None);
    }
}

/// A piece of text after special tokens were cut out of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fragment<'t> {
    /// Plain text still to be tokenized by the model's algorithm.
    Text(&'t str),
    /// A special token matched verbatim.
    Token(u32),
}

/// Cuts `text` into plain-text fragments and special-token ids the way
/// llama.cpp's `tokenizer_st_partition` does: `specials` (ids, longest text
/// first) each split every plain-text fragment left by the longer ones at all
/// their non-overlapping, left-to-right occurrences. Control and unknown
/// tokens take part only with `parse_special`; user-defined ones always.
pub(crate) fn partition_specials<'t>(
    text: &'t str,
    specials: &[u32],
    tokens: &[String],
    kinds: &[TokenKind],
    parse_special: bool,
) -> Vec<Fragment<'t>> {
    let mut fragments = Vec::new();
    if text.is_empty() {
        return fragments;
    }
    fragments.push(Fragment::Text(text));
    let mut next = Vec::new();
    for &id in specials {
        let kind = kinds[id as usize];
        if !parse_special && matches!(kind, TokenKind::Control | TokenKind::Unknown) {
            continue;
        }
        let needle = tokens[id as usize].as_str();
        if !text.contains(needle) {
            continue;
        }
        next.clear();
        for fragment in &fragments {
            match *fragment {
                Fragment::Text(t) => {
                    let mut last = 0;
                    for (at, _) in t.match_indices(needle) {
                        if at > last {
                            next.push(Fragment::Text(&t[last..at]));
                        }
                        next.push(Fragment::Token(id));
                        last = at + needle.len();
                    }
                    if last < t.len() {
                        next.push(Fragment::Text(&t[last..]));
                    }
                }
                Fragment::Token(_) => next.push(*fragment),
            }
        }
        std::mem::swap(&mut fragments, &mut next);
    }
    fragments
}
