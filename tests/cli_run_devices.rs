//! `quietattn run --device emulator` (the real kernel on the CPU) matches `--device reference`
//! (the f64 oracle) on every variant, through files, flags and all.

use std::path::PathBuf;
use std::process::Command;

use quietattn::check::outputs::{lse_tolerance, o_tolerance};
use quietattn::io::{TensorFile, TensorRef, write_file};
use quietattn::{DType, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "quietattn-devices-{}-{name}.safetensors",
        std::process::id()
    ))
}

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
    Tensor::from_f64(DType::F32, &v, shape).expect("shape")
}

/// Runs `quietattn run` on `input` and returns (o, lse) as f64.
fn run(input: &PathBuf, device: &str, flags: &[&str]) -> (Vec<f64>, Vec<f64>) {
    let output = temp(&format!(
        "out-{device}-{}",
        flags.join("_").replace(['=', ','], "")
    ));
    let o = Command::new(env!("CARGO_BIN_EXE_quietattn"))
        .args(["run", "--input"])
        .arg(input)
        .arg("--output")
        .arg(&output)
        .args(["--device", device])
        .args(flags)
        .output()
        .expect("the binary runs");
    assert!(
        o.status.success(),
        "{device} {flags:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let file = TensorFile::read(&output).expect("output file");
    let got = (
        file.require_float("o", &[4]).expect("o").to_f64(),
        file.require_float("lse", &[3]).expect("lse").to_f64(),
    );
    std::fs::remove_file(output).expect("remove output");
    got
}

#[test]
fn emulator_run_matches_reference_run_on_every_variant() {
    if quietattn::Device::emulator().is_err() {
        quietattn::testing::skip(
            "emulator_run_matches_reference_run_on_every_variant",
            &"emulator not built",
        );
        return;
    }
    // b=2, sq=9, sk=13, 4 query heads over 2 kv heads, d=64 (GQA); f32 so docs/contract.md §6's
    // tightest tolerance applies.
    let (q, k, v) = (
        random(&[2, 9, 4, 64], 1),
        random(&[2, 13, 2, 64], 2),
        random(&[2, 13, 2, 64], 3),
    );
    let sinks = Tensor::new(TensorData::F32(vec![0.5, -1.0, 2.0, 0.0]), &[4]).expect("sinks");
    let gate = random(&[2, 9, 4, 64], 4);
    let input = temp("in");
    write_file(
        &input,
        &[
            ("q", TensorRef::Float(&q)),
            ("k", TensorRef::Float(&k)),
            ("v", TensorRef::Float(&v)),
            ("sinks", TensorRef::Float(&sinks)),
            ("gate", TensorRef::Float(&gate)),
        ],
    )
    .expect("write input");
    let cases: &[&[&str]] = &[
        &["--variant", "softmax"],
        &["--variant", "softmax", "--causal", "--softcap", "5"],
        &["--variant", "off-by-one", "--window=3,1"],
        &["--variant", "sink", "--causal"],
        &["--variant", "clipped", "--gamma", "-0.03", "--zeta", "1.0"],
        &["--variant", "softpick", "--causal"],
        &["--variant", "sigmoid"],
        &["--variant", "sigmoid", "--sigmoid-bias", "-1.5", "--causal"],
        &["--variant", "softmax", "--gate", "sigmoid-elementwise"],
    ];
    for flags in cases {
        let (want_o, want_lse) = run(&input, "reference", flags);
        let (got_o, got_lse) = run(&input, "emulator", flags);
        assert_eq!(got_o.len(), want_o.len());
        // docs/contract.md §6 for f32, from the library's checker (`quietattn check` uses the
        // same).
        for (i, (g, w)) in got_o.iter().zip(&want_o).enumerate() {
            assert!(
                (g - w).abs() <= o_tolerance(DType::F32, *w, 0.0),
                "{flags:?}: o[{i}] = {g}, reference {w}"
            );
        }
        for (i, (g, w)) in got_lse.iter().zip(&want_lse).enumerate() {
            let same_inf = g.is_infinite() && g == w;
            assert!(
                same_inf || (g - w).abs() <= lse_tolerance(DType::F32, *w),
                "{flags:?}: lse[{i}] = {g}, reference {w}"
            );
        }
    }
    std::fs::remove_file(input).expect("remove input");
}
