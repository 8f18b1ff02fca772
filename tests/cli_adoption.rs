//! The command line as a new user meets it (issue 20, item 6): output cut short by a closed
//! pipe, I/O errors that name their path, `stats` on tensors of more than 2 dimensions, `run`'s
//! summary, the help texts, the variants `probe` offers, and how the README installs the binary.

mod cli_parts;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use cli_parts::*;

/// Runs `args` with stdout a pipe whose read end is closed before the child writes anything, so
/// its first line already meets a closed pipe (no race with the pipe's buffer).
fn with_closed_stdout(args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait")
}

#[track_caller]
fn assert_quiet_success(o: &Output, what: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(0), "{what}: stderr {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(!err.contains("Broken pipe"), "{what}: {err}");
    assert!(!err.contains("error"), "{what}: {err}");
}

#[test]
fn a_closed_stdout_ends_every_command_quietly_with_success() {
    let t = Scratch::new("epipe");
    let input = t.path("in.safetensors");
    small_input(&input);
    let out = t.path("out.safetensors");
    let stats = t.path("s.json");
    let acts = t.path("acts.safetensors");
    write_tensors(&acts, &[("x", &random_tensor(&[16, 8], 4))]);
    let o = with_closed_stdout(&["demo", "--device", "reference", "--seq", "16"]);
    assert_quiet_success(&o, "demo");
    let o = with_closed_stdout(&["stats", "--device", "reference", "--input", s(&acts)]);
    assert_quiet_success(&o, "stats");
    let o = with_closed_stdout(&[
        "run",
        "--device",
        "reference",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--stats",
        s(&stats),
    ]);
    assert_quiet_success(&o, "run");
    // The reader went away, the work did not: both files are complete.
    let o_file = quietattn::io::TensorFile::read(&out).expect("o and lse written");
    assert_eq!(o_file.tensors.len(), 2);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats written"))
            .expect("stats JSON");
    assert!(doc["heads"].is_array(), "{doc}");
}

#[test]
fn head_dash_1_reads_one_line_and_the_command_still_succeeds() {
    // What `quietattn demo | head -1` does: read one line, then close the pipe.
    let mut child = Command::new(bin())
        .args(["demo", "--device", "reference", "--seq", "16"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("one line");
    assert!(first.starts_with("quietattn demo on reference"), "{first}");
    let o = child.wait_with_output().expect("wait");
    assert_quiet_success(&o, "demo | head -1");
}

#[test]
fn a_stdout_that_fails_otherwise_is_an_error_after_the_work() {
    let full = std::path::Path::new("/dev/full");
    if !full.exists() {
        println!("SKIP: no /dev/full here");
        return;
    }
    let t = Scratch::new("stdout-full");
    let input = t.path("in.safetensors");
    small_input(&input);
    let out = t.path("out.safetensors");
    let o = Command::new(bin())
        .args(["run", "--device", "reference", "--input", s(&input)])
        .args(["--output", s(&out)])
        .stdout(std::fs::File::create(full).expect("open /dev/full"))
        .output()
        .expect("run");
    assert_fails(&o, "standard output: cannot write: No space left on device");
    assert!(quietattn::io::TensorFile::read(&out).is_ok(), "o written");
}

#[test]
fn plots_and_output_errors_name_their_path() {
    let t = Scratch::new("io-paths");
    let file = t.path("a-file");
    std::fs::write(&file, b"x").unwrap();
    let model = t.path("no-model");
    // --plots on an existing file.
    let o = quietattn(&["probe", "--model", s(&model), "--plots", s(&file)]);
    assert_fails(
        &o,
        &format!("error: {}: exists and is not a directory", s(&file)),
    );
    // --plots under a parent that is a file.
    let under = file.join("plots");
    let o = quietattn(&["probe", "--model", s(&model), "--plots", s(&under)]);
    assert_fails(
        &o,
        &format!(
            "error: {}: cannot create the folder: Not a directory",
            s(&under)
        ),
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    // An output file under a parent that is a file, and under a missing folder.
    let input = t.path("in.safetensors");
    small_input(&input);
    for out in [file.join("o.safetensors"), t.path("missing/o.safetensors")] {
        let o = run_ref(s(&input), s(&out), &[]);
        assert_fails(&o, &format!("error: {}: ", s(&out)));
    }
}

#[test]
fn stats_explains_and_with_flatten_reads_higher_rank_tensors() {
    let t = Scratch::new("stats-rank");
    let hidden = random_tensor(&[2, 3, 8], 11);
    let flat = quietattn::Tensor::new(hidden.data.clone(), &[6, 8]).unwrap();
    let only_3d = t.path("h.safetensors");
    write_tensors(&only_3d, &[("h", &hidden)]);
    let stats = |input: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["stats", "--device", "reference", "--input", s(input)];
        args.extend_from_slice(extra);
        quietattn(&args)
    };
    // Without --flatten: the error says what to do and what shape it would read.
    let hint = "pass --flatten to fold the leading axes into tokens (read as [6, 8])";
    assert_fails(&stats(&only_3d, &[]), "--flatten");
    let o = stats(&only_3d, &["--tensor", "h"]);
    assert_fails(
        &o,
        "tensor `h` has shape [2, 3, 8]: stats reads [tokens, channels]",
    );
    assert_fails(&o, hint);
    // Beside a 2-D tensor the 3-D one is skipped with the same hint.
    let mixed = t.path("mixed.safetensors");
    write_tensors(&mixed, &[("a", &flat), ("h", &hidden)]);
    let o = stats(&mixed, &[]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains(&format!(
            "skipped h [2, 3, 8] f32: not a 2-D float tensor; {hint}"
        )),
        "{}",
        stdout(&o)
    );
    // With --flatten it is read as [tokens, channels]: the same numbers as the 2-D tensor.
    let json_3d = t.path("3d.json");
    let o = stats(&only_3d, &["--flatten", "--json", s(&json_3d)]);
    assert_ok(&o);
    assert!(
        stdout(&o).starts_with("h [2, 3, 8] read as [6, 8] f32"),
        "{}",
        stdout(&o)
    );
    let json_2d = t.path("2d.json");
    let flat_only = t.path("flat.safetensors");
    write_tensors(&flat_only, &[("h", &flat)]);
    assert_ok(&stats(&flat_only, &["--json", s(&json_2d)]));
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (a, b) = (read(&json_3d), read(&json_2d));
    assert_eq!(a["tensors"]["h"], b["tensors"]["h"]);
    assert_eq!(a["tensors"]["h"]["shape"], serde_json::json!([6, 8]));
}

#[test]
fn run_prints_the_mask_and_the_files_written() {
    let t = Scratch::new("run-summary");
    let input = t.path("in.safetensors");
    small_input(&input);
    let out = t.path("out.safetensors");
    let stats = t.path("stats.json");
    let cases: [(&[&str], &str); 4] = [
        (&[], "no mask"),
        (&["--causal"], "causal"),
        (&["--window=2,1"], "window 2,1"),
        (&["--causal", "--window=-1,0"], "causal, window -1,0"),
    ];
    for (flags, mask) in cases {
        let o = run_ref(s(&input), s(&out), flags);
        assert_ok(&o);
        let text = stdout(&o);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains(&format!("d 8, {mask} in ")),
            "{flags:?}: {text}"
        );
        assert_eq!(lines[1], format!("o and lse written to {}", s(&out)));
    }
    let o = run_ref(s(&input), s(&out), &["--causal", "--stats", s(&stats)]);
    assert_ok(&o);
    assert!(
        stdout(&o).ends_with(&format!(
            "o and lse written to {}; statistics written to {}\n",
            s(&out),
            s(&stats)
        )),
        "{}",
        stdout(&o)
    );
    assert!(stats.is_file());
}

#[test]
fn help_texts_say_what_each_command_does() {
    let o = quietattn(&["ptx", "--help"]);
    assert_ok(&o);
    let help = stdout(&o);
    assert!(help.contains("fatbin"), "{help}");
    assert!(!help.contains("embedded PTX"), "{help}");
    let o = quietattn(&["--help"]);
    assert_ok(&o);
    let top = stdout(&o);
    for (command, says) in [
        ("run", "Runs attention over the q/k/v tensors"),
        ("stats", "Prints the outlier statistics"),
        ("demo", "Runs every variant on a synthetic workload"),
        ("ptx", "Writes the kernel images embedded in this build"),
        ("bench", "Times forward attention of every variant"),
        ("check", "Runs the correctness suite"),
        ("probe", "Runs a real checkpoint's forward pass"),
    ] {
        let line = top
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{command} ")))
            .unwrap_or_else(|| panic!("no line for `{command}` in: {top}"));
        assert!(line.contains(says), "{command}: {line}");
    }
}

#[test]
fn probe_offers_only_the_variants_it_can_replay() {
    let possible = |command: &str| -> String {
        let o = quietattn(&[command, "-h"]);
        assert_ok(&o);
        let help = stdout(&o);
        // The first list of values after the flag (clap may put its help on the next line).
        let (_, from_flag) = help
            .split_once("--variant <VARIANT>")
            .unwrap_or_else(|| panic!("no --variant in: {help}"));
        let (_, values) = from_flag
            .split_once("[possible values: ")
            .unwrap_or_else(|| panic!("no values in: {from_flag}"));
        let (values, _) = values.split_once(']').expect("closing bracket");
        values.to_string()
    };
    assert_eq!(
        possible("probe"),
        "softmax, off-by-one, clipped, softpick, sigmoid"
    );
    // Refused by the parser, before any model is looked for.
    let o = quietattn(&["probe", "--model", "/no/such/model", "--variant", "sink"]);
    assert_fails(&o, "invalid value 'sink' for '--variant <VARIANT>'");
    assert!(!stderr(&o).contains("/no/such/model"), "{}", stderr(&o));
    // `run` reads sink logits from its input, so it keeps offering sink.
    assert_eq!(
        possible("run"),
        "softmax, off-by-one, sink, clipped, softpick, sigmoid"
    );
}

#[test]
fn the_readme_installs_the_binary_before_using_it() {
    let readme = include_str!("../README.md");
    let install = readme
        .find("cargo install --path .")
        .expect("README shows cargo install --path .");
    for section in ["## Probe a real model", "## Command line"] {
        let at = readme.find(section).expect(section);
        assert!(install < at, "cargo install comes after {section}");
    }
    let first_use = readme
        .find("\nquietattn ")
        .expect("a quietattn command line");
    assert!(
        install < first_use,
        "cargo install comes after the first use"
    );
}
