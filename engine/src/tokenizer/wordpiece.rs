//! BERT WordPiece (Hugging Face `BertTokenizer` / `BertTokenizerFast`, and GGUF
//! `tokenizer.ggml.model = "bert"`).
//!
//! Encoding follows the Hugging Face fast tokenizer step by step, so that ids
//! match what `transformers` / `sentence-transformers` feed their models:
//!
//! 1. **Added-token partition.** Occurrences of added tokens (`[CLS]`,
//!    `[SEP]`, ...) are cut out of the raw text and become their ids directly;
//!    control tokens only when special parsing is requested. Longer token
//!    strings win at a position, the leftmost position wins overall.
//! 2. **Normalization** (`BertNormalizer`), in this order: clean the text (drop
//!    NUL, U+FFFD and "other" characters — categories Cc, Cf, Co — except tab,
//!    newline and carriage return; every whitespace character becomes a space),
//!    surround CJK ideographs with spaces, strip accents (NFD decomposition, then
//!    drop nonspacing marks, category Mn), lower-case character by character.
//! 3. **Pre-tokenization** (`BertPreTokenizer`): split on whitespace and
//!    isolate every punctuation character (Unicode P* categories plus all ASCII
//!    punctuation, which adds `$+<=>^`|~` to the P* set).
//! 4. **WordPiece** per word: greedy longest-match-first from the left, pieces
//!    after the first carry the continuation prefix (`##`). A word longer than
//!    `max_input_chars_per_word` (100) characters, or one that cannot be
//!    covered by vocabulary pieces, becomes a single `[UNK]`.
//!
//! Where the Python `BertTokenizer` and the Rust fast tokenizer disagree on a
//! rare detail (unassigned code points are kept, lower-casing happens after
//! accent stripping and per character, U+2028/U+2029 count as whitespace, the
//! CJK Extension E block starts at U+2B920), this module follows the fast
//! tokenizer, which is what `tokenizer.json` describes.
//!
//! The character-class tables at the end of this file reproduce the fast
//! tokenizer's (Unicode 8-era) category data exactly; NFD comes from the
//! `unicode-normalization` crate, case mapping and the White_Space property
//! from the Rust standard library, as in the fast tokenizer.
//!
//! llama.cpp's GGUF conversion respells the vocabulary: every word-initial piece
//! gains a leading U+2581 (`▁hello`), continuation pieces lose their `##`
//! (`ing`), and control tokens (`[CLS]`, ...) stay as they are.
//! [`WordPieceTokenizer::from_vocab`] with [`VocabStyle::LlamaCppGguf`] undoes
//! that respelling, so both sources tokenize identically; ids are positions in
//! the list either way.

use std::cmp::{Ordering, Reverse};
use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use super::{TokenKind, Tokenizer, TokenizerError};

/// The word-start marker of llama.cpp's GGUF WordPiece vocabularies (U+2581).
const GGUF_WORD_START: char = '\u{2581}';
/// Hugging Face's default `max_input_chars_per_word`.
const DEFAULT_MAX_INPUT_CHARS_PER_WORD: usize = 100;
/// `model_max_length` of BERT-family checkpoints when nothing says otherwise.
const DEFAULT_MAX_LEN: usize = 512;

/// How continuation pieces are spelled in a vocabulary list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabStyle {
    /// Hugging Face `vocab.txt` / `tokenizer.json` spelling: word-initial pieces
    /// as is (`hello`), continuations with the prefix (`##ing`).
    HuggingFace,
    /// llama.cpp's GGUF spelling for `tokenizer.ggml.model = "bert"`:
    /// word-initial pieces with a leading U+2581 (`▁hello`), continuations bare
    /// (`ing`), control tokens bare (`[CLS]`). A bare token of the form
    /// `[...]` is taken to be a control token, anything else bare is a
    /// continuation.
    LlamaCppGguf,
}

/// Normalization and length settings of a WordPiece tokenizer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WordPieceConfig {
    /// Lower-case the text (`do_lower_case`).
    pub lowercase: bool,
    /// Strip accents (NFD, then drop nonspacing marks). Hugging Face derives
    /// this from `lowercase` when a model leaves it unspecified; see
    /// [`WordPieceConfig::from_lowercase`].
    pub strip_accents: bool,
    /// Put spaces around CJK ideographs so each becomes its own word.
    pub tokenize_chinese_chars: bool,
    /// Longest sequence [`WordPieceTokenizer::encode_with_specials`] returns,
    /// `[CLS]` and `[SEP]` included (`model_max_length`; at least 2).
    pub max_len: usize,
    /// Marker of continuation pieces in the Hugging Face spelling (`##`).
    pub continuing_prefix: String,
}

impl WordPieceConfig {
    /// The settings Hugging Face uses when a model only says whether it
    /// lower-cases: accents are stripped exactly when text is lower-cased, CJK
    /// splitting is on, 512 tokens, `##` continuations.
    pub fn from_lowercase(lowercase: bool) -> Self {
        WordPieceConfig {
            lowercase,
            strip_accents: lowercase,
            tokenize_chinese_chars: true,
            max_len: DEFAULT_MAX_LEN,
            continuing_prefix: "##".to_owned(),
        }
    }
}

impl Default for WordPieceConfig {
    /// Uncased BERT (all-MiniLM-L6-v2, bert-base-uncased).
    fn default() -> Self {
        WordPieceConfig::from_lowercase(true)
    }
}

/// A padded batch, row-major `[batch, seq]`, ready for a BERT encoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Token ids; padding positions hold `[PAD]`.
    pub ids: Vec<u32>,
    /// Attention mask: 1 for a real token, 0 for padding.
    pub mask: Vec<u32>,
    /// Token type (segment) ids: all 0 for single sentences.
    pub type_ids: Vec<u32>,
    /// Number of rows (texts).
    pub batch: usize,
    /// Row length.
    pub seq: usize,
}

/// The token names that play a role in encoding, in the Hugging Face spelling.
#[derive(Clone, Debug)]
struct SpecialNames {
    unk: String,
    cls: String,
    sep: String,
    pad: String,
    mask: String,
}

impl Default for SpecialNames {
    fn default() -> Self {
        SpecialNames {
            unk: "[UNK]".into(),
            cls: "[CLS]".into(),
            sep: "[SEP]".into(),
            pad: "[PAD]".into(),
            mask: "[MASK]".into(),
        }
    }
}

/// Everything [`WordPieceTokenizer::build`] needs, gathered from whichever
/// source describes the model.
struct Parts {
    /// Token strings in the Hugging Face spelling; the index is the id.
    tokens: Vec<String>,
    /// Ids below this belong to the WordPiece model vocabulary (the rest are
    /// added tokens that only the partition step produces).
    model_len: usize,
    /// Tokens matched verbatim in raw text: (id, special). Special ones are
    /// control tokens, the others user-defined.
    added: Vec<(u32, bool)>,
    names: SpecialNames,
    config: WordPieceConfig,
    clean_text: bool,
    max_input_chars_per_word: usize,
}

/// A BERT WordPiece tokenizer (all-MiniLM-L6-v2, bert-base-uncased, ...).
///
/// Built once from a Hugging Face model folder or a GGUF vocabulary; immutable
/// and thread-safe afterwards.
#[derive(Clone)]
pub struct WordPieceTokenizer {
    /// Token strings in the Hugging Face spelling.
    tokens: Vec<String>,
    /// Kind of each token.
    kinds: Vec<TokenKind>,
    /// Exact token string -> id over the whole vocabulary (last id wins).
    token_to_id: HashMap<String, u32>,
    /// Word-initial lookup: model-vocabulary string -> id.
    initial: HashMap<String, u32>,
    /// Continuation lookup: model-vocabulary string with the prefix removed -> id.
    continuation: HashMap<String, u32>,
    /// Longest key (in bytes) of `initial` and `continuation`, bounding the
    /// match search.
    max_piece_bytes: usize,
    /// Tokens matched verbatim in raw text, longest text first.
    specials: Vec<u32>,
    /// First bytes of the `specials` texts, to skip positions quickly.
    special_first_byte: [bool; 256],
    config: WordPieceConfig,
    clean_text: bool,
    max_input_chars_per_word: usize,
    cls: u32,
    sep: u32,
    pad: u32,
    unk: u32,
}

fn invalid(msg: impl Into<String>) -> TokenizerError {
    TokenizerError::Invalid(msg.into())
}

fn read_json(path: &Path) -> Result<Value, TokenizerError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| invalid(format!("{} is not valid JSON: {e}", path.display())))
}

/// A special-token entry of `tokenizer_config.json`: a string, or an object
/// with a `content` string (the `AddedToken` serialization).
fn token_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_owned),
        _ => None,
    }
}

fn json_bool(v: &Value, key: &str) -> Option<bool> {
    v.get(key)?.as_bool()
}

fn json_usize(v: &Value, key: &str) -> Option<usize> {
    let n = v.get(key)?;
    if let Some(u) = n.as_u64() {
        return Some(usize::try_from(u).unwrap_or(usize::MAX));
    }
    // `model_max_length` is int(1e30) when a checkpoint sets no limit, which
    // JSON readers see as a float; the cast saturates to "no limit".
    n.as_f64().filter(|f| *f >= 0.0).map(|f| f as usize)
}

impl WordPieceTokenizer {
    /// Loads the tokenizer of a Hugging Face model folder.
    ///
    /// `tokenizer.json` is preferred: its WordPiece `model.vocab`, `unk_token`,
    /// continuation prefix and word length limit, its `BertNormalizer` flags
    /// (`strip_accents: null` follows `lowercase`) and its `added_tokens`.
    /// Without it, `vocab.txt` (one token per line, id = line number) is read
    /// with the flags of `tokenizer_config.json` (`do_lower_case`,
    /// `strip_accents`, `tokenize_chinese_chars`; Hugging Face defaults when
    /// absent). Either way `tokenizer_config.json`, when present, supplies
    /// `model_max_length` (the `max_len`, else 512) and the names of the special
    /// tokens. The truncation/padding block of `tokenizer.json` is a run-time
    /// setting of whoever saved the file and is ignored.
    pub fn from_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let config_path = dir.join("tokenizer_config.json");
        let tok_config = if config_path.is_file() {
            Some(read_json(&config_path)?)
        } else {
            None
        };

        let mut names = SpecialNames::default();
        let mut max_len = DEFAULT_MAX_LEN;
        if let Some(c) = &tok_config {
            for (key, slot) in [
                ("unk_token", &mut names.unk),
                ("cls_token", &mut names.cls),
                ("sep_token", &mut names.sep),
                ("pad_token", &mut names.pad),
                ("mask_token", &mut names.mask),
            ] {
                if let Some(name) = c.get(key).and_then(token_name) {
                    *slot = name;
                }
            }
            if let Some(n) = json_usize(c, "model_max_length") {
                max_len = n;
            }
        }

        let json_path = dir.join("tokenizer.json");
        let vocab_path = dir.join("vocab.txt");
        let parts = if json_path.is_file() {
            Self::parts_from_tokenizer_json(&read_json(&json_path)?, names, max_len)
                .map_err(|e| invalid(format!("{}: {e}", json_path.display())))?
        } else if vocab_path.is_file() {
            Self::parts_from_vocab_txt(&vocab_path, tok_config.as_ref(), names, max_len)?
        } else {
            return Err(invalid(format!(
                "{}: neither tokenizer.json nor vocab.txt found",
                dir.display()
            )));
        };
        Self::build(parts)
    }

    /// Reads the pieces of a `tokenizer.json` document.
    fn parts_from_tokenizer_json(
        doc: &Value,
        mut names: SpecialNames,
        max_len: usize,
    ) -> Result<Parts, TokenizerError> {
        let model = doc
            .get("model")
            .filter(|m| m.is_object())
            .ok_or_else(|| invalid("no \"model\" object"))?;
        if let Some(ty) = model.get("type").and_then(Value::as_str) {
            if ty != "WordPiece" {
                return Err(invalid(format!("model type {ty:?} is not WordPiece")));
            }
        }
        let vocab = model
            .get("vocab")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("no \"model.vocab\" object"))?;

        // Added tokens may sit beyond the model vocabulary; size for both.
        let added_list: Vec<(u32, String, bool)> = match doc.get("added_tokens") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|t| {
                    let id = t.get("id").and_then(Value::as_u64);
                    let content = t.get("content").and_then(Value::as_str);
                    match (id.and_then(|i| u32::try_from(i).ok()), content) {
                        (Some(id), Some(c)) => Ok((
                            id,
                            c.to_owned(),
                            t.get("special").and_then(Value::as_bool).unwrap_or(false),
                        )),
                        _ => Err(invalid(format!("malformed added token {t}"))),
                    }
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("\"added_tokens\" is not a list")),
        };

        let mut slots: Vec<Option<String>> = vec![None; vocab.len()];
        for (text, id) in vocab {
            let id = id
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| invalid(format!("vocab entry {text:?} has a non-integer id")))?;
            if id >= slots.len() {
                return Err(invalid(format!(
                    "vocab id {id} of {text:?} leaves gaps in a vocabulary of {} entries",
                    vocab.len()
                )));
            }
            if slots[id].replace(text.clone()).is_some() {
                return Err(invalid(format!("vocab id {id} is used twice")));
            }
        }
        let model_len = slots.len();
        for (id, content, _) in &added_list {
            let id = *id as usize;
            if id >= slots.len() {
                slots.resize(id + 1, None);
            }
            if slots[id].is_none() {
                slots[id] = Some(content.clone());
            }
        }
        let tokens = slots
            .into_iter()
            .enumerate()
            .map(|(id, t)| t.ok_or_else(|| invalid(format!("no token has id {id}"))))
            .collect::<Result<Vec<_>, _>>()?;

        if let Some(unk) = model.get("unk_token").and_then(Value::as_str) {
            names.unk = unk.to_owned();
        }
        if let Some(pad) = doc.pointer("/padding/pad_token").and_then(Value::as_str) {
            names.pad = pad.to_owned();
        }
        if let Some(pp) = doc.get("post_processor") {
            match pp.get("type").and_then(Value::as_str) {
                Some("BertProcessing") => {
                    if let Some(c) = pp.pointer("/cls/0").and_then(Value::as_str) {
                        names.cls = c.to_owned();
                    }
                    if let Some(s) = pp.pointer("/sep/0").and_then(Value::as_str) {
                        names.sep = s.to_owned();
                    }
                }
                Some("TemplateProcessing") => {
                    // `single` is [CLS] $A [SEP]: the special before the
                    // sequence is the class token, the one after the separator.
                    if let Some(single) = pp.get("single").and_then(Value::as_array) {
                        let mut seen_sequence = false;
                        for piece in single {
                            if piece.get("Sequence").is_some() {
                                seen_sequence = true;
                            } else if let Some(id) =
                                piece.pointer("/SpecialToken/id").and_then(Value::as_str)
                            {
                                let slot = if seen_sequence {
                                    &mut names.sep
                                } else {
                                    &mut names.cls
                                };
                                *slot = id.to_owned();
                            }
                        }
                    }
                }
                _ => {}
            }
        }

        // No normalizer at all means no normalization step.
        let mut config = WordPieceConfig {
            lowercase: false,
            strip_accents: false,
            tokenize_chinese_chars: false,
            max_len,
            continuing_prefix: model
                .get("continuing_subword_prefix")
                .and_then(Value::as_str)
                .unwrap_or("##")
                .to_owned(),
        };
        let mut clean_text = false;
        match doc.get("normalizer") {
            None | Some(Value::Null) => {}
            Some(n) => match n.get("type").and_then(Value::as_str) {
                Some("BertNormalizer") => {
                    clean_text = json_bool(n, "clean_text").unwrap_or(true);
                    config.tokenize_chinese_chars =
                        json_bool(n, "handle_chinese_chars").unwrap_or(true);
                    config.lowercase = json_bool(n, "lowercase").unwrap_or(true);
                    config.strip_accents =
                        json_bool(n, "strip_accents").unwrap_or(config.lowercase);
                }
                other => return Err(invalid(format!("unsupported normalizer {other:?}"))),
            },
        }
        match doc.pointer("/pre_tokenizer/type").and_then(Value::as_str) {
            Some("BertPreTokenizer") => {}
            other => return Err(invalid(format!("unsupported pre-tokenizer {other:?}"))),
        }

        Ok(Parts {
            tokens,
            model_len,
            added: added_list
                .into_iter()
                .map(|(id, _, special)| (id, special))
                .collect(),
            names,
            config,
            clean_text,
            max_input_chars_per_word: json_usize(model, "max_input_chars_per_word")
                .unwrap_or(DEFAULT_MAX_INPUT_CHARS_PER_WORD),
        })
    }

    /// Reads `vocab.txt` plus the flags of `tokenizer_config.json`.
    fn parts_from_vocab_txt(
        path: &Path,
        tok_config: Option<&Value>,
        names: SpecialNames,
        max_len: usize,
    ) -> Result<Parts, TokenizerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        let tokens: Vec<String> = text
            .lines()
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
            .collect();

        let flag = |key: &str| tok_config.and_then(|c| json_bool(c, key));
        let lowercase = flag("do_lower_case").unwrap_or(true);
        let config = WordPieceConfig {
            lowercase,
            strip_accents: flag("strip_accents").unwrap_or(lowercase),
            tokenize_chinese_chars: flag("tokenize_chinese_chars").unwrap_or(true),
            max_len,
            continuing_prefix: "##".to_owned(),
        };

        // Newer configs list the added tokens as {"<id>": {"content", "special"}}.
        let mut added = Vec::new();
        if let Some(decoder) = tok_config
            .and_then(|c| c.get("added_tokens_decoder"))
            .and_then(Value::as_object)
        {
            for (id, t) in decoder {
                let id: u32 = id.parse().map_err(|_| {
                    invalid(format!("added_tokens_decoder key {id:?} is not an id"))
                })?;
                let content = t.get("content").and_then(Value::as_str);
                if (id as usize) < tokens.len() && content == Some(tokens[id as usize].as_str()) {
                    added.push((id, json_bool(t, "special").unwrap_or(false)));
                }
            }
        }

        Ok(Parts {
            model_len: tokens.len(),
            tokens,
            added,
            names,
            config,
            clean_text: true,
            max_input_chars_per_word: DEFAULT_MAX_INPUT_CHARS_PER_WORD,
        })
    }

    /// Builds the tokenizer from a vocabulary list whose positions are the ids
    /// (GGUF `tokenizer.ggml.tokens`, or the lines of `vocab.txt`).
    ///
    /// `style` says how the list spells continuation pieces (see
    /// [`VocabStyle`]); the special tokens are `[UNK]`, `[CLS]`, `[SEP]`,
    /// `[PAD]` (all required) and `[MASK]` (optional). Text is cleaned
    /// (`clean_text`) and words longer than 100 characters become `[UNK]`, as
    /// for every BERT checkpoint.
    pub fn from_vocab(
        tokens: Vec<String>,
        style: VocabStyle,
        config: WordPieceConfig,
    ) -> Result<Self, TokenizerError> {
        let names = SpecialNames::default();
        let mut added = Vec::new();
        let tokens: Vec<String> = match style {
            VocabStyle::HuggingFace => tokens,
            VocabStyle::LlamaCppGguf => tokens
                .into_iter()
                .enumerate()
                .map(|(id, t)| {
                    if let Some(word) = t.strip_prefix(GGUF_WORD_START) {
                        word.to_owned()
                    } else if t.len() > 2 && t.starts_with('[') && t.ends_with(']') {
                        if let Ok(id) = u32::try_from(id) {
                            added.push((id, true));
                        }
                        t
                    } else {
                        format!("{}{t}", config.continuing_prefix)
                    }
                })
                .collect(),
        };
        for name in [&names.unk, &names.cls, &names.sep, &names.pad, &names.mask] {
            if let Some(id) = tokens.iter().rposition(|t| t == name) {
                if let Ok(id) = u32::try_from(id) {
                    added.push((id, true));
                }
            }
        }
        Self::build(Parts {
            model_len: tokens.len(),
            tokens,
            added,
            names,
            config,
            clean_text: true,
            max_input_chars_per_word: DEFAULT_MAX_INPUT_CHARS_PER_WORD,
        })
    }

    fn build(parts: Parts) -> Result<Self, TokenizerError> {
        let Parts {
            tokens,
            model_len,
            added,
            names,
            config,
            clean_text,
            max_input_chars_per_word,
        } = parts;
        if config.max_len < 2 {
            return Err(invalid(format!(
                "max_len {} leaves no room for [CLS] and [SEP]",
                config.max_len
            )));
        }
        if u32::try_from(tokens.len()).is_err() {
            return Err(TokenizerError::VocabTooLarge(tokens.len()));
        }

        let mut token_to_id = HashMap::with_capacity(tokens.len());
        for (id, text) in (0u32..).zip(&tokens) {
            token_to_id.insert(text.clone(), id);
        }
        let prefix = config.continuing_prefix.as_str();
        let mut initial = HashMap::with_capacity(model_len);
        let mut continuation = HashMap::new();
        let mut max_piece_bytes = 0;
        for (id, text) in (0u32..).zip(&tokens[..model_len]) {
            initial.insert(text.clone(), id);
            max_piece_bytes = max_piece_bytes.max(text.len());
            if let Some(rest) = text.strip_prefix(prefix).filter(|r| !r.is_empty()) {
                continuation.insert(rest.to_owned(), id);
            }
        }

        let require = |name: &str, role: &str| {
            token_to_id
                .get(name)
                .copied()
                .ok_or_else(|| invalid(format!("the vocabulary has no {role} token {name:?}")))
        };
        let unk = require(&names.unk, "unknown")?;
        let cls = require(&names.cls, "class")?;
        let sep = require(&names.sep, "separator")?;
        let pad = require(&names.pad, "padding")?;

        let mut kinds = vec![TokenKind::Normal; tokens.len()];
        for (id, special) in added {
            if let Some(k) = kinds.get_mut(id as usize) {
                *k = if special {
                    TokenKind::Control
                } else {
                    TokenKind::UserDefined
                };
            }
        }
        for name in [&names.cls, &names.sep, &names.pad, &names.mask] {
            if let Some(&id) = token_to_id.get(name.as_str()) {
                kinds[id as usize] = TokenKind::Control;
            }
        }
        kinds[unk as usize] = TokenKind::Unknown;

        let mut specials: Vec<u32> = (0u32..)
            .zip(&kinds)
            .filter(|(id, k)| **k != TokenKind::Normal && !tokens[*id as usize].is_empty())
            .map(|(id, _)| id)
            .collect();
        specials.sort_by_key(|&id| Reverse(tokens[id as usize].len()));
        let mut special_first_byte = [false; 256];
        for &id in &specials {
            special_first_byte[tokens[id as usize].as_bytes()[0] as usize] = true;
        }

        tracing::debug!(
            vocab = tokens.len(),
            continuations = continuation.len(),
            specials = specials.len(),
            lowercase = config.lowercase,
            strip_accents = config.strip_accents,
            "built WordPiece tokenizer"
        );

        Ok(WordPieceTokenizer {
            tokens,
            kinds,
            token_to_id,
            initial,
            continuation,
            max_piece_bytes,
            specials,
            special_first_byte,
            config,
            clean_text,
            max_input_chars_per_word,
            cls,
            sep,
            pad,
            unk,
        })
    }

    /// The vocabulary spelled as llama.cpp's `bert` GGUF files spell it, with
    /// GGUF token types: control and unknown tokens bare (type 3),
    /// continuations without their prefix, word-initial pieces after a
    /// U+2581 (type 1). `wisp quantize` writes this, so its files load in llama.cpp.
    pub fn gguf_vocab(&self) -> Vec<(String, i32)> {
        let prefix = self.config.continuing_prefix.as_str();
        self.tokens
            .iter()
            .zip(&self.kinds)
            .map(|(t, k)| match k {
                TokenKind::Control | TokenKind::Unknown => (t.clone(), 3),
                _ => match t.strip_prefix(prefix).filter(|_| !prefix.is_empty()) {
                    Some(rest) => (rest.to_string(), 1),
                    None => (format!("\u{2581}{t}"), 1),
                },
            })
            .collect()
    }

    /// The settings in force.
    pub fn config(&self) -> &WordPieceConfig {
        &self.config
    }

    /// Id of `[CLS]`, which starts every sequence.
    pub fn cls_id(&self) -> u32 {
        self.cls
    }

    /// Id of `[SEP]`, which ends every sequence.
    pub fn sep_id(&self) -> u32 {
        self.sep
    }

    /// Id of `[PAD]`, which fills batch rows.
    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    /// Id of `[UNK]`, which stands for words the vocabulary cannot spell.
    pub fn unk_id(&self) -> u32 {
        self.unk
    }

    /// Model input for one text: `[CLS]` + pieces + `[SEP]`, with the pieces cut
    /// so the whole stays within `max_len` (`[SEP]` is always kept).
    ///
    /// As Hugging Face's tokenizers do by default, special-token text in the
    /// input (`"[SEP]"`) becomes that token rather than being split into pieces.
    pub fn encode_with_specials(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 2);
        ids.push(self.cls);
        self.encode_into(text, true, &mut ids);
        ids.truncate(self.config.max_len - 1);
        ids.push(self.sep);
        Ok(ids)
    }

    /// The original name of [`Self::encode_with_specials`] (a single sentence,
    /// no pair): identical behaviour.
    pub fn encode_pair_free(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.encode_with_specials(text)
    }

    /// Encodes each text with [`Self::encode_with_specials`] and pads the rows
    /// with `[PAD]` to the longest one, or to `pad_to` if that is longer
    /// (`pad_to` never truncates: rows are already within `max_len`).
    pub fn encode_batch(
        &self,
        texts: &[&str],
        pad_to: Option<usize>,
    ) -> Result<Batch, TokenizerError> {
        let rows = texts
            .iter()
            .map(|t| self.encode_with_specials(t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.pad_batch(&rows, pad_to))
    }

    /// Already encoded rows (`encode_with_specials`) as one batch padded with
    /// `[PAD]` to the longest row, or to `pad_to` when that is longer.
    pub fn pad_batch(&self, rows: &[Vec<u32>], pad_to: Option<usize>) -> Batch {
        let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
        let seq = longest.max(pad_to.unwrap_or(0));
        let mut ids = Vec::with_capacity(rows.len() * seq);
        let mut mask = Vec::with_capacity(rows.len() * seq);
        for row in rows {
            ids.extend_from_slice(row);
            ids.resize(ids.len() + seq - row.len(), self.pad);
            mask.resize(mask.len() + row.len(), 1);
            mask.resize(mask.len() + seq - row.len(), 0);
        }
        Batch {
            type_ids: vec![0; ids.len()],
            ids,
            mask,
            batch: rows.len(),
            seq,
        }
    }

    /// Appends the pieces of `text` to `out`, cutting out added tokens first.
    fn encode_into(&self, text: &str, parse_special: bool, out: &mut Vec<u32>) {
        let bytes = text.as_bytes();
        let mut plain_start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if self.special_first_byte[bytes[i] as usize] {
                if let Some(id) = self.special_at(&text[i..], parse_special) {
                    self.encode_plain(&text[plain_start..i], out);
                    out.push(id);
                    i += self.tokens[id as usize].len();
                    plain_start = i;
                    continue;
                }
            }
            i += 1;
            while i < bytes.len() && !text.is_char_boundary(i) {
                i += 1;
            }
        }
        self.encode_plain(&text[plain_start..], out);
    }

    /// The longest matchable added token that `text` starts with.
    fn special_at(&self, text: &str, parse_special: bool) -> Option<u32> {
        self.specials.iter().copied().find(|&id| {
            (parse_special || self.kinds[id as usize] == TokenKind::UserDefined)
                && text.starts_with(self.tokens[id as usize].as_str())
        })
    }

    /// Normalizes, pre-tokenizes and WordPiece-encodes plain text.
    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let norm = self.normalize(text);
        let mut word_start = None;
        for (i, c) in norm.char_indices() {
            let space = c.is_whitespace();
            if space || is_punctuation(c) {
                if let Some(s) = word_start.take() {
                    self.encode_word(&norm[s..i], out);
                }
                if !space {
                    self.encode_word(&norm[i..i + c.len_utf8()], out);
                }
            } else if word_start.is_none() {
                word_start = Some(i);
            }
        }
        if let Some(s) = word_start {
            self.encode_word(&norm[s..], out);
        }
    }

    /// `BertNormalizer`: clean, space out CJK, strip accents, lower-case.
    fn normalize(&self, text: &str) -> String {
        let mut s = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if self.clean_text {
                if c == '\0' || c == '\u{FFFD}' || is_control(c) {
                    continue;
                }
                if c.is_whitespace() {
                    s.push(' ');
                    continue;
                }
            }
            if self.config.tokenize_chinese_chars && is_chinese_char(c) {
                s.push(' ');
                s.push(c);
                s.push(' ');
            } else {
                s.push(c);
            }
        }
        if s.is_ascii() {
            // NFD leaves ASCII alone and ASCII has no nonspacing marks.
            if self.config.lowercase {
                s.make_ascii_lowercase();
            }
            return s;
        }
        if self.config.strip_accents {
            s = s.nfd().filter(|&c| !is_nonspacing_mark(c)).collect();
        }
        if self.config.lowercase {
            s = s.chars().flat_map(char::to_lowercase).collect();
        }
        s
    }

    /// Greedy longest-match-first WordPiece of one word.
    fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        if word.chars().nth(self.max_input_chars_per_word).is_some() {
            out.push(self.unk);
            return;
        }
        let first = out.len();
        let mut start = 0;
        while start < word.len() {
            let table = if start == 0 {
                &self.initial
            } else {
                &self.continuation
            };
            let mut end = word.len().min(start + self.max_piece_bytes);
            let mut found = None;
            while end > start {
                if word.is_char_boundary(end) {
                    if let Some(&id) = table.get(&word[start..end]) {
                        found = Some(id);
                        break;
                    }
                }
                end -= 1;
            }
            match found {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(first);
                    out.push(self.unk);
                    return;
                }
            }
        }
    }

    fn check_id(&self, id: u32) -> Result<usize, TokenizerError> {
        let i = id as usize;
        if i < self.tokens.len() {
            Ok(i)
        } else {
            Err(TokenizerError::IdOutOfRange {
                id,
                vocab_size: self.tokens.len(),
            })
        }
    }
}

impl Tokenizer for WordPieceTokenizer {
    /// The WordPiece pieces of `text`, without `[CLS]`/`[SEP]` (see
    /// [`WordPieceTokenizer::encode_with_specials`] for model input). With
    /// `parse_special`, text such as `"[SEP]"` becomes that token's id;
    /// otherwise it is ordinary text (`[`, `sep`, `]`).
    fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_into(text, parse_special, &mut out);
        Ok(out)
    }

    /// A continuation piece renders as its text without the prefix (`##ing` →
    /// `ing`); any other piece renders with a leading space (`hello` →
    /// ` hello`), so concatenating pieces joins words the way Hugging Face's
    /// WordPiece decoder does. Control and unknown tokens render (space-led)
    /// only with `render_special`.
    fn token_bytes(&self, id: u32, render_special: bool) -> Result<Vec<u8>, TokenizerError> {
        let i = self.check_id(id)?;
        let text = self.tokens[i].as_str();
        let shown = match self.kinds[i] {
            TokenKind::Control | TokenKind::Unknown => render_special,
            _ => true,
        };
        if !shown {
            return Ok(Vec::new());
        }
        if self.kinds[i] == TokenKind::Normal {
            if let Some(rest) = text
                .strip_prefix(self.config.continuing_prefix.as_str())
                .filter(|r| !r.is_empty())
            {
                return Ok(rest.as_bytes().to_vec());
            }
        }
        let mut out = Vec::with_capacity(text.len() + 1);
        out.push(b' ');
        out.extend_from_slice(text.as_bytes());
        Ok(out)
    }

    /// Pieces joined as Hugging Face's WordPiece decoder joins them:
    /// continuations glued to the previous piece, other pieces separated by one
    /// space, no leading space. (Hugging Face's optional clean-up of spaces
    /// before punctuation is not applied.)
    fn decode(&self, ids: &[u32], render_special: bool) -> Result<Vec<u8>, TokenizerError> {
        let mut out = Vec::new();
        for &id in ids {
            out.extend(self.token_bytes(id, render_special)?);
        }
        if out.first() == Some(&b' ') {
            out.remove(0);
        }
        Ok(out)
    }

    fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// Id of a token in the Hugging Face spelling (`"##ing"`, `"[CLS]"`), also
    /// for tokenizers built from a GGUF vocabulary.
    fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    fn token_kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).copied()
    }
}

/// Whether `c` lies in one of the sorted, disjoint inclusive ranges of `table`.
fn in_table(c: char, table: &[(u32, u32)]) -> bool {
    let cp = c as u32;
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                Ordering::Less
            } else if lo > cp {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        })
        .is_ok()
}

/// Characters the cleaning step drops: categories Cc, Cf and Co, except the
/// tab, newline and carriage return, which count as whitespace.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && in_table(c, OTHER)
}

/// ASCII punctuation (all of 33–47, 58–64, 91–96, 123–126) or Unicode P*.
fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_punctuation()
    } else {
        in_table(c, PUNCTUATION)
    }
}

/// General category Mn.
fn is_nonspacing_mark(c: char) -> bool {
    !c.is_ascii() && in_table(c, NONSPACING_MARK)
}

/// The ideograph blocks BERT treats as one-character words (the fast
/// tokenizer's list, whose Extension E range starts at U+2B920).
fn is_chinese_char(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

// Character classes as the Hugging Face fast tokenizer sees them: sorted,
// disjoint, inclusive code point ranges. Its category data predates Unicode 9,
// so characters assigned since then are neither marks, punctuation nor
// controls here, even where today's Unicode Character Database says otherwise
// (and U+1734 is still a nonspacing mark). The tables were made by running
// every code point through tokenizers 0.23.3's BertNormalizer and
// BertPreTokenizer, and checked against UCD 14.0 for the characters both know.
// The nonspacing-mark table also lists marks that have a canonical
// decomposition; those never survive NFD, so their entries are inert.

/// Nonspacing marks (Mn), removed after NFD when stripping accents.
#[rustfmt::skip]
const NONSPACING_MARK: &[(u32, u32)] = &[
    (0x300, 0x36F), (0x483, 0x487), (0x591, 0x5BD), (0x5BF, 0x5BF), (0x5C1, 0x5C2), (0x5C4, 0x5C5),
    (0x5C7, 0x5C7), (0x610, 0x61A), (0x64B, 0x65F), (0x670, 0x670), (0x6D6, 0x6DC), (0x6DF, 0x6E4),
    (0x6E7, 0x6E8), (0x6EA, 0x6ED), (0x711, 0x711), (0x730, 0x74A), (0x7A6, 0x7B0), (0x7EB, 0x7F3),
    (0x816, 0x819), (0x81B, 0x823), (0x825, 0x827), (0x829, 0x82D), (0x859, 0x85B), (0x8E3, 0x902),
    (0x93A, 0x93A), (0x93C, 0x93C), (0x941, 0x948), (0x94D, 0x94D), (0x951, 0x957), (0x962, 0x963),
    (0x981, 0x981), (0x9BC, 0x9BC), (0x9C1, 0x9C4), (0x9CD, 0x9CD), (0x9E2, 0x9E3), (0xA01, 0xA02),
    (0xA3C, 0xA3C), (0xA41, 0xA42), (0xA47, 0xA48), (0xA4B, 0xA4D), (0xA51, 0xA51), (0xA70, 0xA71),
    (0xA75, 0xA75), (0xA81, 0xA82), (0xABC, 0xABC), (0xAC1, 0xAC5), (0xAC7, 0xAC8), (0xACD, 0xACD),
    (0xAE2, 0xAE3), (0xB01, 0xB01), (0xB3C, 0xB3C), (0xB3F, 0xB3F), (0xB41, 0xB44), (0xB4D, 0xB4D),
    (0xB56, 0xB56), (0xB62, 0xB63), (0xB82, 0xB82), (0xBC0, 0xBC0), (0xBCD, 0xBCD), (0xC00, 0xC00),
    (0xC3E, 0xC40), (0xC46, 0xC48), (0xC4A, 0xC4D), (0xC55, 0xC56), (0xC62, 0xC63), (0xC81, 0xC81),
    (0xCBC, 0xCBC), (0xCBF, 0xCBF), (0xCC6, 0xCC6), (0xCCC, 0xCCD), (0xCE2, 0xCE3), (0xD01, 0xD01),
    (0xD41, 0xD44), (0xD4D, 0xD4D), (0xD62, 0xD63), (0xDCA, 0xDCA), (0xDD2, 0xDD4), (0xDD6, 0xDD6),
    (0xE31, 0xE31), (0xE34, 0xE3A), (0xE47, 0xE4E), (0xEB1, 0xEB1), (0xEB4, 0xEB9), (0xEBB, 0xEBC),
    (0xEC8, 0xECD), (0xF18, 0xF19), (0xF35, 0xF35), (0xF37, 0xF37), (0xF39, 0xF39), (0xF71, 0xF7E),
    (0xF80, 0xF84), (0xF86, 0xF87), (0xF8D, 0xF97), (0xF99, 0xFBC), (0xFC6, 0xFC6),
    (0x102D, 0x1030), (0x1032, 0x1037), (0x1039, 0x103A), (0x103D, 0x103E), (0x1058, 0x1059),
    (0x105E, 0x1060), (0x1071, 0x1074), (0x1082, 0x1082), (0x1085, 0x1086), (0x108D, 0x108D),
    (0x109D, 0x109D), (0x135D, 0x135F), (0x1712, 0x1714), (0x1732, 0x1734), (0x1752, 0x1753),
    (0x1772, 0x1773), (0x17B4, 0x17B5), (0x17B7, 0x17BD), (0x17C6, 0x17C6), (0x17C9, 0x17D3),
    (0x17DD, 0x17DD), (0x180B, 0x180D), (0x18A9, 0x18A9), (0x1920, 0x1922), (0x1927, 0x1928),
    (0x1932, 0x1932), (0x1939, 0x193B), (0x1A17, 0x1A18), (0x1A1B, 0x1A1B), (0x1A56, 0x1A56),
    (0x1A58, 0x1A5E), (0x1A60, 0x1A60), (0x1A62, 0x1A62), (0x1A65, 0x1A6C), (0x1A73, 0x1A7C),
    (0x1A7F, 0x1A7F), (0x1AB0, 0x1ABD), (0x1B00, 0x1B03), (0x1B34, 0x1B34), (0x1B36, 0x1B3A),
    (0x1B3C, 0x1B3C), (0x1B42, 0x1B42), (0x1B6B, 0x1B73), (0x1B80, 0x1B81), (0x1BA2, 0x1BA5),
    (0x1BA8, 0x1BA9), (0x1BAB, 0x1BAD), (0x1BE6, 0x1BE6), (0x1BE8, 0x1BE9), (0x1BED, 0x1BED),
    (0x1BEF, 0x1BF1), (0x1C2C, 0x1C33), (0x1C36, 0x1C37), (0x1CD0, 0x1CD2), (0x1CD4, 0x1CE0),
    (0x1CE2, 0x1CE8), (0x1CED, 0x1CED), (0x1CF4, 0x1CF4), (0x1CF8, 0x1CF9), (0x1DC0, 0x1DF5),
    (0x1DFC, 0x1DFF), (0x20D0, 0x20DC), (0x20E1, 0x20E1), (0x20E5, 0x20F0), (0x2CEF, 0x2CF1),
    (0x2D7F, 0x2D7F), (0x2DE0, 0x2DFF), (0x302A, 0x302D), (0x3099, 0x309A), (0xA66F, 0xA66F),
    (0xA674, 0xA67D), (0xA69E, 0xA69F), (0xA6F0, 0xA6F1), (0xA802, 0xA802), (0xA806, 0xA806),
    (0xA80B, 0xA80B), (0xA825, 0xA826), (0xA8C4, 0xA8C4), (0xA8E0, 0xA8F1), (0xA926, 0xA92D),
    (0xA947, 0xA951), (0xA980, 0xA982), (0xA9B3, 0xA9B3), (0xA9B6, 0xA9B9), (0xA9BC, 0xA9BC),
    (0xA9E5, 0xA9E5), (0xAA29, 0xAA2E), (0xAA31, 0xAA32), (0xAA35, 0xAA36), (0xAA43, 0xAA43),
    (0xAA4C, 0xAA4C), (0xAA7C, 0xAA7C), (0xAAB0, 0xAAB0), (0xAAB2, 0xAAB4), (0xAAB7, 0xAAB8),
    (0xAABE, 0xAABF), (0xAAC1, 0xAAC1), (0xAAEC, 0xAAED), (0xAAF6, 0xAAF6), (0xABE5, 0xABE5),
    (0xABE8, 0xABE8), (0xABED, 0xABED), (0xFB1E, 0xFB1E), (0xFE00, 0xFE0F), (0xFE20, 0xFE2F),
    (0x101FD, 0x101FD), (0x102E0, 0x102E0), (0x10376, 0x1037A), (0x10A01, 0x10A03),
    (0x10A05, 0x10A06), (0x10A0C, 0x10A0F), (0x10A38, 0x10A3A), (0x10A3F, 0x10A3F),
    (0x10AE5, 0x10AE6), (0x11001, 0x11001), (0x11038, 0x11046), (0x1107F, 0x11081),
    (0x110B3, 0x110B6), (0x110B9, 0x110BA), (0x11100, 0x11102), (0x11127, 0x1112B),
    (0x1112D, 0x11134), (0x11173, 0x11173), (0x11180, 0x11181), (0x111B6, 0x111BE),
    (0x111CA, 0x111CC), (0x1122F, 0x11231), (0x11234, 0x11234), (0x11236, 0x11237),
    (0x112DF, 0x112DF), (0x112E3, 0x112EA), (0x11300, 0x11301), (0x1133C, 0x1133C),
    (0x11340, 0x11340), (0x11366, 0x1136C), (0x11370, 0x11374), (0x114B3, 0x114B8),
    (0x114BA, 0x114BA), (0x114BF, 0x114C0), (0x114C2, 0x114C3), (0x115B2, 0x115B5),
    (0x115BC, 0x115BD), (0x115BF, 0x115C0), (0x115DC, 0x115DD), (0x11633, 0x1163A),
    (0x1163D, 0x1163D), (0x1163F, 0x11640), (0x116AB, 0x116AB), (0x116AD, 0x116AD),
    (0x116B0, 0x116B5), (0x116B7, 0x116B7), (0x1171D, 0x1171F), (0x11722, 0x11725),
    (0x11727, 0x1172B), (0x16AF0, 0x16AF4), (0x16B30, 0x16B36), (0x16F8F, 0x16F92),
    (0x1BC9D, 0x1BC9E), (0x1D167, 0x1D169), (0x1D17B, 0x1D182), (0x1D185, 0x1D18B),
    (0x1D1AA, 0x1D1AD), (0x1D242, 0x1D244), (0x1DA00, 0x1DA36), (0x1DA3B, 0x1DA6C),
    (0x1DA75, 0x1DA75), (0x1DA84, 0x1DA84), (0x1DA9B, 0x1DA9F), (0x1DAA1, 0x1DAAF),
    (0x1E8D0, 0x1E8D6), (0xE0100, 0xE01EF),
];

/// Non-ASCII punctuation (Pc, Pd, Ps, Pe, Pi, Pf, Po).
#[rustfmt::skip]
const PUNCTUATION: &[(u32, u32)] = &[
    (0xA1, 0xA1), (0xA7, 0xA7), (0xAB, 0xAB), (0xB6, 0xB7), (0xBB, 0xBB), (0xBF, 0xBF),
    (0x37E, 0x37E), (0x387, 0x387), (0x55A, 0x55F), (0x589, 0x58A), (0x5BE, 0x5BE), (0x5C0, 0x5C0),
    (0x5C3, 0x5C3), (0x5C6, 0x5C6), (0x5F3, 0x5F4), (0x609, 0x60A), (0x60C, 0x60D), (0x61B, 0x61B),
    (0x61E, 0x61F), (0x66A, 0x66D), (0x6D4, 0x6D4), (0x700, 0x70D), (0x7F7, 0x7F9), (0x830, 0x83E),
    (0x85E, 0x85E), (0x964, 0x965), (0x970, 0x970), (0xAF0, 0xAF0), (0xDF4, 0xDF4), (0xE4F, 0xE4F),
    (0xE5A, 0xE5B), (0xF04, 0xF12), (0xF14, 0xF14), (0xF3A, 0xF3D), (0xF85, 0xF85), (0xFD0, 0xFD4),
    (0xFD9, 0xFDA), (0x104A, 0x104F), (0x10FB, 0x10FB), (0x1360, 0x1368), (0x1400, 0x1400),
    (0x166D, 0x166E), (0x169B, 0x169C), (0x16EB, 0x16ED), (0x1735, 0x1736), (0x17D4, 0x17D6),
    (0x17D8, 0x17DA), (0x1800, 0x180A), (0x1944, 0x1945), (0x1A1E, 0x1A1F), (0x1AA0, 0x1AA6),
    (0x1AA8, 0x1AAD), (0x1B5A, 0x1B60), (0x1BFC, 0x1BFF), (0x1C3B, 0x1C3F), (0x1C7E, 0x1C7F),
    (0x1CC0, 0x1CC7), (0x1CD3, 0x1CD3), (0x2010, 0x2027), (0x2030, 0x2043), (0x2045, 0x2051),
    (0x2053, 0x205E), (0x207D, 0x207E), (0x208D, 0x208E), (0x2308, 0x230B), (0x2329, 0x232A),
    (0x2768, 0x2775), (0x27C5, 0x27C6), (0x27E6, 0x27EF), (0x2983, 0x2998), (0x29D8, 0x29DB),
    (0x29FC, 0x29FD), (0x2CF9, 0x2CFC), (0x2CFE, 0x2CFF), (0x2D70, 0x2D70), (0x2E00, 0x2E2E),
    (0x2E30, 0x2E42), (0x3001, 0x3003), (0x3008, 0x3011), (0x3014, 0x301F), (0x3030, 0x3030),
    (0x303D, 0x303D), (0x30A0, 0x30A0), (0x30FB, 0x30FB), (0xA4FE, 0xA4FF), (0xA60D, 0xA60F),
    (0xA673, 0xA673), (0xA67E, 0xA67E), (0xA6F2, 0xA6F7), (0xA874, 0xA877), (0xA8CE, 0xA8CF),
    (0xA8F8, 0xA8FA), (0xA8FC, 0xA8FC), (0xA92E, 0xA92F), (0xA95F, 0xA95F), (0xA9C1, 0xA9CD),
    (0xA9DE, 0xA9DF), (0xAA5C, 0xAA5F), (0xAADE, 0xAADF), (0xAAF0, 0xAAF1), (0xABEB, 0xABEB),
    (0xFD3E, 0xFD3F), (0xFE10, 0xFE19), (0xFE30, 0xFE52), (0xFE54, 0xFE61), (0xFE63, 0xFE63),
    (0xFE68, 0xFE68), (0xFE6A, 0xFE6B), (0xFF01, 0xFF03), (0xFF05, 0xFF0A), (0xFF0C, 0xFF0F),
    (0xFF1A, 0xFF1B), (0xFF1F, 0xFF20), (0xFF3B, 0xFF3D), (0xFF3F, 0xFF3F), (0xFF5B, 0xFF5B),
    (0xFF5D, 0xFF5D), (0xFF5F, 0xFF65), (0x10100, 0x10102), (0x1039F, 0x1039F), (0x103D0, 0x103D0),
    (0x1056F, 0x1056F), (0x10857, 0x10857), (0x1091F, 0x1091F), (0x1093F, 0x1093F),
    (0x10A50, 0x10A58), (0x10A7F, 0x10A7F), (0x10AF0, 0x10AF6), (0x10B39, 0x10B3F),
    (0x10B99, 0x10B9C), (0x11047, 0x1104D), (0x110BB, 0x110BC), (0x110BE, 0x110C1),
    (0x11140, 0x11143), (0x11174, 0x11175), (0x111C5, 0x111C9), (0x111CD, 0x111CD),
    (0x111DB, 0x111DB), (0x111DD, 0x111DF), (0x11238, 0x1123D), (0x112A9, 0x112A9),
    (0x114C6, 0x114C6), (0x115C1, 0x115D7), (0x11641, 0x11643), (0x1173C, 0x1173E),
    (0x12470, 0x12474), (0x16A6E, 0x16A6F), (0x16AF5, 0x16AF5), (0x16B37, 0x16B3B),
    (0x16B44, 0x16B44), (0x1BC9F, 0x1BC9F), (0x1DA87, 0x1DA8B),
];

/// Control, format and private-use characters (Cc, Cf, Co), removed by cleaning.
#[rustfmt::skip]
const OTHER: &[(u32, u32)] = &[
    (0x1, 0x8), (0xB, 0xC), (0xE, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C),
    (0x6DD, 0x6DD), (0x70F, 0x70F), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xE000, 0xF8FF), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A small uncased vocabulary in the Hugging Face spelling.
    fn toy_vocab() -> Vec<String> {
        [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", // 0..=4
            "hello", "world", "un", "##aff", "##able", // 5..=9
            "##a", ",", "!", ".", "cafe", // 10..=14
            "東", "京", "a", "##b", "[", // 15..=19
            "]", "$", "3", "##s", "ab", // 20..=24
            "café", "ß", "'", // 25..=27
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn toy() -> WordPieceTokenizer {
        WordPieceTokenizer::from_vocab(toy_vocab(), VocabStyle::HuggingFace, Default::default())
            .unwrap()
    }

    fn toy_with(config: WordPieceConfig) -> WordPieceTokenizer {
        WordPieceTokenizer::from_vocab(toy_vocab(), VocabStyle::HuggingFace, config).unwrap()
    }

    /// The toy vocabulary as llama.cpp's converter writes it.
    fn gguf_spelling(tokens: &[String]) -> Vec<String> {
        tokens
            .iter()
            .map(|t| {
                if t.starts_with('[') && t.ends_with(']') && t.len() > 2 {
                    t.clone()
                } else if let Some(rest) = t.strip_prefix("##") {
                    rest.to_owned()
                } else {
                    format!("\u{2581}{t}")
                }
            })
            .collect()
    }

    fn pieces(tok: &WordPieceTokenizer, text: &str) -> Vec<u32> {
        tok.encode(text, false).unwrap()
    }

    #[test]
    fn class_tables_are_sorted_and_disjoint() {
        for table in [NONSPACING_MARK, PUNCTUATION, OTHER] {
            assert!(table.iter().all(|(lo, hi)| lo <= hi));
            assert!(table.windows(2).all(|w| w[0].1 + 1 < w[1].0));
        }
        assert!(is_punctuation('\u{2014}') && is_punctuation('¿') && is_punctuation('~'));
        assert!(!is_punctuation('€') && !is_punctuation('a'));
        assert!(is_nonspacing_mark('\u{301}') && !is_nonspacing_mark('a'));
        assert!(is_control('\u{200B}') && is_control('\u{E000}') && is_control('\u{7F}'));
        assert!(!is_control('\t') && !is_control(' ') && !is_control('\u{378}'));
        // Assigned after Unicode 8: plain characters to the fast tokenizer.
        assert!(!is_punctuation('\u{1B7E}') && !is_nonspacing_mark('\u{10F4F}'));
        assert!(is_chinese_char('東') && !is_chinese_char('ひ') && !is_chinese_char('\u{2B820}'));
    }

    #[test]
    fn special_ids_and_kinds() {
        let t = toy();
        assert_eq!(
            (t.pad_id(), t.unk_id(), t.cls_id(), t.sep_id()),
            (0, 1, 2, 3)
        );
        assert_eq!(t.vocab_size(), 28);
        assert_eq!(t.token_kind(1), Some(TokenKind::Unknown));
        assert_eq!(t.token_kind(2), Some(TokenKind::Control));
        assert_eq!(t.token_kind(4), Some(TokenKind::Control));
        assert_eq!(t.token_kind(5), Some(TokenKind::Normal));
        assert_eq!(t.token_kind(28), None);
        assert_eq!(t.token_id("##aff"), Some(8));
        assert_eq!(t.token_id("aff"), None);
    }

    #[test]
    fn splits_on_whitespace_and_punctuation() {
        let t = toy();
        assert_eq!(pieces(&t, "hello,world!"), [5, 11, 6, 12]);
        assert_eq!(pieces(&t, "  hello \t\n world  "), [5, 6]);
        // '$' is ASCII punctuation for BERT even though Unicode calls it Sc.
        assert_eq!(pieces(&t, "$3."), [21, 22, 13]);
        // Unicode punctuation (an em dash, Pd) is isolated too; it is not in
        // the vocabulary, so it becomes [UNK] on its own.
        assert_eq!(pieces(&t, "hello\u{2014}world"), [5, 1, 6]);
        assert_eq!(pieces(&t, ""), Vec::<u32>::new());
    }

    #[test]
    fn cleans_control_characters() {
        let t = toy();
        // NUL, U+FFFD, a C0 control and a zero-width space (Cf) vanish without
        // splitting the word; the no-break space separates words.
        assert_eq!(pieces(&t, "hel\u{0}lo\u{FFFD}\u{1}\u{200B}"), [5]);
        assert_eq!(pieces(&t, "hello\u{A0}world"), [5, 6]);
    }

    #[test]
    fn chinese_characters_become_words() {
        let t = toy();
        assert_eq!(pieces(&t, "東京"), [15, 16]);
        assert_eq!(pieces(&t, "a東b"), [17, 15, 1]);
        let t = toy_with(WordPieceConfig {
            tokenize_chinese_chars: false,
            ..Default::default()
        });
        assert_eq!(pieces(&t, "東京"), [1]);
    }

    #[test]
    fn strips_accents_and_lowercases() {
        let t = toy();
        // Precomposed and decomposed spellings both reach "cafe".
        assert_eq!(pieces(&t, "Café CAFE\u{301}"), [14, 14]);
        // ß has no decomposition and no single-character lowercase change.
        assert_eq!(pieces(&t, "ß"), [26]);
        // Cased, no accent stripping: "café" matches itself, "Café" nothing.
        let t = toy_with(WordPieceConfig::from_lowercase(false));
        assert_eq!(pieces(&t, "café Café"), [25, 1]);
        // Lower-casing without stripping keeps the accent.
        let t = toy_with(WordPieceConfig {
            strip_accents: false,
            ..Default::default()
        });
        assert_eq!(pieces(&t, "CAFÉ"), [25]);
    }

    #[test]
    fn longest_match_first() {
        let t = toy();
        // "##aff" beats "##a" + ...; "ab" beats "a" + "##b".
        assert_eq!(pieces(&t, "unaffable"), [7, 8, 9]);
        assert_eq!(pieces(&t, "ab abb aa"), [24, 24, 18, 17, 10]);
        assert_eq!(pieces(&t, "hellos"), [5, 23]);
    }

    #[test]
    fn unknown_words() {
        let t = toy();
        // No piece covers "x": the whole word is one [UNK], even though
        // "hello" would match its start.
        assert_eq!(pieces(&t, "hellox world"), [1, 6]);
        // 100 characters still go through WordPiece, 101 do not.
        let ok = "a".repeat(100);
        assert_eq!(pieces(&t, &ok), [vec![17], vec![10; 99]].concat());
        assert_eq!(pieces(&t, &"a".repeat(101)), [1]);
        // An emoji (So) is a word of its own only when surrounded by spaces;
        // glued to letters it spoils the whole word.
        assert_eq!(pieces(&t, "hello 🙂"), [5, 1]);
        assert_eq!(pieces(&t, "hello🙂"), [1]);
    }

    #[test]
    fn special_token_text() {
        let t = toy();
        assert_eq!(t.encode("hello [SEP]world", true).unwrap(), [5, 3, 6]);
        assert_eq!(t.encode("[CLS][MASK]", true).unwrap(), [2, 4]);
        // Without special parsing the text is split like any other.
        assert_eq!(t.encode("hello [SEP]", false).unwrap(), [5, 19, 1, 20]);
        // Special tokens are matched case-sensitively on the raw text.
        assert_eq!(t.encode("[sep]", true).unwrap(), [19, 1, 20]);
    }

    #[test]
    fn encode_with_specials_truncates_but_keeps_sep() {
        let t = toy();
        assert_eq!(t.encode_with_specials("hello world").unwrap(), [2, 5, 6, 3]);
        assert_eq!(t.encode_pair_free("hello world").unwrap(), [2, 5, 6, 3]);
        assert_eq!(t.encode_with_specials("").unwrap(), [2, 3]);
        let t = toy_with(WordPieceConfig {
            max_len: 4,
            ..Default::default()
        });
        assert_eq!(
            t.encode_with_specials("hello world , !").unwrap(),
            [2, 5, 6, 3]
        );
        assert_eq!(t.encode_with_specials("hello").unwrap(), [2, 5, 3]);
        let t = toy_with(WordPieceConfig {
            max_len: 2,
            ..Default::default()
        });
        assert_eq!(t.encode_with_specials("hello").unwrap(), [2, 3]);
    }

    #[test]
    fn batch_pads_and_masks() {
        let t = toy();
        let b = t.encode_batch(&["hello world", "hello"], None).unwrap();
        assert_eq!((b.batch, b.seq), (2, 4));
        assert_eq!(b.ids, [2, 5, 6, 3, 2, 5, 3, 0]);
        assert_eq!(b.mask, [1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(b.type_ids, [0; 8]);
        let b = t.encode_batch(&["hello"], Some(6)).unwrap();
        assert_eq!((b.batch, b.seq), (1, 6));
        assert_eq!(b.ids, [2, 5, 3, 0, 0, 0]);
        assert_eq!(b.mask, [1, 1, 1, 0, 0, 0]);
        // pad_to never cuts a row.
        let b = t.encode_batch(&["hello world"], Some(2)).unwrap();
        assert_eq!(b.seq, 4);
        let b = t.encode_batch(&[], None).unwrap();
        assert_eq!((b.batch, b.seq, b.ids.len()), (0, 0, 0));
    }

    #[test]
    fn decode_joins_pieces() {
        let t = toy();
        let ids = t.encode_with_specials("unaffable hello, world").unwrap();
        assert_eq!(t.decode(&ids, false).unwrap(), b"unaffable hello , world");
        assert_eq!(
            t.decode(&ids, true).unwrap(),
            b"[CLS] unaffable hello , world [SEP]"
        );
        assert_eq!(t.token_bytes(9, false).unwrap(), b"able");
        assert_eq!(t.token_bytes(5, false).unwrap(), b" hello");
        assert_eq!(t.token_bytes(2, false).unwrap(), b"");
        assert_eq!(t.decode(&[10, 10], false).unwrap(), b"aa");
        assert!(matches!(
            t.token_bytes(99, false),
            Err(TokenizerError::IdOutOfRange {
                id: 99,
                vocab_size: 28
            })
        ));
    }

    #[test]
    fn gguf_style_vocab_gives_the_same_ids() {
        let hf = toy();
        let gg = WordPieceTokenizer::from_vocab(
            gguf_spelling(&toy_vocab()),
            VocabStyle::LlamaCppGguf,
            Default::default(),
        )
        .unwrap();
        for text in [
            "unaffable hello, world!",
            "Café ab abb 東京 $3.",
            "hello [SEP] x",
        ] {
            assert_eq!(
                hf.encode_with_specials(text).unwrap(),
                gg.encode_with_specials(text).unwrap(),
                "{text}"
            );
            let ids = hf.encode_with_specials(text).unwrap();
            assert_eq!(
                hf.decode(&ids, true).unwrap(),
                gg.decode(&ids, true).unwrap()
            );
        }
        assert_eq!(gg.token_id("##able"), Some(9));
        assert_eq!(gg.token_kind(2), Some(TokenKind::Control));
    }

    #[test]
    fn rejects_unusable_vocabularies() {
        let no_cls: Vec<String> = toy_vocab().into_iter().filter(|t| t != "[CLS]").collect();
        let err =
            WordPieceTokenizer::from_vocab(no_cls, VocabStyle::HuggingFace, Default::default())
                .err()
                .unwrap();
        assert!(err.to_string().contains("[CLS]"), "{err}");
        let err = WordPieceTokenizer::from_vocab(
            toy_vocab(),
            VocabStyle::HuggingFace,
            WordPieceConfig {
                max_len: 1,
                ..Default::default()
            },
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("max_len"), "{err}");
        let missing = std::env::temp_dir().join("wisp-wordpiece-no-such-dir");
        let err = WordPieceTokenizer::from_dir(&missing).err().unwrap();
        assert!(err.to_string().contains("vocab.txt"), "{err}");
    }

    /// A scratch folder under the system temp dir, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let p =
                std::env::temp_dir().join(format!("wisp-wordpiece-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn from_dir_reads_vocab_txt_and_config() {
        let dir = TempDir::new("vocab-txt");
        std::fs::write(dir.0.join("vocab.txt"), toy_vocab().join("\r\n") + "\r\n").unwrap();
        std::fs::write(
            dir.0.join("tokenizer_config.json"),
            r#"{"do_lower_case": false, "model_max_length": 3}"#,
        )
        .unwrap();
        let t = WordPieceTokenizer::from_dir(&dir.0).unwrap();
        assert_eq!(t.vocab_size(), 28);
        assert_eq!(t.config().max_len, 3);
        assert!(!t.config().lowercase && !t.config().strip_accents);
        assert_eq!(t.encode("café Hello", false).unwrap(), [25, 1]);
        assert_eq!(t.encode_with_specials("hello world").unwrap(), [2, 5, 3]);
    }

    #[test]
    fn from_dir_reads_tokenizer_json() {
        let dir = TempDir::new("tokenizer-json");
        let vocab: serde_json::Map<String, Value> = toy_vocab()
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, Value::from(i)))
            .collect();
        let doc = serde_json::json!({
            "added_tokens": [
                {"id": 0, "content": "[PAD]", "special": true},
                {"id": 28, "content": "<extra>", "special": false}
            ],
            "normalizer": {"type": "BertNormalizer", "clean_text": true,
                           "handle_chinese_chars": true, "strip_accents": null,
                           "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "model": {"type": "WordPiece", "unk_token": "[UNK]",
                      "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 5, "vocab": vocab}
        });
        std::fs::write(dir.0.join("tokenizer.json"), doc.to_string()).unwrap();
        let t = WordPieceTokenizer::from_dir(&dir.0).unwrap();
        assert_eq!(t.vocab_size(), 29);
        assert_eq!(t.config().max_len, 512);
        assert_eq!(t.token_kind(28), Some(TokenKind::UserDefined));
        // Non-special added tokens are matched even without special parsing;
        // the 6-character word exceeds this file's limit of 5.
        assert_eq!(
            t.encode("Café<extra>hello aaaaaa", false).unwrap(),
            [14, 28, 5, 1]
        );
        assert_eq!(t.decode(&[14, 28], false).unwrap(), b"cafe <extra>");

        let mut bad = doc.clone();
        bad["normalizer"] = serde_json::json!({"type": "Lowercase"});
        std::fs::write(dir.0.join("tokenizer.json"), bad.to_string()).unwrap();
        let err = WordPieceTokenizer::from_dir(&dir.0).err().unwrap();
        assert!(err.to_string().contains("Lowercase"), "{err}");
    }

    fn models_dir() -> std::path::PathBuf {
        if let Some(d) = std::env::var_os("WISP_MODELS").filter(|d| !d.is_empty()) {
            return d.into();
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
        std::path::Path::new(&home).join(".cache/wisp/models")
    }

    fn minilm_dir() -> std::path::PathBuf {
        let dir = models_dir().join("all-MiniLM-L6-v2");
        assert!(
            dir.join("tokenizer.json").is_file() && dir.join("vocab.txt").is_file(),
            "all-MiniLM-L6-v2 tokenizer files missing in {}: run ./scripts/fetch-models.sh \
             (or point $WISP_MODELS at the model cache)",
            dir.display()
        );
        dir
    }

    /// (text, ids with [CLS]/[SEP]) from the golden MiniLM file.
    fn golden() -> Vec<(String, Vec<u32>)> {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/minilm_embeddings.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let doc: Value = serde_json::from_str(&text).unwrap();
        let items = doc
            .as_array()
            .or_else(|| doc.get("items").and_then(Value::as_array))
            .expect("golden file: a list of {text, input_ids}");
        items
            .iter()
            .map(|e| {
                let ids = e["input_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect();
                (e["text"].as_str().unwrap().to_owned(), ids)
            })
            .collect()
    }

    fn check_golden(t: &WordPieceTokenizer) {
        let cases = golden();
        assert_eq!(cases.len(), 20);
        for (text, want) in &cases {
            assert_eq!(&t.encode_with_specials(text).unwrap(), want, "{text:?}");
            let pieces = t.encode(text, false).unwrap();
            assert_eq!(pieces[..], want[1..want.len() - 1], "{text:?}");
        }
        let texts: Vec<&str> = cases.iter().map(|(t, _)| t.as_str()).collect();
        let b = t.encode_batch(&texts, None).unwrap();
        for (row, (_, want)) in cases.iter().enumerate() {
            let ids = &b.ids[row * b.seq..][..b.seq];
            assert_eq!(ids[..want.len()], want[..]);
            assert!(ids[want.len()..].iter().all(|&i| i == t.pad_id()));
            assert_eq!(
                b.mask[row * b.seq..][..b.seq].iter().sum::<u32>() as usize,
                want.len()
            );
        }
    }

    #[test]
    fn minilm_golden_ids_from_tokenizer_json() {
        let t = WordPieceTokenizer::from_dir(&minilm_dir()).unwrap();
        assert_eq!(t.vocab_size(), 30522);
        assert_eq!(
            (t.pad_id(), t.unk_id(), t.cls_id(), t.sep_id()),
            (0, 100, 101, 102)
        );
        assert_eq!(t.config(), &WordPieceConfig::default());
        check_golden(&t);
        let ids = t.encode_with_specials("Let's meet at the café.").unwrap();
        assert_eq!(
            t.decode(&ids, false).unwrap(),
            b"let ' s meet at the cafe ."
        );
    }

    #[test]
    fn minilm_golden_ids_from_vocab_txt() {
        let dir = TempDir::new("minilm-vocab-txt");
        let src = minilm_dir();
        for f in ["vocab.txt", "tokenizer_config.json"] {
            std::fs::copy(src.join(f), dir.0.join(f)).unwrap();
        }
        check_golden(&WordPieceTokenizer::from_dir(&dir.0).unwrap());
    }
}
