//! What the kernels are instantiated for, read from the one table build.rs generates them from
//! ([`table`]): module and kernel names, and each family's dtypes, head dims and oldest device.
//! Nothing else on the host lists normalisers, dtypes or head dims per family.

pub mod table;

pub use table::{DtypeRow, FAMILIES, FamilyRow, NORMALISERS, NormaliserRow};

use crate::error::{Error, Result};

/// The registry row of the normaliser with ABI value `abi`.
pub fn normaliser(abi: u32) -> Result<&'static NormaliserRow> {
    NORMALISERS
        .iter()
        .find(|n| n.abi == abi)
        .ok_or_else(|| Error::InvalidOption(format!("normaliser ABI value {abi}")))
}

/// The family whose folder is `kernels/<folder>/`. Panics on a folder the table lacks: callers
/// name their own family, so that is a bug in this crate, never a user's input.
pub fn family(folder: &str) -> &'static FamilyRow {
    FAMILIES
        .iter()
        .find(|f| f.folder == folder)
        .unwrap_or_else(|| panic!("src/registry/table.rs has no family {folder:?}"))
}

impl FamilyRow {
    /// The oldest compute capability it serves, from its target architecture (`compute_80`,
    /// `sm_90a` → (8, 0), (9, 0)).
    pub fn min_cc(&self) -> (u32, u32) {
        let digits: String = self.arch.chars().filter(char::is_ascii_digit).collect();
        let n: u32 = digits.parse().unwrap_or(0);
        (n / 10, n % 10)
    }

    /// Its row for the dtype with ABI value `dtype`, or why it has none.
    pub fn dtype(&self, dtype: u32) -> std::result::Result<&'static DtypeRow, String> {
        self.dtypes.iter().find(|d| d.abi == dtype).ok_or_else(|| {
            let names: Vec<&str> = self.dtypes.iter().map(|d| d.stem).collect();
            let given = [table::F32, table::F16, table::BF16]
                .into_iter()
                .find(|d| d.abi == dtype)
                .map_or_else(
                    || format!("dtype ABI value {dtype}"),
                    |d| d.stem.to_string(),
                );
            match names.split_last() {
                Some((last, [])) => format!("{last} inputs only, not {given}"),
                Some((last, rest)) => {
                    format!("{} or {last} inputs only, not {given}", rest.join(", "))
                }
                None => format!("no inputs, not {given}"),
            }
        })
    }

    /// The instantiated head dim serving `head_dim` (itself, or with `pads` the smallest wider
    /// one), or why there is none.
    pub fn dim_for(&self, head_dim: u32) -> std::result::Result<u32, String> {
        let fits = |&&d: &&u32| {
            if self.pads {
                d >= head_dim
            } else {
                d == head_dim
            }
        };
        match self.dims.iter().find(fits) {
            Some(&d) if head_dim > 0 => Ok(d),
            _ if self.pads => Err(format!(
                "head dim {head_dim} is above {} (the largest instantiation)",
                self.dims.last().copied().unwrap_or(0)
            )),
            _ => Err(format!("head dim {head_dim} is not one of {:?}", self.dims)),
        }
    }

    /// The module holding this family's kernels for the normaliser with ABI value `abi`
    /// (`tc_softmax`): a `'static` name from the embedded kernel table.
    pub fn module(&self, abi: u32) -> Result<&'static str> {
        let name = format!("{}_{}", self.module_prefix, normaliser(abi)?.stem);
        crate::kernels::MODULES
            .iter()
            .copied()
            .find(|m| *m == name)
            .ok_or_else(|| Error::Unsupported(format!("no kernel module {name} was built")))
    }

    /// The kernel `<prefix>_<normaliser>_<dtype>_d<dim>[_stats]`.
    pub fn kernel_name(&self, abi: u32, dtype: u32, dim: u32, stats: bool) -> Result<String> {
        let dtype = self.dtype(dtype).map_err(Error::Unsupported)?;
        Ok(format!(
            "{}_{}_{}_d{dim}{}",
            self.kernel_prefix,
            normaliser(abi)?.stem,
            dtype.stem,
            if stats { "_stats" } else { "" }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi;
    use crate::variant::Normaliser;

    /// The table's ABI values are abi.h's (through bindgen), one per normaliser, in order; the
    /// generated units assert the same against each C++ policy's `kAbi`.
    #[test]
    fn rows_match_the_abi() {
        let all = [
            Normaliser::Softmax,
            Normaliser::OffByOne,
            Normaliser::Sink,
            Normaliser::Clipped {
                gamma: -0.1,
                zeta: 1.0,
            },
            Normaliser::Softpick,
            Normaliser::Sigmoid { bias: None },
        ];
        assert_eq!(NORMALISERS.len(), all.len());
        for (row, n) in NORMALISERS.iter().zip(all) {
            assert_eq!(row.abi, n.abi(), "{}", row.stem);
            assert_eq!(row.stem, n.name().replace('-', "_"));
        }
        for (row, abi) in [
            (&table::F32, abi::QaDtype_QA_DTYPE_F32),
            (&table::F16, abi::QaDtype_QA_DTYPE_F16),
            (&table::BF16, abi::QaDtype_QA_DTYPE_BF16),
        ] {
            assert_eq!(row.abi, abi, "{}", row.stem);
        }
    }

    #[test]
    fn dims_pad_or_match() {
        let decode_tc = family("decode_tc");
        assert_eq!(decode_tc.dim_for(72), Ok(128));
        assert_eq!(decode_tc.dim_for(64), Ok(64));
        assert!(decode_tc.dim_for(136).unwrap_err().contains("above 128"));
        let tc = family("tensor_core");
        assert_eq!(tc.dim_for(96), Ok(96));
        assert!(tc.dim_for(80).unwrap_err().contains("not one of"));
        assert_eq!(tc.min_cc(), (8, 0));
        assert_eq!(family("cuda_core").min_cc(), (7, 5));
        assert_eq!(
            tc.kernel_name(0, abi::QaDtype_QA_DTYPE_BF16, 128, true)
                .unwrap(),
            "qa_tc_softmax_bf16_d128_stats"
        );
        assert!(
            tc.dtype(abi::QaDtype_QA_DTYPE_F32)
                .unwrap_err()
                .contains("f16 or bf16 inputs only, not f32")
        );
    }
}
