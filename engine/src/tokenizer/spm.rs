//! SentencePiece-style tokenizer of GGUF files with
//! `tokenizer.ggml.model = "llama"` (Llama 2, Gemma 3, ...), matching
//! llama.cpp's `llm_tokenizer_spm` id for id.
//!
//! Encoding runs in three steps:
//!
//! 1. **Special-token partition** of the raw text. User-defined tokens are
//!    always cut out and become their ids directly; control and unknown tokens
//!    only with `parse_special`. Token texts are tried from the longest to the
//!    shortest, each splitting every remaining text fragment at all its
//!    non-overlapping occurrences, left to right. The partition sees the text
//!    as written (real spaces), so Gemma's user-defined whitespace runs such as
//!    `"  "` or `"\n\n"` match before any escaping.
//! 2. **Escaping** of each text fragment: when `add_space_prefix` is set, a
//!    space is put in front of a fragment that starts the text or follows a
//!    special token; then every ASCII space becomes U+2581 (`▁`). No other
//!    normalization happens.
//! 3. **Bigram merging** per fragment: every character starts as its own
//!    symbol; the adjacent pair whose concatenation is a vocabulary entry with
//!    the highest score is merged, ties going to the leftmost pair, until no
//!    adjacent pair spells a vocabulary entry. Each final symbol becomes its
//!    token; a character the vocabulary lacks is spelled with byte tokens
//!    (`<0xXX>`, else the single-byte text itself).
//!
//! Any vocabulary entry can be formed by a merge, whatever its kind: llama.cpp
//! does not filter merge results by kind, so neither does this module.
//!
//! Decoding turns `▁` back into spaces for normal tokens, byte tokens into
//! their byte, renders user-defined tokens verbatim and control/unknown tokens
//! verbatim only on request. [`Tokenizer::decode`] additionally drops one
//! leading space of the first token's text when `add_space_prefix` is set, as
//! llama.cpp's `llama_detokenize` does; [`Tokenizer::token_bytes`] never does
//! (it is `llama_token_to_piece` with no stripping, the streaming form).
//!
//! llama.cpp also re-types a few tokens by their text when it loads a
//! vocabulary (end-of-generation and fill-in-the-middle markers become control
//! tokens, e.g. Gemma 3's user-defined `</s>`); [`SpmTokenizer::new`] applies
//! the same rules, so the kinds it reports are the ones llama.cpp works with.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::{partition_specials, Fragment, TokenKind, Tokenizer, TokenizerError};

/// `add_space_prefix` when the GGUF file has no `tokenizer.ggml.add_space_prefix`
/// key: llama.cpp defaults it to true for SPM vocabularies (Gemma 3 files set
/// it to false).
pub const DEFAULT_ADD_SPACE_PREFIX: bool = true;

/// SentencePiece's visible stand-in for a space (U+2581).
const SPACE_MARK: char = '\u{2581}';
/// UTF-8 of [`SPACE_MARK`].
const SPACE_MARK_UTF8: &[u8] = "\u{2581}".as_bytes();

/// Placeholder for a symbol with no neighbour in the merge loop's linked list.
const NONE: usize = usize::MAX;

/// Token texts llama.cpp treats as control tokens whatever their GGUF type:
/// its end-of-turn, end-of-message, fill-in-the-middle and end-of-generation
/// markers.
const CONTROL_BY_TEXT: &[&str] = &[
    // end of turn / message / generation
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
    "<end_of_utterance>",
    "<|eom_id|>",
    "<|return|>",
    "<|call|>",
    "<|calls|>",
    "<|flush|>",
    "</s>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "[e~[",
    // fill in the middle: prefix, suffix, middle, pad, repo, file separator
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<\u{ff5c}fim\u{2581}begin\u{ff5c}>",
    "<PRE>",
    "\u{2581}<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<\u{ff5c}fim\u{2581}hole\u{ff5c}>",
    "<SUF>",
    "\u{2581}<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<\u{ff5c}fim\u{2581}end\u{ff5c}>",
    "<MID>",
    "\u{2581}<MID>",
    "<|code_middle|>",
    "<|middle|>",
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

/// Token texts llama.cpp always renders (and always matches in text), after
/// the control re-typing above (gpt-oss channel markers).
const USER_DEFINED_BY_TEXT: &[&str] = &["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

/// A GGUF `llama` (SentencePiece-style) tokenizer: Gemma 3, Llama 2 and kin.
///
/// Built once from the GGUF tokenizer metadata; immutable and thread-safe
/// afterwards.
pub struct SpmTokenizer {
    /// Token strings as stored in the GGUF file (spaces spelled `▁`).
    tokens: Vec<String>,
    /// Kind of each token, after llama.cpp's re-typing by text.
    kinds: Vec<TokenKind>,
    /// Merge score of each token (higher merges first); `-0.0` is stored as
    /// `0.0` so that the two compare equal, as they do in C++.
    scores: Vec<f32>,
    /// Exact token string -> id (the last id wins for duplicate strings).
    token_to_id: HashMap<String, u32>,
    /// Tokens matched verbatim before merging (control, user-defined,
    /// unknown), longest text first.
    specials: Vec<u32>,
    /// Token spelling each byte in byte fallback, if the vocabulary has one.
    byte_token: [Option<u32>; 256],
    /// Put a space in front of the text and of every fragment after a special
    /// token, and drop it again when decoding.
    add_space_prefix: bool,
}

impl SpmTokenizer {
    /// tokens, scores and token kinds from GGUF metadata; add_space_prefix from
    /// `tokenizer.ggml.add_space_prefix` (default as llama.cpp defaults it for
    /// SPM: [`DEFAULT_ADD_SPACE_PREFIX`]).
    ///
    /// `scores` may be empty when the file has no `tokenizer.ggml.scores`
    /// (every score is then 0, as in llama.cpp); otherwise it needs one score
    /// per token. Empty token strings are renamed `[EMPTY_<id>]` as llama.cpp
    /// does, so that they can never match.
    pub fn new(
        tokens: Vec<String>,
        scores: Vec<f32>,
        kinds: Vec<TokenKind>,
        add_space_prefix: bool,
    ) -> Result<Self, TokenizerError> {
        if tokens.len() != kinds.len() {
            return Err(TokenizerError::KindsLengthMismatch {
                tokens: tokens.len(),
                kinds: kinds.len(),
            });
        }
        if u32::try_from(tokens.len()).is_err() {
            return Err(TokenizerError::VocabTooLarge(tokens.len()));
        }
        let scores: Vec<f32> = if scores.is_empty() {
            vec![0.0; tokens.len()]
        } else if scores.len() == tokens.len() {
            // Only -0.0 changes: it must tie with 0.0 under the total order.
            scores
                .into_iter()
                .map(|s| if s == 0.0 { 0.0 } else { s })
                .collect()
        } else {
            return Err(TokenizerError::Invalid(format!(
                "vocabulary has {} tokens but {} scores",
                tokens.len(),
                scores.len()
            )));
        };

        let tokens: Vec<String> = tokens
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                if t.is_empty() {
                    format!("[EMPTY_{i}]")
                } else {
                    t
                }
            })
            .collect();

        let mut token_to_id = HashMap::with_capacity(tokens.len());
        for (id, text) in (0u32..).zip(&tokens) {
            token_to_id.insert(text.clone(), id);
        }

        let mut kinds = kinds;
        retype_by_text(&token_to_id, &mut kinds);

        let mut specials: Vec<u32> = (0u32..)
            .zip(&kinds)
            .filter(|(_, k)| is_special(**k))
            .map(|(id, _)| id)
            .collect();
        // Stable sort: equal lengths keep id order. (llama.cpp's sort is not
        // stable, but equal-length token texts can only compete for the same
        // text when one overlaps the other's end, which no known vocabulary's
        // special tokens do.)
        specials.sort_by_key(|&id| std::cmp::Reverse(tokens[id as usize].len()));

        let mut byte_token = [None; 256];
        for (b, slot) in byte_token.iter_mut().enumerate() {
            *slot = token_to_id
                .get(&format!("<0x{b:02X}>"))
                .copied()
                .or_else(|| {
                    // Fall back to the byte itself as text (ASCII only: a lone
                    // byte >= 0x80 is not a string).
                    let b = u8::try_from(b).ok().filter(u8::is_ascii)?;
                    token_to_id
                        .get(char::from(b).encode_utf8(&mut [0; 4]) as &str)
                        .copied()
                });
        }

        tracing::debug!(
            vocab = tokens.len(),
            specials = specials.len(),
            byte_tokens = byte_token.iter().filter(|t| t.is_some()).count(),
            add_space_prefix,
            "built SPM tokenizer"
        );

        Ok(SpmTokenizer {
            tokens,
            kinds,
            scores,
            token_to_id,
            specials,
            byte_token,
            add_space_prefix,
        })
    }

    /// Whether the tokenizer puts a space in front of text fragments.
    pub fn add_space_prefix(&self) -> bool {
        self.add_space_prefix
    }

    /// Cuts `text` into plain-text fragments and special-token ids, the way
    /// llama.cpp's `tokenizer_st_partition` does.
    fn partition<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        partition_specials(
            text,
            &self.specials,
            &self.tokens,
            &self.kinds,
            parse_special,
        )
    }

    /// Runs the bigram merge over one escaped fragment and appends its ids.
    fn encode_escaped(&self, text: &str, out: &mut Vec<u32>) -> Result<(), TokenizerError> {
        let mut syms: Vec<Symbol> = Vec::with_capacity(text.len());
        for (start, c) in text.char_indices() {
            let i = syms.len();
            syms.push(Symbol {
                start,
                len: c.len_utf8(),
                prev: if i == 0 { NONE } else { i - 1 },
                next: i + 1,
            });
        }
        let Some(last) = syms.last_mut() else {
            return Ok(());
        };
        last.next = NONE;

        let mut heap = BinaryHeap::new();
        for i in 1..syms.len() {
            self.push_bigram(&mut heap, text, &syms, i - 1, i);
        }

        while let Some(b) = heap.pop() {
            let (l, r) = (syms[b.left], syms[b.right]);
            // Stale: one side was merged away, or has grown since this pair
            // was queued (sizes only grow, so the sum then differs).
            if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
                continue;
            }
            syms[b.left].len += r.len;
            syms[b.left].next = r.next;
            syms[b.right].len = 0;
            if r.next != NONE {
                syms[r.next].prev = b.left;
            }
            self.push_bigram(&mut heap, text, &syms, l.prev, b.left);
            self.push_bigram(&mut heap, text, &syms, b.left, r.next);
        }

        let mut i = 0;
        while i != NONE {
            let sym = syms[i];
            let piece = &text[sym.start..sym.start + sym.len];
            match self.token_to_id.get(piece) {
                Some(&id) => out.push(id),
                // Only single characters can be missing: merges only ever
                // form vocabulary entries.
                None => {
                    for &b in piece.as_bytes() {
                        match self.byte_token[b as usize] {
                            Some(id) => out.push(id),
                            None => {
                                return Err(TokenizerError::Invalid(format!(
                                    "vocabulary has no token for byte 0x{b:02X} \
                                     (needed to spell {piece:?})"
                                )))
                            }
                        }
                    }
                }
            }
            i = sym.next;
        }
        Ok(())
    }

    /// Queues the merge of symbols `left` and `right` if their text is a
    /// vocabulary entry.
    fn push_bigram(
        &self,
        heap: &mut BinaryHeap<Bigram>,
        text: &str,
        syms: &[Symbol],
        left: usize,
        right: usize,
    ) {
        if left == NONE || right == NONE {
            return;
        }
        let start = syms[left].start;
        let end = syms[right].start + syms[right].len;
        if let Some(&id) = self.token_to_id.get(&text[start..end]) {
            heap.push(Bigram {
                score: self.scores[id as usize],
                left,
                right,
                size: end - start,
            });
        }
    }

    /// Rejects ids outside the vocabulary.
    fn check_id(&self, id: u32) -> Result<usize, TokenizerError> {
        let idx = id as usize;
        if idx < self.tokens.len() {
            Ok(idx)
        } else {
            Err(TokenizerError::IdOutOfRange {
                id,
                vocab_size: self.tokens.len(),
            })
        }
    }

    /// The bytes `id` renders as (llama.cpp's `token_to_piece` without
    /// stripping).
    fn piece(&self, id: u32, render_special: bool) -> Result<Cow<'_, [u8]>, TokenizerError> {
        let idx = self.check_id(id)?;
        let text = self.tokens[idx].as_str();
        Ok(match self.kinds[idx] {
            TokenKind::Control | TokenKind::Unknown if !render_special => Cow::Borrowed(&[]),
            TokenKind::Control | TokenKind::Unknown | TokenKind::UserDefined => {
                Cow::Borrowed(text.as_bytes())
            }
            TokenKind::Normal => unescape(text),
            TokenKind::Byte => Cow::Owned(vec![byte_of_token(text)]),
            TokenKind::Unused => Cow::Borrowed(&[]),
        })
    }
}

impl std::fmt::Debug for SpmTokenizer {
    // Summarised: the derived form would print the whole vocabulary.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpmTokenizer")
            .field("vocab_size", &self.tokens.len())
            .field("special_tokens", &self.specials.len())
            .field("add_space_prefix", &self.add_space_prefix)
            .finish_non_exhaustive()
    }
}

impl Tokenizer for SpmTokenizer {
    fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        let mut escaped = String::new();
        // The text start counts as "after a special token" for the prefix.
        let mut prev_special = true;
        for fragment in self.partition(text, parse_special) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Fragment::Text(t) => {
                    escaped.clear();
                    if self.add_space_prefix && prev_special {
                        escaped.push(SPACE_MARK);
                    }
                    for c in t.chars() {
                        escaped.push(if c == ' ' { SPACE_MARK } else { c });
                    }
                    self.encode_escaped(&escaped, &mut out)?;
                    prev_special = false;
                }
            }
        }
        Ok(out)
    }

    fn token_bytes(&self, id: u32, render_special: bool) -> Result<Vec<u8>, TokenizerError> {
        Ok(self.piece(id, render_special)?.into_owned())
    }

    /// The concatenated [`Tokenizer::token_bytes`], except that with
    /// `add_space_prefix` one leading space of the first token's text is
    /// dropped (llama.cpp's `llama_detokenize`), so that
    /// `decode(encode(s)) == s` for plain text. Only the first id is
    /// considered: a leading BOS (rendered or not) keeps the space.
    fn decode(&self, ids: &[u32], render_special: bool) -> Result<Vec<u8>, TokenizerError> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for (i, &id) in ids.iter().enumerate() {
            let piece = self.piece(id, render_special)?;
            let piece = match piece.split_first() {
                Some((&b' ', rest)) if i == 0 && self.add_space_prefix => rest,
                _ => &piece[..],
            };
            out.extend_from_slice(piece);
        }
        Ok(out)
    }

    fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    fn token_kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).copied()
    }
}

/// One symbol of the merge loop: a node of a doubly linked list over the
/// characters of the escaped fragment.
#[derive(Clone, Copy, Debug)]
struct Symbol {
    /// Byte offset in the fragment.
    start: usize,
    /// Length in bytes (0 once merged into its left neighbour).
    len: usize,
    /// Index of the previous live symbol, or [`NONE`].
    prev: usize,
    /// Index of the next live symbol, or [`NONE`].
    next: usize,
}

/// A queued merge of two adjacent symbols.
#[derive(Clone, Copy, Debug)]
struct Bigram {
    /// Score of the merged token; higher merges first.
    score: f32,
    /// Index of the left symbol; on equal scores the smaller merges first.
    left: usize,
    /// Index of the right symbol.
    right: usize,
    /// Byte length of the merged text when queued, to detect staleness.
    size: usize,
}

impl Ord for Bigram {
    /// Max-heap priority: higher score, then smaller left index. Two live
    /// entries never share both, so the remaining fields do not matter.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Bigram {}

/// Whether a token kind takes part in the special-token partition.
fn is_special(kind: TokenKind) -> bool {
    matches!(
        kind,
        TokenKind::Control | TokenKind::UserDefined | TokenKind::Unknown
    )
}

/// llama.cpp's load-time re-typing of tokens by their text.
///
/// End-of-generation, end-of-turn and fill-in-the-middle markers become
/// control tokens; the gpt-oss channel markers become user-defined; `<|end|>`
/// stops being control in vocabularies that also have `<|return|>` and
/// `<|call|>` (or `<|calls|>` and `<|flush|>`); `</s>` stays normal in
/// vocabularies with `<|tool_response>` (Gemma 4). llama.cpp skips the
/// end-of-turn and fill-in-the-middle checks for a role whose id the file
/// names explicitly and re-types only the first such text it finds; this
/// re-types every one, which agrees for every vocabulary with at most one
/// marker per role.
fn retype_by_text(token_to_id: &HashMap<String, u32>, kinds: &mut [TokenKind]) {
    let id_of = |text: &str| token_to_id.get(text).map(|&id| id as usize);
    for text in CONTROL_BY_TEXT {
        if let Some(id) = id_of(text) {
            if kinds[id] != TokenKind::Control {
                tracing::debug!(id, text, "token re-typed as control by its text");
                kinds[id] = TokenKind::Control;
            }
        }
    }
    for text in USER_DEFINED_BY_TEXT {
        if let Some(id) = id_of(text) {
            kinds[id] = TokenKind::UserDefined;
        }
    }
    let has = |text: &str| token_to_id.contains_key(text);
    if let Some(end) = id_of("<|end|>") {
        if (has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>")) {
            kinds[end] = TokenKind::UserDefined;
        }
    }
    if let Some(s) = id_of("</s>") {
        if has("<|tool_response>") {
            kinds[s] = TokenKind::Normal;
        }
    }
}

/// A normal token's text with `▁` turned back into spaces.
fn unescape(text: &str) -> Cow<'_, [u8]> {
    if !text.contains(SPACE_MARK) {
        return Cow::Borrowed(text.as_bytes());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(SPACE_MARK_UTF8) {
            out.push(b' ');
            i += SPACE_MARK_UTF8.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// The byte a byte token stands for: the hex digits at positions 3 and 4 of
/// `<0xXX>`, read like C's `strtol` (leading hex digits only; none gives 0).
fn byte_of_token(text: &str) -> u8 {
    let digits = text.as_bytes().get(3..).unwrap_or(&[]);
    let mut value = 0u8;
    for &d in digits.iter().take(2) {
        match (d as char).to_digit(16) {
            Some(v) => value = value * 16 + v as u8,
            None => break,
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small vocabulary laid out like Gemma 3's: control tokens, a few
    /// user-defined ones, all 256 byte tokens, then scored pieces.
    fn toy_parts() -> (Vec<String>, Vec<f32>, Vec<TokenKind>) {
        let mut tokens: Vec<String> = Vec::new();
        let mut scores = Vec::new();
        let mut kinds = Vec::new();
        let mut add = |text: &str, score: f32, kind: TokenKind| {
            tokens.push(text.to_owned());
            scores.push(score);
            kinds.push(kind);
        };
        add("<pad>", -1000.0, TokenKind::Control);
        add("<eos>", -1000.0, TokenKind::Control);
        add("<bos>", -1000.0, TokenKind::Control);
        add("<unk>", -1000.0, TokenKind::Unknown);
        add("<start_of_turn>", -1000.0, TokenKind::Control);
        add("\n", -1000.0, TokenKind::UserDefined);
        add("\n\n", -1000.0, TokenKind::UserDefined);
        add("<b>", -1000.0, TokenKind::UserDefined);
        add("</s>", -1000.0, TokenKind::UserDefined);
        add("<unused0>", -1000.0, TokenKind::Unused);
        for b in 0..=255u8 {
            add(&format!("<0x{b:02X}>"), 0.0, TokenKind::Byte);
        }
        let pieces: &[(&str, f32)] = &[
            ("▁hello", -2.0),
            ("▁world", -3.0),
            ("hello", -5.0),
            ("llo", -8.0),
            ("ll", -9.0),
            ("he", -10.0),
            ("▁wor", -12.0),
            ("ld", -14.0),
            ("or", -15.0),
            ("▁w", -20.0),
            ("▁h", -21.0),
            ("aa", -30.0),
            ("ab", -40.0),
            ("bc", -35.0),
            ("▁▁", -50.0),
            ("▁", -100.0),
        ];
        for &(text, score) in pieces {
            add(text, score, TokenKind::Normal);
        }
        for (i, c) in "abcdehlorsw<>/é".chars().enumerate() {
            add(&c.to_string(), -200.0 - i as f32, TokenKind::Normal);
        }
        (tokens, scores, kinds)
    }

    fn toy(add_space_prefix: bool) -> SpmTokenizer {
        let (tokens, scores, kinds) = toy_parts();
        SpmTokenizer::new(tokens, scores, kinds, add_space_prefix).expect("build tokenizer")
    }

    /// Ids of token texts, for readable expectations.
    fn ids(t: &SpmTokenizer, texts: &[&str]) -> Vec<u32> {
        texts
            .iter()
            .map(|s| {
                t.token_id(s)
                    .unwrap_or_else(|| panic!("{s:?} not in vocab"))
            })
            .collect()
    }

    fn enc(t: &SpmTokenizer, text: &str, parse_special: bool) -> Vec<u32> {
        t.encode(text, parse_special).expect("encode")
    }

    #[test]
    fn merges_pick_the_highest_score_first() {
        let t = toy(false);
        // "ab" (-40) and "bc" (-35) compete for the "b": the better score wins.
        assert_eq!(enc(&t, "abc", false), ids(&t, &["a", "bc"]));
        assert_eq!(enc(&t, "hello", false), ids(&t, &["hello"]));
        assert_eq!(enc(&t, "world", false), ids(&t, &["w", "or", "ld"]));
    }

    #[test]
    fn equal_scores_merge_the_leftmost_pair_first() {
        let t = toy(false);
        assert_eq!(enc(&t, "aaa", false), ids(&t, &["aa", "a"]));
        assert_eq!(enc(&t, "aaaaa", false), ids(&t, &["aa", "aa", "a"]));
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        // C++ compares -0.0 and 0.0 as equal, so the leftmost pair wins even
        // though a total order would rank 0.0 higher.
        let tokens: Vec<String> = ["x", "y", "z", "xy", "yz"].map(String::from).to_vec();
        let scores = vec![-5.0, -5.0, -5.0, -0.0, 0.0];
        let t = SpmTokenizer::new(tokens, scores, vec![TokenKind::Normal; 5], false).unwrap();
        assert_eq!(enc(&t, "xyz", false), [3, 2]);
    }

    #[test]
    fn spaces_are_escaped_and_prefixed_when_configured() {
        let t = toy(true);
        assert_eq!(
            enc(&t, "hello world", false),
            ids(&t, &["▁hello", "▁world"])
        );
        // "▁hello" (-2) outscores "▁▁" (-50) once "hello" has formed.
        assert_eq!(enc(&t, " hello", false), ids(&t, &["▁", "▁hello"]));
        assert_eq!(enc(&t, "", false), Vec::<u32>::new());
        let t = toy(false);
        assert_eq!(enc(&t, "hello world", false), ids(&t, &["hello", "▁world"]));
        assert_eq!(enc(&t, " hello", false), ids(&t, &["▁hello"]));
        assert_eq!(enc(&t, "   ", false), ids(&t, &["▁▁", "▁"]));
    }

    #[test]
    fn unknown_characters_fall_back_to_byte_tokens() {
        let t = toy(false);
        let bytes = |s: &str| -> Vec<u32> {
            s.bytes()
                .map(|b| t.token_id(&format!("<0x{b:02X}>")).unwrap())
                .collect()
        };
        assert_eq!(enc(&t, "q", false), bytes("q"));
        assert_eq!(enc(&t, "中", false), bytes("中"));
        let mut want = ids(&t, &["a"]);
        want.extend(bytes("🙂"));
        want.extend(ids(&t, &["é"]));
        assert_eq!(enc(&t, "a🙂é", false), want);
        // Only characters the vocabulary lacks are spelled in bytes.
        let mut want = bytes("ü");
        want.extend(ids(&t, &["▁hello"]));
        assert_eq!(enc(&t, "ü hello", false), want);
    }

    #[test]
    fn a_byte_without_any_token_is_an_error() {
        let tokens: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let t = SpmTokenizer::new(tokens, vec![], vec![TokenKind::Normal; 2], false).unwrap();
        assert_eq!(enc(&t, "ab", false), [0, 1]);
        let err = t.encode("aqb", false).unwrap_err();
        assert!(err.to_string().contains("0x71"), "{err}");
    }

    #[test]
    fn control_tokens_match_only_with_parse_special() {
        let t = toy(true);
        let text = "<start_of_turn>hello";
        assert_eq!(enc(&t, text, true), ids(&t, &["<start_of_turn>", "▁hello"]));
        let plain = enc(&t, text, false);
        assert!(!plain.contains(&4), "{plain:?}");
        assert_eq!(t.decode(&plain, false).unwrap(), text.as_bytes());
        // "<unk>" is an unknown-kind token: treated like control.
        assert_eq!(enc(&t, "<unk>", true), [3]);
        assert_ne!(enc(&t, "<unk>", false), [3]);
    }

    #[test]
    fn user_defined_tokens_always_match_longest_first() {
        let t = toy(false);
        assert_eq!(
            enc(&t, "a\n\n\nb<b>c", false),
            ids(&t, &["a", "\n\n", "\n", "b", "<b>", "c"])
        );
        // With the space prefix, every fragment after a special token gets one.
        let t = toy(true);
        assert_eq!(
            enc(&t, "hello\nworld", false),
            ids(&t, &["▁hello", "\n", "▁world"])
        );
    }

    #[test]
    fn end_of_generation_texts_are_retyped_as_control() {
        let t = toy(false);
        let s = t.token_id("</s>").unwrap();
        assert_eq!(t.token_kind(s), Some(TokenKind::Control));
        assert_eq!(
            t.token_kind(t.token_id("<b>").unwrap()),
            Some(TokenKind::UserDefined)
        );
        assert_eq!(enc(&t, "</s>", true), [s]);
        assert_eq!(enc(&t, "</s>", false), ids(&t, &["<", "/", "s", ">"]));
        assert_eq!(t.token_bytes(s, false).unwrap(), b"");
        assert_eq!(t.token_bytes(s, true).unwrap(), b"</s>");

        // ... except in a vocabulary with "<|tool_response>" (Gemma 4).
        let (mut tokens, mut scores, mut kinds) = toy_parts();
        tokens.push("<|tool_response>".into());
        scores.push(0.0);
        kinds.push(TokenKind::Control);
        let t = SpmTokenizer::new(tokens, scores, kinds, false).unwrap();
        assert_eq!(t.token_kind(s), Some(TokenKind::Normal));
    }

    #[test]
    fn token_bytes_render_each_kind() {
        let t = toy(true);
        let bytes =
            |text: &str, special: bool| t.token_bytes(t.token_id(text).unwrap(), special).unwrap();
        assert_eq!(bytes("<bos>", false), b"");
        assert_eq!(bytes("<bos>", true), b"<bos>");
        assert_eq!(bytes("<unk>", false), b"");
        assert_eq!(bytes("<unk>", true), b"<unk>");
        assert_eq!(bytes("\n", false), b"\n");
        assert_eq!(bytes("<b>", false), b"<b>");
        assert_eq!(bytes("<unused0>", true), b"");
        assert_eq!(bytes("<0x41>", false), b"A");
        assert_eq!(bytes("<0xE4>", false), [0xE4]);
        // token_bytes never strips the leading space (streaming form).
        assert_eq!(bytes("▁hello", false), b" hello");
        assert_eq!(bytes("▁▁", false), b"  ");
        assert_eq!(bytes("é", false), "é".as_bytes());
    }

    #[test]
    fn decode_strips_one_leading_space_only_with_the_prefix() {
        let t = toy(true);
        let hw = ids(&t, &["▁hello", "▁world"]);
        assert_eq!(t.decode(&hw, false).unwrap(), b"hello world");
        assert_eq!(
            t.decode(&ids(&t, &["▁▁", "hello"]), false).unwrap(),
            b" hello"
        );
        // A leading BOS keeps the space, rendered or not (llama_detokenize).
        let mut with_bos = vec![2];
        with_bos.extend(&hw);
        assert_eq!(t.decode(&with_bos, false).unwrap(), b" hello world");
        assert_eq!(t.decode(&with_bos, true).unwrap(), b"<bos> hello world");
        // A first byte token spelling a space is stripped too.
        assert_eq!(t.decode(&ids(&t, &["<0x20>", "a"]), false).unwrap(), b"a");
        let t = toy(false);
        assert_eq!(t.decode(&hw, false).unwrap(), b" hello world");
        assert_eq!(t.decode(&[], false).unwrap(), b"");
    }

    #[test]
    fn decode_inverts_encode() {
        let texts = [
            "hello world",
            "  hello   world  ",
            "héllo wörld, 中文 and 🙂👍🏽!",
            "abcabc aaa bca",
            "tab\there",
            "",
        ];
        for prefix in [false, true] {
            let t = toy(prefix);
            for text in texts {
                let ids = enc(&t, text, false);
                assert_eq!(
                    t.decode(&ids, false).unwrap(),
                    text.as_bytes(),
                    "{text:?} {prefix}"
                );
            }
        }
        // Without the prefix, special tokens round-trip too.
        let t = toy(false);
        for text in ["a\n\nb\n<b>x</b>", "<start_of_turn>user\nhi\n"] {
            for parse_special in [false, true] {
                let ids = enc(&t, text, parse_special);
                assert_eq!(t.decode(&ids, true).unwrap(), text.as_bytes(), "{text:?}");
            }
        }
    }

    #[test]
    fn ids_and_lengths_are_checked() {
        let t = toy(false);
        let n = t.vocab_size() as u32;
        assert!(matches!(
            t.token_bytes(n, true),
            Err(TokenizerError::IdOutOfRange { id, .. }) if id == n
        ));
        assert!(t.decode(&[0, n], true).is_err());
        assert_eq!(t.token_kind(n), None);
        assert_eq!(t.token_id("no such token"), None);

        let (tokens, scores, mut kinds) = toy_parts();
        kinds.pop();
        let err = SpmTokenizer::new(tokens, scores, kinds, false).unwrap_err();
        assert!(
            matches!(err, TokenizerError::KindsLengthMismatch { .. }),
            "{err}"
        );
        let (tokens, mut scores, kinds) = toy_parts();
        scores.pop();
        let err = SpmTokenizer::new(tokens, scores, kinds, false).unwrap_err();
        assert!(err.to_string().contains("scores"), "{err}");
    }

    #[test]
    fn empty_token_strings_are_renamed() {
        let tokens: Vec<String> = ["", "a"].map(String::from).to_vec();
        let t = SpmTokenizer::new(tokens, vec![], vec![TokenKind::UserDefined; 2], false).unwrap();
        assert_eq!(t.token_id("[EMPTY_0]"), Some(0));
        assert_eq!(enc(&t, "aa", false), [1, 1]);
        assert!(format!("{t:?}").contains("vocab_size: 2"));
        assert!(!t.add_space_prefix());
    }

    proptest::proptest! {
        #[test]
        fn decode_inverts_encode_for_any_text(text in "[abcdehlorsw <>/\\\\néü中🙂]{0,40}") {
            let t = toy(false);
            let ids = t.encode(&text, false).unwrap();
            proptest::prop_assert_eq!(t.decode(&ids, false).unwrap(), text.as_bytes());
            let ids = t.encode(&text, true).unwrap();
            proptest::prop_assert_eq!(t.decode(&ids, true).unwrap(), text.as_bytes());
        }

        #[test]
        // No '>' and no newline: user-defined tokens would add prefixes.
        fn decode_inverts_encode_with_the_space_prefix(text in "[abcdehlorsw </éü中🙂]{0,40}") {
            let t = toy(true);
            let ids = t.encode(&text, false).unwrap();
            proptest::prop_assert_eq!(t.decode(&ids, false).unwrap(), text.as_bytes());
        }
    }

    // The golden Gemma 3 cases (llama.cpp's ids for 44 strings, through the
    // GGUF's own vocabulary) run in `tests/gemma3.rs`, on the model from the
    // cache that ./scripts/fetch-models.sh fills.
}
