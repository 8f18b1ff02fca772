//! How fast the emulator runs warp collectives and barriers (printed; run with --nocapture).
//! The results are checked too, and the rates against a generous bound so that a scheduling
//! regression (say, a sleep per switch) fails.
mod common;

use std::time::Instant;

use common::{args, download, emulator, launch, upload};

#[test]
fn warp_collective_and_barrier_speed() {
    let dev = emulator();
    let rounds = 2000i64;
    for threads in [32u32, 128] {
        let out = upload(&dev, &[0f32; 1]);
        let p = args([out.addr(), 0, 0, 0], [rounds, 0, 0, 0]);
        let t0 = Instant::now();
        launch(&dev, "emu_units", "qa_test_shfl_loop", &p, 1, threads, 0).unwrap();
        let dt = t0.elapsed();
        // Each round swaps neighbours and adds 1: thread 0 ends at (0 or 1) + rounds.
        assert_eq!(
            download::<f32>(&dev, &out, 1)[0],
            (rounds % 2 + rounds) as f32
        );
        let per = dt.as_secs_f64() / (rounds as f64 * f64::from(threads / 32));
        println!(
            "emulator speed: __shfl_xor_sync, {threads} threads: {:.2} us per warp collective",
            per * 1e6
        );
        assert!(per < 2e-3, "{per} s per warp collective");
    }
    for threads in [128u32, 1024] {
        let out = upload(&dev, &[0u32; 1]);
        let rounds = 500i64;
        let p = args([out.addr(), 0, 0, 0], [rounds, 0, 0, 0]);
        let t0 = Instant::now();
        launch(&dev, "emu_units", "qa_test_barrier_loop", &p, 1, threads, 0).unwrap();
        let dt = t0.elapsed();
        assert_eq!(download::<u32>(&dev, &out, 1)[0], rounds as u32);
        let per = dt.as_secs_f64() / rounds as f64;
        println!(
            "emulator speed: __syncthreads, {threads} threads: {:.1} us per barrier",
            per * 1e6
        );
        assert!(per < 50e-3, "{per} s per barrier");
    }
}
