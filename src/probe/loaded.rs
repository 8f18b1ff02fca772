//! A checkpoint loaded for probing: the model and its tokenizer, behind one interface for
//! both architectures.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::device::Device;
use crate::error::Result;
use crate::model::gguf_tokenizer::GgufTokenizer;
use crate::probe::bert::Bert;
use crate::probe::checkpoint::Checkpoint;
use crate::probe::dense::Dense;
use crate::probe::llama::Llama;
use crate::probe::tokenizer::{Encoded, encode, read_tokenizer};
use crate::probe::trace::Trace;
use crate::variant::AttentionOptions;

/// The architectures the probe runs.
pub enum Architecture {
    /// A BERT-family encoder.
    Bert(Box<Bert>),
    /// A Llama-family causal decoder.
    Llama(Box<Llama>),
}

/// A model with its tokenizer.
pub struct LoadedModel {
    /// The network.
    pub architecture: Architecture,
    /// Its tokenizer (padding and truncation off).
    pub tokenizer: Tokenizer,
    /// Where it was loaded from, for reports.
    pub source: String,
    /// The BOS id and token a GGUF file asks to put before every text (`add_bos_token`).
    bos: Option<(u32, String)>,
}

impl LoadedModel {
    /// Loads the model at `path` (see [`Checkpoint::find`]).
    pub fn load(path: &Path) -> Result<Self> {
        match Checkpoint::find(path)? {
            Checkpoint::Bert {
                config,
                weights,
                tokenizer,
            } => {
                let cfg = Checkpoint::bert_config(&config)?;
                let tokenizer = read_tokenizer(&tokenizer)?;
                Ok(LoadedModel {
                    architecture: Architecture::Bert(Box::new(Bert::load(cfg, &weights)?)),
                    tokenizer,
                    source: weights.display().to_string(),
                    bos: None,
                })
            }
            Checkpoint::Gguf(path) => {
                let (model, file) = Llama::load(&path)?;
                let tok = GgufTokenizer::from_gguf(&file)?;
                let bos = tok.bos_to_prepend().map(|id| {
                    let token = tok.tokenizer().id_to_token(id).unwrap_or_default();
                    (id, token)
                });
                Ok(LoadedModel {
                    architecture: Architecture::Llama(Box::new(model)),
                    tokenizer: tok.tokenizer().clone(),
                    source: path.display().to_string(),
                    bos,
                })
            }
        }
    }

    /// Runs the dense layers on `dense` from now on ([`Dense::for_device`]: cuBLAS for a GPU),
    /// uploading the weights once; after an error they all stay on the CPU. Loading leaves them
    /// on the CPU.
    pub fn place_dense(&mut self, dense: &Dense) -> Result<()> {
        match &mut self.architecture {
            Architecture::Bert(m) => m.place_dense(dense),
            Architecture::Llama(m) => m.place_dense(dense),
        }
    }

    /// The architecture's name (`bert`, `llama`).
    pub fn kind(&self) -> &'static str {
        match self.architecture {
            Architecture::Bert(_) => "bert",
            Architecture::Llama(_) => "llama",
        }
    }

    /// True for a causal decoder.
    pub fn is_causal(&self) -> bool {
        matches!(self.architecture, Architecture::Llama(_))
    }

    /// Tokenizes `text` as the model expects (special tokens included): BERT's `[CLS]` …
    /// `[SEP]` from its post-processor, a GGUF model's BOS first when its metadata sets
    /// `tokenizer.ggml.add_bos_token`.
    pub fn encode(&self, text: &str) -> Result<Encoded> {
        let mut encoded = encode(&self.tokenizer, text, !self.is_causal())?;
        if let Some((id, token)) = &self.bos {
            encoded.ids.insert(0, *id);
            encoded.type_ids.insert(0, 0);
            encoded.tokens.insert(0, token.clone());
        }
        Ok(encoded)
    }

    /// Runs the forward pass over `input` with attention `options` on `device`.
    pub fn forward(
        &self,
        device: &Device,
        input: &Encoded,
        options: &AttentionOptions,
    ) -> Result<Trace> {
        match &self.architecture {
            Architecture::Bert(m) => m.forward(device, &input.ids, &input.type_ids, options),
            Architecture::Llama(m) => m.forward(device, &input.ids, options),
        }
    }
}
