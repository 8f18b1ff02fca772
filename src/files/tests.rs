//! Inputs that are not regular files, size limits, aliasing outputs and atomic replacement.

use super::*;
use crate::error::Error;
use std::path::PathBuf;

/// A fresh folder per test.
fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quietattn-files-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn message(e: Error) -> String {
    match e {
        Error::File { path, message } => format!("{path}: {message}"),
        other => panic!("expected a File error, got {other}"),
    }
}

#[test]
fn inputs_must_be_regular_files_within_the_limit() {
    let dir = folder("read");
    let m = message(read_input(Path::new("/dev/zero"), DEFAULT_MAX_INPUT_BYTES).unwrap_err());
    assert_eq!(
        m,
        "/dev/zero: is not a regular file (a FIFO, socket or device); inputs must be regular files"
    );
    let m = message(read_input(&dir, 10).unwrap_err());
    assert!(m.ends_with("is a directory, not a file"), "{m}");
    let f = dir.join("f");
    std::fs::write(&f, [7u8; 100]).unwrap();
    assert_eq!(read_input(&f, 100).unwrap(), vec![7u8; 100]);
    let m = message(read_input(&f, 99).unwrap_err());
    assert!(m.contains("larger than the input limit of 99 bytes"), "{m}");
    let m = message(read_input(&dir.join("missing"), 10).unwrap_err());
    assert!(m.contains("cannot read"), "{m}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn outputs_alias_nothing() {
    let dir = folder("alias");
    let input = dir.join("in");
    std::fs::write(&input, b"input").unwrap();
    let hard = dir.join("hard");
    std::fs::hard_link(&input, &hard).unwrap();
    let sym = dir.join("sym");
    std::os::unix::fs::symlink(&input, &sym).unwrap();
    let dotted = dir.join(".").join("in");
    for alias in [&input, &hard, &sym, &dotted] {
        let m = message(OutputSet::prepare(&[&input], &[alias]).unwrap_err());
        assert!(m.contains("is the input"), "{m}");
    }
    let a = dir.join("a");
    let m = message(OutputSet::prepare(&[&input], &[&a, &dir.join(".").join("a")]).unwrap_err());
    assert!(m.contains("is also the output"), "{m}");
    // Nothing was created by the refusals.
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["hard", "in", "sym"]);
    assert_eq!(std::fs::read(&input).unwrap(), b"input");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn nothing_changes_until_every_output_is_staged() {
    let dir = folder("commit");
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::fs::write(&a, b"old a").unwrap();
    let mut set = OutputSet::prepare(&[], &[&a, &b]).unwrap();
    set.stage(0, b"new a").unwrap();
    // b was never written: the commit refuses and a keeps its bytes.
    let m = message(set.commit().unwrap_err());
    assert!(m.ends_with("nothing was written for it"), "{m}");
    assert_eq!(std::fs::read(&a).unwrap(), b"old a");
    assert!(!b.exists());
    // Dropped sets leave no temporary files; a full set replaces both.
    let mut set = OutputSet::prepare(&[], &[&a, &b]).unwrap();
    set.stage(0, b"new a").unwrap();
    set.stage(1, b"new b").unwrap();
    set.commit().unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), b"new a");
    assert_eq!(std::fs::read(&b).unwrap(), b"new b");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unusable_outputs_are_refused_before_any_work() {
    let dir = folder("refuse");
    let cases: [(PathBuf, &str); 4] = [
        (dir.clone(), "is a directory"),
        (PathBuf::from("/dev/full"), "is not a regular file"),
        (dir.join("no/such/x"), "is not usable"),
        (PathBuf::new(), "does not name a file"),
    ];
    for (path, why) in &cases {
        let m = message(OutputFile::prepare(path).unwrap_err());
        assert!(
            m.starts_with(&path.display().to_string()) && m.contains(why),
            "{m}"
        );
    }
    let ro = dir.join("ro");
    std::fs::write(&ro, b"keep").unwrap();
    let mut p = std::fs::metadata(&ro).unwrap().permissions();
    p.set_readonly(true);
    std::fs::set_permissions(&ro, p).unwrap();
    assert!(message(write_atomic(&ro, b"x").unwrap_err()).contains("is read-only"));
    assert_eq!(std::fs::read(&ro).unwrap(), b"keep");
    std::fs::remove_dir_all(&dir).unwrap();
}
