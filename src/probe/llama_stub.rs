//! Placeholder until the GGUF reader lands: a GGUF checkpoint is recognised but not yet run.

use std::path::Path;

use crate::error::{Error, Result};
use crate::probe::loaded::LoadedModel;

/// Always [`Error::Unsupported`]: the Llama-family forward is not built yet.
pub fn load(file: &Path) -> Result<LoadedModel> {
    Err(Error::Unsupported(format!(
        "{}: GGUF (Llama-family) checkpoints are not supported by this build of the probe yet",
        file.display()
    )))
}
