//! Activation-statistics kernel throughput on a GPU, against a device-to-device copy of the same
//! bytes measured in the same run (the pattern every kernel benchmark of the crate follows).
//!
//! Conventions: the kernel reads each byte once, so its bandwidth is `bytes / time`; a copy reads
//! and writes, so its bandwidth is `2 * bytes / time` (how the H200's ~4.3 TB/s is quoted).
//! Without a GPU the benchmark prints `SKIP` and exits successfully.

mod common;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use quietattn::cuda::CudaDevice;
use quietattn::launch::{Buffer, Executor};
use quietattn::ops::act_stats::ActStatsLaunch;
use quietattn::{DType, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::{per_op, time_dtod};

const TOKENS: usize = 8192;
const CHANNELS: usize = 4096;
/// Published device-copy bandwidth of the H200 this project measures on.
const H200_COPY_BYTES_PER_S: f64 = 4.3e12;

/// Device memory for one dtype: the input, a copy destination and the statistics buffers.
struct Setup {
    host: Tensor,
    launch: ActStatsLaunch,
    bytes: usize,
    x: Buffer,
    copy_dst: Buffer,
    stats: [Buffer; 3],
}

fn setup(dev: &CudaDevice, dtype: DType) -> Setup {
    let mut rng = StdRng::seed_from_u64(7);
    let values: Vec<f64> = (0..TOKENS * CHANNELS)
        .map(|_| rng.random::<f64>() * 4.0 - 2.0)
        .collect();
    let x = Tensor::new(TensorData::from_f64(dtype, &values), &[TOKENS, CHANNELS]).unwrap();
    let launch = ActStatsLaunch::new(&x.view(), None).unwrap();
    let bytes = x.data.as_bytes().len();
    let stats = [
        dev.alloc_zeroed(CHANNELS * size_of::<quietattn::abi::QaChannelStats>()),
        dev.alloc_zeroed(size_of::<quietattn::abi::QaTensorStats>()),
        dev.alloc_zeroed(TOKENS * 4),
    ]
    .map(|b| b.unwrap());
    Setup {
        launch,
        bytes,
        x: dev.upload(x.data.as_bytes()).unwrap(),
        host: x,
        copy_dst: dev.alloc_zeroed(bytes).unwrap(),
        stats,
    }
}

/// Wall time of `iters` back-to-back kernel launches (queued, then one synchronisation).
fn time_kernel(dev: &CudaDevice, s: &Setup, launch: &ActStatsLaunch, iters: u64) -> Duration {
    let params = launch.params(
        s.x.addr(),
        s.stats[0].addr(),
        s.stats[1].addr(),
        s.stats[2].addr(),
    );
    let bytes = quietattn::abi::as_bytes(&params);
    let start = Instant::now();
    for _ in 0..iters {
        dev.launch_async(&launch.kernel, bytes, &launch.geometry)
            .unwrap();
    }
    dev.synchronize("act_stats bench").unwrap();
    start.elapsed()
}

fn main() {
    let dev = match CudaDevice::new(0) {
        Ok(d) => d,
        Err(e) => {
            println!("SKIP act_stats benchmark: {e}");
            return;
        }
    };
    println!("device: {}", dev.name());
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    for dtype in [DType::BF16, DType::F32] {
        let s = setup(&dev, dtype);
        let t_kernel = per_op(5, 50, |n| time_kernel(&dev, &s, &s.launch, n));
        let t_copy = per_op(5, 50, |n| {
            time_dtod(&dev, s.copy_dst.addr(), s.x.addr(), s.bytes, n)
        });
        let kernel_bw = s.bytes as f64 / t_kernel;
        let copy_bw = 2.0 * s.bytes as f64 / t_copy;
        println!(
            "act_stats {dtype} [{TOKENS}, {CHANNELS}] ({} MB, tokens/block {}): {:.1} us, \
             {:.0} GB/s read = {:.1}% of the same-run d2d copy ({:.0} GB/s read+write, {:.1} us), \
             {:.1}% of the H200's ~4.3 TB/s",
            s.bytes / 1_000_000,
            s.launch.tokens_per_block,
            t_kernel * 1e6,
            kernel_bw / 1e9,
            100.0 * kernel_bw / copy_bw,
            copy_bw / 1e9,
            t_copy * 1e6,
            100.0 * kernel_bw / H200_COPY_BYTES_PER_S,
        );
        for tpb in [32, 64, 128, 256, 512, 1024] {
            let launch = ActStatsLaunch::new(&s.host.view(), Some(tpb)).unwrap();
            let t = per_op(5, 50, |n| time_kernel(&dev, &s, &launch, n));
            println!(
                "  tokens/block {tpb:>4}: {:.1} us, {:.0} GB/s",
                t * 1e6,
                s.bytes as f64 / t / 1e9
            );
        }
        let mut group = criterion.benchmark_group(format!("act_stats_{dtype}"));
        group.throughput(Throughput::Bytes(s.bytes as u64));
        group.bench_function("kernel", |b| {
            b.iter_custom(|n| time_kernel(&dev, &s, &s.launch, n))
        });
        group.bench_function("d2d_copy", |b| {
            b.iter_custom(|n| time_dtod(&dev, s.copy_dst.addr(), s.x.addr(), s.bytes, n))
        });
        group.finish();
    }
    criterion.final_summary();
}
