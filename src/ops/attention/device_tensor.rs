//! Descriptions of memory the caller owns: [`DeviceTensor`] (an element type, shape and strides
//! at a device address) and [`DeviceIndex`] (the `i32` offsets of varlen batches).
//!
//! A descriptor borrows what it describes for `'a`, so the memory outlives every launch that
//! uses the descriptor. Descriptors made from cudarc slices also hold cudarc's `SyncOnDrop`
//! guard: dropping the descriptor after the launch is queued records the read (or write) on
//! the stream, which keeps cudarc's cross-stream ordering correct for the engine's other work.

use std::marker::PhantomData;

use cudarc::driver::{CudaStream, DevicePtr, DevicePtrMut, SyncOnDrop};
use half::{bf16, f16};

use crate::dtype::DType;
use crate::error::{Error, Result, shape_err};
use crate::launch::Buffer;
use crate::problem::TensorLayout;
use crate::tensor::{checked_numel, contiguous_strides};

/// Element types a [`DeviceTensor`] can be made of.
pub trait Element: Copy {
    /// The dtype of this element type.
    const DTYPE: DType;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
}
impl Element for f16 {
    const DTYPE: DType = DType::F16;
}
impl Element for bf16 {
    const DTYPE: DType = DType::BF16;
}

/// Whose memory a descriptor points into, checked against the device at launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Emulator host memory.
    #[cfg(feature = "emulator")]
    Host,
    /// CUDA memory; with the stream its cudarc guard was taken on, when known.
    Cuda(Option<usize>),
    /// An address the caller vouched for.
    Raw,
}

/// A tensor in memory the caller owns: `addr` is the first element; element
/// `index` lives at `addr + Σ index[a]·strides[a]` elements.
///
/// Build one from a cudarc slice or view ([`DeviceTensor::from_cuda`], outputs with
/// [`DeviceTensor::from_cuda_mut`]), from a [`Buffer`] of quietattn's own executors
/// ([`DeviceTensor::from_buffer`]), or from a raw address ([`DeviceTensor::from_raw`]); then
/// [`DeviceTensor::strided`] picks a strided sub-tensor (packed QKV, padded rows).
///
/// An engine's packed bf16 QKV projection on a GPU (needs one, hence `no_run`):
///
/// ```no_run
/// use quietattn::ops::attention::{DeviceAttentionArgs, DeviceTensor, attention_device};
/// use quietattn::{AttentionOptions, Device};
///
/// # fn main() -> quietattn::Result<()> {
/// let device = Device::cuda(0)?;
/// let Device::Cuda(gpu) = &device else { unreachable!() };
/// let stream = gpu.stream(); // or CudaDevice::from_stream(engine_stream)
/// let (b, s, h, kv, d) = (2, 1024, 32, 8, 128);
/// let width = (h + 2 * kv) * d;
/// let alloc = |n| stream.alloc_zeros::<half::bf16>(n).expect("device memory");
/// let qkv = alloc(b * s * width); // filled by the engine's projection
/// let mut o = alloc(b * s * h * d);
/// let mut lse = stream.alloc_zeros::<f32>(b * h * s).expect("device memory");
/// let part = |heads: usize, offset: usize| {
///     DeviceTensor::from_cuda(&qkv, stream, &[qkv.len()])?
///         .strided(&[b, s, heads, d], &[s * width, width, d, 1], offset)
/// };
/// let args = DeviceAttentionArgs::new(
///     part(h, 0)?,
///     part(kv, h * d)?,
///     part(kv, (h + kv) * d)?,
///     DeviceTensor::from_cuda_mut(&mut o, stream, &[b, s, h, d])?,
///     DeviceTensor::from_cuda_mut(&mut lse, stream, &[b, h, s])?,
/// );
/// let opts = AttentionOptions { causal: true, ..Default::default() };
/// attention_device(&device, &args, &opts)?; // queued, not waited for
/// drop(args); // records the reads and writes on the stream for cudarc's tracking
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DeviceTensor<'a> {
    addr: u64,
    dtype: DType,
    shape: Vec<usize>,
    strides: Vec<usize>,
    /// Elements available from `addr`, when known.
    capacity: Option<usize>,
    origin: Origin,
    _guard: Option<SyncOnDrop<'a>>,
    _borrow: PhantomData<&'a ()>,
}

impl<'a> DeviceTensor<'a> {
    fn contiguous(
        addr: u64,
        dtype: DType,
        shape: &[usize],
        capacity: Option<usize>,
        origin: Origin,
        guard: Option<SyncOnDrop<'a>>,
    ) -> Result<Self> {
        let t = DeviceTensor {
            addr,
            dtype,
            strides: contiguous_strides(shape),
            shape: shape.to_vec(),
            capacity,
            origin,
            _guard: guard,
            _borrow: PhantomData,
        };
        t.check_extent()?;
        Ok(t)
    }

    /// An input read by the kernel: a contiguous `shape` at the start of a cudarc slice or view,
    /// ordered on `stream` (the stream of the `CudaDevice` that will launch).
    pub fn from_cuda<T: Element, S: DevicePtr<T>>(
        slice: &'a S,
        stream: &'a CudaStream,
        shape: &[usize],
    ) -> Result<Self> {
        let len = slice.len();
        let (addr, guard) = slice.device_ptr(stream);
        let origin = Origin::Cuda(Some(stream.cu_stream() as usize));
        Self::contiguous(addr, T::DTYPE, shape, Some(len), origin, Some(guard))
    }

    /// An output written by the kernel (`o`, `lse`): like [`DeviceTensor::from_cuda`], borrowing
    /// the slice mutably so nothing else touches it while the descriptor lives.
    pub fn from_cuda_mut<T: Element, S: DevicePtrMut<T>>(
        slice: &'a mut S,
        stream: &'a CudaStream,
        shape: &[usize],
    ) -> Result<Self> {
        let len = slice.len();
        let (addr, guard) = slice.device_ptr_mut(stream);
        let origin = Origin::Cuda(Some(stream.cu_stream() as usize));
        Self::contiguous(addr, T::DTYPE, shape, Some(len), origin, Some(guard))
    }

    /// A contiguous `shape` of `dtype` at the start of an executor buffer (emulator or CUDA).
    pub fn from_buffer(buf: &'a Buffer, dtype: DType, shape: &[usize]) -> Result<Self> {
        Self::contiguous(
            buf.addr(),
            dtype,
            shape,
            Some(buf.len() / dtype.size()),
            buffer_origin(buf),
            None,
        )
    }

    /// [`DeviceTensor::from_buffer`] for outputs (borrows the buffer mutably).
    pub fn from_buffer_mut(buf: &'a mut Buffer, dtype: DType, shape: &[usize]) -> Result<Self> {
        Self::from_buffer(buf, dtype, shape)
    }

    /// A contiguous `shape` of `dtype` at a raw device address (or, on the emulator, a host
    /// address).
    ///
    /// # Safety
    /// Every element the tensor (and any [`DeviceTensor::strided`] view of it) covers must be
    /// live memory of the launching device's context for `'a`, readable (and writable for
    /// outputs), and not written by other work while a launch using it runs.
    pub unsafe fn from_raw(addr: u64, dtype: DType, shape: &[usize]) -> Result<Self> {
        Self::contiguous(addr, dtype, shape, None, Origin::Raw, None)
    }

    /// The sub-tensor of `shape` and element `strides` starting `offset` elements in; it must
    /// stay inside the memory this descriptor was made from (when that is known).
    pub fn strided(mut self, shape: &[usize], strides: &[usize], offset: usize) -> Result<Self> {
        if shape.len() != strides.len() {
            return Err(shape_err!(
                "shape {shape:?} and strides {strides:?} differ in rank"
            ));
        }
        checked_numel(shape)?;
        let bytes = offset
            .checked_mul(self.dtype.size())
            .and_then(|b| u64::try_from(b).ok())
            .ok_or_else(|| Error::Overflow(format!("offset {offset}")))?;
        self.addr = self
            .addr
            .checked_add(bytes)
            .ok_or_else(|| Error::Overflow(format!("offset {offset}")))?;
        self.capacity = match self.capacity {
            Some(c) if offset > c => {
                return Err(shape_err!("offset {offset} is past the {c} elements"));
            }
            c => c.map(|c| c - offset),
        };
        self.shape = shape.to_vec();
        self.strides = strides.to_vec();
        self.check_extent()?;
        Ok(self)
    }

    /// The address of the first element.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element strides.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Element type, shape and strides (what the validator checks).
    pub fn layout(&self) -> TensorLayout {
        TensorLayout {
            dtype: self.dtype,
            shape: self.shape.clone(),
            strides: self.strides.clone(),
        }
    }

    pub(crate) fn origin(&self) -> Origin {
        self.origin
    }

    /// Fails when the last element lies past the known capacity.
    fn check_extent(&self) -> Result<()> {
        let Some(cap) = self.capacity else {
            return Ok(());
        };
        if self.shape.contains(&0) {
            return Ok(());
        }
        let last = self
            .shape
            .iter()
            .zip(&self.strides)
            .try_fold(0usize, |acc, (&n, &s)| {
                acc.checked_add((n - 1).checked_mul(s)?)
            })
            .ok_or_else(|| Error::Overflow(format!("extent of shape {:?}", self.shape)))?;
        if last >= cap {
            return Err(shape_err!(
                "shape {:?} with strides {:?} reaches element {last}, but the memory holds {cap}",
                self.shape,
                self.strides
            ));
        }
        Ok(())
    }
}

/// `i32` offsets in caller-owned memory: `cu_seqlens_q` / `cu_seqlens_k` of a varlen batch.
#[derive(Debug)]
pub struct DeviceIndex<'a> {
    addr: u64,
    len: Option<usize>,
    origin: Origin,
    _guard: Option<SyncOnDrop<'a>>,
    _borrow: PhantomData<&'a ()>,
}

impl<'a> DeviceIndex<'a> {
    /// The offsets in a cudarc `i32` slice or view, ordered on `stream`.
    pub fn from_cuda<S: DevicePtr<i32>>(slice: &'a S, stream: &'a CudaStream) -> Self {
        let len = slice.len();
        let (addr, guard) = slice.device_ptr(stream);
        DeviceIndex {
            addr,
            len: Some(len),
            origin: Origin::Cuda(Some(stream.cu_stream() as usize)),
            _guard: Some(guard),
            _borrow: PhantomData,
        }
    }

    /// The offsets at the start of an executor buffer.
    pub fn from_buffer(buf: &'a Buffer) -> Self {
        DeviceIndex {
            addr: buf.addr(),
            len: Some(buf.len() / 4),
            origin: buffer_origin(buf),
            _guard: None,
            _borrow: PhantomData,
        }
    }

    /// Offsets at a raw address.
    ///
    /// # Safety
    /// `batch + 1` `i32` values must be live, readable memory of the launching device at
    /// `addr` for `'a`.
    pub unsafe fn from_raw(addr: u64) -> Self {
        DeviceIndex {
            addr,
            len: None,
            origin: Origin::Raw,
            _guard: None,
            _borrow: PhantomData,
        }
    }

    /// The address of the first offset.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    pub(crate) fn len(&self) -> Option<usize> {
        self.len
    }

    pub(crate) fn origin(&self) -> Origin {
        self.origin
    }
}

pub(crate) fn buffer_origin(buf: &Buffer) -> Origin {
    match buf {
        #[cfg(feature = "emulator")]
        Buffer::Host(_) => Origin::Host,
        Buffer::Cuda(_) => Origin::Cuda(None),
    }
}
