//! Forward attention on a GPU: both kernel families, every normaliser, bf16/f16, head dim
//! 64/128, sequence 1k/4k, causal and not, statistics off and on, on device-resident operands
//! (`attention_device`, the engine path). Ratios (variant / softmax, statistics on / off,
//! tensor-core / CUDA-core) come from the same run.
//!
//! FLOPs = 4·b·h·s²·d, halved when causal (FlashAttention's convention). "% peak" is of the
//! H200's 67 TFLOP/s FP32 peak for the CUDA-core family and of its dense BF16 tensor peak,
//! 989 TFLOP/s (NVIDIA datasheet: 1979 with sparsity), for the tensor-core family. Without a
//! GPU the benchmark prints `SKIP` and exits successfully.
//! `QUIETATTN_BENCH_QUICK=1` (the GPU-tier runner) times only the headline shape, bf16 d128 4k.

use std::time::Duration;

use criterion::{Criterion, Throughput};
use quietattn::perf::{self, BenchBuffers, BenchConfig, BenchRow};
use quietattn::{DType, Device, KernelChoice};

/// Query tokens per launch (batch × seq), with 16 heads: many waves on 132 SMs.
const TOKENS: usize = 16_384;
const HEADS: usize = 16;
const ITERS: usize = 10;

fn print_row(r: &BenchRow) {
    let c = &r.config;
    println!(
        "{:<11} {:<10} {:<4} d{:<3} s{:<5} causal={} stats={}: {:>9.3} ms {:>6.2} TFLOP/s \
         {:>5.1}% peak, x{:.3} softmax{}{}",
        c.kernel.name(),
        c.normaliser.name(),
        c.dtype,
        c.head_dim,
        c.seq,
        u8::from(c.causal),
        u8::from(c.stats),
        r.seconds * 1e3,
        r.tflops,
        r.peak_percent,
        r.vs_softmax,
        if c.stats {
            format!(", x{:.3} of stats off", r.stats_cost)
        } else {
            String::new()
        },
        r.vs_cuda_core
            .map_or_else(String::new, |x| format!(", x{x:.3} of cuda-core"))
    );
}

fn main() {
    let device = match Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            println!("SKIP attention benchmark: {e}");
            return;
        }
    };
    println!("device: {}", device.name());
    let quick = std::env::var("QUIETATTN_BENCH_QUICK").is_ok_and(|v| v == "1");
    let shapes: Vec<(DType, usize, usize)> = if quick {
        vec![(DType::BF16, 128, 4096)]
    } else {
        [DType::BF16, DType::F16]
            .into_iter()
            .flat_map(|t| {
                [64, 128]
                    .into_iter()
                    .flat_map(move |d| [(t, d, 1024), (t, d, 4096)])
            })
            .collect()
    };
    for (dtype, d, seq) in shapes {
        let shape = [TOKENS / seq, seq, HEADS, d];
        let run = perf::families(&device, KernelChoice::Auto, d, dtype)
            .and_then(|k| perf::run_matrix(&device, shape, dtype, ITERS, &k, &mut print_row));
        if let Err(e) = run {
            println!("attention {dtype} d{d} s{seq} failed: {e}");
        }
    }

    // Criterion's statistics for the headline shape: bf16, d128, 4k, statistics off and on, on
    // the family `Auto` picks (tensor cores on sm_80+).
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .configure_from_args();
    let shape = [TOKENS / 4096, 4096, HEADS, 128];
    let Ok(mut buffers) = BenchBuffers::new(&device, shape, DType::BF16) else {
        println!("attention benchmark: could not allocate the criterion buffers");
        return;
    };
    for normaliser in quietattn::Normaliser::all_defaults() {
        let mut group = criterion.benchmark_group(format!("attention_{}", normaliser.name()));
        for stats in [false, true] {
            let cfg = BenchConfig {
                batch: shape[0],
                seq: shape[1],
                heads: HEADS,
                head_dim: 128,
                dtype: DType::BF16,
                normaliser,
                causal: false,
                stats,
                kernel: KernelChoice::Auto,
            };
            group.throughput(Throughput::Elements(cfg.flops() as u64));
            let name = if stats { "stats_on" } else { "stats_off" };
            group.bench_function(name, |b| {
                b.iter_custom(|n| {
                    let s = buffers.time(&device, &cfg, n as usize).unwrap_or(f64::NAN);
                    Duration::from_secs_f64(s * n as f64)
                })
            });
        }
        group.finish();
    }
    criterion.final_summary();
}
