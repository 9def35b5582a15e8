//! Pre-tokenization: splitting text into words before BPE runs.
//!
//! BPE merges never cross a word boundary, so where text is cut decides which
//! ids come out. GGUF records the scheme in `tokenizer.ggml.pre`; this module
//! reproduces llama.cpp's regex pipelines for the names we support.
//!
//! llama.cpp applies a list of regexes *in sequence*: the first splits the
//! whole text, and every later regex splits each piece produced by the previous
//! stage on its own. Text between two matches is kept as a piece too, so the
//! pieces always tile the input exactly. Because later stages see one piece at
//! a time, look-arounds cannot peek across an earlier stage's boundary (for
//! "smollm", the space in `"5 3"` stays a lone piece because the digit after it
//! was already cut off by stage one).
//!
//! The GPT-2 pattern ends in `\s+(?!\S)|\s+`. Running that look-ahead in
//! fancy-regex's backtracking VM overflows its stack on long whitespace runs
//! (a couple of MB of spaces), so the pattern is compiled *without* the
//! look-ahead branch, which lets fancy-regex hand it to the linear-time `regex`
//! engine, and the branch's effect is applied by hand: a whitespace run of two
//! or more characters that is followed by more text in the same piece gives its
//! last character back, to become the prefix of the next word. That is exactly
//! what the look-ahead does (and what llama.cpp's hand-written GPT-2 splitter
//! does); a property test checks the two agree.

use fancy_regex::Regex;

use super::TokenizerError;

/// The GPT-2 word pattern as llama.cpp spells it: contractions (case-sensitive),
/// optionally space-prefixed runs of letters, numbers or other symbols, and
/// whitespace runs where the last whitespace character is left to prefix the
/// next word. Kept for reference and for the equivalence test.
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// [`GPT2_PATTERN`] minus the look-ahead branch, which [`split_words`] emulates.
const GPT2_PATTERN_NO_LOOKAHEAD: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

/// Isolates every numeric character, so numbers tokenize one digit at a time.
const DIGIT_PATTERN: &str = r"\p{N}";

/// The pre-tokenization schemes this engine implements, named after the GGUF
/// `tokenizer.ggml.pre` values that select them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizerKind {
    /// `"gpt2"` / `"default"`: the plain GPT-2 word pattern.
    Gpt2,
    /// `"smollm"` (SmolLM / SmolLM2): every numeric character is split off on
    /// its own first, then the GPT-2 pattern runs on each remaining piece.
    SmolLm,
}

impl PreTokenizerKind {
    /// Maps a GGUF `tokenizer.ggml.pre` value to a scheme, rejecting names we do
    /// not implement rather than silently tokenizing differently from llama.cpp.
    pub fn from_name(name: &str) -> Result<Self, TokenizerError> {
        match name {
            "smollm" => Ok(PreTokenizerKind::SmolLm),
            "gpt2" | "default" => Ok(PreTokenizerKind::Gpt2),
            other => Err(TokenizerError::UnknownPreTokenizer(other.to_string())),
        }
    }

    /// The regex stages, in the order llama.cpp applies them.
    fn stages(self) -> &'static [Stage] {
        match self {
            PreTokenizerKind::Gpt2 => &[Stage::Words],
            PreTokenizerKind::SmolLm => &[Stage::Digits, Stage::Words],
        }
    }
}

/// One splitting pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// `\p{N}`: each numeric character becomes its own piece.
    Digits,
    /// The GPT-2 word pattern.
    Words,
}

impl Stage {
    /// The regex this stage compiles.
    fn pattern(self) -> &'static str {
        match self {
            Stage::Digits => DIGIT_PATTERN,
            Stage::Words => GPT2_PATTERN_NO_LOOKAHEAD,
        }
    }
}

/// A compiled pre-tokenizer: splits text into the words BPE works on.
///
/// Compiling the regexes is comparatively slow, so a tokenizer builds this once
/// and reuses it for every `encode` call.
#[derive(Debug)]
pub struct PreTokenizer {
    kind: PreTokenizerKind,
    stages: Vec<(Stage, Regex)>,
}

impl PreTokenizer {
    /// Compiles the regex stages for `kind`.
    pub fn new(kind: PreTokenizerKind) -> Result<Self, TokenizerError> {
        let stages = kind
            .stages()
            .iter()
            .map(|&stage| {
                Regex::new(stage.pattern())
                    .map(|re| (stage, re))
                    .map_err(|e| TokenizerError::Regex(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PreTokenizer { kind, stages })
    }

    /// Compiles the pre-tokenizer named by a GGUF `tokenizer.ggml.pre` value.
    pub fn from_name(name: &str) -> Result<Self, TokenizerError> {
        Self::new(PreTokenizerKind::from_name(name)?)
    }

    /// Which scheme this pre-tokenizer implements.
    pub fn kind(&self) -> PreTokenizerKind {
        self.kind
    }

    /// Splits `text` into words. The words are non-empty, in order, and
    /// concatenate back to `text` exactly.
    pub fn split<'t>(&self, text: &'t str) -> Result<Vec<&'t str>, TokenizerError> {
        let mut pieces: Vec<&'t str> = Vec::new();
        if !text.is_empty() {
            pieces.push(text);
        }
        let mut next: Vec<&'t str> = Vec::new();
        for (stage, re) in &self.stages {
            next.clear();
            next.reserve(pieces.len());
            for piece in &pieces {
                match stage {
                    Stage::Digits => split_matches(re, piece, &mut next)?,
                    Stage::Words => split_words(re, piece, &mut next)?,
                }
            }
            std::mem::swap(&mut pieces, &mut next);
        }
        Ok(pieces)
    }
}

/// Cuts one piece at every match of `re`, keeping the text between matches as
/// pieces of their own, and appends the results to `out`.
fn split_matches<'t>(
    re: &Regex,
    piece: &'t str,
    out: &mut Vec<&'t str>,
) -> Result<(), TokenizerError> {
    let mut last = 0;
    for m in re.find_iter(piece) {
        let m = m.map_err(|e| TokenizerError::Regex(e.to_string()))?;
        if m.start() == m.end() {
            continue; // our patterns never match empty; never emit empty words
        }
        if m.start() > last {
            out.push(&piece[last..m.start()]);
        }
        out.push(m.as_str());
        last = m.end();
    }
    if last < piece.len() {
        out.push(&piece[last..]);
    }
    Ok(())
}

/// Splits one piece with the GPT-2 word pattern compiled without its
/// `\s+(?!\S)` branch, applying that branch by hand (see the module docs).
fn split_words<'t>(
    re: &Regex,
    piece: &'t str,
    out: &mut Vec<&'t str>,
) -> Result<(), TokenizerError> {
    let mut pos = 0;
    while pos < piece.len() {
        let found = re
            .find_from_pos(piece, pos)
            .map_err(|e| TokenizerError::Regex(e.to_string()))?;
        let Some(m) = found.filter(|m| m.end() > m.start()) else {
            break;
        };
        if m.start() > pos {
            out.push(&piece[pos..m.start()]);
        }
        let mut end = m.end();
        if end < piece.len() {
            // Only the whitespace branch yields a match ending in whitespace.
            // Greedy, so more text follows the run: `\s+(?!\S)` would have
            // stopped one character short, if that leaves anything.
            let mut chars = m.as_str().char_indices();
            if let Some((last_at, last)) = chars.next_back() {
                if last.is_whitespace() && last_at > 0 {
                    end = m.start() + last_at;
                }
            }
        }
        out.push(&piece[m.start()..end]);
        pos = end;
    }
    if pos < piece.len() {
        out.push(&piece[pos..]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn smollm(text: &str) -> Vec<String> {
        let pre = PreTokenizer::new(PreTokenizerKind::SmolLm).expect("compile");
        pre.split(text)
            .expect("split")
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    fn gpt2(text: &str) -> Vec<String> {
        let pre = PreTokenizer::new(PreTokenizerKind::Gpt2).expect("compile");
        pre.split(text)
            .expect("split")
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn names_map_to_kinds() {
        assert_eq!(
            PreTokenizerKind::from_name("smollm").ok(),
            Some(PreTokenizerKind::SmolLm)
        );
        assert_eq!(
            PreTokenizerKind::from_name("gpt2").ok(),
            Some(PreTokenizerKind::Gpt2)
        );
        assert_eq!(
            PreTokenizerKind::from_name("default").ok(),
            Some(PreTokenizerKind::Gpt2)
        );
        assert!(matches!(
            PreTokenizerKind::from_name("llama-bpe"),
            Err(TokenizerError::UnknownPreTokenizer(n)) if n == "llama-bpe"
        ));
    }

    #[test]
    fn words_take_one_leading_space() {
        assert_eq!(smollm("Hello world"), ["Hello", " world"]);
        assert_eq!(smollm("a, b!"), ["a", ",", " b", "!"]);
    }

    #[test]
    fn whitespace_run_leaves_last_space_for_next_word() {
        assert_eq!(smollm("  two"), [" ", " two"]);
        assert_eq!(smollm("a   b"), ["a", "  ", " b"]);
        // A run that ends the text is kept whole.
        assert_eq!(smollm("a  "), ["a", "  "]);
        assert_eq!(smollm("     "), ["     "]);
        // A single non-space whitespace character before a word stands alone.
        assert_eq!(smollm("\nword"), ["\n", "word"]);
        assert_eq!(smollm("\n\n word"), ["\n\n", " word"]);
    }

    #[test]
    fn contractions_are_case_sensitive() {
        assert_eq!(smollm("she's"), ["she", "'s"]);
        assert_eq!(smollm("we'll"), ["we", "'ll"]);
        // Upper-case suffixes are not contractions: the apostrophe is a symbol.
        assert_eq!(smollm("I'LL"), ["I", "'", "LL"]);
        assert_eq!(smollm("SHE'S"), ["SHE", "'", "S"]);
    }

    #[test]
    fn smollm_splits_every_digit() {
        assert_eq!(smollm("12345"), ["1", "2", "3", "4", "5"]);
        assert_eq!(smollm("x 42"), ["x", " ", "4", "2"]);
        // Non-ASCII numerics are \p{N} too.
        assert_eq!(smollm("٣²"), ["٣", "²"]);
    }

    #[test]
    fn gpt2_keeps_digit_runs_together() {
        assert_eq!(gpt2("12345 3.14"), ["12345", " 3", ".", "14"]);
    }

    #[test]
    fn smollm_stage_boundary_hides_lookahead() {
        // In plain GPT-2 the space would join the number (" 3"); with the digit
        // stage first, the space is its own piece and its lookahead sees the end.
        assert_eq!(
            smollm("12345 3.14"),
            ["1", "2", "3", "4", "5", " ", "3", ".", "1", "4"]
        );
        // Two spaces before a digit: the whole run stays together.
        assert_eq!(smollm("a  7"), ["a", "  ", "7"]);
        assert_eq!(gpt2("a  7"), ["a", " ", " 7"]);
    }

    #[test]
    fn empty_text_has_no_words() {
        assert!(smollm("").is_empty());
        assert!(gpt2("").is_empty());
    }

    /// Reference splitter: the full pattern with the real look-ahead, run by
    /// fancy-regex's backtracking engine, one stage-1 piece at a time.
    fn reference_split(kind: PreTokenizerKind, text: &str) -> Vec<String> {
        let words = Regex::new(GPT2_PATTERN).expect("compile");
        let digits = Regex::new(DIGIT_PATTERN).expect("compile");
        let mut pieces = vec![text];
        if kind == PreTokenizerKind::SmolLm {
            let mut next = Vec::new();
            split_matches(&digits, text, &mut next).expect("split");
            pieces = next;
        }
        let mut out = Vec::new();
        for p in pieces {
            split_matches(&words, p, &mut out).expect("split");
        }
        out.into_iter().map(str::to_string).collect()
    }

    #[test]
    fn long_whitespace_runs_do_not_overflow() {
        let text = format!("{}x", " ".repeat(3_000_000));
        let words = PreTokenizer::new(PreTokenizerKind::SmolLm)
            .expect("compile")
            .split(&text)
            .expect("split");
        assert_eq!(words.len(), 2);
        assert_eq!(words[0].len(), 2_999_999);
        assert_eq!(words[1], " x");
    }

    proptest! {
        #[test]
        fn lookahead_emulation_matches_real_lookahead(
            s in "[ a\t\n1.'s\u{a0}\u{3000}\u{85}é]{0,24}"
        ) {
            for kind in [PreTokenizerKind::SmolLm, PreTokenizerKind::Gpt2] {
                let pre = PreTokenizer::new(kind).expect("compile");
                let ours: Vec<String> =
                    pre.split(&s).expect("split").into_iter().map(str::to_string).collect();
                prop_assert_eq!(ours, reference_split(kind, &s));
            }
        }

        #[test]
        fn pieces_tile_the_input(s in "(?s)[a-zA-Z0-9 \t\n'.,!éß中🙂²\u{85}\u{3000}]{0,40}|\\PC{0,40}") {
            for kind in [PreTokenizerKind::SmolLm, PreTokenizerKind::Gpt2] {
                let pre = PreTokenizer::new(kind).expect("compile");
                let words = pre.split(&s).expect("split");
                prop_assert!(words.iter().all(|w| !w.is_empty()));
                prop_assert_eq!(words.concat(), s.clone());
            }
        }
    }
}
