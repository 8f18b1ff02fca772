//! Decode over a paged KV cache on a GPU (issue 9) through the engine path
//! (`paged_decode_device`: validation, split plan and launches queued on the device's stream,
//! partials in a workspace sized once by `workspace_bytes`): GB/s of K/V read and that rate as
//! a percentage of a device-to-device copy measured in the same run. bf16, d128, 8 kv heads ×
//! G 8 (64 query heads), page size 16, causal, both chunk-kernel families (CUDA cores and
//! tensor cores); the automatic split plan for the GPU's SMs (`Device::sm_count`).
//!
//! Each shape (family, q_len, batch, keys) is timed for a list of measurements (normaliser,
//! statistics on/off) on the same buffers. A normaliser other than softmax is reported as a
//! ratio to softmax of the same shape and statistics setting (the target: every variant
//! within 3 %), statistics on as its overhead over the same normaliser without (target ≤ 5 %).
//!
//! The default run is short: q_len 1 and 4 × batch 1 and 64 × keys 1k and 32k with softmax,
//! plus every normaliser with statistics off and on at q_len 1 and 32k keys. With
//! `QUIETATTN_DECODE_BENCH_GRID=1` it runs the grid: q_len 1 and 4 × batch 1, 2, 4, 8,
//! 16, 32, 64 × keys 1k, 4k, 16k, 32k, 64k, 128k (shapes above 64 × 32k keys, 8.6 GB of cache,
//! skipped), every normaliser, statistics off and on. With `QUIETATTN_DECODE_BENCH_JSON=FILE`
//! the rows are also written to FILE as JSON (`gpu/torch_sdpa_decode.py` compares them with
//! torch SDPA on the same contiguous problem); a failed run leaves an existing FILE unchanged.
//!
//! Conventions (as `benches/act_stats.rs`): the kernels read each K/V byte once, so their rate is
//! `kv bytes / time`; a copy reads and writes, so its rate is `2 · bytes / time`. The time of a
//! call is `paged_decode_device` (host checks included, as an engine pays them) queued back to
//! back, then one synchronisation, best of five batches. The caches hold zeros. Without a GPU
//! the benchmark prints `SKIP` and exits successfully.

mod common;

use std::time::Instant;

use quietattn::cuda::CudaDevice;
use quietattn::launch::{Buffer, Executor};
use quietattn::ops::attention::{DeviceIndex, DeviceStats, DeviceTensor};
use quietattn::ops::decode::{DecodeWorkspace, DevicePagedArgs, paged_decode_device};
use quietattn::problem::{DecodeBounds, workspace_bytes};
use quietattn::{AttentionOptions, DType, Device, KernelChoice, Normaliser};

use common::{per_op, time_dtod};

const KV_HEADS: usize = 8;
const HEADS: usize = 64;
const DIM: usize = 128;
const PAGE: usize = 16;
/// Largest batch × keys measured: 8.6 GB of K/V cache.
const MAX_CACHED_KEYS: usize = 64 * 32_768;

/// One problem shape; its buffers serve every measurement of it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Shape {
    family: KernelChoice,
    q_len: usize,
    batch: usize,
    keys: usize,
}

/// What one timing of a shape runs.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Measure {
    normaliser: Normaliser,
    stats: bool,
}

/// One timed measurement.
struct Row {
    shape: Shape,
    measure: Measure,
    seconds: f64,
    kv_bytes: usize,
    copy_rate: f64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.kv_bytes as f64 / self.seconds
    }
}

/// Device memory of one shape: caches (every sequence `keys` long), table, lengths, q, o, lse,
/// sink logits, a workspace sized for statistics, statistics counters, and a copy destination
/// as large as one cache.
struct Setup {
    shape: Shape,
    k: Buffer,
    v: Buffer,
    table: Buffer,
    lens: Buffer,
    q: Buffer,
    o: Buffer,
    lse: Buffer,
    sinks: Buffer,
    workspace: Buffer,
    /// The GPU's SMs (`Device::sm_count`; 132, an H100/H200's, on the emulator).
    sms: usize,
    stats: DeviceStats,
    copy_dst: Buffer,
}

impl Setup {
    fn new(device: &Device, exec: &dyn Executor, shape: Shape) -> quietattn::Result<Setup> {
        let Shape {
            q_len, batch, keys, ..
        } = shape;
        let pages = batch * keys.div_ceil(PAGE);
        let sms = device.sm_count().unwrap_or(132);
        let cache_bytes = pages * PAGE * KV_HEADS * DIM * 2;
        let table: Vec<i32> = (0..pages as i32).collect();
        let q_bytes = batch * q_len * HEADS * DIM * 2;
        // What an engine sizes once for the shapes it serves (here: exactly this one).
        let bounds = DecodeBounds {
            max_batch: batch,
            heads: HEADS,
            kv_heads: KV_HEADS,
            max_seqlen_q: q_len,
            max_seqlen_k: keys,
            head_dim: DIM,
            page_size: PAGE,
            stats: true,
        };
        Ok(Setup {
            shape,
            k: exec.alloc_zeroed(cache_bytes)?,
            v: exec.alloc_zeroed(cache_bytes)?,
            table: exec.upload(bytemuck::cast_slice(&table))?,
            lens: exec.upload(bytemuck::cast_slice(&vec![keys as i32; batch]))?,
            q: exec.alloc_zeroed(q_bytes)?,
            o: exec.alloc_zeroed(q_bytes)?,
            lse: exec.alloc_zeroed(batch * HEADS * q_len * 4)?,
            sinks: exec.alloc_zeroed(HEADS * 4)?,
            workspace: exec.alloc_zeroed(workspace_bytes(&bounds, sms)?)?,
            sms,
            stats: DeviceStats::new(device, HEADS, KV_HEADS, DIM)?,
            copy_dst: exec.alloc_zeroed(cache_bytes)?,
        })
    }

    /// K and V bytes one call reads.
    fn kv_bytes(&self) -> usize {
        2 * self.k.len()
    }

    /// One engine-path call, queued on the device's stream.
    fn call(&mut self, device: &Device, m: Measure) -> quietattn::Result<()> {
        let Shape {
            family,
            q_len,
            batch,
            keys,
        } = self.shape;
        let cache = [batch * keys.div_ceil(PAGE), PAGE, KV_HEADS, DIM];
        let words = self.workspace.len() / 4;
        let sinks = match m.normaliser {
            Normaliser::Sink => Some(DeviceTensor::from_buffer(
                &self.sinks,
                DType::F32,
                &[HEADS],
            )?),
            _ => None,
        };
        let args = DevicePagedArgs {
            q: DeviceTensor::from_buffer(&self.q, DType::BF16, &[batch, q_len, HEADS, DIM])?,
            k_cache: DeviceTensor::from_buffer(&self.k, DType::BF16, &cache)?,
            v_cache: DeviceTensor::from_buffer(&self.v, DType::BF16, &cache)?,
            block_table: DeviceIndex::from_buffer(&self.table),
            max_pages: keys.div_ceil(PAGE),
            seq_lens_k: DeviceIndex::from_buffer(&self.lens),
            max_seqlen_k: keys,
            o: DeviceTensor::from_buffer_mut(
                &mut self.o,
                DType::BF16,
                &[batch, q_len, HEADS, DIM],
            )?,
            lse: DeviceTensor::from_buffer_mut(&mut self.lse, DType::F32, &[batch, HEADS, q_len])?,
            sinks,
            gate: None,
            stats: m.stats.then(|| self.stats.target()),
            plan: None,
            varlen_q: None,
        };
        let workspace = DecodeWorkspace {
            memory: DeviceTensor::from_buffer_mut(&mut self.workspace, DType::F32, &[words])?,
            sm_count: self.sms,
        };
        let options = AttentionOptions {
            normaliser: m.normaliser,
            causal: true,
            stats: m.stats,
            kernel: family,
            ..AttentionOptions::default()
        };
        paged_decode_device(device, &args, &options, &workspace).map(|_| ())
    }

    /// Seconds per call of `m` (its first call, checked, is the warm-up's start).
    fn time(&mut self, device: &Device, cuda: &CudaDevice, m: Measure) -> quietattn::Result<f64> {
        self.call(device, m)?;
        Ok(per_op(3, 20, |n| {
            let start = Instant::now();
            for _ in 0..n {
                self.call(device, m).expect("a call that passed once fails");
            }
            cuda.synchronize("decode bench")
                .expect("decode launch failed");
            start.elapsed()
        }))
    }

    /// The same-run copy rate over one cache (read + write bytes per second).
    fn copy_rate(&self, cuda: &CudaDevice) -> f64 {
        let bytes = self.k.len();
        let t = per_op(3, 20, |n| {
            time_dtod(cuda, self.copy_dst.addr(), self.k.addr(), bytes, n)
        });
        2.0 * bytes as f64 / t
    }
}

/// Every normaliser with statistics off and on.
fn every_measure() -> Vec<Measure> {
    let mut out = Vec::new();
    for stats in [false, true] {
        for normaliser in Normaliser::all_defaults() {
            out.push(Measure { normaliser, stats });
        }
    }
    out
}

/// The shapes of this run and what each measures: the short default, or the grid.
fn plan() -> Vec<(Shape, Vec<Measure>)> {
    let grid = std::env::var_os("QUIETATTN_DECODE_BENCH_GRID").is_some_and(|v| v == "1");
    let (batches, keys): (&[usize], &[usize]) = if grid {
        (
            &[1, 2, 4, 8, 16, 32, 64],
            &[1024, 4096, 16_384, 32_768, 65_536, 131_072],
        )
    } else {
        (&[1, 64], &[1024, 32_768])
    };
    let softmax = vec![Measure {
        normaliser: Normaliser::Softmax,
        stats: false,
    }];
    let mut out = Vec::new();
    for family in [KernelChoice::CudaCore, KernelChoice::TensorCore] {
        for q_len in [1, 4] {
            for &batch in batches {
                for &keys in keys {
                    let shape = Shape {
                        family,
                        q_len,
                        batch,
                        keys,
                    };
                    let full = grid || (q_len == 1 && keys == 32_768);
                    out.push((
                        shape,
                        if full {
                            every_measure()
                        } else {
                            softmax.clone()
                        },
                    ));
                }
            }
        }
    }
    out.retain(|(s, _)| s.batch * s.keys <= MAX_CACHED_KEYS);
    out
}

fn label(shape: Shape, m: Measure) -> String {
    let Shape {
        family,
        q_len,
        batch,
        keys,
    } = shape;
    format!(
        "decode {:<11} {:<10} bf16 d{DIM} page {PAGE} q_len {q_len} batch {batch:>2} keys {keys:>6} stats {}",
        family.name(),
        m.normaliser.name(),
        if m.stats { "on " } else { "off" }
    )
}

/// The row's comparisons with rows of the same shape measured before it: the ratio to softmax
/// (same statistics setting) and the statistics overhead (same normaliser).
fn comparisons(row: &Row, earlier: &[Row]) -> String {
    let find = |m: Measure| {
        earlier
            .iter()
            .find(|r| r.shape == row.shape && r.measure == m)
            .map(|r| r.seconds)
    };
    let mut out = String::new();
    if row.measure.normaliser != Normaliser::Softmax
        && let Some(t) = find(Measure {
            normaliser: Normaliser::Softmax,
            ..row.measure
        })
    {
        out += &format!(", {:.3}x softmax's time", row.seconds / t);
    }
    if row.measure.stats
        && let Some(t) = find(Measure {
            stats: false,
            ..row.measure
        })
    {
        out += &format!(", {:+.1}% over stats off", 100.0 * (row.seconds / t - 1.0));
    }
    out
}

/// Times every measurement of one shape, printing each row as it comes.
fn run_shape(
    device: &Device,
    exec: &dyn Executor,
    cuda: &CudaDevice,
    shape: Shape,
    measures: &[Measure],
    rows: &mut Vec<Row>,
) {
    let mut setup = match Setup::new(device, exec, shape) {
        Ok(s) => s,
        Err(e) => return println!("{}: {e}", label(shape, measures[0])),
    };
    let copy_rate = setup.copy_rate(cuda);
    for &m in measures {
        let row = match setup.time(device, cuda, m) {
            Ok(seconds) => Row {
                shape,
                measure: m,
                seconds,
                kv_bytes: setup.kv_bytes(),
                copy_rate,
            },
            Err(e) => {
                println!("{}: {e}", label(shape, m));
                continue;
            }
        };
        println!(
            "{}: {:>8.1} us, {:>6.0} GB/s K/V = {:>5.1}% of the same-run copy ({:.0} GB/s){}",
            label(shape, m),
            row.seconds * 1e6,
            row.rate() / 1e9,
            100.0 * row.rate() / copy_rate,
            copy_rate / 1e9,
            comparisons(&row, rows)
        );
        rows.push(row);
    }
}

/// The rows as JSON (`{device, rows: [{family, variant, q_len, batch, keys, kv_heads, heads,
/// head_dim, page_size, dtype, stats, us, gbps, copy_gbps}]}`), written through a temporary file
/// so a failed write leaves an existing file unchanged.
fn write_json(path: &std::path::Path, device: &str, rows: &[Row]) -> std::io::Result<()> {
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "family": r.shape.family.name(),
                "variant": r.measure.normaliser.name(),
                "q_len": r.shape.q_len,
                "batch": r.shape.batch,
                "keys": r.shape.keys,
                "kv_heads": KV_HEADS,
                "heads": HEADS,
                "head_dim": DIM,
                "page_size": PAGE,
                "dtype": "bf16",
                "stats": r.measure.stats,
                "us": r.seconds * 1e6,
                "gbps": r.rate() / 1e9,
                "copy_gbps": r.copy_rate / 1e9,
            })
        })
        .collect();
    let doc = serde_json::json!({ "device": device, "rows": rows });
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&doc)?)?;
    std::fs::rename(&tmp, path)
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
    let mut rows = Vec::new();
    for (shape, measures) in plan() {
        run_shape(&device, exec, cuda, shape, &measures, &mut rows);
    }
    if let Some(path) = std::env::var_os("QUIETATTN_DECODE_BENCH_JSON") {
        let path = std::path::PathBuf::from(path);
        match write_json(&path, &cuda.name(), &rows) {
            Ok(()) => println!("rows written to {}", path.display()),
            Err(e) => {
                eprintln!("writing {}: {e}", path.display());
                std::process::exit(1);
            }
        }
    }
}
