//! The device `append_kv` kernel (kernels/decode/append_kv.cu) on the emulator, and on CUDA when
//! a GPU is present: bit for bit what `reference::append_kv` writes, for f32/f16/bf16 and
//! strided (packed k|v) sources with skipped tokens; a slot outside the cache is the kernel's
//! error and leaves the host caches as they were.

mod common;

use quietattn::ops::decode::append_kv_on;
use quietattn::reference::{SKIP_SLOT, append_kv};
use quietattn::{DType, Error, Tensor, TensorView};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const HKV: usize = 2;
const DIM: usize = 24;
const PAGES: usize = 5;
const PAGE: usize = 16;

fn random(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-3.0..3.0)).collect()
}

/// Caches pre-filled with random values, so a slot written by mistake shows.
fn caches(rng: &mut StdRng, dtype: DType) -> (Tensor, Tensor) {
    let shape = [PAGES, PAGE, HKV, DIM];
    let n = shape.iter().product();
    let k = Tensor::from_f64(dtype, &random(rng, n), &shape).unwrap();
    let v = Tensor::from_f64(dtype, &random(rng, n), &shape).unwrap();
    (k, v)
}

#[test]
fn the_kernel_writes_exactly_what_the_reference_writes() {
    for device in common::devices("append_kv kernel") {
        let executor = device.executor().expect("kernels run here");
        for (i, dtype) in [DType::F32, DType::F16, DType::BF16]
            .into_iter()
            .enumerate()
        {
            let mut rng = StdRng::seed_from_u64(20 + i as u64);
            let tokens = 37;
            // Packed [tokens, 2 (k|v), hkv, d]: k and v are strided views into it.
            let packed = random(&mut rng, tokens * 2 * HKV * DIM);
            let packed = Tensor::from_f64(dtype, &packed, &[tokens, 2, HKV, DIM]).unwrap();
            let strides = [2 * HKV * DIM, DIM, 1];
            let shape = [tokens, HKV, DIM];
            let k = TensorView::new(packed.data.as_ref(), &shape, &strides, 0).unwrap();
            let v = TensorView::new(packed.data.as_ref(), &shape, &strides, HKV * DIM).unwrap();
            // Distinct slots in shuffled order, every fifth token skipped.
            let mut slots: Vec<i64> = (0..(PAGES * PAGE) as i64).collect();
            slots.shuffle(&mut rng);
            slots.truncate(tokens);
            for s in slots.iter_mut().step_by(5) {
                *s = SKIP_SLOT;
            }
            let (mut want_k, mut want_v) = caches(&mut rng, dtype);
            let (mut got_k, mut got_v) = (want_k.clone(), want_v.clone());
            append_kv(&mut want_k, &mut want_v, &k, &v, &slots).unwrap();
            append_kv_on(executor, &mut got_k, &mut got_v, &k, &v, &slots).unwrap();
            let label = format!("{dtype:?} on {}", device.name());
            assert!(
                got_k.data.as_bytes() == want_k.data.as_bytes(),
                "{label}: k cache"
            );
            assert!(
                got_v.data.as_bytes() == want_v.data.as_bytes(),
                "{label}: v cache"
            );
        }
    }
}

#[test]
fn a_slot_outside_the_cache_is_the_kernels_error() {
    let device = common::emulator();
    let executor = device.executor().expect("kernels run here");
    let mut rng = StdRng::seed_from_u64(30);
    let k = Tensor::from_f64(DType::F16, &random(&mut rng, 3 * HKV * DIM), &[3, HKV, DIM]).unwrap();
    let (mut kc, mut vc) = caches(&mut rng, DType::F16);
    let before = (kc.clone(), vc.clone());
    for bad in [(PAGES * PAGE) as i64, -2, i64::MAX] {
        let slots = [4, bad, 9];
        match append_kv_on(executor, &mut kc, &mut vc, &k.view(), &k.view(), &slots) {
            Err(Error::Index(m)) => assert!(m.contains("slot_mapping[1]"), "{m}"),
            other => panic!("slot {bad}: expected an index error, got {other:?}"),
        }
        assert!(
            kc.data.as_bytes() == before.0.data.as_bytes(),
            "slot {bad}: k cache changed"
        );
        assert!(
            vc.data.as_bytes() == before.1.data.as_bytes(),
            "slot {bad}: v cache changed"
        );
    }
}
