//! Standalone activation statistics of a `[tokens, channels]` tensor (docs/contract.md §5): host
//! side of `kernels/act_stats.cu`. The launch is computed once and run unchanged by the emulator or
//! CUDA.

use crate::abi::{self, QaActStatsParams, QaChannelStats, QaTensorStats};
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result, shape_err};
use crate::launch::{Executor, KernelRef, LaunchGeometry};
use crate::stats::ActivationStats;
use crate::tensor::TensorView;

/// Lanes along channels (blockDim.x) and warps along tokens (blockDim.y), as the kernel's
/// `ACT_LANES` / `ACT_WARPS` assume.
const BLOCK: [u32; 3] = [32, 8, 1];
/// The largest grid.y the driver accepts.
const MAX_GRID_Y: u64 = 65_535;
/// Blocks the automatic token chunk aims for (enough to fill a large GPU a few times over).
const TARGET_BLOCKS: u64 = 1024;

/// Per-channel moments, log2 histogram, non-finite count and per-token absmax of `x`.
///
/// `x` must be rank 2 `[tokens, channels]` with channel stride 1 (any row stride). On
/// [`Device::Reference`] the f64 reference runs; otherwise the kernel.
///
/// ```
/// use quietattn::{DType, Device, Tensor};
///
/// # fn main() -> quietattn::Result<()> {
/// // 3 tokens x 4 channels; channel 2 carries an outlier, one element is NaN.
/// let x = Tensor::from_f64(
///     DType::F32,
///     &[0.5, -1.0, 120.0, 0.0, 0.25, 1.0, -80.0, f64::NAN, 0.5, 2.0, 90.0, 1.0],
///     &[3, 4],
/// )?;
/// let s = quietattn::activation_stats(&Device::emulator()?, &x.view())?;
/// assert_eq!(s.channels[2].absmax, 120.0);
/// assert_eq!(s.channels[3].count, 2); // the NaN is not a sample ...
/// assert_eq!(s.tensor.non_finite, 1); // ... it is counted here
/// assert_eq!(s.tensor.zeros, 1);
/// assert_eq!(s.token_absmax, vec![120.0, 80.0, 90.0]);
/// # Ok(())
/// # }
/// ```
pub fn activation_stats(device: &Device, x: &TensorView<'_>) -> Result<ActivationStats> {
    activation_stats_chunked(device, x, None)
}

/// [`activation_stats`] with an explicit number of tokens per thread block (`None`: chosen from
/// the shape). More tokens per block mean fewer global atomics but fewer blocks; benchmarks sweep
/// it. The value is raised when the grid would exceed the driver's limit.
pub fn activation_stats_chunked(
    device: &Device,
    x: &TensorView<'_>,
    tokens_per_block: Option<u32>,
) -> Result<ActivationStats> {
    let plan = ActStatsLaunch::new(x, tokens_per_block)?;
    match device.executor() {
        None => crate::reference::activation_stats(x),
        Some(exec) => plan.run(exec, x),
    }
}

/// The validated launch of one activation-statistics kernel.
#[derive(Clone, Debug)]
pub struct ActStatsLaunch {
    /// Tokens (rows).
    pub tokens: u32,
    /// Channels (columns).
    pub channels: u32,
    /// Elements between consecutive rows.
    pub row_stride: i64,
    /// Element type.
    pub dtype: DType,
    /// Rows per thread block.
    pub tokens_per_block: u32,
    /// The kernel for `dtype`.
    pub kernel: KernelRef,
    /// Grid and block.
    pub geometry: LaunchGeometry,
}

impl ActStatsLaunch {
    /// Validates `x` and computes the grid.
    pub fn new(x: &TensorView<'_>, tokens_per_block: Option<u32>) -> Result<Self> {
        if x.rank() != 2 || x.strides.len() != 2 {
            return Err(shape_err!(
                "activation statistics need a rank-2 [tokens, channels] tensor, got shape {:?}",
                x.shape
            ));
        }
        let (tokens, channels) = (x.shape[0], x.shape[1]);
        if channels > 1 && x.strides[1] != 1 {
            return Err(shape_err!(
                "activation statistics need channel stride 1, got strides {:?}",
                x.strides
            ));
        }
        let fit_u32 = |n: usize, what: &str| {
            u32::try_from(n).map_err(|_| Error::Overflow(format!("{n} {what} exceed u32")))
        };
        let tokens = fit_u32(tokens, "tokens")?;
        let channels = fit_u32(channels, "channels")?;
        // A single row never steps to a next one: any stride works, the contiguous one is used.
        let row_stride = if tokens > 1 {
            x.strides[0]
        } else {
            channels as usize
        };
        let row_stride = i64::try_from(row_stride)
            .map_err(|_| Error::Overflow(format!("row stride {row_stride} exceeds i64")))?;
        if tokens_per_block == Some(0) {
            return Err(Error::InvalidOption(
                "tokens_per_block must be at least 1".into(),
            ));
        }
        let dtype = x.dtype();
        let channels_per_block = BLOCK[0] as u64 * (16 / dtype.size() as u64);
        let grid_x = (channels as u64).div_ceil(channels_per_block);
        let tpb = tokens_per_block
            .map(u64::from)
            .unwrap_or_else(|| auto_tokens_per_block(tokens as u64, grid_x))
            .max((tokens as u64).div_ceil(MAX_GRID_Y))
            .max(1);
        let grid_y = (tokens as u64).div_ceil(tpb);
        let grid_x = u32::try_from(grid_x)
            .map_err(|_| Error::Overflow(format!("{channels} channels need too many blocks")))?;
        Ok(ActStatsLaunch {
            tokens,
            channels,
            row_stride,
            dtype,
            tokens_per_block: tpb as u32,
            kernel: KernelRef {
                module: "act_stats",
                name: format!("qa_act_stats_{}", dtype.name()),
            },
            geometry: LaunchGeometry {
                grid: [grid_x, grid_y as u32, 1],
                block: BLOCK,
                dynamic_smem: 0,
            },
        })
    }

    /// The parameter struct for the given device addresses.
    pub fn params(
        &self,
        x: u64,
        channel_stats: u64,
        tensor_stats: u64,
        token_absmax: u64,
    ) -> QaActStatsParams {
        QaActStatsParams {
            x,
            row_stride: self.row_stride,
            tokens: self.tokens,
            channels: self.channels,
            dtype: self.dtype.abi(),
            tokens_per_block: self.tokens_per_block,
            channel_stats,
            tensor_stats,
            token_absmax,
        }
    }

    /// Uploads the rows of `x`, runs the kernel on zeroed counters and downloads them.
    pub fn run(&self, exec: &dyn Executor, x: &TensorView<'_>) -> Result<ActivationStats> {
        let mut out = ActivationStats::zeroed(self.tokens as usize, self.channels as usize);
        if self.tokens == 0 || self.channels == 0 {
            return Ok(out);
        }
        // Only the span the rows cover travels: element offset .. last row's last channel.
        let size = self.dtype.size();
        let range = (self.tokens as usize - 1)
            .checked_mul(self.row_stride as usize)
            .and_then(|s| s.checked_add(self.channels as usize)?.checked_add(x.offset))
            .and_then(|end| Some(x.offset.checked_mul(size)?..end.checked_mul(size)?));
        let bytes = range
            .and_then(|r| x.data.as_bytes().get(r))
            .ok_or_else(|| {
                shape_err!(
                    "view (offset {}, {} rows of stride {}) reaches past its {}-element storage",
                    x.offset,
                    self.tokens,
                    self.row_stride,
                    x.data.len()
                )
            })?;
        let xb = exec.upload(bytes)?;
        let cs = exec.alloc_zeroed(out.channels.len() * size_of::<QaChannelStats>())?;
        let ts = exec.alloc_zeroed(size_of::<QaTensorStats>())?;
        let tb = exec.alloc_zeroed(out.token_absmax.len() * size_of::<f32>())?;
        let params = self.params(xb.addr(), cs.addr(), ts.addr(), tb.addr());
        exec.launch(&self.kernel, abi::as_bytes(&params), &self.geometry)?;
        exec.download(&cs, plain_bytes_mut(&mut out.channels))?;
        exec.download(&ts, plain_bytes_mut(std::slice::from_mut(&mut out.tensor)))?;
        exec.download(&tb, bytemuck::cast_slice_mut(&mut out.token_absmax))?;
        Ok(out)
    }
}

/// Tokens per block: the largest power of two in [32, 256] that still gives about
/// [`TARGET_BLOCKS`] blocks; per-block atomics favour large chunks, occupancy small ones.
fn auto_tokens_per_block(tokens: u64, grid_x: u64) -> u64 {
    let mut tpb = 256;
    while tpb > 32 && grid_x * tokens.div_ceil(tpb) < TARGET_BLOCKS {
        tpb /= 2;
    }
    tpb
}

/// Statistics structs whose every bit pattern is a valid value (integers and floats only).
trait PlainData: Copy {}
impl PlainData for QaChannelStats {}
impl PlainData for QaTensorStats {}

fn plain_bytes_mut<T: PlainData>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: T is repr(C) with only integer and float fields (bindgen from kernels/abi.h), so
    // any bytes written through the slice leave valid values; the length covers exactly `v`.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), size_of_val(v)) }
}
