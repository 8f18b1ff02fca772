//! safetensors files in and out: float tensors (f32/f16/bf16) and i32 offsets (`cu_seqlens`).
//!
//! Every problem with a file is an [`Error::TensorFile`] naming the file and the tensor.

use std::collections::BTreeMap;
use std::path::Path;

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors, View};

use crate::error::{Error, Result};
use crate::files::{DEFAULT_MAX_INPUT_BYTES, read_input, write_atomic};
use crate::tensor::{Tensor, TensorData};

/// One tensor of a file, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum FileTensor {
    /// f32, f16 or bf16.
    Float(Tensor),
    /// i32 with its shape.
    I32 {
        /// The elements, row-major.
        data: Vec<i32>,
        /// The shape.
        shape: Vec<usize>,
    },
    /// A dtype quietattn does not read (kept so it can be listed and reported).
    Other {
        /// The safetensors dtype name.
        dtype: String,
        /// The shape.
        shape: Vec<usize>,
    },
}

impl FileTensor {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            FileTensor::Float(t) => &t.shape,
            FileTensor::I32 { shape, .. } | FileTensor::Other { shape, .. } => shape,
        }
    }

    /// The dtype name as safetensors spells it.
    pub fn dtype_name(&self) -> String {
        match self {
            FileTensor::Float(t) => t.dtype().name().to_string(),
            FileTensor::I32 { .. } => "i32".into(),
            FileTensor::Other { dtype, .. } => dtype.clone(),
        }
    }
}

/// All tensors of a safetensors file, by name.
#[derive(Clone, Debug)]
pub struct TensorFile {
    /// The file, for messages.
    pub path: String,
    /// The tensors, sorted by name.
    pub tensors: BTreeMap<String, FileTensor>,
}

/// Little-endian elements of `bytes`, `N` bytes each.
fn decode<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

impl TensorFile {
    /// Reads and decodes every tensor of `path`, a regular file of at most
    /// [`DEFAULT_MAX_INPUT_BYTES`].
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        Self::read_limited(path, DEFAULT_MAX_INPUT_BYTES)
    }

    /// Like [`Self::read`] with an explicit size limit in bytes.
    pub fn read_limited(path: impl AsRef<Path>, max_bytes: u64) -> Result<Self> {
        let bytes = read_input(path.as_ref(), max_bytes).map_err(|e| match e {
            Error::File { path, message } => Error::TensorFile { path, message },
            other => other,
        })?;
        Self::from_bytes(&path.as_ref().display().to_string(), &bytes)
    }

    /// Decodes the safetensors `bytes`; `path` only names them in messages.
    pub fn from_bytes(path: &str, bytes: &[u8]) -> Result<Self> {
        let path_str = path.to_string();
        let err = |message: String| Error::TensorFile {
            path: path_str.clone(),
            message,
        };
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| err(format!("not a valid safetensors file: {e}")))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.iter() {
            let shape = view.shape().to_vec();
            let data = view.data();
            let float = |d: TensorData| {
                Tensor::new(d, &shape)
                    .map(FileTensor::Float)
                    .map_err(|e| err(format!("tensor `{name}`: {e}")))
            };
            let t = match view.dtype() {
                Dtype::F32 => float(TensorData::F32(decode(data, f32::from_le_bytes)))?,
                Dtype::F16 => float(TensorData::F16(decode(data, |b| {
                    f16::from_bits(u16::from_le_bytes(b))
                })))?,
                Dtype::BF16 => float(TensorData::BF16(decode(data, |b| {
                    bf16::from_bits(u16::from_le_bytes(b))
                })))?,
                Dtype::I32 => FileTensor::I32 {
                    data: decode(data, i32::from_le_bytes),
                    shape: shape.clone(),
                },
                other => FileTensor::Other {
                    dtype: format!("{other:?}"),
                    shape: shape.clone(),
                },
            };
            tensors.insert(name.to_string(), t);
        }
        Ok(TensorFile {
            path: path_str,
            tensors,
        })
    }

    /// An [`Error::TensorFile`] about this file.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::TensorFile {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// Fails when the file holds a tensor whose name is not in `known`.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<()> {
        let unknown: Vec<&str> = self
            .tensors
            .keys()
            .map(String::as_str)
            .filter(|n| !known.contains(n))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(self.error(format!(
            "unknown tensor(s) {} (expected only {})",
            quoted(&unknown),
            quoted(known)
        )))
    }

    /// The float tensor `name` (`None` when absent), checked against the allowed ranks.
    pub fn float(&self, name: &str, ranks: &[usize]) -> Result<Option<&Tensor>> {
        match self.tensors.get(name) {
            None => Ok(None),
            Some(FileTensor::Float(t)) => {
                if !ranks.contains(&t.shape.len()) {
                    return Err(self.error(format!(
                        "tensor `{name}` has rank {} (shape {:?}), expected rank {}",
                        t.shape.len(),
                        t.shape,
                        ranks_text(ranks)
                    )));
                }
                Ok(Some(t))
            }
            Some(other) => Err(self.error(format!(
                "tensor `{name}` has dtype {}, expected f32, f16 or bf16",
                other.dtype_name()
            ))),
        }
    }

    /// Like [`Self::float`] but the tensor must be present.
    pub fn require_float(&self, name: &str, ranks: &[usize]) -> Result<&Tensor> {
        self.float(name, ranks)?
            .ok_or_else(|| self.error(format!("required tensor `{name}` is missing")))
    }

    /// The rank-1 i32 tensor `name` (`None` when absent).
    pub fn i32_vector(&self, name: &str) -> Result<Option<&[i32]>> {
        Ok(self.i32_tensor(name, 1)?.map(|(data, _)| data))
    }

    /// The i32 tensor `name` of rank `rank` with its shape (`None` when absent).
    pub fn i32_tensor(&self, name: &str, rank: usize) -> Result<Option<(&[i32], &[usize])>> {
        match self.tensors.get(name) {
            None => Ok(None),
            Some(FileTensor::I32 { data, shape }) if shape.len() == rank => Ok(Some((data, shape))),
            Some(FileTensor::I32 { shape, .. }) => Err(self.error(format!(
                "tensor `{name}` has shape {shape:?}, expected rank {rank}"
            ))),
            Some(other) => Err(self.error(format!(
                "tensor `{name}` has dtype {}, expected i32",
                other.dtype_name()
            ))),
        }
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ranks_text(ranks: &[usize]) -> String {
    ranks
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A tensor to write.
#[derive(Clone, Copy, Debug)]
pub enum TensorRef<'a> {
    /// A float tensor, written in its own dtype.
    Float(&'a Tensor),
    /// i32 elements with a shape.
    I32(&'a [i32], &'a [usize]),
}

impl View for TensorRef<'_> {
    fn dtype(&self) -> Dtype {
        match self {
            TensorRef::Float(t) => match t.data {
                TensorData::F32(_) => Dtype::F32,
                TensorData::F16(_) => Dtype::F16,
                TensorData::BF16(_) => Dtype::BF16,
            },
            TensorRef::I32(..) => Dtype::I32,
        }
    }

    fn shape(&self) -> &[usize] {
        match self {
            TensorRef::Float(t) => &t.shape,
            TensorRef::I32(_, s) => s,
        }
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        // safetensors is little-endian; converting explicitly keeps big-endian hosts right.
        match self {
            TensorRef::Float(t) => match &t.data {
                TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                TensorData::F16(v) => v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
                TensorData::BF16(v) => v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
            },
            TensorRef::I32(v, _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    fn data_len(&self) -> usize {
        match self {
            TensorRef::Float(t) => t.data.len() * t.dtype().size(),
            TensorRef::I32(v, _) => v.len() * 4,
        }
    }
}

/// Writes named tensors to `path`, replacing it atomically (see [`crate::files`]).
pub fn write_file(path: impl AsRef<Path>, tensors: &[(&str, TensorRef<'_>)]) -> Result<()> {
    let path = path.as_ref();
    let bytes = to_bytes(path, tensors)?;
    write_atomic(path, &bytes).map_err(|e| match e {
        Error::File { path, message } => Error::TensorFile { path, message },
        other => other,
    })
}

/// The safetensors encoding of named tensors; `path` only names the file in messages.
pub fn to_bytes(path: impl AsRef<Path>, tensors: &[(&str, TensorRef<'_>)]) -> Result<Vec<u8>> {
    let err = |message: String| Error::TensorFile {
        path: path.as_ref().display().to_string(),
        message,
    };
    for (name, t) in tensors {
        if let TensorRef::I32(v, s) = t
            && v.len() != s.iter().product::<usize>()
        {
            return Err(err(format!(
                "tensor `{name}`: {} elements do not fill shape {s:?}",
                v.len()
            )));
        }
    }
    safetensors::serialize(tensors.iter().map(|(n, t)| (*n, *t)), None)
        .map_err(|e| err(format!("cannot encode: {e}")))
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod tests;
