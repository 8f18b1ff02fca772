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
