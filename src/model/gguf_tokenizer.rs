//! The tokenizer a GGUF file carries in its `tokenizer.ggml.*` metadata, rebuilt as a
//! [`tokenizers::Tokenizer`].
//!
//! Supported: `tokenizer.ggml.model = "gpt2"` (byte-level BPE: `tokens`, `merges`, `token_type`)
//! with the pre-tokenizers whose splitting is plain GPT-2 (`pre` absent, `"default"`, `"gpt2"`)
//! or GPT-2 after isolating every digit (`"smollm"`, as SmolLM2's own `tokenizer.json` does).
//! Other models and pre-tokenizers split text differently, so they are refused with
//! [`Error::Unsupported`] rather than tokenised almost right. Control tokens (`token_type` 3)
//! become special tokens, so `<|im_start|>` in a text is one token. No BOS/EOS is added here:
//! `add_bos_token` is reported by [`GgufTokenizer::add_bos`], and the id to put first by
//! [`GgufTokenizer::bos_to_prepend`], for the caller to honour (the probe's
//! [`crate::probe::LoadedModel::encode`] does).
//!
//! ```no_run
//! use quietattn::model::{gguf::GgufFile, gguf_tokenizer::GgufTokenizer};
//!
//! # fn main() -> quietattn::Result<()> {
//! let file = GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let tok = GgufTokenizer::from_gguf(&file)?;
//! assert_eq!(tok.encode("The capital of France is")?, vec![504, 3575, 282, 4649, 314]);
//! # Ok(())
//! # }
//! ```

use super::gguf::{GgufFile, GgufValue};
use crate::error::{Error, Result};
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

/// llama.cpp's `LLAMA_TOKEN_TYPE_CONTROL`.
const TOKEN_TYPE_CONTROL: i64 = 3;

/// A GGUF file's tokenizer and the special-token facts stored beside it.
pub struct GgufTokenizer {
    tokenizer: Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
}

impl GgufTokenizer {
    /// Builds the tokenizer from `file`'s metadata.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let model = file.metadata_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(Error::Unsupported(format!(
                "GGUF tokenizer model `{model}` (only byte-level BPE, `gpt2`, is built here)"
            )));
        }
        let tokens = strings(file, "tokenizer.ggml.tokens")?;
        let merges = merges(file, &strings(file, "tokenizer.ggml.merges")?)?;
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i as u32))
            .collect();
        if vocab.len() != tokens.len() {
            return Err(corrupt(file, "tokenizer.ggml.tokens has duplicate tokens"));
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| corrupt(file, &format!("BPE vocabulary/merges rejected: {e}")))?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(pre_tokenizer(file)?));
        tokenizer.with_decoder(Some(ByteLevel::default()));
        tokenizer.add_special_tokens(&control_tokens(file, &tokens)?);
        let id = |key: &str| {
            file.get(key)
                .and_then(GgufValue::as_u64)
                .and_then(|v| u32::try_from(v).ok())
        };
        let tok = Self {
            tokenizer,
            bos: id("tokenizer.ggml.bos_token_id"),
            eos: id("tokenizer.ggml.eos_token_id"),
            add_bos: file
                .get("tokenizer.ggml.add_bos_token")
                .and_then(GgufValue::as_bool)
                .unwrap_or(false),
        };
        tok.check_bos(file)?;
        Ok(tok)
    }

    /// A file that asks for a BOS must name one inside the vocabulary.
    fn check_bos(&self, file: &GgufFile) -> Result<()> {
        if !self.add_bos {
            return Ok(());
        }
        match self.bos {
            Some(id) if self.tokenizer.id_to_token(id).is_some() => Ok(()),
            Some(id) => Err(corrupt(
                file,
                &format!("tokenizer.ggml.bos_token_id {id} is outside the vocabulary"),
            )),
            None => Err(corrupt(
                file,
                "tokenizer.ggml.add_bos_token is set but tokenizer.ggml.bos_token_id is missing",
            )),
        }
    }

    /// Token ids of `text`, without BOS/EOS (see [`GgufTokenizer::add_bos`]).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| Error::InvalidOption(format!("tokenizing failed: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids` (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| Error::InvalidOption(format!("decoding failed: {e}")))
    }

    /// The underlying [`tokenizers::Tokenizer`].
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// `tokenizer.ggml.bos_token_id`.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// `tokenizer.ggml.eos_token_id`.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// `tokenizer.ggml.add_bos_token` (false when absent): whether the model expects BOS first.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// The id every text's tokens must start with: the BOS when the file sets
    /// `add_bos_token` (checked on load to lie inside the vocabulary), else `None`.
    pub fn bos_to_prepend(&self) -> Option<u32> {
        self.bos.filter(|_| self.add_bos)
    }
}

fn corrupt(file: &GgufFile, message: &str) -> Error {
    Error::TensorFile {
        path: file.origin().to_string(),
        message: format!("tokenizer: {message}"),
    }
}

fn strings<'a>(file: &'a GgufFile, key: &str) -> Result<Vec<&'a str>> {
    file.metadata_array(key)?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| corrupt(file, &format!("{key} holds a non-string")))
        })
        .collect()
}

/// GGUF stores each merge as one string, `"left right"` (the byte-level alphabet has no space).
fn merges(file: &GgufFile, lines: &[&str]) -> Result<Vec<(String, String)>> {
    lines
        .iter()
        .map(|line| match line.split_once(' ') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(' ') => {
                Ok((a.to_string(), b.to_string()))
            }
            _ => Err(corrupt(
                file,
                &format!("merge `{line}` is not two tokens separated by one space"),
            )),
        })
        .collect()
}

fn pre_tokenizer(file: &GgufFile) -> Result<PreTokenizerWrapper> {
    let byte_level = ByteLevel::new(false, true, true);
    match file.get("tokenizer.ggml.pre").and_then(GgufValue::as_str) {
        None | Some("default" | "gpt2") => Ok(byte_level.into()),
        Some("smollm") => {
            Ok(Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into())
        }
        Some(other) => Err(Error::Unsupported(format!(
            "GGUF pre-tokenizer `{other}` (supported: default, gpt2, smollm)"
        ))),
    }
}

fn control_tokens(file: &GgufFile, tokens: &[&str]) -> Result<Vec<AddedToken>> {
    let Some(types) = file
        .get("tokenizer.ggml.token_type")
        .and_then(GgufValue::as_array)
    else {
        return Ok(Vec::new());
    };
    if types.len() != tokens.len() {
        return Err(corrupt(
            file,
            "tokenizer.ggml.token_type and tokens differ in length",
        ));
    }
    Ok(types
        .iter()
        .zip(tokens)
        .filter(|(t, _)| t.as_i64() == Some(TOKEN_TYPE_CONTROL))
        .map(|(_, tok)| AddedToken::from(tok.to_string(), true))
        .collect())
}
