//! Named weights of a safetensors checkpoint as f32 matrices, read through
//! [`crate::io::TensorFile`] (f32, f16 and bf16 checkpoints alike).

use std::path::Path;

use crate::error::Result;
use crate::io::TensorFile;
use crate::probe::matrix::{Linear, Matrix};
use crate::tensor::{Tensor, TensorData};

/// Largest checkpoint read (bert-large in f32 is ~1.3 GB).
pub const MAX_CHECKPOINT_BYTES: u64 = 4 << 30;

/// A checkpoint's tensors with an optional name prefix (`bert.` in `BertForMaskedLM` files).
#[derive(Debug)]
pub struct Weights {
    file: TensorFile,
    prefix: String,
}

impl Weights {
    /// Reads `path`; names are looked up with `prefix` in front when the file uses one.
    pub fn read(path: &Path, prefixes: &[&str], probe_name: &str) -> Result<Self> {
        let file = TensorFile::read_limited(path, MAX_CHECKPOINT_BYTES)?;
        let prefix = prefixes
            .iter()
            .find(|p| file.tensors.contains_key(&format!("{p}{probe_name}")))
            .map(|p| p.to_string())
            .ok_or_else(|| {
                file.error(format!(
                    "no tensor `{probe_name}` (with any of the prefixes {prefixes:?}): not a \
                     checkpoint of this architecture"
                ))
            })?;
        Ok(Weights { file, prefix })
    }

    fn tensor(&self, name: &str, rank: usize) -> Result<&Tensor> {
        self.file
            .require_float(&format!("{}{name}", self.prefix), &[rank])
    }

    /// The rank-2 tensor `name` as a matrix.
    pub fn matrix(&self, name: &str) -> Result<Matrix> {
        let t = self.tensor(name, 2)?;
        Matrix::new(t.shape[0], t.shape[1], to_f32(t))
    }

    /// The rank-1 tensor `name`, checked to hold `len` values.
    pub fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let t = self.tensor(name, 1)?;
        if t.shape[0] != len {
            return Err(self.file.error(format!(
                "tensor `{}{name}` has {} values, expected {len}",
                self.prefix, t.shape[0]
            )));
        }
        Ok(to_f32(t))
    }

    /// The dense layer `{name}.weight` (+ `{name}.bias`) mapping `inputs` to `outputs`.
    pub fn linear(&self, name: &str, inputs: usize, outputs: usize) -> Result<Linear> {
        let w = self.matrix(&format!("{name}.weight"))?;
        if (w.rows, w.cols) != (outputs, inputs) {
            return Err(self.file.error(format!(
                "`{}{name}.weight` is [{}, {}], expected [{outputs}, {inputs}]",
                self.prefix, w.rows, w.cols
            )));
        }
        let bias = self.vector(&format!("{name}.bias"), outputs)?;
        Linear::new(w, Some(bias))
    }

    /// An embedding table `name` of `rows` entries of `width` values.
    pub fn table(&self, name: &str, rows: usize, width: usize) -> Result<Matrix> {
        let m = self.matrix(name)?;
        if m.rows < rows || m.cols != width {
            return Err(self.file.error(format!(
                "`{}{name}` is [{}, {}], expected [{rows}, {width}]",
                self.prefix, m.rows, m.cols
            )));
        }
        Ok(m)
    }
}

fn to_f32(t: &Tensor) -> Vec<f32> {
    match &t.data {
        TensorData::F32(v) => v.clone(),
        _ => t.to_f64().iter().map(|&x| x as f32).collect(),
    }
}
