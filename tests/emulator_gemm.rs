//! The test-only tensor-core GEMM tile (kernels/testing/gemm_tile.cu: cp.async double buffering,
//! ldmatrix and ldmatrix.trans, mma.sync) against an exact integer reference, f16 and bf16, on
//! the emulator and, when present, on a GPU.
mod common;

use common::devices;
use common::gemm::{reference, run_gemm};

#[test]
fn gemm_tile_matches_exact_reference() {
    // Multiple k-tiles (double buffering), and edges that need zero-filled cp.async.
    let shapes = [
        (64, 64, 64),
        (64, 64, 128),
        (128, 64, 96),
        (48, 40, 72),
        (64, 128, 32),
    ];
    for dev in devices("gemm_tile_matches_exact_reference") {
        for shape in shapes {
            let want = reference(shape);
            for (kernel, bf16) in [("qa_test_gemm_f16", false), ("qa_test_gemm_bf16", true)] {
                let got = run_gemm(&dev, "gemm_tile", kernel, shape, bf16).unwrap();
                assert_eq!(got, want, "{}: {kernel} {shape:?}", dev.name());
            }
        }
    }
}
