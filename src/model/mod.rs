//! Loading real checkpoints: the GGUF container (metadata, tensor table, dequantisation to f32),
//! the tokenizer a GGUF file carries in its metadata, and where the fetched models live.

pub mod cache;
pub mod gguf;
pub mod gguf_tokenizer;
