//! `quietattn check` and `quietattn bench --json` end to end.

use std::process::{Command, Output};

fn quietattn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quietattn"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The whole matrix on the emulator passes: exit 0, one table row per case and family, a
/// summary line with every case passed but those the tensor-core family does not serve (f32,
/// head dims it does not instantiate), which are skipped.
#[test]
fn check_on_the_emulator_passes() {
    let o = quietattn(&["check", "--device", "emulator"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    if !o.status.success() && err.contains("emulator is not compiled in") {
        quietattn::testing::skip("check_on_the_emulator_passes", &"emulator not built");
        return;
    }
    assert!(o.status.success(), "{out}\n{err}");
    let all = quietattn::check::matrix::all_cases();
    let cases = all.len();
    let tc_dims = quietattn::ops::attention::family::tensor_core_head_dims();
    let tc_served = all
        .iter()
        .filter(|(c, _)| c.dtype != quietattn::DType::F32 && tc_dims.contains(&(c.head_dim as u32)))
        .count();
    assert_eq!(quietattn::check::Family::ALL.len(), 2);
    let (total, skipped) = (2 * cases, cases - tc_served);
    assert!(
        out.contains(&format!(
            "{} of {total} passed, 0 mismatch(es), 0 error(s), {skipped} skipped",
            total - skipped
        )),
        "{out}"
    );
    let rows = |family: &str, result: &str| {
        out.lines()
            .filter(|l| l.starts_with(family) && l.trim_end().ends_with(result))
            .count()
    };
    assert_eq!(rows("cuda-core", " ok"), cases, "{out}");
    assert_eq!(rows("tensor-core", " ok"), tc_served, "{out}");
    assert_eq!(rows("tensor-core", " skipped"), skipped, "{out}");
    // Statistics were compared in some cases and not collected in others.
    assert!(out.contains(" ok ") && out.contains(" - "), "{out}");
}

/// An unknown device is a usage error (clap, exit 2), not a failed check.
#[test]
fn check_rejects_an_unknown_device() {
    let o = quietattn(&["check", "--device", "tpu"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

/// `bench --json` writes one row per timed configuration with the selected shape.
#[test]
fn bench_json_has_the_selected_shape() {
    let path = std::env::temp_dir().join(format!("quietattn-bench-{}.json", std::process::id()));
    let p = path.to_str().expect("utf-8 temp path");
    let o = quietattn(&[
        "bench",
        "--device",
        "emulator",
        "--seq",
        "16",
        "--dim",
        "64",
        "--batch",
        "2",
        "--heads",
        "3",
        "--causal",
        "yes",
        "--variant",
        "sink",
        "--iters",
        "1",
        "--json",
        p,
    ]);
    if !o.status.success() && text(&o.stderr).contains("emulator is not compiled in") {
        quietattn::testing::skip("bench_json_has_the_selected_shape", &"emulator not built");
        return;
    }
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("json written")).expect("json");
    let rows = doc["rows"].as_array().expect("rows");
    // bf16 d64 on the emulator (cc 8.0): both kernel families, each with stats off and on.
    assert_eq!(rows.len(), 4, "two families, stats off and on: {doc}");
    let expected = [
        ("cuda-core", false),
        ("cuda-core", true),
        ("tensor-core", false),
        ("tensor-core", true),
    ];
    for (r, (kernel, stats)) in rows.iter().zip(expected) {
        assert_eq!(r["kernel"], kernel, "{r}");
        assert_eq!(r["variant"], "sink");
        assert_eq!(
            (r["batch"].as_u64(), r["heads"].as_u64()),
            (Some(2), Some(3))
        );
        assert_eq!(
            (r["seq"].as_u64(), r["head_dim"].as_u64()),
            (Some(16), Some(64))
        );
        assert_eq!(r["causal"], true);
        assert_eq!(r["stats"], stats);
        assert!(r["seconds"].as_f64().is_some_and(|s| s > 0.0), "{r}");
    }
    std::fs::remove_file(path).expect("remove");
    let bad = quietattn(&["bench", "--device", "emulator", "--variant", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("unknown normaliser"));
}
