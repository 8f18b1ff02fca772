//! The error record the decode kernels leave in the workspace when an index only the GPU saw
//! (`seq_lens_k`, a block-table entry, a `cu_seqlens_q` offset) is bad: the kernel never reads through it, treats the
//! sequence as empty, and records the first one. [`DecodeErrors::check`] turns it into the same
//! [`Error::Index`] host validation gives.

use crate::abi::{self, QaDecodeError};
use crate::error::{Error, Result};
use crate::launch::{Buffer, Executor};
use crate::problem::ERROR_RECORD_BYTES;

/// The error record of a decode workspace, as read back from the device.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DecodeErrors {
    /// The raw record (`code` 0: no error).
    pub record: QaDecodeError,
}

impl DecodeErrors {
    /// Reads the record at the start of `workspace` (waits for the executor's work).
    pub fn read(executor: &dyn Executor, workspace: &Buffer) -> Result<Self> {
        let mut bytes = [0u8; ERROR_RECORD_BYTES];
        executor.download(workspace, &mut bytes)?;
        let word =
            |i: usize| i32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Ok(DecodeErrors {
            record: QaDecodeError {
                code: word(0),
                seq: word(4),
                column: word(8),
                value: word(12),
            },
        })
    }

    /// `Ok` when no kernel met a bad index, else the [`Error::Index`] describing the first.
    ///
    /// ```
    /// use quietattn::abi::QaDecodeError;
    /// use quietattn::ops::decode::DecodeErrors;
    ///
    /// assert!(DecodeErrors::default().check().is_ok());
    /// let bad = DecodeErrors { record: QaDecodeError { code: 2, seq: 1, column: 3, value: -1 } };
    /// assert!(bad.check().unwrap_err().to_string().contains("block_table[1, 3] = -1"));
    /// ```
    pub fn check(&self) -> Result<()> {
        let r = &self.record;
        match r.code as u32 {
            abi::QaDecodeErrorCode_QA_DECODE_OK => Ok(()),
            abi::QaDecodeErrorCode_QA_DECODE_BAD_SEQ_LEN => Err(Error::Index(format!(
                "seq_lens_k[{}] = {} is negative or beyond the declared longest sequence or the \
                 cache the block table maps (seen by the kernel)",
                r.seq, r.value
            ))),
            abi::QaDecodeErrorCode_QA_DECODE_BAD_PAGE => Err(Error::Index(format!(
                "block_table[{}, {}] = {} is not a page of the cache (seen by the kernel)",
                r.seq, r.column, r.value
            ))),
            abi::QaDecodeErrorCode_QA_DECODE_BAD_CU_SEQLENS_Q => Err(Error::Index(format!(
                "cu_seqlens_q[{}] = {}: sequence {}'s query rows are negative, decreasing, beyond \
                 the rows of q or more than the declared longest q_len (seen by the kernel)",
                r.column, r.value, r.seq
            ))),
            abi::QaDecodeErrorCode_QA_DECODE_BAD_SLOT => Err(Error::Index(format!(
                "slot_mapping[{}] = {} is outside the cache (-1 skips a token; seen by the kernel)",
                r.seq, r.value
            ))),
            other => Err(Error::Index(format!(
                "decode kernel error record with unknown code {other}"
            ))),
        }
    }
}
