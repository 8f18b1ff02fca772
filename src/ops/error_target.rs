//! [`ErrorTarget`]: the caller-owned memory a launch records a bad device-side index in
//! ([`super::ErrorRecord`]), so a call on device memory stays asynchronous and the engine reads
//! the record when it synchronises anyway.

use std::marker::PhantomData;

use cudarc::driver::{CudaStream, DevicePtrMut, SyncOnDrop};

use super::attention::{Origin, buffer_origin};
use super::error_record::check_len;
use crate::error::Result;
use crate::launch::Buffer;

/// [`crate::problem::ERROR_RECORD_BYTES`] of memory the caller owns, zeroed before the first launch that
/// records into it (`alloc_zeroed`, or [`super::ErrorRecord::reset`] and its variants). Kernels
/// only set the record, so it keeps the first error until the caller resets it.
///
/// A varlen call whose device-side offsets disagree with its declared longest sequence: the
/// call itself succeeds (queued, not waited for), the record names the entry.
///
/// ```
/// use quietattn::launch::Buffer;
/// use quietattn::ops::attention::{
///     DeviceAttentionArgs, DeviceIndex, DeviceTensor, DeviceVarlen, attention_device,
/// };
/// use quietattn::ops::{ErrorRecord, ErrorTarget};
/// use quietattn::problem::ERROR_RECORD_BYTES;
/// use quietattn::{AttentionOptions, DType, Device};
///
/// # fn main() -> quietattn::Result<()> {
/// let device = Device::emulator()?; // Device::cuda(0)? on a GPU
/// let exec = device.executor().expect("the emulator runs kernels");
/// let (rows, d) = (5, 8); // two sequences of 3 and 2 rows, one head
/// let x = exec.upload(bytemuck::cast_slice(&vec![1.0f32; rows * d]))?;
/// let cu = exec.upload(bytemuck::cast_slice(&[0i32, 3, 5]))?;
/// let (mut o, mut lse) = (exec.alloc_zeroed(rows * d * 4)?, exec.alloc_zeroed(rows * 4)?);
/// let mut record = exec.alloc_zeroed(ERROR_RECORD_BYTES)?;
/// let mut call = |max_seqlen_q: usize, record: &mut Buffer| {
///     let t = || DeviceTensor::from_buffer(&x, DType::F32, &[rows, 1, d]);
///     let mut args = DeviceAttentionArgs::new(
///         t()?,
///         t()?,
///         t()?,
///         DeviceTensor::from_buffer_mut(&mut o, DType::F32, &[rows, 1, d])?,
///         DeviceTensor::from_buffer_mut(&mut lse, DType::F32, &[1, rows])?,
///     );
///     args.varlen = Some(DeviceVarlen {
///         cu_seqlens_q: DeviceIndex::from_buffer(&cu),
///         cu_seqlens_k: DeviceIndex::from_buffer(&cu),
///         batch: 2,
///         max_seqlen_q,
///         max_seqlen_k: 3,
///     });
///     args.errors = Some(ErrorTarget::from_buffer(record)?);
///     attention_device(&device, &args, &AttentionOptions::default()).map(|_| ())
/// };
/// call(2, &mut record)?; // sequence 0 holds 3 rows, more than the declared 2
/// let err = ErrorRecord::read(exec, &record)?.check().unwrap_err();
/// assert!(err.to_string().contains("cu_seqlens_q[1] = 3"), "{err}");
/// ErrorRecord::reset(&mut record)?; // sticky until reset
/// call(3, &mut record)?;
/// ErrorRecord::read(exec, &record)?.check()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ErrorTarget<'a> {
    addr: u64,
    origin: Origin,
    _guard: Option<SyncOnDrop<'a>>,
    _borrow: PhantomData<&'a mut ()>,
}

impl<'a> ErrorTarget<'a> {
    /// The record at the start of an executor buffer (emulator or CUDA).
    pub fn from_buffer(buf: &'a mut Buffer) -> Result<Self> {
        check_len(buf.len())?;
        Ok(ErrorTarget {
            addr: buf.addr(),
            origin: buffer_origin(buf),
            _guard: None,
            _borrow: PhantomData,
        })
    }

    /// The record at the start of a cudarc slice or view of any element type, written on
    /// `stream` (the stream of the `CudaDevice` that will launch).
    pub fn from_cuda<T, S: DevicePtrMut<T>>(
        slice: &'a mut S,
        stream: &'a CudaStream,
    ) -> Result<Self> {
        check_len(slice.num_bytes())?;
        let (addr, guard) = slice.device_ptr_mut(stream);
        Ok(ErrorTarget {
            addr,
            origin: Origin::Cuda(Some(stream.cu_stream() as usize)),
            _guard: Some(guard),
            _borrow: PhantomData,
        })
    }

    /// The record at a raw device address (on the emulator: a host address).
    ///
    /// # Safety
    /// `addr .. addr + ERROR_RECORD_BYTES` must be live, writable memory of the launching
    /// device, 4-byte aligned, for as long as launches using it run.
    pub unsafe fn from_raw(addr: u64) -> Self {
        ErrorTarget {
            addr,
            origin: Origin::Raw,
            _guard: None,
            _borrow: PhantomData,
        }
    }

    /// The record's address.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    pub(crate) fn origin(&self) -> Origin {
        self.origin
    }
}
