//! The emulator's f16 conversions (kernels/emu/emu.h, used by qa/types.cuh) against the `half`
//! crate, through a kernel: every f16 bit pattern to f32, and many f32 values (subnormals,
//! halfway cases, overflow, inf, NaN) to f16 with round-to-nearest-even.
mod common;

use common::{args, download, launch, upload};

#[test]
fn every_f16_converts_to_f32_exactly() {
    let dev = common::emulator();
    let bits: Vec<u16> = (0..=u16::MAX).collect();
    let inb = upload(&dev, &bits);
    let out = upload(&dev, &vec![0f32; bits.len()]);
    let p = args([inb.addr(), out.addr(), 0, 0], [bits.len() as i64, 0, 0, 0]);
    launch(&dev, "emu_convert", "qa_test_f16_to_f32", &p, 256, 256, 0).unwrap();
    let got: Vec<f32> = download(&dev, &out, bits.len());
    for (&b, &g) in bits.iter().zip(&got) {
        let want = half::f16::from_bits(b).to_f32();
        if want.is_nan() {
            assert!(g.is_nan(), "{b:#06x}");
        } else {
            assert_eq!(g.to_bits(), want.to_bits(), "{b:#06x}");
        }
    }
}

#[test]
fn f32_to_f16_rounds_to_nearest_even() {
    let dev = common::emulator();
    let mut vals: Vec<f32> = vec![
        0.0,
        -0.0,
        1.0,
        65504.0,
        65519.99,
        65520.0,
        1e6,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        5.960_464_5e-8,
        2.980_232_2e-8,
        2.980_233e-8,
        6.097_555e-5,
        6.103_515_6e-5,
        f32::MIN_POSITIVE,
        1e-40,
    ];
    // Every f16 value, the midpoints between neighbours and values just off them.
    for b in 0..0x7c00u16 {
        let lo = half::f16::from_bits(b).to_f32();
        let hi = half::f16::from_bits(b + 1).to_f32();
        let mid = (lo + hi) / 2.0;
        for v in [
            lo,
            mid,
            f32::from_bits(mid.to_bits() + 1),
            f32::from_bits(mid.to_bits() - 1),
        ] {
            vals.push(v);
            vals.push(-v);
        }
    }
    // A sweep over every f32 exponent.
    let mut x = 1u32;
    while x < 0x7f80_0000 {
        vals.push(f32::from_bits(x));
        x = x.wrapping_mul(3).wrapping_add(0x1234);
        x %= 0x7f80_0000;
        if vals.len() > 400_000 {
            break;
        }
    }
    let inb = upload(&dev, &vals);
    let out = upload(&dev, &vec![0u16; vals.len()]);
    let p = args([inb.addr(), out.addr(), 0, 0], [vals.len() as i64, 0, 0, 0]);
    let blocks = vals.len().div_ceil(256) as u32;
    launch(
        &dev,
        "emu_convert",
        "qa_test_f32_to_f16",
        &p,
        blocks,
        256,
        0,
    )
    .unwrap();
    let got: Vec<u16> = download(&dev, &out, vals.len());
    for (&v, &g) in vals.iter().zip(&got) {
        let want = half::f16::from_f32(v);
        if want.is_nan() {
            assert!(half::f16::from_bits(g).is_nan(), "{v:e}");
        } else {
            assert_eq!(g, want.to_bits(), "{v:e} ({:#010x})", v.to_bits());
        }
    }
}
