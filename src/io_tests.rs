//! Round trips through temporary safetensors files.

use super::*;
use crate::dtype::DType;

/// A fresh path in the temp dir, unique per test and process.
fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "quietattn-io-{}-{name}.safetensors",
        std::process::id()
    ))
}

fn message(e: Error) -> String {
    match e {
        Error::TensorFile { message, .. } => message,
        other => panic!("expected a TensorFile error, got {other}"),
    }
}

#[test]
fn round_trip_every_dtype() {
    let path = temp("round-trip");
    let vals = [1.5, -2.25, 0.0, 0.375, 65504.0, -1.0];
    let tensors: Vec<Tensor> = [DType::F32, DType::F16, DType::BF16]
        .iter()
        .map(|&d| Tensor::from_f64(d, &vals, &[2, 3]).unwrap())
        .collect();
    let cu = [0i32, 2, 7];
    write_file(
        &path,
        &[
            ("a", TensorRef::Float(&tensors[0])),
            ("b", TensorRef::Float(&tensors[1])),
            ("c", TensorRef::Float(&tensors[2])),
            ("cu", TensorRef::I32(&cu, &[3])),
        ],
    )
    .unwrap();
    let f = TensorFile::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    for (name, t) in ["a", "b", "c"].iter().zip(&tensors) {
        let back = f.require_float(name, &[2]).unwrap();
        assert_eq!(back, t, "tensor {name}");
    }
    // Values a dtype represents exactly survive unchanged.
    assert_eq!(f.require_float("a", &[2]).unwrap().to_f64(), vals.to_vec());
    assert_eq!(f.i32_vector("cu").unwrap(), Some(&cu[..]));
    assert_eq!(f.i32_vector("nope").unwrap(), None);
}

#[test]
fn missing_and_invalid_files_are_clear_errors() {
    let path = temp("missing");
    let m = message(TensorFile::read(&path).unwrap_err());
    assert!(m.starts_with("cannot read"), "{m}");
    std::fs::write(&path, b"definitely not safetensors").unwrap();
    let m = message(TensorFile::read(&path).unwrap_err());
    std::fs::remove_file(&path).unwrap();
    assert!(m.contains("not a valid safetensors file"), "{m}");
}

#[test]
fn wrong_rank_dtype_and_names_are_rejected() {
    let path = temp("checks");
    let x = Tensor::from_f64(DType::F32, &[1.0; 4], &[4]).unwrap();
    let ids = [1i32, 2];
    write_file(
        &path,
        &[
            ("x", TensorRef::Float(&x)),
            ("ids", TensorRef::I32(&ids, &[2])),
            ("ids2", TensorRef::I32(&ids, &[1, 2])),
        ],
    )
    .unwrap();
    let f = TensorFile::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let m = message(f.require_float("x", &[3, 4]).unwrap_err());
    assert!(
        m.contains("`x` has rank 1") && m.contains("expected rank 3 or 4"),
        "{m}"
    );
    let m = message(f.require_float("ids", &[1]).unwrap_err());
    assert!(m.contains("dtype i32"), "{m}");
    let m = message(f.require_float("q", &[4]).unwrap_err());
    assert!(m.contains("required tensor `q` is missing"), "{m}");
    let m = message(f.i32_vector("x").unwrap_err());
    assert!(m.contains("expected i32"), "{m}");
    let m = message(f.i32_vector("ids2").unwrap_err());
    assert!(m.contains("expected rank 1"), "{m}");
    let m = message(f.reject_unknown(&["x", "ids"]).unwrap_err());
    assert!(m.contains("unknown tensor(s) `ids2`"), "{m}");
    assert!(f.reject_unknown(&["x", "ids", "ids2"]).is_ok());
}

#[test]
fn write_rejects_inconsistent_i32_shape() {
    let path = temp("bad-shape");
    let m = message(write_file(&path, &[("a", TensorRef::I32(&[1, 2, 3], &[2]))]).unwrap_err());
    assert!(m.contains("do not fill shape"), "{m}");
    assert!(!path.exists());
}
