//! Element types the kernels read and write.

use crate::abi;
use crate::error::{Error, Result};

/// Element type of a tensor. Kernels always accumulate in f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16 ([`half::f16`]).
    F16,
    /// bfloat16 ([`half::bf16`]).
    BF16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// The value the ABI structs carry (`QaDtype`).
    pub fn abi(self) -> u32 {
        match self {
            DType::F32 => abi::QaDtype_QA_DTYPE_F32,
            DType::F16 => abi::QaDtype_QA_DTYPE_F16,
            DType::BF16 => abi::QaDtype_QA_DTYPE_BF16,
        }
    }

    /// Short lower-case name (`f32`, `f16`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" | "float32" => Ok(DType::F32),
            "f16" | "float16" | "half" => Ok(DType::F16),
            "bf16" | "bfloat16" => Ok(DType::BF16),
            other => Err(Error::Unsupported(format!(
                "dtype `{other}` (supported: f32, f16, bf16)"
            ))),
        }
    }
}
