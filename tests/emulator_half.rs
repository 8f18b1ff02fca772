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

/// f32 values that exercise the rounding of a 16-bit format with `mant` mantissa bits: every
/// tie and its neighbours at each exponent step, subnormals of both formats, overflow, ±inf,
/// ±0 and NaNs (quiet, signalling, negative).
fn rounding_cases(mant: u32) -> Vec<f32> {
    let drop = 23 - mant;
    let mut v = vec![
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0xffc0_1234),
        f32::MAX,
        f32::MIN_POSITIVE,
        1e-40,
        -1e-45,
        65504.0,
        65519.99,
        65520.0,
    ];
    let mut e = 0u32;
    while e < 255 {
        for m in [0u32, 1, 0x2a5, (1 << mant) - 1] {
            let base = (e << 23) | ((m & ((1 << mant) - 1)) << drop);
            let tie = base | (1 << (drop - 1));
            for bits in [base, tie, tie - 1, tie + 1, base | ((1 << drop) - 1)] {
                v.push(f32::from_bits(bits));
                v.push(-f32::from_bits(bits));
            }
        }
        e += 1;
    }
    v
}

/// Packs `vals` in pairs on `dev` (bf16x2 or f16x2, with `relu` the clamping cvt): the hardware
/// cvt's result and the software rounding's, as 16-bit halves in value order.
fn pack_pairs(
    dev: &quietattn::Device,
    vals: &[f32],
    bf16: bool,
    relu: bool,
) -> (Vec<u16>, Vec<u16>) {
    let pairs = vals.len() / 2;
    let inb = upload(dev, vals);
    let hw = upload(dev, &vec![0u32; pairs]);
    let sw = upload(dev, &vec![0u32; pairs]);
    let p = args(
        [inb.addr(), hw.addr(), sw.addr(), 0],
        [pairs as i64, i64::from(bf16), i64::from(relu), 0],
    );
    launch(
        dev,
        "emu_convert",
        "qa_test_pack2",
        &p,
        pairs.div_ceil(256) as u32,
        256,
        0,
    )
    .unwrap();
    let halves = |b: &quietattn::launch::Buffer| -> Vec<u16> {
        download::<u32>(dev, b, pairs)
            .into_iter()
            .flat_map(|w| [w as u16, (w >> 16) as u16])
            .collect()
    };
    (halves(&hw), halves(&sw))
}

#[test]
fn packed_conversions_round_like_the_software_and_the_half_crate() {
    for dev in common::devices("packed_conversions") {
        for bf16 in [true, false] {
            let mut vals = rounding_cases(if bf16 { 7 } else { 10 });
            vals.truncate(vals.len() / 2 * 2);
            let (hw, sw) = pack_pairs(&dev, &vals, bf16, false);
            for ((&v, &h), &s) in vals.iter().zip(&hw).zip(&sw) {
                let want = if bf16 {
                    half::bf16::from_f32(v).to_bits()
                } else {
                    half::f16::from_f32(v).to_bits()
                };
                let what = format!(
                    "{v:e} ({:#010x}) bf16={bf16} on {}",
                    v.to_bits(),
                    dev.name()
                );
                if v.is_nan() {
                    // NaN payloads are not specified: a NaN stays a NaN, its sign is not asserted.
                    let exp = if bf16 { 0x7f80 } else { 0x7c00 };
                    assert!(
                        h & exp == exp && h & !(0x8000 | exp) != 0,
                        "hw {h:#06x}: {what}"
                    );
                    assert!(
                        s & exp == exp && s & !(0x8000 | exp) != 0,
                        "sw {s:#06x}: {what}"
                    );
                } else {
                    assert_eq!(h, want, "hw: {what}");
                    assert_eq!(s, want, "sw: {what}");
                }
            }
        }
    }
}

/// The clamping cvt (`.relu`, softpick's P in the tensor-core family): negative values become
/// zero (its sign is not asserted: −0 and +0 weigh a value row alike), NaN stays NaN, everything
/// else rounds exactly like the plain cvt.
#[test]
fn relu_packed_conversions_clamp_then_round() {
    for dev in common::devices("relu_packed_conversions") {
        for bf16 in [true, false] {
            let mut vals = rounding_cases(if bf16 { 7 } else { 10 });
            vals.truncate(vals.len() / 2 * 2);
            assert!(vals.iter().any(|v| *v < 0.0) && vals.iter().any(|v| *v > 0.0));
            let (hw, sw) = pack_pairs(&dev, &vals, bf16, true);
            for ((&v, &h), &s) in vals.iter().zip(&hw).zip(&sw) {
                let what = format!("{v:e} bf16={bf16} on {}", dev.name());
                let exp = if bf16 { 0x7f80 } else { 0x7c00 };
                if v.is_nan() {
                    for x in [h, s] {
                        assert!(
                            x & exp == exp && x & !(0x8000 | exp) != 0,
                            "{x:#06x}: {what}"
                        );
                    }
                } else if v <= 0.0 {
                    assert_eq!(h & 0x7fff, 0, "hw {h:#06x}: {what}");
                    assert_eq!(s & 0x7fff, 0, "sw {s:#06x}: {what}");
                } else {
                    let want = if bf16 {
                        half::bf16::from_f32(v).to_bits()
                    } else {
                        half::f16::from_f32(v).to_bits()
                    };
                    assert_eq!((h, s), (want, want), "{what}");
                }
            }
        }
    }
}
