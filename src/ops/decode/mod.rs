//! Decode against a paged KV cache (SPEC §7, docs/decode.md): the split-KV chunk and combine
//! kernels of `kernels/decode/`.
//!
//! Engines queue the [`decode_launches`] of a call (device addresses, a
//! [`crate::problem::SplitPlan`] and a workspace sized once by
//! [`crate::problem::workspace_bytes`]) on their stream; [`paged_decode`] is the host-tensor path
//! (validation, uploads, error record checked after the call); [`append_kv_on`] writes a step's
//! K/V rows into the pages.

mod append_kv;
mod errors;
mod host;
mod launch;

pub use append_kv::append_kv_on;
pub use errors::DecodeErrors;
pub use host::{DecodeCall, chunk_partials, paged_decode, visible_span};
pub use launch::{DecodeLaunch, decode_launches, decode_raw};
