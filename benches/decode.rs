//! Decode over a paged KV cache on a GPU (issue 9): GB/s of K/V read by the decode kernels and
//! that rate as a percentage of a device-to-device copy measured in the same run. bf16, d128,
//! 8 kv heads × G 8 (64 query heads), page size 16, q_len 1 and 4, batch 1–64, keys 1k–128k,
//! softmax, both chunk-kernel families (CUDA cores and tensor cores); the split plan is
//! `SplitPlan::new` for the GPU's SMs (132 assumed, an H100/H200).
//!
//! Conventions (as `benches/act_stats.rs`): the kernels read each K/V byte once, so their rate is
//! `kv bytes / time`; a copy reads and writes, so its rate is `2 · bytes / time`. The time of a
//! call is its launches queued back to back, then one synchronisation, best of five batches.
//! Without a GPU the benchmark prints `SKIP` and exits successfully. Not measured yet: the
//! project has had no GPU; torch SDPA on the same problem is not part of it.

mod common;

use std::time::{Duration, Instant};

use quietattn::KernelChoice;
use quietattn::abi::{self, QaAttnParams, QaDecodeParams, QaTensorDesc};
use quietattn::cuda::CudaDevice;
use quietattn::launch::{Buffer, Executor};
use quietattn::ops::decode::{DecodeLaunch, decode_launches};
use quietattn::problem::{ERROR_RECORD_BYTES, SplitPlan};

use common::{per_op, time_dtod};

const KV_HEADS: usize = 8;
const HEADS: usize = 64;
const DIM: usize = 128;
const PAGE: usize = 16;
const SMS: usize = 132;

/// Device memory of one shape: caches (every sequence `keys` long), table, lengths, q, o, lse,
/// workspace, and a copy destination as large as the K/V bytes read.
struct Setup {
    bufs: Vec<Buffer>,
    kv_bytes: usize,
    launches: Vec<DecodeLaunch>,
    copy_src: u64,
    copy_dst: Buffer,
}

fn desc(ptr: u64, strides: [usize; 3]) -> QaTensorDesc {
    QaTensorDesc {
        ptr,
        stride_batch: strides[0] as i64,
        stride_seq: strides[1] as i64,
        stride_head: strides[2] as i64,
        dtype: abi::QaDtype_QA_DTYPE_BF16,
        reserved: 0,
    }
}

fn setup(
    dev: &CudaDevice,
    family: KernelChoice,
    batch: usize,
    q_len: usize,
    keys: usize,
) -> quietattn::Result<Setup> {
    let pages_per_seq = keys.div_ceil(PAGE);
    let pages = batch * pages_per_seq;
    let page_elems = PAGE * KV_HEADS * DIM;
    let cache_bytes = pages * page_elems * 2;
    let k = dev.alloc_zeroed(cache_bytes)?;
    let v = dev.alloc_zeroed(cache_bytes)?;
    let table: Vec<i32> = (0..pages as i32).collect();
    let table = dev.upload(bytemuck::cast_slice(&table))?;
    let lens = dev.upload(bytemuck::cast_slice(&vec![keys as i32; batch]))?;
    let q_elems = batch * q_len * HEADS * DIM;
    let q = dev.alloc_zeroed(q_elems * 2)?;
    let o = dev.alloc_zeroed(q_elems * 2)?;
    let lse = dev.alloc_zeroed(batch * HEADS * q_len * 4)?;
    let plan = SplitPlan::new(batch, KV_HEADS, keys, PAGE, SMS)?;
    let ws_len = plan.partial_bytes(batch, HEADS, q_len, DIM, false) + ERROR_RECORD_BYTES;
    let ws = dev.alloc_zeroed(ws_len)?;
    let q_strides = [q_len * HEADS * DIM, HEADS * DIM, DIM];
    let attn = QaAttnParams {
        q: desc(q.addr(), q_strides),
        k: desc(k.addr(), [page_elems, KV_HEADS * DIM, DIM]),
        v: desc(v.addr(), [page_elems, KV_HEADS * DIM, DIM]),
        o: desc(o.addr(), q_strides),
        lse: lse.addr(),
        lse_stride_batch: (HEADS * q_len) as i64,
        lse_stride_head: q_len as i64,
        batch: batch as u32,
        heads: HEADS as u32,
        kv_heads: KV_HEADS as u32,
        head_dim: DIM as u32,
        seqlen_q: q_len as u32,
        seqlen_k: keys as u32,
        causal: 1,
        window_left: -1,
        window_right: -1,
        scale: (DIM as f32).sqrt().recip(),
        clip_zeta: 1.0,
        ..Default::default()
    };
    let params = QaDecodeParams {
        attn,
        block_table: table.addr(),
        seq_lens_k: lens.addr(),
        table_stride: pages_per_seq as i64,
        max_pages: pages_per_seq as u32,
        num_pages: pages as u32,
        log2_page: PAGE.trailing_zeros(),
        ..Default::default()
    };
    let cc = dev.compute_capability();
    let launches = decode_launches(&params, &plan, family, cc, ws.addr(), ws.len())?;
    let kv_bytes = 2 * batch * keys * KV_HEADS * DIM * 2;
    Ok(Setup {
        copy_src: k.addr(),
        copy_dst: dev.alloc_zeroed(kv_bytes / 2)?,
        bufs: vec![k, v, table, lens, q, o, lse, ws],
        kv_bytes,
        launches,
    })
}

fn time_decode(dev: &CudaDevice, s: &Setup, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        for l in &s.launches {
            dev.launch_async(&l.kernel, abi::as_bytes(&l.params), &l.geometry)
                .unwrap();
        }
    }
    dev.synchronize("decode bench").unwrap();
    start.elapsed()
}

fn main() {
    let dev = match CudaDevice::new(0) {
        Ok(d) => d,
        Err(e) => {
            println!("SKIP decode benchmark: {e}");
            return;
        }
    };
    println!("device: {}", dev.name());
    for (family, q_len) in [KernelChoice::CudaCore, KernelChoice::TensorCore]
        .into_iter()
        .flat_map(|f| [(f, 1), (f, 4)])
    {
        for batch in [1, 8, 64] {
            for keys in [1024, 32_768, 131_072] {
                if batch * keys > 64 * 32_768 {
                    continue; // > 8 GB of cache
                }
                let name = family.name();
                let s = match setup(&dev, family, batch, q_len, keys) {
                    Ok(s) => s,
                    Err(e) => {
                        println!("decode {name} q_len {q_len} batch {batch} keys {keys}: {e}");
                        continue;
                    }
                };
                let t = per_op(3, 20, |n| time_decode(&dev, &s, n));
                let t_copy = per_op(3, 20, |n| {
                    time_dtod(&dev, s.copy_dst.addr(), s.copy_src, s.kv_bytes / 2, n)
                });
                let rate = s.kv_bytes as f64 / t;
                let copy = s.kv_bytes as f64 / t_copy;
                println!(
                    "decode {name} softmax bf16 d{DIM} page {PAGE} q_len {q_len} batch {batch:>2} keys \
                     {keys:>6} ({} launches): {:>8.1} us, {:>6.0} GB/s K/V = {:>5.1}% of the \
                     same-run copy ({:.0} GB/s)",
                    s.launches.len(),
                    t * 1e6,
                    rate / 1e9,
                    100.0 * rate / copy,
                    copy / 1e9
                );
                drop(s.bufs);
            }
        }
    }
}
