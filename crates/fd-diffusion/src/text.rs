//! Prompts to the UNet's conditioning, as Stable Diffusion v1 makes it: CLIP's tokenizer (fd-clip's, OpenAI's vocabulary)
//! with the context padded by end of text rather than 0 (v1's tokenizer uses `<|endoftext|>` as its padding token), the
//! text tower's last hidden states at every position (after its final LayerNorm), and the empty prompt's for guidance.

use burn::prelude::*;
use fd_clip::clip::{ClipConfig, TextTransformer};
use fd_clip::tokenize::ClipTokenizer;

use crate::error::{Error, Result};

/// OpenAI's end-of-text id.
const END_OF_TEXT: usize = 49407;

/// Prompts' conditioning.
#[derive(Debug, Clone)]
pub struct Conditioning {
    /// `[prompts, tokens, width]`, row-major.
    pub values: Vec<f32>,
    /// Tokens per prompt (77).
    pub tokens: usize,
    /// The text tower's width.
    pub width: usize,
    /// The prompts (by position) cut to fit the context.
    pub truncated: Vec<usize>,
}

impl Conditioning {
    /// One prompt's `[tokens, width]` values.
    pub fn prompt(&self, k: usize) -> &[f32] {
        let n = self.tokens * self.width;
        &self.values[k * n..(k + 1) * n]
    }
}

/// The tokenizer and the text tower.
#[derive(Debug)]
pub struct PromptEncoder {
    tokenizer: ClipTokenizer,
    tower: TextTransformer,
    vocab_size: usize,
    device: Device,
}

/// A row of ids padded by end of text after the first end of text (a row without one is left alone).
pub fn pad_with_end_of_text(mut ids: Vec<usize>) -> Vec<usize> {
    if let Some(end) = ids.iter().position(|&t| t == END_OF_TEXT) {
        ids[end..].iter_mut().for_each(|t| *t = END_OF_TEXT);
    }
    ids
}

impl PromptEncoder {
    /// `tower` of `config`'s text shape (fd-clip's `load::load_text_tower`).
    pub fn new(config: &ClipConfig, tower: TextTransformer, device: &Device) -> Result<PromptEncoder> {
        let text =
            config.text.as_ref().ok_or_else(|| Error::Config { message: "the CLIP shape has no text tower".into() })?;
        Ok(PromptEncoder {
            tokenizer: ClipTokenizer::new(text.context_length),
            tower,
            vocab_size: text.vocab_size,
            device: device.clone(),
        })
    }

    /// The token ids of each prompt as the tower reads them (padded by end of text; folded into a small vocabulary).
    pub fn ids(&self, prompts: &[&str]) -> (Vec<Vec<usize>>, Vec<usize>) {
        let tokenized = self.tokenizer.tokenize(prompts);
        let ids = tokenized
            .ids
            .into_iter()
            .map(|row| pad_with_end_of_text(row).into_iter().map(|t| ClipConfig::fold_id(t, self.vocab_size)).collect())
            .collect();
        (ids, tokenized.truncated)
    }

    /// The conditioning of each prompt (the empty prompt `""` gives guidance's unconditional one).
    pub fn encode(&self, prompts: &[&str]) -> Result<Conditioning> {
        let (ids, truncated) = self.ids(prompts);
        let hidden = self.tower.hidden_states(&ids, &self.device);
        let [_, tokens, width] = hidden.dims();
        let values = hidden
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Shape { message: format!("text tower: {e:?}") })?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::NotFinite { what: "the text conditioning".into() });
        }
        Ok(Conditioning { values, tokens, width, truncated })
    }
}
