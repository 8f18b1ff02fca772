//! An engine's use of quietattn on memory it owns, with only the lean library
//! (`default-features = false, features = ["emulator"]`): a causal GQA prefill through
//! `attention_device`, then one decode step against a paged KV cache through
//! `paged_decode_device`, each checked against the f64 reference.
//!
//! ```text
//! cargo run --no-default-features --features emulator --example engine
//! ```
//!
//! On a GPU, `Device::cuda(0)?` (or `CudaDevice::from_stream` on the engine's own stream) runs
//! the same code; there the buffers would be the engine's cudarc slices
//! (`DeviceTensor::from_cuda`).

use quietattn::ops::ErrorRecord;
use quietattn::ops::attention::{DeviceAttentionArgs, DeviceIndex, DeviceTensor};
use quietattn::ops::decode::{DecodeWorkspace, DevicePagedArgs, paged_decode_device};
use quietattn::problem::{DecodeBounds, workspace_bytes};
use quietattn::{AttentionInputs, AttentionOptions, DType, Device, Tensor, attention_device};

/// Deterministic test values in [-1, 1].
fn values(n: usize, seed: f64) -> Vec<f32> {
    (0..n).map(|i| (i as f64 * seed).sin() as f32).collect()
}

/// Largest |a - b| / (1 + |b|) over the two sequences.
fn max_rel_error(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(&a, &b)| (f64::from(a) - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f64::max)
}

fn main() -> quietattn::Result<()> {
    let device = Device::emulator()?; // Device::cuda(0)? on a GPU
    let exec = device
        .executor()
        .ok_or_else(|| quietattn::Error::Unsupported("the reference runs no kernels".into()))?;
    // The decode split is planned for the GPU's SMs; the emulator takes an H100's 132.
    let sm_count = device.sm_count().unwrap_or(132);
    let (s, h, hkv, d) = (24, 4, 2, 64);

    // --- Prefill: [1, s, h, d] queries over [1, s, hkv, d] keys and values, causal. ---
    let (q, k, v) = (
        values(s * h * d, 0.37),
        values(s * hkv * d, 0.11),
        values(s * hkv * d, 0.73),
    );
    let q_buf = exec.upload(bytemuck::cast_slice(&q))?;
    let k_buf = exec.upload(bytemuck::cast_slice(&k))?;
    let v_buf = exec.upload(bytemuck::cast_slice(&v))?;
    let mut o_buf = exec.alloc_zeroed_elems(DType::F32, s * h * d)?;
    let mut lse_buf = exec.alloc_zeroed_elems(DType::F32, h * s)?;
    let options = AttentionOptions {
        causal: true,
        ..AttentionOptions::default()
    };
    let args = DeviceAttentionArgs::new(
        DeviceTensor::from_buffer(&q_buf, DType::F32, &[1, s, h, d])?,
        DeviceTensor::from_buffer(&k_buf, DType::F32, &[1, s, hkv, d])?,
        DeviceTensor::from_buffer(&v_buf, DType::F32, &[1, s, hkv, d])?,
        DeviceTensor::from_buffer_mut(&mut o_buf, DType::F32, &[1, s, h, d])?,
        DeviceTensor::from_buffer_mut(&mut lse_buf, DType::F32, &[1, h, s])?,
    );
    attention_device(&device, &args, &options)?;
    drop(args);
    let mut o = vec![0f32; s * h * d];
    exec.download(&o_buf, bytemuck::cast_slice_mut(&mut o))?;

    let host = |x: &[f32], shape: &[usize]| {
        Tensor::from_f64(
            DType::F32,
            &x.iter().map(|&a| f64::from(a)).collect::<Vec<_>>(),
            shape,
        )
    };
    let (qt, kt, vt) = (
        host(&q, &[1, s, h, d])?,
        host(&k, &[1, s, hkv, d])?,
        host(&v, &[1, s, hkv, d])?,
    );
    let want = quietattn::attention(
        &Device::reference(),
        &AttentionInputs::new(qt.view(), kt.view(), vt.view()),
        &options,
    )?;
    let prefill_error = max_rel_error(&o, &want.o.to_f64());
    println!("prefill: o [1, {s}, {h}, {d}], max relative error {prefill_error:.2e}");
    assert!(prefill_error <= 2e-5, "prefill differs from the reference");

    // --- Decode: one new query row attends all s keys, kept in a paged cache. ---
    // Pages of 16 tokens; the sequence's keys live in page 1, then page 0 (block table [1, 0]).
    let page = 16;
    let pages = s.div_ceil(page);
    let table: Vec<i32> = (0..pages as i32).rev().collect();
    let token_elems = hkv * d;
    let mut k_cache = vec![0f32; pages * page * token_elems];
    let mut v_cache = vec![0f32; pages * page * token_elems];
    for t in 0..s {
        let slot = table[t / page] as usize * page + t % page;
        let (dst, src) = (slot * token_elems, t * token_elems);
        k_cache[dst..dst + token_elems].copy_from_slice(&k[src..src + token_elems]);
        v_cache[dst..dst + token_elems].copy_from_slice(&v[src..src + token_elems]);
    }
    let q1 = values(h * d, 0.59);
    let bounds = DecodeBounds {
        max_batch: 1,
        heads: h,
        kv_heads: hkv,
        max_seqlen_q: 1,
        max_seqlen_k: pages * page,
        head_dim: d,
        page_size: page,
        stats: false,
    };
    let mut ws = exec.alloc_zeroed(workspace_bytes(&bounds, sm_count)?)?;
    let q1_buf = exec.upload(bytemuck::cast_slice(&q1))?;
    let kc_buf = exec.upload(bytemuck::cast_slice(&k_cache))?;
    let vc_buf = exec.upload(bytemuck::cast_slice(&v_cache))?;
    let table_buf = exec.upload(bytemuck::cast_slice(&table))?;
    let lens_buf = exec.upload(bytemuck::cast_slice(&[s as i32]))?;
    let mut o1_buf = exec.alloc_zeroed_elems(DType::F32, h * d)?;
    let mut lse1_buf = exec.alloc_zeroed_elems(DType::F32, h)?;
    let cache_shape = [pages, page, hkv, d];
    let args = DevicePagedArgs {
        q: DeviceTensor::from_buffer(&q1_buf, DType::F32, &[1, 1, h, d])?,
        k_cache: DeviceTensor::from_buffer(&kc_buf, DType::F32, &cache_shape)?,
        v_cache: DeviceTensor::from_buffer(&vc_buf, DType::F32, &cache_shape)?,
        block_table: DeviceIndex::from_buffer(&table_buf),
        max_pages: pages,
        seq_lens_k: DeviceIndex::from_buffer(&lens_buf),
        max_seqlen_k: pages * page,
        o: DeviceTensor::from_buffer_mut(&mut o1_buf, DType::F32, &[1, 1, h, d])?,
        lse: DeviceTensor::from_buffer_mut(&mut lse1_buf, DType::F32, &[1, h, 1])?,
        sinks: None,
        gate: None,
        stats: None,
        plan: None,
        varlen_q: None,
    };
    let words = ws.len() / DType::F32.size();
    let workspace = DecodeWorkspace {
        memory: DeviceTensor::from_buffer_mut(&mut ws, DType::F32, &[words])?,
        sm_count,
    };
    let decode_options = AttentionOptions::default();
    paged_decode_device(&device, &args, &decode_options, &workspace)?;
    drop((args, workspace));
    // Whenever the engine synchronises anyway: any bad length or table entry the kernel saw.
    ErrorRecord::read(exec, &ws)?.check()?;
    let mut o1 = vec![0f32; h * d];
    exec.download(&o1_buf, bytemuck::cast_slice_mut(&mut o1))?;

    let q1t = host(&q1, &[1, 1, h, d])?;
    let want = quietattn::attention(
        &Device::reference(),
        &AttentionInputs::new(q1t.view(), kt.view(), vt.view()),
        &decode_options,
    )?;
    let decode_error = max_rel_error(&o1, &want.o.to_f64());
    println!(
        "decode: {s} keys in {pages} pages of {page}, o [1, 1, {h}, {d}], max relative error {decode_error:.2e}"
    );
    assert!(decode_error <= 2e-5, "decode differs from the reference");
    println!(
        "{}: engine example matches the f64 reference",
        device.name()
    );
    Ok(())
}
