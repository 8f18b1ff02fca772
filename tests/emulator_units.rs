//! Built-ins of the emulator against hand-indexed expectations from the CUDA documentation
//! (and on a GPU, when present, the same expectations against the hardware).
mod common;

use common::{args, devices, download, launch, upload};

/// The lane `lane` reads in a shuffle of `kind` per the CUDA C++ guide, or itself.
fn shfl_source(kind: usize, lane: usize, d: i64, width: usize) -> usize {
    let base = lane / width * width;
    match kind {
        // __shfl_sync: srcLane modulo width, within the lane's own group.
        0 => base + ((lane as i64 * d + 1).rem_euclid(width as i64)) as usize,
        // __shfl_up_sync: lane - delta unless that leaves the group.
        1 => {
            if lane - base >= d as usize {
                lane - d as usize
            } else {
                lane
            }
        }
        // __shfl_down_sync: lane + delta unless that leaves the group.
        2 => {
            if lane - base + (d as usize) < width {
                lane + d as usize
            } else {
                lane
            }
        }
        // __shfl_xor_sync: earlier groups may be read, later ones give the own value.
        _ => {
            let src = lane ^ d as usize;
            if src / width > lane / width {
                lane
            } else {
                src
            }
        }
    }
}

#[test]
fn shuffles_of_every_kind_and_width() {
    for dev in devices("shuffles_of_every_kind_and_width") {
        let threads = 64usize;
        for width in [32usize, 16, 8, 4, 2] {
            for d in [1i64, 3, 5] {
                let out = upload(&dev, &vec![0u32; 5 * threads]);
                let p = args([out.addr(), 0, 0, 0], [width as i64, d, 0, 0]);
                launch(&dev, "emu_units", "qa_test_shfl", &p, 1, threads as u32, 0).unwrap();
                let got: Vec<u32> = download(&dev, &out, 5 * threads);
                for t in 0..threads {
                    let lane = t % 32;
                    for kind in 0..5 {
                        let src = t - lane + shfl_source(kind.min(3), lane, d, width);
                        assert_eq!(
                            got[kind * threads + t],
                            src as u32 * 7 + 1,
                            "{}: kind {kind} width {width} d {d} thread {t}",
                            dev.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn votes_reductions_and_disjoint_masks() {
    for dev in devices("votes_reductions_and_disjoint_masks") {
        let threads = 64usize;
        for modulo in [1i64, 3, 7, 100] {
            let out = upload(&dev, &vec![0u32; 6 * threads]);
            let p = args([out.addr(), 0, 0, 0], [modulo, 0, 0, 0]);
            launch(&dev, "emu_units", "qa_test_vote", &p, 1, threads as u32, 0).unwrap();
            let got: Vec<u32> = download(&dev, &out, 6 * threads);
            for t in 0..threads {
                let warp0 = t - t % 32;
                let half: Vec<usize> = if t % 32 < 16 {
                    (warp0..warp0 + 16).collect()
                } else {
                    (warp0 + 16..warp0 + 32).collect()
                };
                let pred = |u: usize| u as i64 % modulo == 0;
                let ballot: u32 = half
                    .iter()
                    .filter(|&&u| pred(u))
                    .map(|&u| 1u32 << (u % 32))
                    .sum();
                assert_eq!(got[t], ballot, "ballot t={t} modulo={modulo}");
                assert_eq!(got[threads + t], u32::from(half.iter().any(|&u| pred(u))));
                assert_eq!(
                    got[2 * threads + t],
                    u32::from(half.iter().all(|&u| pred(u)))
                );
                assert_eq!(
                    got[3 * threads + t],
                    u32::from(half.iter().all(|&u| u % 16 != 5))
                );
                let warp = warp0..warp0 + 32;
                assert_eq!(got[4 * threads + t], warp.clone().sum::<usize>() as u32);
                let max = warp.map(|u| (u * 37) % 101).max().unwrap();
                assert_eq!(got[5 * threads + t], max as u32);
            }
        }
    }
}

#[test]
fn atomics_add_max_min_cas_exch() {
    for dev in devices("atomics_add_max_min_cas_exch") {
        let (blocks, threads) = (3u32, 96u32);
        let n = u64::from(blocks * threads);
        let f = upload(&dev, &[0f32]);
        let d = upload(&dev, &[0f64]);
        let u = upload(
            &dev,
            &[0u32, 0, u32::MAX, i32::MIN as u32, i32::MAX as u32, 0, 0, 0],
        );
        let ull = upload(&dev, &[0u64, 0, u64::MAX, 0]);
        let p = args([f.addr(), d.addr(), u.addr(), ull.addr()], [0; 4]);
        launch(&dev, "emu_units", "qa_test_atomics", &p, blocks, threads, 0).unwrap();
        let vals: Vec<u64> = (0..n).map(|g| (g * 37) % 1001).collect();
        let sum = n * (n + 1) / 2;
        assert_eq!(download::<f32>(&dev, &f, 1)[0], sum as f32);
        assert_eq!(download::<f64>(&dev, &d, 1)[0], sum as f64 * 0.5);
        let got_u: Vec<u32> = download(&dev, &u, 8);
        let (max, min) = (*vals.iter().max().unwrap(), *vals.iter().min().unwrap());
        assert_eq!(got_u[0], sum as u32);
        assert_eq!(got_u[1], max as u32);
        assert_eq!(got_u[2], min as u32);
        assert_eq!(got_u[3] as i32, max as i32 - 500);
        assert_eq!(got_u[4] as i32, min as i32 - 500);
        assert_eq!(got_u[5], n as u32);
        assert_eq!(got_u[6], 7);
        let got_l: Vec<u64> = download(&dev, &ull, 4);
        assert_eq!(got_l, vec![sum << 33, max << 33, min << 33, 3 * n]);
    }
}

/// `(matrix m, row r, column c)` element of the ldmatrix test input.
fn ld_elem(m: usize, r: usize, c: usize) -> u32 {
    (m * 64 + r * 8 + c) as u32 * 3 + 1
}

#[test]
fn ldmatrix_x1_x2_x4_with_and_without_trans() {
    for dev in devices("ldmatrix_x1_x2_x4_with_and_without_trans") {
        let input: Vec<u16> = (0..256)
            .map(|i| ld_elem(i / 64, i / 8 % 8, i % 8) as u16)
            .collect();
        let inb = upload(&dev, &input);
        let out = upload(&dev, &vec![0u32; 6 * 32 * 4]);
        let p = args([inb.addr(), out.addr(), 0, 0], [0; 4]);
        launch(&dev, "emu_units", "qa_test_ldmatrix", &p, 1, 32, 0).unwrap();
        let got: Vec<u32> = download(&dev, &out, 6 * 32 * 4);
        for (v, (count, trans)) in [
            (1, false),
            (2, false),
            (4, false),
            (1, true),
            (2, true),
            (4, true),
        ]
        .into_iter()
        .enumerate()
        {
            for lane in 0..32 {
                for reg in 0..4 {
                    // PTX ISA: register m of lane l holds row l/4, columns 2(l%4), 2(l%4)+1 of
                    // matrix m; .trans holds column l/4, rows 2(l%4), 2(l%4)+1.
                    let (r, c) = (lane / 4, 2 * (lane % 4));
                    let want = if reg >= count {
                        0
                    } else if trans {
                        ld_elem(reg, c, r) | ld_elem(reg, c + 1, r) << 16
                    } else {
                        ld_elem(reg, r, c) | ld_elem(reg, r, c + 1) << 16
                    };
                    assert_eq!(
                        got[(v * 32 + lane) * 4 + reg],
                        want,
                        "{}: x{count} trans={trans} lane {lane} reg {reg}",
                        dev.name()
                    );
                }
            }
        }
    }
}

#[test]
fn mma_fragment_layout_f16_and_bf16() {
    for dev in devices("mma_fragment_layout_f16_and_bf16") {
        for bf16 in [false, true] {
            // Small integers: every product and sum is exact in f32.
            let a: Vec<f32> = (0..256).map(|i| ((i * 7 + 3) % 11) as f32 - 5.0).collect();
            let b: Vec<f32> = (0..128).map(|i| ((i * 5 + 1) % 9) as f32 - 4.0).collect();
            let c: Vec<f32> = (0..128).map(|i| (i % 13) as f32 - 6.0).collect();
            let bits = |x: &[f32]| common::gemm::to_bits(x, bf16);
            let (ab, bb) = (upload(&dev, &bits(&a)), upload(&dev, &bits(&b)));
            let (cb, db) = (upload(&dev, &c), upload(&dev, &vec![0f32; 128]));
            let p = args(
                [ab.addr(), bb.addr(), cb.addr(), db.addr()],
                [i64::from(bf16), 0, 0, 0],
            );
            launch(&dev, "emu_units", "qa_test_mma_fragment", &p, 1, 32, 0).unwrap();
            let got: Vec<f32> = download(&dev, &db, 128);
            for i in 0..16 {
                for j in 0..8 {
                    let want =
                        c[i * 8 + j] + (0..16).map(|k| a[i * 16 + k] * b[k * 8 + j]).sum::<f32>();
                    assert_eq!(
                        got[i * 8 + j],
                        want,
                        "{}: bf16={bf16} D[{i}][{j}]",
                        dev.name()
                    );
                }
            }
        }
    }
}

#[test]
fn shared_memory_is_poisoned_per_block_and_cp_async_zero_fills() {
    let dev = common::emulator();
    let src: Vec<u8> = (1..=16).collect();
    let srcb = upload(&dev, &src);
    for n in [16i64, 5, 0] {
        let blocks = 3u32;
        let out = upload(&dev, &vec![0u32; 4 * blocks as usize]);
        let p = args([out.addr(), srcb.addr(), 0, 0], [n, 0, 0, 0]);
        launch(&dev, "emu_units", "qa_test_poison", &p, blocks, 32, 256).unwrap();
        let got: Vec<u32> = download(&dev, &out, 4 * blocks as usize);
        let word = |at: usize| -> u32 {
            let b: Vec<u8> = (at..at + 4)
                .map(|i| if (i as i64) < n { src[i] } else { 0 })
                .collect();
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        };
        for blk in 0..blocks as usize {
            // Every block, not only the first, sees NaN bytes where nothing was written yet.
            assert_eq!(got[blk * 4], u32::MAX, "static shared, block {blk}");
            assert_eq!(got[blk * 4 + 1], u32::MAX, "dynamic shared, block {blk}");
            assert_eq!(
                got[blk * 4 + 2],
                word(4),
                "cp.async bytes 4..8, src-size {n}"
            );
            assert_eq!(
                got[blk * 4 + 3],
                word(12),
                "cp.async bytes 12..16, src-size {n}"
            );
        }
    }
}
