//! CLIP's byte-pair-encoding tokenizer with OpenAI's vocabulary (`instant-clip-tokenizer`, which bundles the canonical
//! `bpe_simple_vocab_16e6.txt`): start of text, the caption's tokens, end of text, zero padding to the context length.
//! Before encoding, text is cleaned as OpenAI's tokenizer cleans it (`ftfy.fix_text`, HTML unescaped twice, whitespace collapsed,
//! lowercased); of ftfy's fixes, all but mojibake repair and terminal-escape removal are done here ([`clean`]).
//! An over-long caption is cut to the context length with end of text as its last token, as `clip.tokenize(..., truncate=True)` does,
//! and reported.

use instant_clip_tokenizer::{Token, Tokenizer};

/// Token ids of a batch of captions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokenized {
    /// One row of `context_length` ids per caption.
    pub ids: Vec<Vec<usize>>,
    /// The captions (by position) that were cut to fit.
    pub truncated: Vec<usize>,
}

/// The tokenizer, with its context length.
pub struct ClipTokenizer {
    inner: Tokenizer,
    context_length: usize,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer").field("context_length", &self.context_length).finish()
    }
}

impl ClipTokenizer {
    /// OpenAI's vocabulary; `context_length` is 77 for every released CLIP.
    pub fn new(context_length: usize) -> ClipTokenizer {
        assert!(context_length >= 2, "a context holds at least start and end of text");
        ClipTokenizer { inner: Tokenizer::new(), context_length }
    }

    /// The ids of each caption.
    pub fn tokenize(&self, captions: &[&str]) -> Tokenized {
        let (sot, eot) = (self.inner.start_of_text(), self.inner.end_of_text());
        let mut truncated = Vec::new();
        let ids = captions
            .iter()
            .enumerate()
            .map(|(k, caption)| {
                let mut tokens: Vec<Token> = vec![sot];
                self.inner.encode(&clean(caption), &mut tokens);
                tokens.push(eot);
                if tokens.len() > self.context_length {
                    tokens.truncate(self.context_length);
                    tokens[self.context_length - 1] = eot;
                    truncated.push(k);
                }
                let mut row: Vec<usize> = tokens.into_iter().map(|t| usize::from(t.to_u16())).collect();
                row.resize(self.context_length, 0);
                row
            })
            .collect();
        if !truncated.is_empty() {
            tracing::warn!(
                captions = truncated.len(),
                first = captions[truncated[0]],
                "captions longer than the context of {} tokens were cut",
                self.context_length
            );
        }
        Tokenized { ids, truncated }
    }
}

/// OpenAI's text cleaning: ftfy's default fixes (Latin ligatures, full-width characters, curly quotes, control characters, NFC),
/// HTML entities unescaped twice, runs of whitespace made one space, trimmed, lowercased.
pub fn clean(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut fixed = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{FB00}' => fixed.push_str("ff"),
            '\u{FB01}' => fixed.push_str("fi"),
            '\u{FB02}' => fixed.push_str("fl"),
            '\u{FB03}' => fixed.push_str("ffi"),
            '\u{FB04}' => fixed.push_str("ffl"),
            '\u{FB05}' => fixed.push_str("\u{17F}t"),
            '\u{FB06}' => fixed.push_str("st"),
            '\u{132}' => fixed.push_str("IJ"),
            '\u{133}' => fixed.push_str("ij"),
            '\u{1C4}' => fixed.push_str("D\u{17D}"),
            '\u{1C5}' => fixed.push_str("D\u{17E}"),
            '\u{1C6}' => fixed.push_str("d\u{17E}"),
            '\u{1C7}' => fixed.push_str("LJ"),
            '\u{1C8}' => fixed.push_str("Lj"),
            '\u{1C9}' => fixed.push_str("lj"),
            '\u{1CA}' => fixed.push_str("NJ"),
            '\u{1CB}' => fixed.push_str("Nj"),
            '\u{1CC}' => fixed.push_str("nj"),
            '\u{2BC}' | '\u{2018}'..='\u{201B}' => fixed.push('\''),
            '\u{201C}'..='\u{201F}' => fixed.push('"'),
            // Full-width and half-width forms, and the ideographic space, become their ordinary forms (ftfy's `fix_character_width`).
            '\u{3000}' | '\u{FF01}'..='\u{FFEF}' => fixed.extend(std::iter::once(c).nfkc()),
            '\u{0}'..='\u{8}'
            | '\u{B}'
            | '\u{E}'..='\u{1F}'
            | '\u{7F}'
            | '\u{206A}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFC}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}' => {}
            c => fixed.push(c),
        }
    }
    let fixed: String = fixed.nfc().collect();
    let once = html_escape::decode_html_entities(&fixed).into_owned();
    let twice = html_escape::decode_html_entities(&once);
    twice.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}
