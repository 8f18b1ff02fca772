//! Kernels with one deliberate bug each (kernels/testing/seeded_bugs.cu): the emulator must
//! report every bug (an error naming kernel, block and thread, or NaN / wrong values) and pass
//! the correct twin.
mod common;

use common::gemm;
use common::{args, download, emulator, emulator_error, launch, raw_attention, upload};

const SHAPE: (usize, usize, usize) = (64, 128, 128);

#[test]
fn correct_gemm_twin_passes() {
    let got = gemm::run_gemm(&emulator(), "gemm_tile", "qa_test_gemm_bf16", SHAPE, true).unwrap();
    assert_eq!(got, gemm::reference(SHAPE));
}

#[test]
fn missing_barrier_on_double_buffer_gives_nan() {
    let got = gemm::run_gemm(
        &emulator(),
        "seeded_bugs",
        "qa_bug_gemm_no_trailing_sync",
        SHAPE,
        true,
    )
    .unwrap();
    assert!(
        got.iter().any(|v| v.is_nan()),
        "a missing __syncthreads before the next cp.async must show up as NaN"
    );
}

#[test]
fn wait_group_one_too_loose_gives_nan() {
    let got = gemm::run_gemm(
        &emulator(),
        "seeded_bugs",
        "qa_bug_gemm_loose_wait",
        SHAPE,
        true,
    )
    .unwrap();
    assert!(
        got.iter().any(|v| v.is_nan()),
        "reading a tile still in flight must give NaN"
    );
}

#[test]
fn wrong_fragment_index_gives_wrong_values() {
    let got = gemm::run_gemm(
        &emulator(),
        "seeded_bugs",
        "qa_bug_gemm_wrong_fragment",
        SHAPE,
        true,
    )
    .unwrap();
    let want = gemm::reference(SHAPE);
    assert!(got.iter().all(|v| v.is_finite()));
    let wrong = got.iter().zip(&want).filter(|(g, w)| g != w).count();
    assert!(
        wrong > want.len() / 2,
        "only {wrong} of {} differ",
        want.len()
    );
}

/// Tensor-core attention: 80 queries (two blocks) over 150 keys (three key tiles, so the
/// pipeline refills both stages).
const TC_SHAPE: (usize, usize) = (80, 150);

/// Largest |kernel - reference| over the row's largest |reference|, the worst row.
fn worst_row_error(got: &[f64], want: &[f64]) -> f64 {
    got.chunks(raw_attention::D)
        .zip(want.chunks(raw_attention::D))
        .map(|(g, w)| {
            let max = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let err = g
                .iter()
                .zip(w)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            if err.is_nan() {
                f64::INFINITY
            } else {
                err / max
            }
        })
        .fold(0.0, f64::max)
}

#[test]
fn correct_tensor_core_twin_passes() {
    let (sq, sk) = TC_SHAPE;
    let (got, want) =
        raw_attention::run(&emulator(), "seeded_bugs", "qa_bug_tc_twin", sq, sk).unwrap();
    let err = worst_row_error(&got, &want);
    assert!(
        err <= 2e-3,
        "docs/contract.md §6 f16 tolerance: worst row error {err}"
    );
}

#[test]
fn tensor_core_missing_stage_wait_is_caught() {
    let (sq, sk) = TC_SHAPE;
    // Either the emulator reports copies never waited for, or the poisoned stage gives NaN.
    match raw_attention::run(&emulator(), "seeded_bugs", "qa_bug_tc_no_wait", sq, sk) {
        Err(e) => assert!(e.to_string().contains("cp.async"), "{e}"),
        Ok((got, _)) => assert!(
            got.iter().any(|v| v.is_nan()),
            "reading a stage still in flight must give NaN"
        ),
    }
}

#[test]
fn tensor_core_wrong_swizzle_gives_wrong_values() {
    let (sq, sk) = TC_SHAPE;
    let (got, want) = raw_attention::run(
        &emulator(),
        "seeded_bugs",
        "qa_bug_tc_wrong_swizzle",
        sq,
        sk,
    )
    .unwrap();
    assert!(got.iter().all(|v| v.is_finite()));
    let err = worst_row_error(&got, &want);
    assert!(
        err > 0.05,
        "K/V chunks in the wrong places must show: worst row error {err}"
    );
}

#[test]
fn shuffle_outside_its_mask_is_reported() {
    let dev = emulator();
    let out = upload(&dev, &[0u32; 2]);
    let ok = args([out.addr(), 0, 0, 0], [0, 0, 0, 0]);
    launch(&dev, "seeded_bugs", "qa_bug_half_warp_sum", &ok, 1, 64, 0).unwrap();
    let sums: Vec<u32> = download(&dev, &out, 2);
    assert_eq!(sums, vec![(1..=16).sum::<u32>(), (33..=48).sum::<u32>()]);
    let bug = args([out.addr(), 0, 0, 0], [1, 0, 0, 0]);
    let msg = emulator_error(launch(
        &dev,
        "seeded_bugs",
        "qa_bug_half_warp_sum",
        &bug,
        1,
        64,
        0,
    ));
    assert!(msg.contains("qa_bug_half_warp_sum"), "{msg}");
    assert!(msg.contains("block (0,0,0)"), "{msg}");
    // The first lane to read past the mask (lanes 8..15 all do) is named.
    assert!(msg.contains("[warp 0 lane "), "{msg}");
    assert!(msg.contains("which is not in its mask 0x0000ffff"), "{msg}");
}

#[test]
fn divergent_barrier_is_reported() {
    let dev = emulator();
    let out = upload(&dev, &[0f32; 2]);
    let ok = args([out.addr(), 0, 0, 0], [0, 0, 0, 0]);
    launch(
        &dev,
        "seeded_bugs",
        "qa_bug_divergent_barrier",
        &ok,
        2,
        128,
        0,
    )
    .unwrap();
    assert_eq!(
        download::<f32>(&dev, &out, 2),
        vec![(0..128).sum::<i32>() as f32; 2]
    );
    let bug = args([out.addr(), 0, 0, 0], [1, 0, 0, 0]);
    let msg = emulator_error(launch(
        &dev,
        "seeded_bugs",
        "qa_bug_divergent_barrier",
        &bug,
        2,
        128,
        0,
    ));
    assert!(msg.contains("divergent __syncthreads"), "{msg}");
    assert!(msg.contains("seeded_bugs.cu:"), "{msg}");
}

#[test]
fn exit_before_barrier_is_reported() {
    let dev = emulator();
    let out = upload(&dev, &[0u32; 1]);
    let ok = args([out.addr(), 0, 0, 0], [0, 40, 0, 0]);
    launch(
        &dev,
        "seeded_bugs",
        "qa_bug_exit_before_barrier",
        &ok,
        1,
        64,
        0,
    )
    .unwrap();
    assert_eq!(download::<u32>(&dev, &out, 1), vec![40]);
    let bug = args([out.addr(), 0, 0, 0], [1, 40, 0, 0]);
    let msg = emulator_error(launch(
        &dev,
        "seeded_bugs",
        "qa_bug_exit_before_barrier",
        &bug,
        1,
        64,
        0,
    ));
    assert!(msg.contains("exited"), "{msg}");
}

#[test]
fn warp_deadlock_is_reported_not_hung() {
    let dev = emulator();
    let out = upload(&dev, &[0f32; 64]);
    let ok = args([out.addr(), 0, 0, 0], [0, 0, 0, 0]);
    launch(&dev, "seeded_bugs", "qa_bug_warp_deadlock", &ok, 1, 64, 0).unwrap();
    let got: Vec<f32> = download(&dev, &out, 64);
    assert!((0..64).all(|t| got[t] == (t + (t ^ 1)) as f32));
    let started = std::time::Instant::now();
    let bug = args([out.addr(), 0, 0, 0], [1, 0, 0, 0]);
    let msg = emulator_error(launch(
        &dev,
        "seeded_bugs",
        "qa_bug_warp_deadlock",
        &bug,
        1,
        64,
        0,
    ));
    assert!(msg.contains("deadlock"), "{msg}");
    assert!(msg.contains("__shfl_xor_sync"), "{msg}");
    assert!(
        started.elapsed().as_secs() < 5,
        "detected without waiting for the timeout"
    );
}

#[test]
fn unwaited_cp_async_is_reported() {
    let dev = emulator();
    let src: Vec<f32> = (0..128).map(|i| i as f32).collect();
    let srcb = upload(&dev, &src);
    let out = upload(&dev, &[0f32; 32]);
    let ok = args([srcb.addr(), out.addr(), 0, 0], [0, 0, 0, 0]);
    launch(
        &dev,
        "seeded_bugs",
        "qa_bug_unwaited_cp_async",
        &ok,
        1,
        32,
        0,
    )
    .unwrap();
    let got: Vec<f32> = download(&dev, &out, 32);
    assert!((0..32).all(|t| got[t] == (4 * ((t + 1) % 32)) as f32));
    let bug = args([srcb.addr(), out.addr(), 0, 0], [1, 0, 0, 0]);
    let msg = emulator_error(launch(
        &dev,
        "seeded_bugs",
        "qa_bug_unwaited_cp_async",
        &bug,
        1,
        32,
        0,
    ));
    assert!(msg.contains("cp.async"), "{msg}");
}

#[test]
fn broken_shuffle_masks_are_reported() {
    let dev = emulator();
    let out = upload(&dev, &[0u32; 64]);
    let run = |mode: i64, threads: u32| {
        let p = args([out.addr(), 0, 0, 0], [mode, 0, 0, 0]);
        launch(
            &dev,
            "seeded_bugs",
            "qa_bug_shuffle_masks",
            &p,
            1,
            threads,
            0,
        )
    };
    run(0, 64).unwrap();
    assert_eq!(
        download::<u32>(&dev, &out, 64),
        (0..64).map(|t| t ^ 1).collect::<Vec<_>>()
    );
    let msg = emulator_error(run(1, 64));
    assert!(msg.contains("does not contain the calling lane"), "{msg}");
    let msg = emulator_error(run(2, 64));
    assert!(msg.contains("overlapping"), "{msg}");
    let msg = emulator_error(run(3, 48));
    assert!(msg.contains("lanes that do not exist"), "{msg}");
}
