//! What `run`, `stats` and `ptx` write: outputs are checked before any work, never alias an
//! input or each other, and are replaced atomically, so a failure leaves every existing file as
//! it was (issue 11, classes 5–7, and the messages that must name their path).

mod cli_parts;

use std::process::Command;

use cli_parts::*;

const OLD: &[u8] = b"previous content";

/// `run` on the reference with `--output out` and `--stats stats`.
fn run(input: &str, output: &str, stats: &str) -> std::process::Output {
    run_ref(input, output, &["--stats", stats])
}

#[test]
fn a_failed_stats_write_leaves_the_output_alone() {
    let t = Scratch::new("stats-fails");
    let input = t.path("in.safetensors");
    small_input(&input);
    let out = t.path("out.safetensors");
    let missing = t.path("no/such/folder/s.json");
    let dir = t.path("a-dir");
    std::fs::create_dir(&dir).unwrap();
    let readonly = t.path("ro.json");
    std::fs::write(&readonly, OLD).unwrap();
    let mut perms = std::fs::metadata(&readonly).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&readonly, perms).unwrap();
    let cases = [
        (dir.clone(), "is a directory"),
        (missing.clone(), "is not usable"),
        ("/dev/full".into(), "not a regular file"),
        (readonly.clone(), "is read-only"),
    ];
    for (stats, why) in &cases {
        // A new output is not created, an existing one keeps its bytes.
        let o = run(s(&input), s(&out), s(stats));
        assert_fails(&o, why);
        assert!(
            stderr(&o).contains(s(stats)),
            "names the path: {}",
            stderr(&o)
        );
        assert!(!out.exists(), "{why}: output created");
        std::fs::write(&out, OLD).unwrap();
        assert_fails(&run(s(&input), s(&out), s(stats)), why);
        assert_eq!(std::fs::read(&out).unwrap(), OLD, "{why}: output replaced");
        std::fs::remove_file(&out).unwrap();
    }
    assert_eq!(std::fs::read(&readonly).unwrap(), OLD);
    assert_eq!(
        t.entries(),
        ["a-dir", "in.safetensors", "ro.json"],
        "no leftovers"
    );
}

#[test]
fn a_read_only_folder_is_refused_before_any_work() {
    let t = Scratch::new("ro-folder");
    let input = t.path("in.safetensors");
    small_input(&input);
    let folder = t.path("locked");
    std::fs::create_dir(&folder).unwrap();
    let mut perms = std::fs::metadata(&folder).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&folder, perms).unwrap();
    // Root writes into read-only folders anyway: then there is nothing to refuse.
    let probe = folder.join("probe");
    if std::fs::write(&probe, b"").is_ok() {
        let _ = std::fs::remove_file(&probe);
        println!("SKIP read-only folder: this user writes into read-only folders (root)");
    } else {
        let out = t.path("out.safetensors");
        let o = run(s(&input), s(&out), s(&folder.join("s.json")));
        assert_fails(&o, "cannot create a file in");
        assert!(!out.exists());
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_write_that_fails_halfway_keeps_the_previous_file() {
    let t = Scratch::new("fsize");
    let input = t.path("in.safetensors");
    // o is 1 × 256 × 2 × 32 f32 = 64 KiB, far above the 8 KiB file-size limit below.
    write_qkv(&input, &qkv(256, 32), &[]);
    let out = t.path("out.safetensors");
    std::fs::write(&out, OLD).unwrap();
    // RLIMIT_FSIZE in the child alone (no privileges needed); `ulimit -f` counts 512- or
    // 1024-byte blocks depending on the shell, 8 KiB at most either way.
    let o = Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 8 && exec \"$0\" \"$@\"")
        .arg(bin())
        .args([
            "run",
            "--device",
            "reference",
            "--input",
            s(&input),
            "--output",
            s(&out),
        ])
        .output()
        .expect("sh runs");
    assert_fails(&o, "cannot write");
    assert!(stderr(&o).contains(s(&out)), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), OLD, "previous content lost");
    assert_eq!(
        t.entries(),
        ["in.safetensors", "out.safetensors"],
        "no leftovers"
    );
}

#[test]
fn outputs_never_overwrite_the_input() {
    let t = Scratch::new("aliases");
    let input = t.path("in.safetensors");
    small_input(&input);
    let original = std::fs::read(&input).unwrap();
    let link = t.path("link.safetensors");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let hard = t.path("hard.safetensors");
    std::fs::hard_link(&input, &hard).unwrap();
    let dotted = t.dir.join(".").join("in.safetensors");
    let other = t.path("other.safetensors");
    for alias in [&input, &link, &hard, &dotted] {
        let o = quietattn(&["run", "--input", s(&input), "--output", s(alias)]);
        assert_fails(&o, "is the input");
        let o = run(s(&input), s(&other), s(alias));
        assert_fails(&o, "is the input");
        let o = quietattn(&["stats", "--input", s(&input), "--json", s(alias)]);
        assert_fails(&o, "is the input");
        assert_eq!(std::fs::read(&input).unwrap(), original, "{alias:?}");
        assert!(!other.exists());
    }
    // A relative `./name` run from the folder.
    let o = Command::new(bin())
        .current_dir(&t.dir)
        .args([
            "run",
            "--input",
            "in.safetensors",
            "--output",
            "./in.safetensors",
        ])
        .output()
        .unwrap();
    assert_fails(&o, "is the input");
    // --stats on top of --output.
    let o = run(
        s(&input),
        s(&other),
        s(&t.dir.join(".").join("other.safetensors")),
    );
    assert_fails(&o, "is also the output");
    assert!(!other.exists());
    assert_eq!(std::fs::read(&input).unwrap(), original);
}

#[test]
fn outputs_are_replaced_whole_and_keep_their_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let t = Scratch::new("replace");
    let input = t.path("in.safetensors");
    small_input(&input);
    let out = t.path("out.safetensors");
    std::fs::write(&out, OLD).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    let stats = t.path("s.json");
    assert_ok(&run(s(&input), s(&out), s(&stats)));
    let file = quietattn::io::TensorFile::read(&out).unwrap();
    assert_eq!(file.tensors["o"].shape(), [1, 4, 2, 8]);
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(json["head_dim"], 8);
    // Through a symlink: the file it points at is replaced, the link stays a link.
    let link = t.path("link.safetensors");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    std::fs::write(&out, OLD).unwrap();
    assert_ok(&quietattn(&[
        "run",
        "--device",
        "reference",
        "--input",
        s(&input),
        "--output",
        s(&link),
    ]));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(quietattn::io::TensorFile::read(&out).is_ok());
    assert_eq!(
        t.entries(),
        [
            "in.safetensors",
            "link.safetensors",
            "out.safetensors",
            "s.json"
        ]
    );
}

#[test]
fn stats_json_and_ptx_failures_name_their_path() {
    let t = Scratch::new("names");
    let input = t.path("acts.safetensors");
    write_tensors(&input, &[("x", &random_tensor(&[8, 4], 5))]);
    let dir = t.path("d");
    std::fs::create_dir(&dir).unwrap();
    let o = quietattn(&[
        "stats",
        "--device",
        "reference",
        "--input",
        s(&input),
        "--json",
        s(&dir),
    ]);
    assert_fails(&o, &format!("{}: is a directory", s(&dir)));
    assert!(
        stdout(&o).is_empty(),
        "no work before the check: {}",
        stdout(&o)
    );
    let o = quietattn(&["stats", "--input", s(&input), "--json", "/dev/full"]);
    assert_fails(&o, "/dev/full: is not a regular file");
    // ptx into a path that is a file: checked before anything else (even without PTX).
    let file = t.path("f");
    std::fs::write(&file, OLD).unwrap();
    let o = quietattn(&["ptx", "--out-dir", s(&file)]);
    assert_fails(&o, &format!("{}: exists and is not a directory", s(&file)));
    assert_eq!(std::fs::read(&file).unwrap(), OLD);
}
