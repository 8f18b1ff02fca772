//! ggml tensor types and their dequantisation to f32.
//!
//! Block layouts (ggml's `ggml-common.h`, little-endian, no padding), each block covering 32
//! consecutive elements of a row:
//! - Q4_0: f16 scale `d`, 16 bytes of nibbles; `x = (q - 8)·d`.
//! - Q4_1: f16 scale `d`, f16 minimum `m`, 16 bytes of nibbles; `x = q·d + m`.
//! - Q8_0: f16 scale `d`, 32 signed bytes; `x = q·d`.
//!
//! In the 4-bit types byte `j` holds element `j` in its low nibble and element `j + 16` in its
//! high nibble. Products and sums are done in f32 in the order written above (`d·q`, then `+ m`),
//! which is what ggml and the `gguf` Python package do, so the results agree bit for bit.

use half::{bf16, f16};

/// A ggml tensor type as stored in a GGUF tensor table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    /// 0: IEEE f32.
    F32,
    /// 1: IEEE f16.
    F16,
    /// 2: 4-bit, one f16 scale per 32 elements.
    Q4_0,
    /// 3: 4-bit, f16 scale and minimum per 32 elements.
    Q4_1,
    /// 8: 8-bit, one f16 scale per 32 elements.
    Q8_0,
    /// 30: bfloat16.
    BF16,
    /// Any other ggml type: listed in the tensor table, but not dequantised here.
    Other(u32),
}

impl GgmlType {
    /// The type for a ggml type code.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            30 => Self::BF16,
            other => Self::Other(other),
        }
    }

    /// The ggml type code.
    pub fn code(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q8_0 => 8,
            Self::BF16 => 30,
            Self::Other(code) => code,
        }
    }

    /// `(elements per block, bytes per block)`, or `None` for a type this module does not know.
    pub fn block(self) -> Option<(usize, usize)> {
        match self {
            Self::F32 => Some((1, 4)),
            Self::F16 | Self::BF16 => Some((1, 2)),
            Self::Q4_0 => Some((32, 18)),
            Self::Q4_1 => Some((32, 20)),
            Self::Q8_0 => Some((32, 34)),
            Self::Other(_) => None,
        }
    }

    /// ggml's name for the type (`"Q4_1"`, ...).
    pub fn name(self) -> String {
        match self {
            Self::Other(code) => format!("ggml type {code}"),
            known => format!("{known:?}"),
        }
    }
}

/// Dequantises `bytes`, whole blocks of type `ty`, to f32. The caller has checked that `bytes`
/// is exactly the blocks of the tensor and that the type is known.
pub(crate) fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut Vec<f32>) {
    match ty {
        GgmlType::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ),
        GgmlType::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        GgmlType::BF16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        GgmlType::Q4_0 => bytes
            .chunks_exact(18)
            .for_each(|b| q4(scale(b, 0), None, &b[2..], out)),
        GgmlType::Q4_1 => bytes
            .chunks_exact(20)
            .for_each(|b| q4(scale(b, 0), Some(scale(b, 2)), &b[4..], out)),
        GgmlType::Q8_0 => bytes.chunks_exact(34).for_each(|b| {
            let d = scale(b, 0);
            out.extend(b[2..].iter().map(|&q| f32::from(q as i8) * d));
        }),
        GgmlType::Other(_) => {}
    }
}

fn scale(block: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([block[at], block[at + 1]]).to_f32()
}

/// One 4-bit block: with a minimum (Q4_1) `q·d + m`, without (Q4_0) `(q − 8)·d`.
fn q4(d: f32, m: Option<f32>, nibbles: &[u8], out: &mut Vec<f32>) {
    let value = |q: u8| match m {
        Some(m) => f32::from(q) * d + m,
        None => (f32::from(q) - 8.0) * d,
    };
    out.extend(nibbles.iter().map(|&b| value(b & 0x0f)));
    out.extend(nibbles.iter().map(|&b| value(b >> 4)));
}
