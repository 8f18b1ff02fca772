//! Timing attention launches the way an engine runs them: operands resident in device memory,
//! launches through [`attention_device`] queued back to back, one synchronisation at the end.
//! Shared by `benches/attention.rs` and `quietattn bench`.
//!
//! FLOPs follow FlashAttention's convention, `4·b·h·sq·sk·d` (two matrix products), halved for
//! a causal mask. Each kernel family is measured against its own ceiling: the CUDA-core family
//! against the FP32 CUDA-core peak, [`H200_FP32_PEAK_FLOPS`], the tensor-core family against the
//! dense BF16 tensor peak, [`H200_BF16_TENSOR_PEAK_FLOPS`].

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::launch::Buffer;
use crate::ops::attention::{DeviceAttentionArgs, DeviceStats, DeviceTensor, attention_device};
use crate::tensor::TensorData;
use crate::variant::{AttentionOptions, KernelChoice, Normaliser};

/// FP32 (non-tensor) peak of the H200 SXM: NVIDIA's H200 datasheet lists 67 TFLOPS FP32
/// (= 132 SMs × 128 FP32 lanes × 2 FLOP per FMA × ~1.98 GHz boost).
pub const H200_FP32_PEAK_FLOPS: f64 = 67e12;

/// Dense BF16 tensor-core peak of the H200 SXM: NVIDIA's datasheet lists 1,979 TFLOPS BF16
/// "with sparsity"; the dense rate is half, 989 TFLOPS (same SMs and clocks as the H100 SXM).
pub const H200_BF16_TENSOR_PEAK_FLOPS: f64 = 989e12;

/// The peak a family is measured against (see the module documentation).
pub fn peak_flops(kernel: KernelChoice) -> f64 {
    match kernel {
        KernelChoice::TensorCore => H200_BF16_TENSOR_PEAK_FLOPS,
        _ => H200_FP32_PEAK_FLOPS,
    }
}

/// One benchmarked configuration: `[batch, seq, heads, head_dim]` self-attention.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BenchConfig {
    /// Sequences.
    pub batch: usize,
    /// Query and key length.
    pub seq: usize,
    /// Query heads (and kv heads).
    pub heads: usize,
    /// Head dimension.
    pub head_dim: usize,
    /// Element type.
    pub dtype: DType,
    /// The normaliser.
    pub normaliser: Normaliser,
    /// Causal mask.
    pub causal: bool,
    /// Statistics on.
    pub stats: bool,
    /// The kernel family (pinned, so a row says which one ran).
    pub kernel: KernelChoice,
}

impl BenchConfig {
    /// FLOPs of one launch (`4·b·h·s²·d`, halved when causal).
    pub fn flops(&self) -> f64 {
        let f = 4.0
            * (self.batch * self.heads) as f64
            * (self.seq as f64).powi(2)
            * self.head_dim as f64;
        if self.causal { f / 2.0 } else { f }
    }

    /// The attention options of this configuration.
    pub fn options(&self) -> AttentionOptions {
        AttentionOptions {
            normaliser: self.normaliser,
            causal: self.causal,
            stats: self.stats,
            kernel: self.kernel,
            ..Default::default()
        }
    }
}

/// Device memory for every configuration of one shape: q, k, v, o, lse, sinks, statistics.
pub struct BenchBuffers {
    shape: [usize; 4],
    dtype: DType,
    qkv: [Buffer; 3],
    o: Buffer,
    lse: Buffer,
    sinks: Buffer,
    stats: DeviceStats,
}

impl BenchBuffers {
    /// Uploads random inputs in `[-2, 2)` for `[batch, seq, heads, head_dim]`.
    pub fn new(device: &Device, shape: [usize; 4], dtype: DType) -> Result<Self> {
        let exec = device.executor().ok_or_else(|| {
            Error::Unsupported("benchmarks need a kernel device (cuda or emulator)".into())
        })?;
        let [b, s, h, d] = shape;
        let n = b * s * h * d;
        let mut rng = StdRng::seed_from_u64(17);
        let mut random = || -> Result<Buffer> {
            let v: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
            exec.upload(TensorData::from_f64(dtype, &v).as_bytes())
        };
        let qkv = [random()?, random()?, random()?];
        let sinks: Vec<f32> = (0..h).map(|i| i as f32 * 0.25).collect();
        Ok(BenchBuffers {
            shape,
            dtype,
            qkv,
            o: exec.alloc_zeroed(n * dtype.size())?,
            lse: exec.alloc_zeroed(b * h * s * 4)?,
            sinks: exec.upload(bytemuck::cast_slice(&sinks))?,
            stats: DeviceStats::new(device, h, h, d)?,
        })
    }

    /// Seconds per launch of `cfg`, averaged over `iters` launches after one warm-up launch.
    pub fn time(&mut self, device: &Device, cfg: &BenchConfig, iters: usize) -> Result<f64> {
        let [b, s, h, d] = self.shape;
        if [cfg.batch, cfg.seq, cfg.heads, cfg.head_dim] != self.shape || cfg.dtype != self.dtype {
            return Err(Error::InvalidOption(format!(
                "configuration {cfg:?} does not fit buffers of shape {:?} {}",
                self.shape, self.dtype
            )));
        }
        let options = cfg.options();
        let qkv = [b, s, h, d];
        let [q, k, v] = &self.qkv;
        let mut args = DeviceAttentionArgs::new(
            DeviceTensor::from_buffer(q, self.dtype, &qkv)?,
            DeviceTensor::from_buffer(k, self.dtype, &qkv)?,
            DeviceTensor::from_buffer(v, self.dtype, &qkv)?,
            DeviceTensor::from_buffer_mut(&mut self.o, self.dtype, &qkv)?,
            DeviceTensor::from_buffer_mut(&mut self.lse, DType::F32, &[b, h, s])?,
        );
        args.sinks = Some(DeviceTensor::from_buffer(&self.sinks, DType::F32, &[h])?);
        // Launches keep adding to one statistics buffer, as an engine's would.
        args.stats = cfg.stats.then(|| self.stats.target());
        attention_device(device, &args, &options)?;
        synchronize(device)?;
        let start = Instant::now();
        for _ in 0..iters.max(1) {
            attention_device(device, &args, &options)?;
        }
        synchronize(device)?;
        Ok(start.elapsed().as_secs_f64() / iters.max(1) as f64)
    }
}

/// One measured configuration with the ratios taken in the same run.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRow {
    /// What ran.
    pub config: BenchConfig,
    /// Seconds per launch.
    pub seconds: f64,
    /// Achieved TFLOP/s.
    pub tflops: f64,
    /// Percent of the family's peak ([`peak_flops`]).
    pub peak_percent: f64,
    /// Time over softmax's with the same mask and statistics setting.
    pub vs_softmax: f64,
    /// With statistics: time over the same configuration without (1 for rows without).
    pub stats_cost: f64,
    /// Time over the CUDA-core family's for the same configuration, when both ran.
    pub vs_cuda_core: Option<f64>,
}

/// Which configurations [`run_selection`] times (statistics always off and on, so that their
/// cost is a same-run ratio).
#[derive(Clone, Debug, PartialEq)]
pub struct BenchSelection {
    /// Mask settings, in order (`false` = no mask).
    pub causal: Vec<bool>,
    /// Normalisers, in order; the first is the `vs_softmax` baseline.
    pub normalisers: Vec<Normaliser>,
}

impl Default for BenchSelection {
    /// Every normaliser, causal and not.
    fn default() -> Self {
        BenchSelection {
            causal: vec![false, true],
            normalisers: Normaliser::all_defaults().to_vec(),
        }
    }
}

/// Times every normaliser, causal and not, statistics off and on, for one shape and dtype, on
/// each family of `kernels` (pinned families; see [`families`]); `report` sees each row as soon
/// as its ratios are known.
pub fn run_matrix(
    device: &Device,
    shape: [usize; 4],
    dtype: DType,
    iters: usize,
    kernels: &[KernelChoice],
    report: &mut dyn FnMut(&BenchRow),
) -> Result<Vec<BenchRow>> {
    let all = BenchSelection::default();
    run_selection(device, shape, dtype, iters, kernels, &all, report)
}

/// [`run_matrix`] over the configurations of `selection`.
pub fn run_selection(
    device: &Device,
    shape: [usize; 4],
    dtype: DType,
    iters: usize,
    kernels: &[KernelChoice],
    selection: &BenchSelection,
    report: &mut dyn FnMut(&BenchRow),
) -> Result<Vec<BenchRow>> {
    if selection.normalisers.is_empty() || selection.causal.is_empty() || kernels.is_empty() {
        return Err(Error::InvalidOption("an empty benchmark selection".into()));
    }
    let mut buffers = BenchBuffers::new(device, shape, dtype)?;
    let mut rows: Vec<BenchRow> = Vec::new();
    for &kernel in kernels {
        for &causal in &selection.causal {
            let mut off = Vec::new();
            for stats in [false, true] {
                let base = BenchConfig {
                    batch: shape[0],
                    seq: shape[1],
                    heads: shape[2],
                    head_dim: shape[3],
                    dtype,
                    normaliser: selection.normalisers[0],
                    causal,
                    stats,
                    kernel,
                };
                let times =
                    time_normalisers(&mut buffers, device, &base, &selection.normalisers, iters)?;
                let baseline = times[0].1;
                for (i, &(config, seconds)) in times.iter().enumerate() {
                    let flops = config.flops() / seconds;
                    let cuda_core = rows.iter().find(|r| {
                        r.config
                            == BenchConfig {
                                kernel: KernelChoice::CudaCore,
                                ..config
                            }
                    });
                    let row = BenchRow {
                        config,
                        seconds,
                        tflops: flops / 1e12,
                        peak_percent: 100.0 * flops / peak_flops(kernel),
                        vs_softmax: seconds / baseline,
                        stats_cost: if stats { seconds / off[i] } else { 1.0 },
                        vs_cuda_core: (kernel != KernelChoice::CudaCore)
                            .then(|| cuda_core.map(|r| seconds / r.seconds))
                            .flatten(),
                    };
                    report(&row);
                    rows.push(row);
                }
                off = times.iter().map(|t| t.1).collect();
            }
        }
    }
    Ok(rows)
}
/// `(config, seconds)` of every normaliser with the rest of `base`, softmax first.
fn time_normalisers(
    buffers: &mut BenchBuffers,
    device: &Device,
    base: &BenchConfig,
    normalisers: &[Normaliser],
    iters: usize,
) -> Result<Vec<(BenchConfig, f64)>> {
    normalisers
        .iter()
        .map(|&normaliser| {
            let config = BenchConfig {
                normaliser,
                ..*base
            };
            Ok((config, buffers.time(device, &config, iters)?))
        })
        .collect()
}

/// The pinned families a benchmark of `choice` runs on `device` for `[b, s, h, d]` in
/// `dtype`: for `Auto` every family that can serve it (so their ratios come from one run),
/// else the one named (an error when it cannot serve it).
pub fn families(
    device: &Device,
    choice: KernelChoice,
    head_dim: usize,
    dtype: DType,
) -> Result<Vec<KernelChoice>> {
    let exec = device.executor().ok_or_else(|| {
        Error::Unsupported("benchmarks need a kernel device (cuda or emulator)".into())
    })?;
    let mut params = crate::abi::QaAttnParams {
        heads: 1,
        kv_heads: 1,
        batch: 1,
        head_dim: u32::try_from(head_dim)
            .map_err(|_| Error::Unsupported(format!("head dim {head_dim}")))?,
        ..Default::default()
    };
    for t in [&mut params.q, &mut params.k, &mut params.v, &mut params.o] {
        t.dtype = dtype.abi();
    }
    let cc = exec.compute_capability();
    let serves = |k: KernelChoice| crate::ops::attention::family::choose(k, &params, cc).map(|_| k);
    match choice {
        KernelChoice::Auto => Ok([KernelChoice::CudaCore, KernelChoice::TensorCore]
            .into_iter()
            .filter_map(|k| serves(k).ok())
            .collect()),
        pinned => Ok(vec![serves(pinned)?]),
    }
}

/// Waits for the queued launches (the emulator's have finished already).
fn synchronize(device: &Device) -> Result<()> {
    match device {
        Device::Cuda(c) => c.synchronize("attention benchmark"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_follow_the_flash_attention_convention() {
        let cfg = BenchConfig {
            batch: 2,
            seq: 1024,
            heads: 8,
            head_dim: 128,
            dtype: DType::BF16,
            normaliser: Normaliser::Softmax,
            causal: false,
            stats: false,
            kernel: KernelChoice::TensorCore,
        };
        // 4 · (2·8) · 1024² · 128 written out.
        assert_eq!(cfg.flops(), 4.0 * 16.0 * 1_048_576.0 * 128.0);
        let causal = BenchConfig {
            causal: true,
            ..cfg
        };
        assert_eq!(causal.flops() * 2.0, cfg.flops());
    }
}
