//! Helpers of the CLI tests that feed bad inputs and check what is written: a scratch folder
//! per test, the binary, the failure contract (exit 2, one `error:` line, no panic).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use quietattn::io::{TensorRef, write_file};
use quietattn::{DType, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A fresh folder for one test, removed when dropped.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("quietattn-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Every entry of the folder, sorted (leftover temporary files show up here).
    pub fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_quietattn")
}

pub fn quietattn(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs with a deadline: a command that blocks (a FIFO input) fails the test instead of
/// hanging it.
pub fn quietattn_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("quietattn {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failing run: exit code 2, one `error:` line naming `needle`, no panic.
#[track_caller]
pub fn assert_fails(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[track_caller]
pub fn assert_ok(o: &Output) {
    assert!(o.status.success(), "stderr: {}", stderr(o));
}

pub fn random_tensor(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
    Tensor::from_f64(DType::F32, &v, shape).expect("tensor")
}

/// q `[1, sq, 2, d]`, k/v `[1, 6, 2, d]`, f32, random.
pub fn qkv(sq: usize, d: usize) -> [Tensor; 3] {
    [
        random_tensor(&[1, sq, 2, d], 1),
        random_tensor(&[1, 6, 2, d], 2),
        random_tensor(&[1, 6, 2, d], 3),
    ]
}

/// One float tensor per entry, written to `path`.
pub fn write_tensors(path: &Path, tensors: &[(&str, &Tensor)]) {
    let refs: Vec<(&str, TensorRef<'_>)> = tensors
        .iter()
        .map(|(n, t)| (*n, TensorRef::Float(t)))
        .collect();
    write_file(path, &refs).expect("write tensors");
}

/// Writes q, k, v (and `extra`) to `path`.
pub fn write_qkv(path: &Path, [q, k, v]: &[Tensor; 3], extra: &[(&str, TensorRef<'_>)]) {
    let mut all = vec![
        ("q", TensorRef::Float(q)),
        ("k", TensorRef::Float(k)),
        ("v", TensorRef::Float(v)),
    ];
    all.extend_from_slice(extra);
    write_file(path, &all).expect("write input");
}

/// A small valid `run` input at `path`.
pub fn small_input(path: &Path) {
    write_qkv(path, &qkv(4, 8), &[]);
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `quietattn run --device reference --input IN --output OUT EXTRA...`.
pub fn run_ref(input: &str, output: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        "--device",
        "reference",
        "--input",
        input,
        "--output",
        output,
    ];
    args.extend_from_slice(extra);
    quietattn(&args)
}
