//! GGUF metadata values: the thirteen value types of GGUF v2/v3, arrays of any of them included.

use super::cursor::{Cursor, ReadError};

/// Arrays may nest, but a real file never goes deeper than one level; a bound keeps a corrupt
/// file from recursing until the stack runs out.
const MAX_ARRAY_DEPTH: usize = 8;

/// One metadata value of a GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// Type 0.
    U8(u8),
    /// Type 1.
    I8(i8),
    /// Type 2.
    U16(u16),
    /// Type 3.
    I16(i16),
    /// Type 4.
    U32(u32),
    /// Type 5.
    I32(i32),
    /// Type 6.
    F32(f32),
    /// Type 7 (one byte, 0 or 1).
    Bool(bool),
    /// Type 8 (u64 length + UTF-8 bytes).
    String(String),
    /// Type 9 (element type, u64 count, elements).
    Array(Vec<GgufValue>),
    /// Type 10.
    U64(u64),
    /// Type 11.
    I64(i64),
    /// Type 12.
    F64(f64),
}

impl GgufValue {
    /// Any integer type that holds a non-negative value, widened to `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer type, widened to `i64` where it fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::I8(v) => Some(v.into()),
            Self::I16(v) => Some(v.into()),
            Self::I32(v) => Some(v.into()),
            Self::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// A float value (`F32` or `F64`) as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            _ => None,
        }
    }

    /// A `Bool` value.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// A `String` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// An `Array` value.
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The GGUF type code of this value.
    pub fn type_code(&self) -> u32 {
        match self {
            Self::U8(_) => 0,
            Self::I8(_) => 1,
            Self::U16(_) => 2,
            Self::I16(_) => 3,
            Self::U32(_) => 4,
            Self::I32(_) => 5,
            Self::F32(_) => 6,
            Self::Bool(_) => 7,
            Self::String(_) => 8,
            Self::Array(_) => 9,
            Self::U64(_) => 10,
            Self::I64(_) => 11,
            Self::F64(_) => 12,
        }
    }

    /// Reads one value of type `code` (the type tag has already been read).
    pub(crate) fn read(cur: &mut Cursor<'_>, code: u32, depth: usize) -> Result<Self, ReadError> {
        Ok(match code {
            0 => Self::U8(u8::from_le_bytes(cur.array("u8 value")?)),
            1 => Self::I8(i8::from_le_bytes(cur.array("i8 value")?)),
            2 => Self::U16(u16::from_le_bytes(cur.array("u16 value")?)),
            3 => Self::I16(i16::from_le_bytes(cur.array("i16 value")?)),
            4 => Self::U32(cur.u32("u32 value")?),
            5 => Self::I32(i32::from_le_bytes(cur.array("i32 value")?)),
            6 => Self::F32(f32::from_le_bytes(cur.array("f32 value")?)),
            7 => Self::Bool(read_bool(cur)?),
            8 => Self::String(cur.string("string value")?),
            9 => Self::Array(read_array(cur, depth)?),
            10 => Self::U64(cur.u64("u64 value")?),
            11 => Self::I64(i64::from_le_bytes(cur.array("i64 value")?)),
            12 => Self::F64(f64::from_le_bytes(cur.array("f64 value")?)),
            other => {
                return Err(format!(
                    "corrupt: unknown metadata value type {other} at offset {}",
                    cur.pos().saturating_sub(4)
                ));
            }
        })
    }
}

fn read_bool(cur: &mut Cursor<'_>) -> Result<bool, ReadError> {
    let at = cur.pos();
    match cur.array::<1>("bool value")? {
        [0] => Ok(false),
        [1] => Ok(true),
        [b] => Err(format!("corrupt: bool value {b} at offset {at}")),
    }
}

fn read_array(cur: &mut Cursor<'_>, depth: usize) -> Result<Vec<GgufValue>, ReadError> {
    if depth >= MAX_ARRAY_DEPTH {
        return Err(format!(
            "corrupt: arrays nested deeper than {MAX_ARRAY_DEPTH}"
        ));
    }
    let code = cur.u32("array element type")?;
    if code > 12 {
        return Err(format!("corrupt: unknown array element type {code}"));
    }
    let len = cur.count(min_bytes(code), "array length")?;
    let mut items = Vec::with_capacity(len);
    for _ in 0..len {
        items.push(GgufValue::read(cur, code, depth + 1)?);
    }
    Ok(items)
}

/// The fewest bytes one value of type `code` takes: bounds an array's length by the file size.
fn min_bytes(code: u32) -> usize {
    match code {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        // Strings and arrays carry a u64 length, the other types are 8 bytes wide.
        _ => 8,
    }
}
