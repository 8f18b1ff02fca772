//! `quietattn run` with a paged KV cache (`k_cache`, `v_cache`, `block_table`, `seq_lens_k`,
//! and `cu_seqlens_q` for varlen queries): the decode kernels on the emulator write what the
//! f64 paged reference writes (within docs/contract.md §6 for f32), and a bad table or bad offsets
//! are exit 2 with an `error:` line.

mod cli_parts;

use cli_parts::{Scratch, assert_fails, assert_ok, quietattn, random_tensor, s, stdout};
use quietattn::io::{TensorFile, TensorRef, write_file};

/// 2 sequences of 20 and 5 keys in the pages of `table` (16 keys each), GQA 4:2, d 16, with
/// batched queries (q_len 2) or, given `cu_q` offsets, varlen queries over 3 rows.
fn write_paged(path: &std::path::Path, table: &[i32], cu_q: Option<&[i32]>) {
    let q = match cu_q {
        None => random_tensor(&[2, 2, 4, 16], 11),
        Some(_) => random_tensor(&[3, 4, 16], 14),
    };
    let k = random_tensor(&[4, 16, 2, 16], 12);
    let v = random_tensor(&[4, 16, 2, 16], 13);
    let lens = [20, 5];
    let mut tensors = vec![
        ("q", TensorRef::Float(&q)),
        ("k_cache", TensorRef::Float(&k)),
        ("v_cache", TensorRef::Float(&v)),
        ("block_table", TensorRef::I32(table, &[2, 2])),
        ("seq_lens_k", TensorRef::I32(&lens, &[2])),
    ];
    if let Some(cu) = cu_q {
        tensors.push(("cu_seqlens_q", TensorRef::I32(cu, &[3])));
    }
    write_file(path, &tensors).expect("write input");
}

/// `o` and `lse` of two output files agree within f32 tolerance.
fn assert_same_outputs(got: &std::path::Path, want: &std::path::Path, ranks: &[usize]) {
    let (got, want) = (
        TensorFile::read(got).unwrap(),
        TensorFile::read(want).unwrap(),
    );
    for name in ["o", "lse"] {
        let g = got.require_float(name, ranks).unwrap().to_f64();
        let w = want.require_float(name, ranks).unwrap().to_f64();
        assert_eq!(g.len(), w.len(), "{name}");
        for (i, (g, w)) in g.iter().zip(&w).enumerate() {
            assert!(
                (g - w).abs() <= 2e-5 * (1.0 + w.abs()),
                "{name}[{i}]: {g} vs {w}"
            );
        }
    }
}

fn run(device: &str, input: &str, output: &str) -> std::process::Output {
    quietattn(&[
        "run", "--device", device, "--input", input, "--output", output, "--causal",
    ])
}

#[test]
fn paged_run_on_the_emulator_matches_the_reference() {
    let dir = Scratch::new("cli-paged");
    let input = dir.path("paged.safetensors");
    write_paged(&input, &[3, 0, 1, -1], None);
    let (emu, reference) = (dir.path("emu.safetensors"), dir.path("ref.safetensors"));
    let out = run("emulator", s(&input), s(&emu));
    assert_ok(&out);
    assert!(
        stdout(&out).contains("on emulator (paged)"),
        "{}",
        stdout(&out)
    );
    assert_ok(&run("reference", s(&input), s(&reference)));
    assert_same_outputs(&emu, &reference, &[3, 4]);
}

#[test]
fn paged_run_with_varlen_queries_matches_the_reference() {
    // Sequence 0 (20 keys) decodes 2 tokens, sequence 1 (5 keys) one: o [3, 4, 16], lse [4, 3].
    let dir = Scratch::new("cli-paged-varlen");
    let input = dir.path("paged.safetensors");
    write_paged(&input, &[3, 0, 1, -1], Some(&[0, 2, 3]));
    let (emu, reference) = (dir.path("emu.safetensors"), dir.path("ref.safetensors"));
    assert_ok(&run("emulator", s(&input), s(&emu)));
    assert_ok(&run("reference", s(&input), s(&reference)));
    let shape = |path: &std::path::Path, name: &str| {
        TensorFile::read(path)
            .unwrap()
            .require_float(name, &[2, 3])
            .unwrap()
            .shape
            .clone()
    };
    assert_eq!(shape(&emu, "o"), [3, 4, 16]);
    assert_eq!(shape(&emu, "lse"), [4, 3]);
    assert_same_outputs(&emu, &reference, &[2, 3]);
}

#[test]
fn decreasing_cu_seqlens_q_is_exit_2() {
    let dir = Scratch::new("cli-paged-varlen-bad");
    let input = dir.path("paged.safetensors");
    write_paged(&input, &[3, 0, 1, -1], Some(&[0, 3, 2]));
    let out = run("emulator", s(&input), s(&dir.path("o.safetensors")));
    assert_fails(&out, "non-decreasing");
}

#[test]
fn a_page_outside_the_cache_is_exit_2() {
    let dir = Scratch::new("cli-paged-bad");
    let input = dir.path("paged.safetensors");
    write_paged(&input, &[3, 9, 1, -1], None); // sequence 0's second page does not exist
    let out = run("emulator", s(&input), s(&dir.path("o.safetensors")));
    assert_fails(&out, "block_table[0, 1] = 9");
}
