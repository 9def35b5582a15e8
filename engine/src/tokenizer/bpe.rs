//! GPT-2 style byte-level BPE (GGUF `tokenizer.ggml.model = "gpt2"`).
//!
//! Encoding runs in three steps, exactly as llama.cpp does:
//!
//! 1. **Special-token partition.** Occurrences of user-defined tokens (always)
//!    and control/unknown tokens (only with `parse_special`) are cut out of the
//!    text and become their ids directly. Longer token strings claim text first.
//! 2. **Pre-tokenization** of each remaining fragment into words
//!    (see [`super::pretokenize`]).
//! 3. **Byte-level BPE** on each word: every UTF-8 byte starts as its own
//!    symbol (spelled with the GPT-2 `bytes_to_unicode` alphabet), then the
//!    adjacent pair with the lowest merge rank is merged repeatedly until no
//!    ranked pair is left. Each final symbol is looked up in the vocabulary.
//!
//! Decoding maps the characters of each token back to the bytes they stand for.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use super::pretokenize::PreTokenizer;
use super::{partition_specials, Fragment, TokenKind, Tokenizer, TokenizerError};

/// Words longer than this (in bytes) are not memoised: they are rare, and
/// caching them would let one pathological input bloat the cache.
const CACHE_MAX_WORD_LEN: usize = 64;
/// The word cache is emptied once it holds this many entries, bounding memory.
const CACHE_MAX_ENTRIES: usize = 1 << 16;

/// A queued merge of two adjacent symbols. The derived ordering compares
/// `rank` first, then `left`, which is the priority llama.cpp uses (lowest rank,
/// then leftmost); the remaining fields only make the order total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    /// Merge rank (index in `tokenizer.ggml.merges`); lower merges first.
    rank: u32,
    /// Index of the left symbol.
    left: usize,
    /// Index of the right symbol.
    right: usize,
    /// The two symbol ids when queued, to detect staleness.
    pair: (u32, u32),
    /// Symbol id of the merge result.
    merged: u32,
}

/// Placeholder for a symbol with no neighbour in the merge loop's linked list.
const NONE: usize = usize::MAX;

/// A GGUF `gpt2` byte-level BPE tokenizer (GPT-2, SmolLM, StarCoder, ...).
///
/// Built once from the GGUF tokenizer metadata; thread-safe so one instance can
/// serve every request.
pub struct BpeTokenizer {
    /// Token strings as stored in the GGUF file (byte-level alphabet).
    tokens: Vec<String>,
    /// Kind of each token.
    kinds: Vec<TokenKind>,
    /// Exact token string -> id (the last id wins for duplicate strings).
    token_to_id: HashMap<String, u32>,
    /// What each token renders as when rendering is allowed.
    pieces: Vec<Box<[u8]>>,
    /// Tokens matched verbatim before pre-tokenization (control, user-defined,
    /// unknown), longest text first.
    specials: Vec<u32>,
    /// Splits text fragments into words.
    pre: PreTokenizer,
    /// The BPE merge machinery.
    merges: MergeTable,
    /// Memoised word -> ids results (pure function of the word).
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

/// BPE symbols interned as integers so the merge loop never builds strings.
///
/// Every string that can appear as a symbol (each byte's character, every merge
/// operand and every merge result) gets a symbol id; a pair of symbol ids maps
/// to its merge rank and the resulting symbol.
#[derive(Debug)]
struct MergeTable {
    /// (left symbol, right symbol) -> (rank, merged symbol).
    pairs: HashMap<(u32, u32), (u32, u32)>,
    /// Symbol id of the single character that spells each byte.
    byte_symbol: [u32; 256],
    /// Vocabulary id of each symbol's string, if the vocabulary has it.
    symbol_token: Vec<Option<u32>>,
    /// Vocabulary id of each byte's single-character token, for fallback.
    byte_token: [Option<u32>; 256],
}

/// One symbol in the per-word merge loop: a node of a doubly linked list over
/// byte positions.
#[derive(Clone, Copy, Debug)]
struct Symbol {
    /// Interned symbol id (see [`MergeTable`]).
    id: u32,
    /// Byte offset of the symbol in the word.
    start: usize,
    /// Length in bytes of the word span the symbol covers (0 once merged away).
    len: usize,
    /// Index of the previous live symbol, or [`NONE`].
    prev: usize,
    /// Index of the next live symbol, or [`NONE`].
    next: usize,
}

impl BpeTokenizer {
    /// Builds the tokenizer from a model's GGUF tokenizer metadata, validating
    /// it up front so encoding itself cannot hit malformed tables.
    ///
    /// tokens: tokenizer.ggml.tokens; kinds: from tokenizer.ggml.token_type;
    /// merges: tokenizer.ggml.merges ("a b" strings, rank = index); pre:
    /// tokenizer.ggml.pre ("smollm" required; also support "gpt2" and "default"
    /// = plain GPT-2 pattern; others -> error)
    pub fn new(
        tokens: Vec<String>,
        kinds: Vec<TokenKind>,
        merges: &[String],
        pre: &str,
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
        let pre = PreTokenizer::from_name(pre)?;

        // llama.cpp renames empty entries so that every token has some text
        // (and so an empty special token can never match everywhere).
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

        let pieces = tokens
            .iter()
            .zip(&kinds)
            .map(|(text, kind)| render_piece(text, *kind))
            .collect();

        let mut specials: Vec<u32> = (0u32..)
            .zip(&kinds)
            .filter(|(_, k)| {
                matches!(
                    k,
                    TokenKind::Control | TokenKind::UserDefined | TokenKind::Unknown
                )
            })
            .map(|(id, _)| id)
            .collect();
        // Stable sort: equal lengths keep id order, making ties deterministic.
        specials.sort_by_key(|&id| Reverse(tokens[id as usize].len()));

        let merges = MergeTable::build(&token_to_id, merges)?;

        tracing::debug!(
            vocab = tokens.len(),
            merges = merges.pairs.len(),
            specials = specials.len(),
            pre = ?pre.kind(),
            "built BPE tokenizer"
        );

        Ok(BpeTokenizer {
            tokens,
            kinds,
            token_to_id,
            pieces,
            specials,
            pre,
            merges,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Cuts `text` into plain-text fragments and special-token ids, the way
    /// llama.cpp's `tokenizer_st_partition` does: special tokens are tried from
    /// the longest text to the shortest, each one splitting every plain-text
    /// fragment left over by the longer ones at all its (non-overlapping,
    /// left-to-right) occurrences.
    fn partition<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        partition_specials(
            text,
            &self.specials,
            &self.tokens,
            &self.kinds,
            parse_special,
        )
    }

    /// Appends the ids of one pre-tokenized word, consulting the word cache.
    fn encode_word(&self, word: &str, out: &mut Vec<u32>) -> Result<(), TokenizerError> {
        let cacheable = word.len() <= CACHE_MAX_WORD_LEN;
        if cacheable {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(ids) = cache.get(word) {
                out.extend_from_slice(ids);
                return Ok(());
            }
        }
        let start = out.len();
        self.merges.encode_word(word.as_bytes(), out);
        if cacheable {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= CACHE_MAX_ENTRIES {
                cache.clear();
            }
            cache.insert(word.to_string(), out[start..].to_vec());
        }
        Ok(())
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

    /// The bytes `id` contributes to decoded output (borrowed, no allocation).
    fn piece(&self, id: u32, render_special: bool) -> Result<&[u8], TokenizerError> {
        let idx = self.check_id(id)?;
        let hidden =
            !render_special && matches!(self.kinds[idx], TokenKind::Control | TokenKind::Unknown);
        Ok(if hidden { &[] } else { &self.pieces[idx] })
    }
}

impl std::fmt::Debug for BpeTokenizer {
    // Summarised: the derived form would print the whole vocabulary.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpeTokenizer")
            .field("vocab_size", &self.tokens.len())
            .field("merges", &self.merges.pairs.len())
            .field("special_tokens", &self.specials.len())
            .field("pre", &self.pre.kind())
            .finish_non_exhaustive()
    }
}

impl Tokenizer for BpeTokenizer {
    fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        for fragment in self.partition(text, parse_special) {
            match fragment {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(t) => {
                    for word in self.pre.split(t)? {
                        self.encode_word(word, &mut out)?;
                    }
                }
            }
        }
        Ok(out)
    }

    fn token_bytes(&self, id: u32, render_special: bool) -> Result<Vec<u8>, TokenizerError> {
        Ok(self.piece(id, render_special)?.to_vec())
    }

    fn decode(&self, ids: &[u32], render_special: bool) -> Result<Vec<u8>, TokenizerError> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            out.extend_from_slice(self.piece(id, render_special)?);
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

impl MergeTable {
    /// Interns every symbol string and indexes the merge rules by symbol pair.
    fn build(
        token_to_id: &HashMap<String, u32>,
        merges: &[String],
    ) -> Result<Self, TokenizerError> {
        let mut interner: HashMap<String, u32> = HashMap::new();
        let mut symbol_token: Vec<Option<u32>> = Vec::new();
        let mut intern = |s: &str| -> u32 {
            if let Some(&sym) = interner.get(s) {
                return sym;
            }
            let sym = symbol_token.len() as u32;
            symbol_token.push(token_to_id.get(s).copied());
            interner.insert(s.to_string(), sym);
            sym
        };

        let mut byte_symbol = [0u32; 256];
        for (b, slot) in byte_symbol.iter_mut().enumerate() {
            let mut buf = [0u8; 4];
            *slot = intern(BYTE_CHARS[b].encode_utf8(&mut buf));
        }

        let mut pairs = HashMap::with_capacity(merges.len());
        for (index, merge) in merges.iter().enumerate() {
            let (left, right) =
                split_merge(merge).ok_or_else(|| TokenizerError::MalformedMerge {
                    index,
                    merge: merge.clone(),
                })?;
            let rank = u32::try_from(index).map_err(|_| TokenizerError::MalformedMerge {
                index,
                merge: merge.clone(),
            })?;
            let l = intern(left);
            let r = intern(right);
            let merged = intern(&format!("{left}{right}"));
            // Like llama.cpp, the first (lowest-rank) occurrence of a pair wins.
            pairs.entry((l, r)).or_insert((rank, merged));
        }

        let mut byte_token = [None; 256];
        for (b, slot) in byte_token.iter_mut().enumerate() {
            *slot = symbol_token[byte_symbol[b] as usize];
        }

        Ok(MergeTable {
            pairs,
            byte_symbol,
            symbol_token,
            byte_token,
        })
    }

    /// Runs BPE over one word's bytes and appends the resulting ids.
    ///
    /// Candidate pairs sit in a min-heap ordered by (rank, left position), the
    /// same order llama.cpp's priority queue uses; entries made stale by an
    /// earlier merge are recognised and skipped when popped.
    fn encode_word(&self, word: &[u8], out: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        let n = word.len();
        let mut syms: Vec<Symbol> = word
            .iter()
            .enumerate()
            .map(|(i, &b)| Symbol {
                id: self.byte_symbol[b as usize],
                start: i,
                len: 1,
                prev: if i == 0 { NONE } else { i - 1 },
                next: if i + 1 == n { NONE } else { i + 1 },
            })
            .collect();

        let mut heap: BinaryHeap<Reverse<Candidate>> = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<Reverse<Candidate>>,
                    syms: &[Symbol],
                    left: usize,
                    right: usize| {
            if left == NONE || right == NONE {
                return;
            }
            let pair = (syms[left].id, syms[right].id);
            if let Some(&(rank, merged)) = self.pairs.get(&pair) {
                heap.push(Reverse(Candidate {
                    rank,
                    left,
                    right,
                    pair,
                    merged,
                }));
            }
        };
        for i in 1..n {
            push(&mut heap, &syms, i - 1, i);
        }

        while let Some(Reverse(c)) = heap.pop() {
            let (ls, rs) = (syms[c.left], syms[c.right]);
            if ls.len == 0 || rs.len == 0 || ls.next != c.right || (ls.id, rs.id) != c.pair {
                continue; // stale: one side has changed since this pair was queued
            }
            syms[c.left].id = c.merged;
            syms[c.left].len += rs.len;
            syms[c.left].next = rs.next;
            syms[c.right].len = 0;
            if rs.next != NONE {
                syms[rs.next].prev = c.left;
            }
            push(&mut heap, &syms, ls.prev, c.left);
            push(&mut heap, &syms, c.left, rs.next);
        }

        let mut i = 0;
        while i != NONE {
            let sym = syms[i];
            match self.symbol_token[sym.id as usize] {
                Some(id) => out.push(id),
                None => {
                    // The vocabulary lacks this symbol (a merge result it does
                    // not list, or a byte it never saw, e.g. SmolLM2 has no
                    // token for 0x04 or 0xF1): spell it with single-byte
                    // tokens. Bytes without even that are dropped, as llama.cpp
                    // drops them.
                    for &b in &word[sym.start..sym.start + sym.len] {
                        match self.byte_token[b as usize] {
                            Some(id) => out.push(id),
                            None => tracing::warn!(
                                byte = b,
                                "byte has no token in the vocabulary; dropped"
                            ),
                        }
                    }
                }
            }
            i = sym.next;
        }
    }
}

/// Splits a merge rule `"left right"` at the first space after the first byte
/// (as llama.cpp does). Returns `None` when there is no such space or either
/// side is empty.
fn split_merge(merge: &str) -> Option<(&str, &str)> {
    // Search bytes, not chars: the first character may be multi-byte, and a
    // space byte is always a character boundary.
    let pos = merge.as_bytes().get(1..)?.iter().position(|&b| b == b' ')? + 1;
    let (left, right) = (&merge[..pos], &merge[pos + 1..]);
    if left.is_empty() || right.is_empty() {
        None
    } else {
        Some((left, right))
    }
}

/// What a token renders as when rendering is allowed at all.
fn render_piece(text: &str, kind: TokenKind) -> Box<[u8]> {
    match kind {
        TokenKind::Normal => byte_decode(text),
        TokenKind::Control | TokenKind::Unknown | TokenKind::UserDefined => text.as_bytes().into(),
        TokenKind::Byte => match parse_byte_token(text) {
            Some(b) => Box::new([b]),
            None => byte_decode(text),
        },
        TokenKind::Unused => Box::new([]),
    }
}

/// Parses an SPM-style byte token `<0xXX>`.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Maps a byte-level token string back to raw bytes. Characters outside the
/// byte alphabet (which a well-formed vocabulary never contains) are passed
/// through as their own UTF-8.
fn byte_decode(text: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.into_boxed_slice()
}

/// GPT-2's `bytes_to_unicode` table: byte -> the character that spells it.
///
/// Printable Latin-1 bytes (`!`..=`~`, `¡`..=`¬`, `®`..=`ÿ`) stand for
/// themselves; the remaining 68 bytes are assigned U+0100, U+0101, ... in
/// increasing byte order, so every byte has a visible, non-space character.
const BYTE_CHARS: [char; 256] = build_byte_chars();

const fn is_self_mapped(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

const fn build_byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut shifted = 0u32;
    let mut b = 0usize;
    while b < 256 {
        let cp = if is_self_mapped(b as u8) {
            b as u32
        } else {
            shifted += 1;
            0x100 + shifted - 1
        };
        table[b] = match char::from_u32(cp) {
            Some(c) => c,
            None => '\0', // unreachable: all code points here are < U+0200
        };
        b += 1;
    }
    table
}

/// Inverse of [`BYTE_CHARS`], indexed by code point (all of which are below
/// U+0200); entries for characters outside the alphabet hold `NOT_A_BYTE`.
const CHAR_BYTES: [u16; 0x200] = build_char_bytes();

/// Marks a code point that does not spell any byte.
const NOT_A_BYTE: u16 = u16::MAX;

const fn build_char_bytes() -> [u16; 0x200] {
    let mut table = [NOT_A_BYTE; 0x200];
    let mut b = 0usize;
    while b < 256 {
        table[BYTE_CHARS[b] as usize] = b as u16;
        b += 1;
    }
    table
}

/// The byte a byte-level character stands for, if it is in the alphabet.
fn char_to_byte(c: char) -> Option<u8> {
    let v = *CHAR_BYTES.get(c as usize)?;
    u8::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Spelling of a raw byte string in the byte-level alphabet.
    fn spell(bytes: &[u8]) -> String {
        bytes.iter().map(|&b| BYTE_CHARS[b as usize]).collect()
    }

    /// A vocabulary with all 256 byte tokens (ids 0..256), followed by the
    /// merge results for `merges` in order, followed by `extra` tokens.
    fn build(merges: &[&str], extra: &[(&str, TokenKind)], pre: &str) -> BpeTokenizer {
        let mut tokens: Vec<String> = (0..=255u8).map(|b| spell(&[b])).collect();
        let mut kinds = vec![TokenKind::Normal; 256];
        for m in merges {
            tokens.push(m.replace(' ', ""));
            kinds.push(TokenKind::Normal);
        }
        for (t, k) in extra {
            tokens.push((*t).to_string());
            kinds.push(*k);
        }
        let merges: Vec<String> = merges.iter().map(|m| (*m).to_string()).collect();
        BpeTokenizer::new(tokens, kinds, &merges, pre).expect("build tokenizer")
    }

    fn id(t: &BpeTokenizer, s: &str) -> u32 {
        t.token_id(s).unwrap_or_else(|| panic!("no token {s:?}"))
    }

    fn chat_tokenizer() -> BpeTokenizer {
        build(
            &["Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"],
            &[
                ("<|im_start|>", TokenKind::Control),
                ("<|im_end|>", TokenKind::Control),
                ("<tool>", TokenKind::UserDefined),
                ("<unk>", TokenKind::Unknown),
            ],
            "smollm",
        )
    }

    #[test]
    fn byte_table_matches_gpt2() {
        assert_eq!(BYTE_CHARS[b'a' as usize], 'a');
        assert_eq!(BYTE_CHARS[b' ' as usize], 'Ġ');
        assert_eq!(BYTE_CHARS[b'\n' as usize], 'Ċ');
        assert_eq!(BYTE_CHARS[0], '\u{100}');
        assert_eq!(BYTE_CHARS[0xAD], 'Ń');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(BYTE_CHARS[b as usize]), Some(b));
        }
        assert_eq!(char_to_byte('\u{144}'), None);
        assert_eq!(char_to_byte('中'), None);
    }

    #[test]
    fn merges_apply_in_rank_order() {
        // "ab" outranks "bc": "abc" -> ["ab", "c"].
        let t = build(&["a b", "b c"], &[], "gpt2");
        assert_eq!(
            t.encode("abc", false).expect("encode"),
            [id(&t, "ab"), id(&t, "c")]
        );
        // With the ranks swapped the other pair wins: ["a", "bc"].
        let t = build(&["b c", "a b"], &[], "gpt2");
        assert_eq!(
            t.encode("abc", false).expect("encode"),
            [id(&t, "a"), id(&t, "bc")]
        );
    }

    #[test]
    fn equal_pairs_merge_left_to_right() {
        let t = build(&["a a"], &[], "gpt2");
        assert_eq!(
            t.encode("aaa", false).expect("encode"),
            [id(&t, "aa"), id(&t, "a")]
        );
        let t = build(&["a a", "aa aa"], &[], "gpt2");
        assert_eq!(
            t.encode("aaaaa", false).expect("encode"),
            [id(&t, "aaaa"), id(&t, "a")]
        );
    }

    #[test]
    fn merges_build_on_earlier_merges_and_spaces_are_g() {
        let t = chat_tokenizer();
        let ids = t.encode("hello world", false).expect("encode");
        let world = id(&t, "Ġworld");
        assert_eq!(ids.last(), Some(&world));
        assert_eq!(ids.len(), 6); // h e l l o + " world"
    }

    #[test]
    fn merges_do_not_cross_words() {
        // "a b" would merge "a"+"b", but "a" and "b" are different words here.
        let t = build(&["a b", "Ġ b"], &[], "gpt2");
        assert_eq!(
            t.encode("a b", false).expect("encode"),
            [id(&t, "a"), id(&t, "Ġb")]
        );
    }

    #[test]
    fn special_tokens_split_only_when_asked() {
        let t = chat_tokenizer();
        let start = id(&t, "<|im_start|>");
        let end = id(&t, "<|im_end|>");
        let ids = t.encode("<|im_start|>x<|im_end|>", true).expect("encode");
        assert_eq!(ids, [start, id(&t, "x"), end]);
        let plain = t.encode("<|im_start|>x<|im_end|>", false).expect("encode");
        assert!(!plain.contains(&start) && !plain.contains(&end));
        assert_eq!(
            t.decode(&plain, false).expect("decode"),
            b"<|im_start|>x<|im_end|>"
        );
        // Unknown-kind tokens are likewise only matched with parse_special.
        let unk = id(&t, "<unk>");
        assert_eq!(t.encode("<unk>", true).expect("encode"), [unk]);
        assert!(!t.encode("<unk>", false).expect("encode").contains(&unk));
    }

    #[test]
    fn user_defined_tokens_always_split() {
        let t = chat_tokenizer();
        let tool = id(&t, "<tool>");
        for parse_special in [false, true] {
            let ids = t.encode("a<tool>b", parse_special).expect("encode");
            assert_eq!(ids, [id(&t, "a"), tool, id(&t, "b")]);
        }
        // User-defined tokens render verbatim even without render_special.
        assert_eq!(t.token_bytes(tool, false).expect("bytes"), b"<tool>");
    }

    #[test]
    fn special_text_splits_pre_tokenizer_context() {
        // The space before a special token stays a lone word: it cannot join
        // the text after the token.
        let t = chat_tokenizer();
        let ids = t.encode(" <|im_end|>world", true).expect("encode");
        assert_eq!(
            ids,
            [
                id(&t, "Ġ"),
                id(&t, "<|im_end|>"),
                id(&t, "w"),
                id(&t, "or"),
                id(&t, "ld")
            ]
        );
    }

    #[test]
    fn longer_special_tokens_claim_text_first() {
        // "<a><b>" is longer than "<a>", so it wins even though "<a>" matches
        // at the same place; a lone "<a>" elsewhere still matches.
        let t = build(
            &[],
            &[("<a>", TokenKind::Control), ("<a><b>", TokenKind::Control)],
            "smollm",
        );
        let (a, ab) = (id(&t, "<a>"), id(&t, "<a><b>"));
        assert_eq!(t.encode("<a><b><a>", true).expect("encode"), [ab, a]);
        // Longest-first is not leftmost-first: "bcd" beats the earlier "ab".
        let t = build(
            &[],
            &[
                ("ab", TokenKind::UserDefined),
                ("bcd", TokenKind::UserDefined),
            ],
            "smollm",
        );
        assert_eq!(
            t.encode("abcd", false).expect("encode"),
            [id(&t, "a"), id(&t, "bcd")]
        );
    }

    #[test]
    fn control_tokens_render_only_on_request() {
        let t = chat_tokenizer();
        let end = id(&t, "<|im_end|>");
        assert_eq!(t.token_bytes(end, false).expect("bytes"), b"");
        assert_eq!(t.token_bytes(end, true).expect("bytes"), b"<|im_end|>");
        let ids = [id(&t, "h"), end, id(&t, "Ġworld")];
        assert_eq!(t.decode(&ids, false).expect("decode"), b"h world");
        assert_eq!(t.decode(&ids, true).expect("decode"), b"h<|im_end|> world");
    }

    #[test]
    fn normal_tokens_decode_through_byte_table() {
        let t = chat_tokenizer();
        assert_eq!(
            t.token_bytes(id(&t, "Ġworld"), false).expect("bytes"),
            b" world"
        );
        assert_eq!(t.token_bytes(id(&t, "Ċ"), false).expect("bytes"), b"\n");
        // Multi-byte characters come out one byte token at a time, which can
        // be invalid UTF-8 on their own but concatenate correctly.
        let ids = t.encode("é", false).expect("encode");
        assert_eq!(ids.len(), 2);
        assert_eq!(t.token_bytes(ids[0], false).expect("bytes"), [0xC3]);
        assert_eq!(t.decode(&ids, false).expect("decode"), "é".as_bytes());
    }

    #[test]
    fn digits_split_singly_with_smollm_but_not_gpt2() {
        let merges = ["1 2", "12 3"];
        let t = build(&merges, &[], "smollm");
        assert_eq!(
            t.encode("123", false).expect("encode"),
            [id(&t, "1"), id(&t, "2"), id(&t, "3")]
        );
        let t = build(&merges, &[], "gpt2");
        assert_eq!(t.encode("123", false).expect("encode"), [id(&t, "123")]);
    }

    #[test]
    fn contractions_are_case_sensitive() {
        let t = build(&["' s", "' S"], &[], "smollm");
        assert_eq!(
            t.encode("it's", false).expect("encode"),
            [id(&t, "i"), id(&t, "t"), id(&t, "'s")]
        );
        // "'S" is not a contraction: "'" is a symbol word and "S" a letter word,
        // so the "' S" merge cannot apply across them.
        assert_eq!(
            t.encode("IT'S", false).expect("encode"),
            [id(&t, "I"), id(&t, "T"), id(&t, "'"), id(&t, "S")]
        );
    }

    #[test]
    fn whitespace_runs_leave_one_space_for_the_next_word() {
        let t = build(&["Ġ Ġ", "Ġ t", "Ġt w", "Ġtw o"], &[], "smollm");
        let (sp, two) = (id(&t, "Ġ"), id(&t, "Ġtwo"));
        assert_eq!(t.encode("  two", false).expect("encode"), [sp, two]);
        assert_eq!(
            t.encode("   two", false).expect("encode"),
            [id(&t, "ĠĠ"), two]
        );
        assert_eq!(t.encode("  ", false).expect("encode"), [id(&t, "ĠĠ")]);
    }

    #[test]
    fn merge_result_missing_from_vocab_falls_back_to_bytes() {
        let tokens: Vec<String> = (0..=255u8).map(|b| spell(&[b])).collect();
        let kinds = vec![TokenKind::Normal; 256];
        let t = BpeTokenizer::new(tokens, kinds, &["x y".to_string()], "gpt2").expect("build");
        assert_eq!(
            t.encode("xy", false).expect("encode"),
            [u32::from(b'x'), u32::from(b'y')]
        );
    }

    #[test]
    fn bytes_without_any_token_are_dropped() {
        // Like llama.cpp: a byte the vocabulary cannot spell vanishes rather
        // than failing the whole request.
        let tokens = vec!["a".to_string(), "c".to_string()];
        let kinds = vec![TokenKind::Normal; 2];
        let t = BpeTokenizer::new(tokens, kinds, &[], "gpt2").expect("build");
        assert_eq!(t.encode("a", false).expect("encode"), [0]);
        assert_eq!(t.encode("abc", false).expect("encode"), [0, 1]);
        assert_eq!(t.encode("b", false).expect("encode"), Vec::<u32>::new());
    }

    #[test]
    fn constructor_validates_input() {
        let tokens = vec!["a".to_string(), "b".to_string()];
        assert!(matches!(
            BpeTokenizer::new(tokens.clone(), vec![TokenKind::Normal], &[], "gpt2"),
            Err(TokenizerError::KindsLengthMismatch {
                tokens: 2,
                kinds: 1
            })
        ));
        let kinds = vec![TokenKind::Normal; 2];
        assert!(matches!(
            BpeTokenizer::new(tokens.clone(), kinds.clone(), &["ab".to_string()], "gpt2"),
            Err(TokenizerError::MalformedMerge { index: 0, .. })
        ));
        assert!(matches!(
            BpeTokenizer::new(
                tokens.clone(),
                kinds.clone(),
                &["a b".into(), "a ".into()],
                "gpt2"
            ),
            Err(TokenizerError::MalformedMerge { index: 1, .. })
        ));
        assert!(matches!(
            BpeTokenizer::new(tokens, kinds, &[], "llama3"),
            Err(TokenizerError::UnknownPreTokenizer(_))
        ));
    }

    #[test]
    fn out_of_range_ids_are_errors() {
        let t = chat_tokenizer();
        let n = t.vocab_size() as u32;
        assert!(matches!(
            t.token_bytes(n, true),
            Err(TokenizerError::IdOutOfRange { .. })
        ));
        assert!(matches!(
            t.decode(&[0, n], false),
            Err(TokenizerError::IdOutOfRange { .. })
        ));
        assert_eq!(t.token_kind(n), None);
        assert_eq!(t.token_kind(id(&t, "<|im_end|>")), Some(TokenKind::Control));
    }

    #[test]
    fn byte_kind_tokens_decode_their_hex_value() {
        let t = build(
            &[],
            &[
                ("<0x0A>", TokenKind::Byte),
                ("<unused0>", TokenKind::Unused),
            ],
            "gpt2",
        );
        assert_eq!(
            t.token_bytes(id(&t, "<0x0A>"), false).expect("bytes"),
            b"\n"
        );
        assert_eq!(
            t.token_bytes(id(&t, "<unused0>"), true).expect("bytes"),
            b""
        );
    }

    #[test]
    fn debug_output_is_a_summary() {
        let t = chat_tokenizer();
        let dbg = format!("{t:?}");
        assert!(dbg.contains("vocab_size: 265"), "{dbg}");
        assert!(dbg.len() < 200, "{dbg}");
    }

    #[test]
    fn empty_input_gives_no_ids() {
        let t = chat_tokenizer();
        assert!(t.encode("", true).expect("encode").is_empty());
        assert!(t.decode(&[], true).expect("decode").is_empty());
    }

    #[test]
    fn cached_words_give_the_same_ids() {
        let t = chat_tokenizer();
        let first = t.encode("x world world", false).expect("encode");
        let world = id(&t, "Ġworld");
        assert_eq!(first, [id(&t, "x"), world, world]);
        let cached = t.cache.lock().expect("lock").get(" world").cloned();
        assert_eq!(cached, Some(vec![world]));
        assert_eq!(t.encode("x world world", false).expect("encode"), first);
    }

    #[test]
    fn split_merge_uses_first_space_after_first_byte() {
        assert_eq!(split_merge("Ġ t"), Some(("Ġ", "t")));
        assert_eq!(split_merge("a b c"), Some(("a", "b c")));
        assert_eq!(split_merge("  x"), Some((" ", "x")));
        assert_eq!(split_merge("ĠĠ Ġ"), Some(("ĠĠ", "Ġ")));
        assert_eq!(split_merge("ab"), None);
        assert_eq!(split_merge(""), None);
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(s in "(?s)[a-zA-Z0-9 \t\r\n'.,!?é中🙂²\u{a0}\u{3000}<|>_]{0,60}|\\PC{0,40}|.{0,20}") {
            let t = build(
                &["Ġ Ġ", "Ġ w", "o r", "Ġw or", "1 2", "' s", "ĠĠ Ġ", "Ã ©"],
                &[("<|im_end|>", TokenKind::Control), ("<tool>", TokenKind::UserDefined)],
                "smollm",
            );
            let ids = t.encode(&s, false).expect("encode");
            prop_assert_eq!(t.decode(&ids, false).expect("decode"), s.as_bytes());
            let ids = t.encode(&s, true).expect("encode");
            prop_assert_eq!(t.decode(&ids, true).expect("decode"), s.as_bytes());
        }
    }
}
