//! Row-major f32 matrices and the dense layers of a transformer, with the GEMM of the
//! `matrixmultiply` crate on the CPU, or cuBLAS once a layer is placed on a GPU
//! ([`crate::probe::dense`]); attention itself goes through quietattn's kernels.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::probe::dense::{Dense, PlacedWeight};

/// A row-major `[rows, cols]` f32 matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Rows (tokens for activations, output features for weights).
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `rows * cols` values, row after row.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Wraps `data` as `[rows, cols]`.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::Shape(format!(
                "{} values cannot form a [{rows}, {cols}] matrix",
                data.len()
            )));
        }
        Ok(Matrix { rows, cols, data })
    }

    /// A `[rows, cols]` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Row `r`, mutable.
    pub fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// `self += other`, element by element (residual connections).
    pub fn add_assign(&mut self, other: &Matrix) -> Result<()> {
        if (self.rows, self.cols) != (other.rows, other.cols) {
            return Err(Error::Shape(format!(
                "cannot add [{}, {}] to [{}, {}]",
                other.rows, other.cols, self.rows, self.cols
            )));
        }
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            *a += b;
        }
        Ok(())
    }

    /// Applies `f` to every element.
    pub fn map_in_place(&mut self, f: impl Fn(f32) -> f32) {
        for x in &mut self.data {
            *x = f(*x);
        }
    }
}

/// A dense layer `y = x·Wᵀ + b` with `W` stored `[out, in]` as PyTorch and GGUF store it.
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Matrix,
    /// `[out]` or none.
    pub bias: Option<Vec<f32>>,
    /// The weight's copy on a GPU when the layer runs there ([`Linear::place`]).
    placed: Option<Arc<PlacedWeight>>,
}

impl Linear {
    /// Checks that the bias has one value per output feature.
    pub fn new(weight: Matrix, bias: Option<Vec<f32>>) -> Result<Self> {
        if let Some(b) = &bias {
            if b.len() != weight.rows {
                return Err(Error::Shape(format!(
                    "bias of {} values for a layer with {} outputs",
                    b.len(),
                    weight.rows
                )));
            }
        }
        Ok(Linear {
            weight,
            bias,
            placed: None,
        })
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.rows
    }

    /// Runs the layer on `dense` from now on: [`Dense::Cublas`] uploads the weight once (the
    /// bias stays on the host), [`Dense::Cpu`] drops any GPU copy.
    pub fn place(&mut self, dense: &Dense) -> Result<()> {
        self.placed = dense.upload(&self.weight)?.map(Arc::new);
        Ok(())
    }

    /// `x·Wᵀ + b` for `x` of shape `[tokens, in]`, on the CPU or where [`Linear::place`] put it.
    pub fn forward(&self, x: &Matrix) -> Result<Matrix> {
        let w = &self.weight;
        if x.cols != w.cols {
            return Err(Error::Shape(format!(
                "input of {} features into a layer that takes {}",
                x.cols, w.cols
            )));
        }
        let mut y = match &self.placed {
            Some(p) => p.x_wt(x)?,
            None => cpu_x_wt(x, w),
        };
        if let Some(b) = &self.bias {
            for r in 0..y.rows {
                for (v, bv) in y.row_mut(r).iter_mut().zip(b) {
                    *v += bv;
                }
            }
        }
        Ok(y)
    }
}

/// `x·Wᵀ` with the `matrixmultiply` GEMM (shapes checked by the caller).
fn cpu_x_wt(x: &Matrix, w: &Matrix) -> Matrix {
    let mut y = Matrix::zeros(x.rows, w.rows);
    if x.rows > 0 && w.rows > 0 && w.cols > 0 {
        // SAFETY: the pointers cover x [m, k] (row stride k), Wᵀ read through W's [n, k]
        // layout with strides (1, k), and y [m, n] (row stride n); all are live and y
        // does not alias the inputs.
        unsafe {
            matrixmultiply::sgemm(
                x.rows,
                w.cols,
                w.rows,
                1.0,
                x.data.as_ptr(),
                x.cols as isize,
                1,
                w.data.as_ptr(),
                1,
                w.cols as isize,
                0.0,
                y.data.as_mut_ptr(),
                w.rows as isize,
                1,
            );
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_is_x_times_w_transposed_plus_bias() {
        // W = [[1, 2, 3], [4, 5, 6]], b = [10, 20]; x = [[1, 0, -1], [2, 1, 0]].
        let w = Matrix::new(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let layer = Linear::new(w, Some(vec![10.0, 20.0])).unwrap();
        let x = Matrix::new(2, 3, vec![1.0, 0.0, -1.0, 2.0, 1.0, 0.0]).unwrap();
        let y = layer.forward(&x).unwrap();
        assert_eq!(
            y.data,
            vec![1.0 - 3.0 + 10.0, 4.0 - 6.0 + 20.0, 4.0 + 10.0, 13.0 + 20.0]
        );
    }

    #[test]
    fn shape_mismatches_are_errors() {
        assert!(Matrix::new(2, 2, vec![0.0; 3]).is_err());
        let layer = Linear::new(Matrix::zeros(2, 3), None).unwrap();
        assert!(layer.forward(&Matrix::zeros(1, 4)).is_err());
        assert!(Linear::new(Matrix::zeros(2, 3), Some(vec![0.0; 3])).is_err());
    }
}
