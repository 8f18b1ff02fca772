//! Text to token ids with a Hugging Face `tokenizers::Tokenizer`, padding and truncation off
//! (MiniLM's `tokenizer.json` pads every text to 128 tokens, and `[PAD]` rows would look like
//! sinks and outliers).

use std::path::Path;

use serde::Serialize;
use tokenizers::Tokenizer;

use crate::error::{Error, Result};

/// A tokenized text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Encoded {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Segment ids (BERT's token types; zeros otherwise).
    pub type_ids: Vec<u32>,
    /// The token strings, for reports.
    pub tokens: Vec<String>,
}

/// Reads `tokenizer.json` and turns its padding and truncation off.
pub fn read_tokenizer(path: &Path) -> Result<Tokenizer> {
    let mut tok = Tokenizer::from_file(path).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: format!("not a readable tokenizer.json: {e}"),
    })?;
    without_padding(&mut tok)?;
    Ok(tok)
}

/// Turns padding and truncation off.
pub fn without_padding(tok: &mut Tokenizer) -> Result<()> {
    tok.with_padding(None);
    tok.with_truncation(None)
        .map_err(|e| Error::InvalidOption(format!("cannot turn truncation off: {e}")))?;
    Ok(())
}

/// Tokenizes `text`, adding the model's special tokens when `special` (BERT's `[CLS]` … `[SEP]`).
/// Empty (or all-whitespace) text is an error: there is nothing to probe.
pub fn encode(tok: &Tokenizer, text: &str, special: bool) -> Result<Encoded> {
    if text.trim().is_empty() {
        return Err(Error::InvalidOption("the text to probe is empty".into()));
    }
    let enc = tok
        .encode(text, special)
        .map_err(|e| Error::InvalidOption(format!("cannot tokenize the text: {e}")))?;
    if enc.get_ids().is_empty() {
        return Err(Error::InvalidOption("the text gives no tokens".into()));
    }
    Ok(Encoded {
        ids: enc.get_ids().to_vec(),
        type_ids: enc.get_type_ids().to_vec(),
        tokens: enc.get_tokens().to_vec(),
    })
}
