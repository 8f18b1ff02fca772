//! A reader for GGUF files (versions 2 and 3), the container llama.cpp writes.
//!
//! The whole file is read once into memory; the metadata (every value type, arrays included) and
//! the tensor table are parsed and checked up front, and tensor data is dequantised to f32 on
//! request. A truncated or corrupt file gives an [`Error::TensorFile`] value, never a panic;
//! a tensor type without a dequantiser here gives [`Error::Unsupported`] when it is asked for.
//!
//! ```no_run
//! use quietattn::model::gguf::GgufFile;
//!
//! # fn main() -> quietattn::Result<()> {
//! let file = GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let layers = file.metadata_u64("llama.block_count")?;
//! let (info, weights) = file.dequantize("blk.0.attn_q.weight")?;
//! // dims[0] is the row length: 576 inputs, 576 output rows.
//! assert_eq!(info.dims, vec![576, 576]);
//! assert_eq!(weights.len(), 576 * 576);
//! # let _ = layers;
//! # Ok(())
//! # }
//! ```

mod cursor;
mod dequant;
mod value;

pub use dequant::GgmlType;
pub use value::GgufValue;

use crate::error::{Error, Result};
use cursor::{Cursor, ReadError};
use std::path::Path;

/// `"GGUF"` read as a little-endian u32.
const MAGIC: [u8; 4] = *b"GGUF";
/// ggml's default when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: usize = 4;

/// One entry of the tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    /// The tensor's name (`"blk.0.attn_q.weight"`).
    pub name: String,
    /// ggml order: `dims[0]` varies fastest (the row length); a `[rows, cols]` matrix in
    /// row-major terms has `dims == [cols, rows]`.
    pub dims: Vec<u64>,
    /// Its storage type.
    pub ty: GgmlType,
    /// Offset of its data from the start of the data section (a multiple of the alignment).
    pub offset: u64,
}

impl GgufTensorInfo {
    /// Number of elements (product of `dims`; checked against overflow when the file was read).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Bytes of data, or `None` for a type whose block size is unknown here.
    pub fn n_bytes(&self) -> Option<u64> {
        let (per_block, block_bytes) = self.ty.block()?;
        // Saturates on a corrupt size, which the range check then refuses.
        Some((self.n_elements() / per_block as u64).saturating_mul(block_bytes as u64))
    }
}

/// A parsed GGUF file and its bytes.
#[derive(Debug)]
pub struct GgufFile {
    origin: String,
    version: u32,
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<GgufTensorInfo>,
    alignment: u64,
    data_offset: usize,
    bytes: Vec<u8>,
}

impl GgufFile {
    /// Reads and parses the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(bytes, &path.display().to_string())
    }

    /// Parses a GGUF image held in memory; `origin` names it in error messages.
    pub fn parse(bytes: Vec<u8>, origin: &str) -> Result<Self> {
        let corrupt = |message: ReadError| Error::TensorFile {
            path: origin.to_string(),
            message,
        };
        let header = parse_header(&bytes).map_err(corrupt)?;
        let file = Self {
            origin: origin.to_string(),
            version: header.version,
            metadata: header.metadata,
            tensors: header.tensors,
            alignment: header.alignment,
            data_offset: header.data_offset,
            bytes,
        };
        file.check_tensor_ranges().map_err(corrupt)?;
        Ok(file)
    }

    /// The name given to [`GgufFile::parse`] (the path for [`GgufFile::open`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Every metadata key and value, in file order.
    pub fn metadata(&self) -> &[(String, GgufValue)] {
        &self.metadata
    }

    /// The value of metadata key `key`, if present.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A required non-negative integer metadata value.
    pub fn metadata_u64(&self, key: &str) -> Result<u64> {
        self.required(key, "a non-negative integer", GgufValue::as_u64)
    }

    /// A required float metadata value (f32 or f64).
    pub fn metadata_f64(&self, key: &str) -> Result<f64> {
        self.required(key, "a float", GgufValue::as_f64)
    }

    /// A required string metadata value.
    pub fn metadata_str(&self, key: &str) -> Result<&str> {
        self.required(key, "a string", GgufValue::as_str)
    }

    /// A required array metadata value.
    pub fn metadata_array(&self, key: &str) -> Result<&[GgufValue]> {
        self.required(key, "an array", GgufValue::as_array)
    }

    fn required<'a, T>(
        &'a self,
        key: &str,
        want: &str,
        convert: impl Fn(&'a GgufValue) -> Option<T>,
    ) -> Result<T> {
        let value = self
            .get(key)
            .ok_or_else(|| self.error(format!("no metadata key `{key}`")))?;
        convert(value)
            .ok_or_else(|| self.error(format!("metadata `{key}` is {value:?}, not {want}")))
    }

    /// The tensor table, in file order.
    pub fn tensors(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }

    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The alignment of the data section and of every tensor in it.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset of the data section from the start of the file.
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// The raw (still quantised) bytes of a tensor.
    pub fn tensor_bytes(&self, info: &GgufTensorInfo) -> Result<&[u8]> {
        let n_bytes = info.n_bytes().ok_or_else(|| {
            Error::Unsupported(format!("tensor `{}` has {}", info.name, info.ty.name()))
        })?;
        // Ranges were checked when the file was parsed; this only guards a foreign `info`.
        let range = self
            .data_range(info.offset, n_bytes)
            .map_err(|m| self.error(m))?;
        Ok(&self.bytes[range])
    }

    /// The tensor called `name`, dequantised to f32 in its storage order (`dims[0]` fastest).
    pub fn dequantize(&self, name: &str) -> Result<(&GgufTensorInfo, Vec<f32>)> {
        let info = self
            .tensor(name)
            .ok_or_else(|| self.error(format!("no tensor `{name}`")))?;
        Ok((info, self.dequantize_info(info)?))
    }

    /// Dequantises the tensor `info` (one of [`GgufFile::tensors`]) to f32.
    pub fn dequantize_info(&self, info: &GgufTensorInfo) -> Result<Vec<f32>> {
        let bytes = self.tensor_bytes(info)?;
        let n = usize::try_from(info.n_elements())
            .map_err(|_| Error::Overflow(format!("tensor `{}` is too large", info.name)))?;
        let mut out = Vec::with_capacity(n);
        dequant::dequantize(info.ty, bytes, &mut out);
        Ok(out)
    }

    fn error(&self, message: String) -> Error {
        Error::TensorFile {
            path: self.origin.clone(),
            message,
        }
    }

    fn data_range(&self, offset: u64, n_bytes: u64) -> Result<std::ops::Range<usize>, ReadError> {
        let start = (self.data_offset as u64).checked_add(offset);
        let end = start.and_then(|s| s.checked_add(n_bytes));
        match (start, end) {
            (Some(s), Some(e)) if e <= self.bytes.len() as u64 => Ok(s as usize..e as usize),
            _ => Err(format!(
                "truncated: tensor data at offset {offset} + {n_bytes} bytes runs past the end \
                 of the file ({} bytes, data section at {})",
                self.bytes.len(),
                self.data_offset
            )),
        }
    }

    /// Every tensor of a known type lies inside the file, aligned, with whole blocks.
    fn check_tensor_ranges(&self) -> Result<(), ReadError> {
        for t in &self.tensors {
            if t.offset % self.alignment != 0 {
                return Err(format!(
                    "corrupt: tensor `{}` offset {} is not a multiple of the alignment {}",
                    t.name, t.offset, self.alignment
                ));
            }
            let Some((per_block, _)) = t.ty.block() else {
                continue;
            };
            if t.dims.first().is_some_and(|&d0| d0 % per_block as u64 != 0) {
                return Err(format!(
                    "corrupt: tensor `{}` rows of {} elements are not whole {} blocks of {per_block}",
                    t.name,
                    t.dims[0],
                    t.ty.name()
                ));
            }
            if let Some(n_bytes) = t.n_bytes() {
                self.data_range(t.offset, n_bytes)
                    .map_err(|m| format!("tensor `{}`: {m}", t.name))?;
            }
        }
        Ok(())
    }
}

struct Header {
    version: u32,
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<GgufTensorInfo>,
    alignment: u64,
    data_offset: usize,
}

fn parse_header(bytes: &[u8]) -> Result<Header, ReadError> {
    let mut cur = Cursor::new(bytes);
    if cur.array::<4>("magic")? != MAGIC {
        return Err("not a GGUF file (the magic is not `GGUF`)".into());
    }
    let version = cur.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not supported (2 and 3 are)"
        ));
    }
    // A tensor-table entry takes at least 8 + 4 + 4 + 8 bytes, a metadata entry 8 + 4 + 1.
    let n_tensors = cur.count(24, "tensor count")?;
    let n_kv = cur.count(13, "metadata count")?;
    let mut metadata = Vec::with_capacity(n_kv);
    for _ in 0..n_kv {
        let key = cur.string("metadata key")?;
        let code = cur.u32("metadata value type")?;
        let value = GgufValue::read(&mut cur, code, 0).map_err(|m| format!("`{key}`: {m}"))?;
        metadata.push((key, value));
    }
    let alignment = alignment(&metadata)?;
    let mut tensors = Vec::with_capacity(n_tensors);
    for _ in 0..n_tensors {
        tensors.push(tensor_info(&mut cur)?);
    }
    let data_offset = align_up(cur.pos() as u64, alignment)
        .and_then(|o| usize::try_from(o).ok())
        .filter(|&o| o <= bytes.len() || n_tensors == 0)
        .ok_or_else(|| {
            format!(
                "truncated: the data section would start past the end ({} bytes)",
                bytes.len()
            )
        })?;
    Ok(Header {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}

fn alignment(metadata: &[(String, GgufValue)]) -> Result<u64, ReadError> {
    let Some((_, value)) = metadata.iter().find(|(k, _)| k == "general.alignment") else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    match value.as_u64() {
        Some(a) if a.is_power_of_two() => Ok(a),
        _ => Err(format!(
            "corrupt: general.alignment {value:?} is not a power of two"
        )),
    }
}

fn tensor_info(cur: &mut Cursor<'_>) -> Result<GgufTensorInfo, ReadError> {
    let name = cur.string("tensor name")?;
    let n_dims = cur.u32("tensor dimension count")? as usize;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(format!(
            "corrupt: tensor `{name}` has {n_dims} dimensions (1..={MAX_DIMS})"
        ));
    }
    let mut dims = Vec::with_capacity(n_dims);
    for _ in 0..n_dims {
        dims.push(cur.u64("tensor dimension")?);
    }
    let n = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    if n.is_none_or(|n| n > i64::MAX as u64) {
        return Err(format!(
            "corrupt: tensor `{name}` dimensions {dims:?} overflow"
        ));
    }
    let ty = GgmlType::from_code(cur.u32("tensor type")?);
    let offset = cur.u64("tensor offset")?;
    Ok(GgufTensorInfo {
        name,
        dims,
        ty,
        offset,
    })
}

fn align_up(x: u64, alignment: u64) -> Option<u64> {
    x.checked_add(alignment - 1)
        .map(|v| v / alignment * alignment)
}
