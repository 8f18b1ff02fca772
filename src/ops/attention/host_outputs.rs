//! The device side of a host call's outputs (`o`, `lse`, the statistics): allocated before the
//! launch, read back after it. The prefill and the paged-decode host paths share it.

use crate::error::Result;
use crate::launch::{Buffer, Executor};
use crate::problem::NumericsReport;
use crate::tensor::{Tensor, TensorData};
use crate::variant::AttentionOptions;

use super::{AttentionOutput, StatsLayout, upload_slice};

/// Output buffers of one host call; `o` and `lse` are the host copies they are read into.
pub(crate) struct HostOutputs {
    o: Tensor,
    pub(crate) o_buf: Buffer,
    lse: Vec<f32>,
    pub(crate) lse_buf: Buffer,
    layout: StatsLayout,
    stats_buf: Option<Buffer>,
}

impl HostOutputs {
    /// Zeroed `o` of `o_template`'s dtype and shape, `lse` uploaded from `initial_lse` (the
    /// value rows without a visible key keep), statistics counters when `options.stats`.
    pub(crate) fn new(
        executor: &dyn Executor,
        o_template: Tensor,
        initial_lse: Vec<f32>,
        layout: StatsLayout,
        options: &AttentionOptions,
    ) -> Result<Self> {
        let o_buf = executor.alloc_zeroed(o_template.data.as_bytes().len().max(16))?;
        let lse_buf = upload_slice(executor, bytemuck::cast_slice(&initial_lse))?;
        let stats_buf = if options.stats {
            Some(executor.alloc_zeroed(layout.bytes)?)
        } else {
            None
        };
        Ok(Self {
            o: o_template,
            o_buf,
            lse: initial_lse,
            lse_buf,
            layout,
            stats_buf,
        })
    }

    /// The statistics pointers the kernels take (all null when statistics are off).
    pub(crate) fn stats_pointers(&self) -> crate::abi::QaAttnStatsPtrs {
        self.stats_buf
            .as_ref()
            .map_or_else(Default::default, |b| self.layout.pointers(b.addr()))
    }

    /// Reads everything back after the launches; `numerics` is left at its default for the
    /// caller to fill.
    pub(crate) fn download(
        mut self,
        executor: &dyn Executor,
        lse_shape: &[usize],
    ) -> Result<AttentionOutput> {
        executor.download(&self.o_buf, self.o.data.as_bytes_mut())?;
        executor.download(&self.lse_buf, bytemuck::cast_slice_mut(&mut self.lse))?;
        let stats = match &self.stats_buf {
            Some(buf) => {
                let mut bytes = vec![0u8; self.layout.bytes];
                executor.download(buf, &mut bytes)?;
                Some(self.layout.parse(&bytes)?)
            }
            None => None,
        };
        Ok(AttentionOutput {
            o: self.o,
            lse: Tensor::new(TensorData::F32(self.lse), lse_shape)?,
            stats,
            numerics: NumericsReport::default(),
        })
    }
}
