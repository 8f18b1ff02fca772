//! The error record kernels leave when an index only the device held is bad: `cu_seqlens_q` /
//! `cu_seqlens_k` of varlen prefill and decode, `seq_lens_k` and block-table entries of decode,
//! `slot_mapping` of `append_kv`. A kernel never forms an address from a bad index: it leaves
//! the sequence (or token) out and records the first such index of the launch
//! (`kernels/attention/error_record.cuh`). [`ErrorRecord::check`] turns the record into the
//! same [`Error::Index`] host validation gives, naming the entry and the bound it broke.
//!
//! Kernels only ever set the record, so in memory the caller owns it is sticky: it keeps the
//! first error of every launch since the last [`ErrorRecord::reset`], which lets an engine read
//! it whenever it synchronises anyway without losing an error of an earlier step. Calls that
//! keep no caller record (the host paths, `attention_device` without `errors`) use a fresh one
//! per call and return its error themselves.

use cudarc::driver::{CudaStream, DevicePtr, DevicePtrMut, result};

use crate::abi::{self, QaErrorRecord};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::launch::{Buffer, Executor};
use crate::problem::ERROR_RECORD_BYTES;

/// An error record as read back from the device.
///
/// Read it from an executor [`Buffer`] ([`ErrorRecord::read`]: the decode workspace keeps it in
/// its first [`ERROR_RECORD_BYTES`]), from a cudarc slice or view
/// ([`ErrorRecord::read_cuda`]) or from a raw address ([`ErrorRecord::read_at`]); zero it with
/// the matching `reset`.
///
/// ```
/// use quietattn::Device;
/// use quietattn::ops::ErrorRecord;
/// use quietattn::problem::ERROR_RECORD_BYTES;
///
/// # fn main() -> quietattn::Result<()> {
/// let device = Device::emulator()?;
/// let exec = device.executor().expect("the emulator has memory");
/// // What a kernel leaves for sequence 2 of a call declaring max_seqlen_q = 64:
/// // cu_seqlens_q[3] = 150 after cu_seqlens_q[2] = 0.
/// let words: [i32; 8] = [4, 2, 3, 150, 4, 64, 0, 0];
/// let mut record = exec.upload(bytemuck::cast_slice(&words))?;
/// assert_eq!(record.len(), ERROR_RECORD_BYTES);
/// let err = ErrorRecord::read(exec, &record)?.check().unwrap_err();
/// assert!(err.to_string().contains("cu_seqlens_q[3] = 150"), "{err}");
/// assert!(err.to_string().contains("more than max_seqlen_q = 64"), "{err}");
/// ErrorRecord::reset(&mut record)?; // before the next call that records into it
/// assert!(ErrorRecord::read(exec, &record)?.check().is_ok());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ErrorRecord {
    /// The raw record (`code` 0: no error).
    pub record: QaErrorRecord,
}

impl ErrorRecord {
    /// The record in its first [`ERROR_RECORD_BYTES`] bytes (little-endian `i32` words).
    pub fn from_bytes(bytes: &[u8; ERROR_RECORD_BYTES]) -> Self {
        let word = |i: usize| {
            i32::from_le_bytes([
                bytes[4 * i],
                bytes[4 * i + 1],
                bytes[4 * i + 2],
                bytes[4 * i + 3],
            ])
        };
        ErrorRecord {
            record: QaErrorRecord {
                code: word(0),
                seq: word(1),
                column: word(2),
                value: word(3),
                rule: word(4),
                bound: word(5),
                other: word(6),
                reserved: word(7),
            },
        }
    }

    /// Reads the record at the start of `buf` (waits for the executor's work).
    pub fn read(executor: &dyn Executor, buf: &Buffer) -> Result<Self> {
        let mut bytes = [0u8; ERROR_RECORD_BYTES];
        executor.download(buf, &mut bytes)?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Zeroes the record at the start of `buf`. On CUDA the fill is queued on the stream the
    /// buffer was allocated on (the device's), after the launches already queued there, and not
    /// waited for.
    pub fn reset(buf: &mut Buffer) -> Result<()> {
        check_len(buf.len())?;
        match buf {
            #[cfg(feature = "emulator")]
            Buffer::Host(h) => {
                h.as_mut_slice()[..ERROR_RECORD_BYTES].fill(0);
                Ok(())
            }
            Buffer::Cuda(b) => {
                let stream = b.slice.stream().clone();
                stream
                    .memset_zeros(&mut b.slice.slice_mut(..ERROR_RECORD_BYTES))
                    .map_err(crate::cuda::driver_error("zeroing the error record"))
            }
        }
    }

    /// Reads the record at the start of a cudarc slice or view (of any element type, at least
    /// [`ERROR_RECORD_BYTES`] long), after the work queued on `stream`, and waits for the copy.
    pub fn read_cuda<T, S: DevicePtr<T>>(slice: &S, stream: &CudaStream) -> Result<Self> {
        check_len(slice.num_bytes())?;
        let mut bytes = [0u8; ERROR_RECORD_BYTES];
        stream
            .context()
            .bind_to_thread()
            .map_err(crate::cuda::driver_error("binding the context"))?;
        let (addr, guard) = slice.device_ptr(stream);
        // SAFETY: the slice holds at least ERROR_RECORD_BYTES from `addr` (checked above) and
        // is borrowed until the copy completes; `bytes` outlives the synchronisation below.
        unsafe { result::memcpy_dtoh_async(&mut bytes, addr, stream.cu_stream()) }
            .map_err(crate::cuda::driver_error("reading the error record"))?;
        drop(guard);
        stream
            .synchronize()
            .map_err(crate::cuda::driver_error("reading the error record"))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Zeroes the record at the start of a cudarc slice or view; queued on `stream`, not waited
    /// for.
    pub fn reset_cuda<T, S: DevicePtrMut<T>>(slice: &mut S, stream: &CudaStream) -> Result<()> {
        check_len(slice.num_bytes())?;
        stream
            .context()
            .bind_to_thread()
            .map_err(crate::cuda::driver_error("binding the context"))?;
        let (addr, _guard) = slice.device_ptr_mut(stream);
        // SAFETY: the slice holds at least ERROR_RECORD_BYTES from `addr` (checked above) and is
        // borrowed mutably; the guard records the write on the stream when dropped.
        unsafe { result::memset_d8_async(addr, 0, ERROR_RECORD_BYTES, stream.cu_stream()) }
            .map_err(crate::cuda::driver_error("zeroing the error record"))
    }

    /// Reads the record at a raw device address (on the emulator: a host address), after the
    /// work queued on the device's stream.
    ///
    /// # Safety
    /// `addr .. addr + ERROR_RECORD_BYTES` must be live memory of `device` (on the emulator:
    /// host memory not written concurrently).
    pub unsafe fn read_at(device: &Device, addr: u64) -> Result<Self> {
        let mut bytes = [0u8; ERROR_RECORD_BYTES];
        match device {
            // SAFETY: forwarded from the caller.
            Device::Cuda(c) => unsafe { c.read_raw(addr, &mut bytes)? },
            #[cfg(feature = "emulator")]
            Device::Emulator(_) => {
                // SAFETY: forwarded from the caller: emulator addresses are host addresses.
                let src = unsafe { std::slice::from_raw_parts(addr as *const u8, bytes.len()) };
                bytes.copy_from_slice(src);
            }
            Device::Reference => return Err(no_memory()),
        }
        Ok(Self::from_bytes(&bytes))
    }

    /// Zeroes the record at a raw device address (on the emulator: a host address); on CUDA
    /// queued on the device's stream and not waited for.
    ///
    /// # Safety
    /// `addr .. addr + ERROR_RECORD_BYTES` must be live, writable memory of `device` that no
    /// running work uses.
    pub unsafe fn reset_at(device: &Device, addr: u64) -> Result<()> {
        match device {
            // SAFETY: forwarded from the caller.
            Device::Cuda(c) => unsafe { c.zero_raw(addr, ERROR_RECORD_BYTES) },
            #[cfg(feature = "emulator")]
            Device::Emulator(_) => {
                // SAFETY: forwarded from the caller: emulator addresses are host addresses.
                unsafe { std::ptr::write_bytes(addr as *mut u8, 0, ERROR_RECORD_BYTES) };
                Ok(())
            }
            Device::Reference => Err(no_memory()),
        }
    }

    /// True when no kernel recorded an error.
    pub fn is_ok(&self) -> bool {
        self.record.code == 0
    }

    /// `Ok` when no kernel met a bad index, else the [`Error::Index`] naming the first.
    ///
    /// ```
    /// use quietattn::abi::QaErrorRecord;
    /// use quietattn::ops::ErrorRecord;
    ///
    /// assert!(ErrorRecord::default().check().is_ok());
    /// let bad = ErrorRecord {
    ///     record: QaErrorRecord { code: 2, seq: 1, column: 3, value: -1, ..Default::default() },
    /// };
    /// assert!(bad.check().unwrap_err().to_string().contains("block_table[1, 3] = -1"));
    /// ```
    pub fn check(&self) -> Result<()> {
        let r = &self.record;
        let message = match r.code as u32 {
            abi::QaErrorCode_QA_ERR_OK => return Ok(()),
            abi::QaErrorCode_QA_ERR_BAD_SEQ_LEN => match r.rule as u32 {
                abi::QaErrorRule_QA_RULE_NEGATIVE => {
                    format!("seq_lens_k[{}] = {} is negative", r.seq, r.value)
                }
                abi::QaErrorRule_QA_RULE_OVER_MAX => format!(
                    "seq_lens_k[{}] = {} is more than {}, the declared longest sequence or the \
                     keys a block-table row maps, whichever is fewer",
                    r.seq, r.value, r.bound
                ),
                _ => format!(
                    "seq_lens_k[{}] = {} is negative or beyond the declared longest sequence or \
                     the cache the block table maps",
                    r.seq, r.value
                ),
            },
            abi::QaErrorCode_QA_ERR_BAD_PAGE => format!(
                "block_table[{}, {}] = {} is not a page of the cache{}",
                r.seq,
                r.column,
                r.value,
                of_bound(r, "pages")
            ),
            abi::QaErrorCode_QA_ERR_BAD_SLOT => format!(
                "slot_mapping[{}] = {} is outside the cache{} (-1 skips a token)",
                r.seq,
                r.value,
                of_bound(r, "slots")
            ),
            abi::QaErrorCode_QA_ERR_BAD_CU_SEQLENS_Q => offsets(r, "q", "q"),
            abi::QaErrorCode_QA_ERR_BAD_CU_SEQLENS_K => offsets(r, "k", "k and v"),
            other => format!("error record with unknown code {other}"),
        };
        Err(Error::Index(format!("{message} (seen by the kernel)")))
    }
}

/// `" of N <what>"` when the record holds the bound, else nothing.
fn of_bound(r: &QaErrorRecord, what: &str) -> String {
    if r.rule as u32 == abi::QaErrorRule_QA_RULE_BEYOND && r.bound >= 0 {
        format!(" of {} {what}", r.bound)
    } else {
        String::new()
    }
}

/// The message of a bad `cu_seqlens_<side>` entry (`rows`: the tensors its offsets index).
fn offsets(r: &QaErrorRecord, side: &str, rows: &str) -> String {
    let name = format!("cu_seqlens_{side}");
    let (at, value, seq) = (r.column, r.value, r.seq);
    match r.rule as u32 {
        abi::QaErrorRule_QA_RULE_NEGATIVE => {
            format!("{name}[{at}] = {value} is negative (sequence {seq})")
        }
        abi::QaErrorRule_QA_RULE_DECREASING => format!(
            "{name}[{at}] = {value} is less than {name}[{seq}] = {}: offsets must not decrease \
             (sequence {seq})",
            r.other
        ),
        abi::QaErrorRule_QA_RULE_BEYOND => format!(
            "{name}[{at}] = {value} is beyond the {} rows of {rows} (sequence {seq})",
            r.bound
        ),
        abi::QaErrorRule_QA_RULE_OVER_MAX => format!(
            "{name}[{at}] = {value}: sequence {seq} spans {} rows from {name}[{seq}] = {}, more \
             than max_seqlen_{side} = {}, the declared longest",
            i64::from(value) - i64::from(r.other),
            r.other,
            r.bound
        ),
        _ => format!(
            "{name}[{at}] = {value}: sequence {seq}'s rows are negative, decreasing, beyond the \
             rows of {rows} or more than the declared longest"
        ),
    }
}

/// The memory holds a whole record.
pub(crate) fn check_len(bytes: usize) -> Result<()> {
    if bytes < ERROR_RECORD_BYTES {
        return Err(Error::InvalidOption(format!(
            "an error record needs {ERROR_RECORD_BYTES} bytes, the memory holds {bytes}"
        )));
    }
    Ok(())
}

fn no_memory() -> Error {
    Error::Unsupported("the reference device has no device memory".into())
}
