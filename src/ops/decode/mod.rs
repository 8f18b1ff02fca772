//! Decode against a paged KV cache (docs/contract.md §7, docs/decode.md): the split-KV chunk
//! kernels of `kernels/decode/` (CUDA cores) and `kernels/decode_tc/` (tensor cores, sm_80+,
//! f16/bf16), chosen by [`choose`] from `options.kernel`, and the combine of `kernels/decode/`.
//!
//! Engines call [`paged_decode_device`] on their device memory (validated, queued on the
//! device's stream, partials in a workspace sized once by [`crate::problem::workspace_bytes`]);
//! [`decode_launches`] lists the launches of a finished `QaDecodeParams`; [`paged_decode`] is
//! the host-tensor path (validation, uploads, error record checked after the call);
//! [`append_kv_on`] writes a step's K/V rows into the pages.

mod append_kv;
mod device;
mod family;
mod host;
mod launch;
mod paged_params;
#[cfg(test)]
mod test_params;

pub use append_kv::append_kv_on;
pub use device::{DecodeWorkspace, DevicePagedArgs, DevicePagedQueries, paged_decode_device};
/// The decode paths' name for the shared error record (the decode workspace keeps it in its
/// first [`crate::problem::ERROR_RECORD_BYTES`]).
pub type DecodeErrors = crate::ops::ErrorRecord;
pub use family::{DecodeFamily, DecodeKernels, choose, tensor_core_smem};
pub use host::{DecodeCall, chunk_partials, paged_decode, visible_span};
pub use launch::{DecodeLaunch, decode_launches, decode_raw};
