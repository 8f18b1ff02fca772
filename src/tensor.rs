//! Host tensors: owned contiguous [`Tensor`]s and strided, borrowed [`TensorView`]s.
//!
//! Strides are in elements. A view may point into a larger buffer (packed QKV), so
//! `offset` and `strides` are validated against the buffer length once, at construction.

use half::{bf16, f16};

use crate::dtype::DType;
use crate::error::{Error, Result, shape_err};

/// Owned element storage of one of the supported dtypes.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// f32 elements.
    F32(Vec<f32>),
    /// f16 elements.
    F16(Vec<f16>),
    /// bf16 elements.
    BF16(Vec<bf16>),
}

/// Borrowed element storage.
#[derive(Clone, Copy, Debug)]
pub enum DataRef<'a> {
    /// f32 elements.
    F32(&'a [f32]),
    /// f16 elements.
    F16(&'a [f16]),
    /// bf16 elements.
    BF16(&'a [bf16]),
}

impl TensorData {
    /// Zero-filled storage of `len` elements.
    pub fn zeros(dtype: DType, len: usize) -> Self {
        match dtype {
            DType::F32 => TensorData::F32(vec![0.0; len]),
            DType::F16 => TensorData::F16(vec![f16::ZERO; len]),
            DType::BF16 => TensorData::BF16(vec![bf16::ZERO; len]),
        }
    }

    /// Rounds f64 values to `dtype` (round to nearest even).
    pub fn from_f64(dtype: DType, values: &[f64]) -> Self {
        match dtype {
            DType::F32 => TensorData::F32(values.iter().map(|&x| x as f32).collect()),
            DType::F16 => TensorData::F16(values.iter().map(|&x| f16::from_f64(x)).collect()),
            DType::BF16 => TensorData::BF16(values.iter().map(|&x| bf16::from_f64(x)).collect()),
        }
    }

    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        self.as_ref().dtype()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.as_ref().len()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Borrow.
    pub fn as_ref(&self) -> DataRef<'_> {
        match self {
            TensorData::F32(v) => DataRef::F32(v),
            TensorData::F16(v) => DataRef::F16(v),
            TensorData::BF16(v) => DataRef::BF16(v),
        }
    }

    /// The raw bytes (little-endian, as the device sees them).
    pub fn as_bytes(&self) -> &[u8] {
        self.as_ref().as_bytes()
    }

    /// Mutable raw bytes, for copying results back from a device.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        match self {
            TensorData::F32(v) => bytemuck_slice_mut(v),
            TensorData::F16(v) => bytemuck_slice_mut(v),
            TensorData::BF16(v) => bytemuck_slice_mut(v),
        }
    }
}

fn bytemuck_slice_mut<T: bytemuck::Pod>(v: &mut [T]) -> &mut [u8] {
    bytemuck::cast_slice_mut(v)
}

impl<'a> DataRef<'a> {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            DataRef::F32(_) => DType::F32,
            DataRef::F16(_) => DType::F16,
            DataRef::BF16(_) => DType::BF16,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            DataRef::F32(v) => v.len(),
            DataRef::F16(v) => v.len(),
            DataRef::BF16(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` widened to f64 (exact for every supported dtype).
    #[inline]
    pub fn get(&self, i: usize) -> f64 {
        match self {
            DataRef::F32(v) => v[i] as f64,
            DataRef::F16(v) => v[i].to_f64(),
            DataRef::BF16(v) => v[i].to_f64(),
        }
    }

    /// Elements that are NaN or ±∞.
    pub fn count_non_finite(&self) -> usize {
        (0..self.len())
            .filter(|&i| !self.get(i).is_finite())
            .count()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            DataRef::F32(v) => bytemuck::cast_slice(v),
            DataRef::F16(v) => bytemuck::cast_slice(v),
            DataRef::BF16(v) => bytemuck::cast_slice(v),
        }
    }
}

/// An owned, contiguous (row-major) tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// The elements, row-major.
    pub data: TensorData,
    /// The shape.
    pub shape: Vec<usize>,
}

impl Tensor {
    /// A contiguous tensor; fails when `data.len()` is not the product of `shape`.
    pub fn new(data: TensorData, shape: &[usize]) -> Result<Self> {
        let n = checked_numel(shape)?;
        if n != data.len() {
            return Err(shape_err!(
                "shape {shape:?} has {n} elements but the data has {}",
                data.len()
            ));
        }
        Ok(Tensor {
            data,
            shape: shape.to_vec(),
        })
    }

    /// Rounds f64 values to `dtype`.
    pub fn from_f64(dtype: DType, values: &[f64], shape: &[usize]) -> Result<Self> {
        Tensor::new(TensorData::from_f64(dtype, values), shape)
    }

    /// Zero-filled.
    pub fn zeros(dtype: DType, shape: &[usize]) -> Result<Self> {
        Ok(Tensor {
            data: TensorData::zeros(dtype, checked_numel(shape)?),
            shape: shape.to_vec(),
        })
    }

    /// The dtype.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// A strided view of the whole tensor.
    pub fn view(&self) -> TensorView<'_> {
        TensorView {
            data: self.data.as_ref(),
            strides: contiguous_strides(&self.shape),
            shape: self.shape.clone(),
            offset: 0,
        }
    }

    /// All elements widened to f64, row-major.
    pub fn to_f64(&self) -> Vec<f64> {
        let d = self.data.as_ref();
        (0..d.len()).map(|i| d.get(i)).collect()
    }
}

/// A strided view into borrowed storage. Strides are in elements; an element's position in
/// the storage is `offset + Σ index[a] * strides[a]`.
#[derive(Clone, Debug)]
pub struct TensorView<'a> {
    /// The storage (may be larger than the view, e.g. packed QKV).
    pub data: DataRef<'a>,
    /// The shape.
    pub shape: Vec<usize>,
    /// Element strides, one per axis.
    pub strides: Vec<usize>,
    /// Position of element 0 in `data`.
    pub offset: usize,
}

impl<'a> TensorView<'a> {
    /// A view with explicit strides and offset, checked against the storage length.
    pub fn new(
        data: DataRef<'a>,
        shape: &[usize],
        strides: &[usize],
        offset: usize,
    ) -> Result<Self> {
        if shape.len() != strides.len() {
            return Err(shape_err!(
                "shape {shape:?} and strides {strides:?} have different ranks"
            ));
        }
        let numel = checked_numel(shape)?;
        if numel > 0 {
            let mut last = offset;
            for (&n, &s) in shape.iter().zip(strides) {
                let span = (n - 1)
                    .checked_mul(s)
                    .and_then(|x| x.checked_add(last))
                    .ok_or_else(|| {
                        Error::Overflow(format!("strides {strides:?} of shape {shape:?}"))
                    })?;
                last = span;
            }
            if last >= data.len() {
                return Err(shape_err!(
                    "view (shape {shape:?}, strides {strides:?}, offset {offset}) reaches element {last} \
                     but the storage has {} elements",
                    data.len()
                ));
            }
        }
        Ok(TensorView {
            data,
            shape: shape.to_vec(),
            strides: strides.to_vec(),
            offset,
        })
    }

    /// A contiguous view of all of `data`.
    pub fn contiguous(data: DataRef<'a>, shape: &[usize]) -> Result<Self> {
        TensorView::new(data, shape, &contiguous_strides(shape), 0)
    }

    /// The dtype.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements in the view.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The element at a multi-index, widened to f64. Panics on an out-of-range index
    /// (internal use; inputs were validated when the view was built).
    #[inline]
    pub fn at(&self, index: &[usize]) -> f64 {
        debug_assert_eq!(index.len(), self.shape.len());
        let mut pos = self.offset;
        for ((&i, &s), &n) in index.iter().zip(&self.strides).zip(&self.shape) {
            debug_assert!(i < n);
            pos += i * s;
        }
        self.data.get(pos)
    }

    /// All elements of the view, row-major, widened to f64.
    pub fn to_f64(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.numel());
        let mut index = vec![0usize; self.rank()];
        for _ in 0..self.numel() {
            out.push(self.at(&index));
            for a in (0..index.len()).rev() {
                index[a] += 1;
                if index[a] < self.shape[a] {
                    break;
                }
                index[a] = 0;
            }
        }
        out
    }
}

/// Row-major strides of `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    // Saturating: an empty tensor may have an absurd extent (a file can say [0, 3, 2^64 - 1]);
    // its strides are never used to address anything, and a non-empty tensor's fit in usize.
    for a in (0..shape.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1].saturating_mul(shape[a + 1]);
    }
    strides
}

/// Product of `shape`, or an error when it overflows `usize`.
pub fn checked_numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or_else(|| {
            Error::Overflow(format!(
                "shape {shape:?} has more elements than fit in usize"
            ))
        })
}
