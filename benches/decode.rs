//! Decode over a paged KV cache on a GPU (issue 9) through the engine path
//! (`paged_decode_device`: validation, split plan and launches queued on the device's stream,
//! partials in a workspace sized once by `workspace_bytes`): GB/s of K/V read and that rate as
//! a percentage of a device-to-device copy measured in the same run. bf16, d128, 8 kv heads ×
//! G 8 (64 query heads), page size 16, causal softmax, both chunk-kernel families (CUDA cores
//! and tensor cores); the automatic split plan for 132 SMs (an H100/H200).
//!
//! The default run is short: q_len 1 and 4 × batch 1 and 64 × keys 1k and 32k, plus
//! statistics on for q_len 1 at 32k keys (its overhead over the same case without). With
//! `QUIETATTN_DECODE_BENCH_GRID=1` it runs the grid: q_len 1 and 4 × batch 1, 2, 4, 8,
//! 16, 32, 64 × keys 1k, 4k, 16k, 32k, 64k, 128k (cases above 64 × 32k keys, 8.6 GB of cache,
//! skipped), statistics on and off.
//!
//! Conventions (as `benches/act_stats.rs`): the kernels read each K/V byte once, so their rate is
//! `kv bytes / time`; a copy reads and writes, so its rate is `2 · bytes / time`. The time of a
//! call is `paged_decode_device` (host checks included, as an engine pays them) queued back to
//! back, then one synchronisation, best of five batches. Without a GPU the benchmark prints
//! `SKIP` and exits successfully. Not measured yet: the project has had no GPU; torch SDPA on
//! the same problem is not part of it.

mod common;

use std::time::{Duration, Instant};

use quietattn::cuda::CudaDevice;
use quietattn::launch::{Buffer, Executor};
use quietattn::ops::attention::{DeviceIndex, DeviceStats, DeviceTensor};
use quietattn::ops::decode::{DecodeWorkspace, DevicePagedArgs, paged_decode_device};
use quietattn::problem::{DecodeBounds, workspace_bytes};
use quietattn::{AttentionOptions, DType, Device, KernelChoice};

use common::{per_op, time_dtod};

const KV_HEADS: usize = 8;
const HEADS: usize = 64;
const DIM: usize = 128;
const PAGE: usize = 16;
const SMS: usize = 132;
/// Largest batch × keys measured: 8.6 GB of K/V cache.
const MAX_CACHED_KEYS: usize = 64 * 32_768;

/// One measured shape.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Case {
    family: KernelChoice,
    q_len: usize,
    batch: usize,
    keys: usize,
    stats: bool,
}

/// Device memory of one case: caches (every sequence `keys` long), table, lengths, q, o, lse,
/// the workspace, statistics counters, and a copy destination as large as one cache.
struct Setup {
    case: Case,
    k: Buffer,
    v: Buffer,
    table: Buffer,
    lens: Buffer,
    q: Buffer,
    o: Buffer,
    lse: Buffer,
    workspace: Buffer,
    stats: Option<DeviceStats>,
    copy_dst: Buffer,
}

impl Setup {
    fn new(device: &Device, exec: &dyn Executor, case: Case) -> quietattn::Result<Setup> {
        let Case {
            q_len,
            batch,
            keys,
            stats,
            ..
        } = case;
        let pages = batch * keys.div_ceil(PAGE);
        let cache_bytes = pages * PAGE * KV_HEADS * DIM * 2;
        let table: Vec<i32> = (0..pages as i32).collect();
        let q_bytes = batch * q_len * HEADS * DIM * 2;
        // What an engine sizes once for the shapes it serves (here: exactly this one).
        let bounds = DecodeBounds {
            max_batch: batch,
            heads: HEADS,
            kv_heads: KV_HEADS,
            max_q_len: q_len,
            max_k: keys,
            head_dim: DIM,
            page_size: PAGE,
            stats,
        };
        Ok(Setup {
            case,
            k: exec.alloc_zeroed(cache_bytes)?,
            v: exec.alloc_zeroed(cache_bytes)?,
            table: exec.upload(bytemuck::cast_slice(&table))?,
            lens: exec.upload(bytemuck::cast_slice(&vec![keys as i32; batch]))?,
            q: exec.alloc_zeroed(q_bytes)?,
            o: exec.alloc_zeroed(q_bytes)?,
            lse: exec.alloc_zeroed(batch * HEADS * q_len * 4)?,
            workspace: exec.alloc_zeroed(workspace_bytes(&bounds, SMS)?)?,
            stats: stats
                .then(|| DeviceStats::new(device, HEADS, KV_HEADS, DIM))
                .transpose()?,
            copy_dst: exec.alloc_zeroed(cache_bytes)?,
        })
    }

    /// K and V bytes one call reads.
    fn kv_bytes(&self) -> usize {
        2 * self.k.len()
    }

    /// One engine-path call, queued on the device's stream.
    fn call(&mut self, device: &Device) -> quietattn::Result<()> {
        let Case {
            q_len, batch, keys, ..
        } = self.case;
        let cache = [batch * keys.div_ceil(PAGE), PAGE, KV_HEADS, DIM];
        let words = self.workspace.len() / 4;
        let args = DevicePagedArgs {
            q: DeviceTensor::from_buffer(&self.q, DType::BF16, &[batch, q_len, HEADS, DIM])?,
            k_cache: DeviceTensor::from_buffer(&self.k, DType::BF16, &cache)?,
            v_cache: DeviceTensor::from_buffer(&self.v, DType::BF16, &cache)?,
            block_table: DeviceIndex::from_buffer(&self.table),
            max_pages: keys.div_ceil(PAGE),
            seq_lens_k: DeviceIndex::from_buffer(&self.lens),
            max_seq_len_k: keys,
            o: DeviceTensor::from_buffer_mut(
                &mut self.o,
                DType::BF16,
                &[batch, q_len, HEADS, DIM],
            )?,
            lse: DeviceTensor::from_buffer_mut(&mut self.lse, DType::F32, &[batch, HEADS, q_len])?,
            sinks: None,
            gate: None,
            stats: self.stats.as_mut().map(DeviceStats::target),
            plan: None,
            varlen_q: None,
        };
        let workspace = DecodeWorkspace {
            memory: DeviceTensor::from_buffer_mut(&mut self.workspace, DType::F32, &[words])?,
            sm_count: SMS,
        };
        let options = AttentionOptions {
            causal: true,
            stats: self.case.stats,
            kernel: self.case.family,
            ..AttentionOptions::default()
        };
        paged_decode_device(device, &args, &options, &workspace).map(|_| ())
    }
}

fn time_decode(device: &Device, cuda: &CudaDevice, s: &mut Setup, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        s.call(device).unwrap();
    }
    cuda.synchronize("decode bench").unwrap();
    start.elapsed()
}

/// The cases of this run: the short default, or the grid.
fn cases() -> Vec<Case> {
    let grid = std::env::var_os("QUIETATTN_DECODE_BENCH_GRID").is_some_and(|v| v == "1");
    let mut out = Vec::new();
    let (batches, keys, stats): (&[usize], &[usize], &[bool]) = if grid {
        (
            &[1, 2, 4, 8, 16, 32, 64],
            &[1024, 4096, 16_384, 32_768, 65_536, 131_072],
            &[false, true],
        )
    } else {
        (&[1, 64], &[1024, 32_768], &[false])
    };
    for (family, q_len) in [KernelChoice::CudaCore, KernelChoice::TensorCore]
        .into_iter()
        .flat_map(|f| [(f, 1), (f, 4)])
    {
        for &batch in batches {
            for &keys in keys {
                for &stats in stats {
                    out.push(Case {
                        family,
                        q_len,
                        batch,
                        keys,
                        stats,
                    });
                }
            }
        }
    }
    if !grid {
        for (family, batch) in [KernelChoice::CudaCore, KernelChoice::TensorCore]
            .into_iter()
            .flat_map(|f| [(f, 1), (f, 64)])
        {
            out.push(Case {
                family,
                q_len: 1,
                batch,
                keys: 32_768,
                stats: true,
            });
        }
    }
    out.retain(|c| c.batch * c.keys <= MAX_CACHED_KEYS);
    out
}

fn main() {
    let device = match Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            println!("SKIP decode benchmark: {e}");
            return;
        }
    };
    let (Device::Cuda(cuda), Some(exec)) = (&device, device.executor()) else {
        println!("SKIP decode benchmark: no CUDA executor");
        return;
    };
    println!("device: {}", cuda.name());
    let mut plain_us = Vec::new(); // (case without statistics, µs) for the overhead of stats
    for case in cases() {
        let Case {
            family,
            q_len,
            batch,
            keys,
            stats,
        } = case;
        let label = format!(
            "decode {} softmax bf16 d{DIM} page {PAGE} q_len {q_len} batch {batch:>2} keys {keys:>6} stats {}",
            family.name(),
            if stats { "on " } else { "off" }
        );
        let mut s = match Setup::new(&device, exec, case) {
            Ok(s) => s,
            Err(e) => {
                println!("{label}: {e}");
                continue;
            }
        };
        if let Err(e) = s.call(&device) {
            println!("{label}: {e}");
            continue;
        }
        let t = per_op(3, 20, |n| time_decode(&device, cuda, &mut s, n));
        let half = s.kv_bytes() / 2;
        let t_copy = per_op(3, 20, |n| {
            time_dtod(cuda, s.copy_dst.addr(), s.k.addr(), half, n)
        });
        let (rate, copy) = (s.kv_bytes() as f64 / t, s.kv_bytes() as f64 / t_copy);
        let overhead = plain_us
            .iter()
            .find(|(c, _)| {
                *c == Case {
                    stats: false,
                    ..case
                }
            })
            .filter(|_| stats)
            .map_or(String::new(), |(_, us)| {
                format!(", {:+.1}% over stats off", 100.0 * (t * 1e6 / us - 1.0))
            });
        if !stats {
            plain_us.push((case, t * 1e6));
        }
        println!(
            "{label}: {:>8.1} us, {:>6.0} GB/s K/V = {:>5.1}% of the same-run copy ({:.0} GB/s){overhead}",
            t * 1e6,
            rate / 1e9,
            100.0 * rate / copy,
            copy / 1e9
        );
    }
}
