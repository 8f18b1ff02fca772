//! The GGUF reader, dequantiser and tokenizer: on small hand-built files (always), on truncated
//! and corrupted ones (error values, never panics), and on SmolLM2's real file against numbers
//! the Python `gguf` package and Hugging Face transformers computed
//! (tests/fixtures/probe/smollm2.json; SKIP when the model is not fetched).

mod gguf_parts;

use gguf_parts::{GgufWriter, TINY_HIDDEN, sample, tiny_llama};
use quietattn::model::cache;
use quietattn::model::gguf::{GgmlType, GgufFile, GgufValue};
use quietattn::model::gguf_llama::unpermute_qk_rows;
use quietattn::model::gguf_tokenizer::GgufTokenizer;
use quietattn::probe::LoadedModel;
use quietattn::{AttentionOptions, Device, Error};
use serde_json::Value;

fn parse(bytes: Vec<u8>) -> quietattn::Result<GgufFile> {
    GgufFile::parse(bytes, "test.gguf")
}

#[test]
fn sample_metadata_has_every_value_type() {
    let file = parse(sample().0).expect("valid sample");
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    assert_eq!(file.data_offset() % 32, 0);
    let get = |k: &str| file.get(k).unwrap_or_else(|| panic!("{k} missing")).clone();
    assert_eq!(get("t.u8"), GgufValue::U8(200));
    assert_eq!(get("t.i8"), GgufValue::I8(-5));
    assert_eq!(get("t.u16"), GgufValue::U16(60000));
    assert_eq!(get("t.i16"), GgufValue::I16(-300));
    assert_eq!(get("t.u32").as_u64(), Some(4_000_000_000));
    assert_eq!(get("t.i32").as_i64(), Some(-7));
    assert_eq!(get("t.i32").as_u64(), None);
    assert_eq!(get("t.f32").as_f64(), Some(1.5));
    assert_eq!(get("t.bool").as_bool(), Some(true));
    assert_eq!(get("t.u64").as_u64(), Some(1 << 40));
    assert_eq!(get("t.i64").as_i64(), Some(-(1 << 40)));
    assert_eq!(get("t.f64").as_f64(), Some(0.125));
    let u16s = |v: &[u16]| GgufValue::Array(v.iter().map(|&x| GgufValue::U16(x)).collect());
    assert_eq!(
        get("t.nested"),
        GgufValue::Array(vec![u16s(&[1, 2]), u16s(&[])])
    );
    assert_eq!(file.metadata_str("general.architecture").unwrap(), "llama");
    assert!(matches!(
        file.metadata_u64("general.architecture"),
        Err(Error::TensorFile { .. })
    ));
    assert!(matches!(
        file.metadata_u64("absent.key"),
        Err(Error::TensorFile { .. })
    ));
}

#[test]
fn sample_tensors_dequantise_to_hand_computed_values() {
    let (bytes, want) = sample();
    let file = parse(bytes).unwrap();
    assert_eq!(file.tensors().len(), want.len());
    for (name, values) in want {
        let (info, got) = file.dequantize(name).unwrap();
        assert_eq!(got, values, "{name}");
        assert_eq!(info.n_elements() as usize, values.len(), "{name}");
    }
    let types: Vec<GgmlType> = file.tensors().iter().map(|t| t.ty).collect();
    use GgmlType::*;
    assert_eq!(types, vec![Q4_1, Q4_0, Q8_0, F32, F16]);
    assert_eq!(file.tensor("q4_1").unwrap().dims, vec![32, 2]);
    assert!(matches!(
        file.dequantize("nope"),
        Err(Error::TensorFile { .. })
    ));
}

#[test]
fn sample_tokenizer_merges_and_control_tokens() {
    let file = parse(sample().0).unwrap();
    let tok = GgufTokenizer::from_gguf(&file).unwrap();
    // "ab" merges; " ab" is Ġ + ab → Ġab by the second merge; <|end|> is a control token.
    assert_eq!(tok.encode("ab ab").unwrap(), vec![2, 4]);
    assert_eq!(tok.encode("ba<|end|>").unwrap(), vec![1, 0, 5]);
    assert_eq!(tok.decode(&[2, 4, 5]).unwrap(), "ab ab<|end|>");
    assert!(!tok.add_bos());
}

/// Writes `bytes` as a `.gguf` file the probe can load, unique to this process and `name`.
fn gguf_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("quietattn-{}-{name}.gguf", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_gguf_that_asks_for_bos_gets_it_prepended() {
    let (bytes, embeddings) = tiny_llama(Some(true), Some(5));
    let path = gguf_file("bos", &bytes);
    let model = LoadedModel::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    // "ab ab" is [2, 4] (see the sample's merges); the BOS (id 5) goes first.
    let input = model.encode("ab ab").unwrap();
    assert_eq!(input.ids, vec![5, 2, 4]);
    assert_eq!(input.tokens, vec!["<|end|>", "ab", "Ġab"]);
    assert_eq!(input.type_ids, vec![0, 0, 0]);
    // The forward starts from it: the embeddings' row 0 is token 5's row.
    let trace = model
        .forward(&Device::reference(), &input, &AttentionOptions::default())
        .unwrap();
    let h = TINY_HIDDEN;
    assert_eq!(trace.hidden[0].state.rows, 3);
    assert_eq!(trace.hidden[0].state.row(0), &embeddings[5 * h..6 * h]);
    assert_eq!(trace.logits.as_ref().unwrap().rows, 3);
}

#[test]
fn a_gguf_without_add_bos_gets_no_bos() {
    // A BOS id alone does not ask for it; neither does add_bos_token = false.
    for (i, (add, bos)) in [(None, Some(5)), (Some(false), Some(5))]
        .into_iter()
        .enumerate()
    {
        let path = gguf_file(&format!("nobos{i}"), &tiny_llama(add, bos).0);
        let model = LoadedModel::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(model.encode("ab ab").unwrap().ids, vec![2, 4]);
    }
}

#[test]
fn add_bos_without_a_usable_bos_id_is_an_error() {
    for (what, bos) in [("missing", None), ("outside the vocabulary", Some(6))] {
        let file = parse(tiny_llama(Some(true), bos).0).unwrap();
        let got = GgufTokenizer::from_gguf(&file);
        assert!(
            matches!(got, Err(Error::TensorFile { .. })),
            "BOS id {what}: {:?}",
            got.err()
        );
    }
    let file = parse(tiny_llama(Some(true), Some(5)).0).unwrap();
    assert_eq!(
        GgufTokenizer::from_gguf(&file).unwrap().bos_to_prepend(),
        Some(5)
    );
}

#[test]
fn every_truncation_is_an_error_value() {
    let (bytes, _) = sample();
    let last_tensor_end = bytes.len();
    for n in 0..last_tensor_end {
        let err = parse(bytes[..n].to_vec()).expect_err(&format!("prefix of {n} bytes parsed"));
        assert!(matches!(err, Error::TensorFile { .. }), "prefix {n}: {err}");
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let (bytes, _) = sample();
    // Every byte of the header region replaced by values that break lengths, types and tags;
    // parsing, reading every tensor and building the tokenizer must return, Ok or Err.
    let mut errors = 0;
    let header_len = parse(bytes.clone()).unwrap().data_offset();
    for i in 0..header_len {
        for v in [0x00, 0x07, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] = v;
            match parse(b) {
                Err(_) => errors += 1,
                Ok(f) => {
                    for t in f.tensors() {
                        let _ = f.dequantize_info(t);
                    }
                    let _ = GgufTokenizer::from_gguf(&f);
                }
            }
        }
    }
    assert!(errors > header_len, "only {errors} corruptions were caught");
}

#[test]
fn specific_corruptions_name_the_problem() {
    let (bytes, _) = sample();
    let msg = |b: Vec<u8>| parse(b).expect_err("must fail").to_string();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(msg(b).contains("not a GGUF file"));
    let mut b = bytes.clone();
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    assert!(msg(b).contains("version 1"));
    let mut b = bytes.clone();
    b[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // metadata count
    assert!(msg(b).contains("cannot fit"));

    // A tensor whose data would run past the end, one misaligned, one with a ragged block.
    let mut w = GgufWriter::new();
    w.tensor("t", &[64], 8, vec![0; 34]);
    assert!(msg(w.build()).contains("past the end"));
    let mut w = GgufWriter::new();
    w.tensor("t", &[33], 0, vec![0; 4 * 33]);
    w.tensor("u", &[16], 3, vec![0; 20]);
    assert!(msg(w.build()).contains("whole"));
    let mut w = GgufWriter::new();
    w.kv("general.alignment", 4, &3u32.to_le_bytes());
    assert!(msg(w.build()).contains("power of two"));
}

#[test]
fn unknown_tensor_type_is_listed_but_not_dequantised() {
    let mut w = GgufWriter::new();
    w.tensor("k_quant", &[256], 12, vec![0; 144]); // Q4_K: not dequantised here
    let file = parse(w.build()).unwrap();
    assert_eq!(file.tensors()[0].ty, GgmlType::Other(12));
    assert!(matches!(
        file.dequantize("k_quant"),
        Err(Error::Unsupported(_))
    ));
}

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/probe/smollm2.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture JSON")
}

fn smollm2(test: &str) -> Option<GgufFile> {
    let path = cache::model_or_skip(test, cache::smollm2_gguf())?;
    Some(GgufFile::open(path).expect("SmolLM2 GGUF parses"))
}

#[test]
fn smollm2_header_matches_python_gguf() {
    let Some(file) = smollm2("smollm2_header_matches_python_gguf") else {
        return;
    };
    let want = &fixture()["gguf"];
    assert_eq!(u64::from(file.version()), want["version"].as_u64().unwrap());
    assert_eq!(
        file.tensors().len() as u64,
        want["tensor_count"].as_u64().unwrap()
    );
    assert_eq!(
        file.metadata().len() as u64,
        want["kv_count"].as_u64().unwrap()
    );
    assert_eq!(file.alignment(), want["alignment"].as_u64().unwrap());
    assert_eq!(
        file.data_offset() as u64,
        want["data_offset"].as_u64().unwrap()
    );
    assert_eq!(
        file.metadata_str("general.architecture").unwrap(),
        want["architecture"]
    );
    assert_eq!(
        file.metadata_str("tokenizer.ggml.pre").unwrap(),
        want["pre"]
    );
    let count = |key: &str| file.metadata_array(key).unwrap().len() as u64;
    assert_eq!(
        count("tokenizer.ggml.tokens"),
        want["vocab_size"].as_u64().unwrap()
    );
    assert_eq!(
        count("tokenizer.ggml.merges"),
        want["merges"].as_u64().unwrap()
    );
    for (name, n) in want["tensor_types"].as_object().unwrap() {
        let got = file
            .tensors()
            .iter()
            .filter(|t| t.ty.name() == *name)
            .count() as u64;
        assert_eq!(got, n.as_u64().unwrap(), "{name} tensors");
    }
    assert_eq!(file.metadata_u64("llama.block_count").unwrap(), 30);
}

/// Relative 1e-6 is 20× the fixture's rounding to 7 significant digits.
fn close(got: f64, want: &Value, scale: f64, what: &str) {
    let want = want.as_f64().unwrap();
    assert!(
        (got - want).abs() <= 1e-6 * scale.max(want.abs()),
        "{what}: {got} vs {want}"
    );
}

#[test]
fn smollm2_dequantised_tensors_match_python_gguf() {
    let Some(file) = smollm2("smollm2_dequantised_tensors_match_python_gguf") else {
        return;
    };
    for want in fixture()["gguf_tensors"].as_array().unwrap() {
        let name = want["name"].as_str().unwrap();
        let (info, w) = file.dequantize(name).unwrap();
        assert_eq!(info.ty.name(), want["type"].as_str().unwrap(), "{name}");
        let dims: Vec<u64> = want["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(info.dims, dims, "{name}");
        assert_eq!(
            w.len() as u64,
            want["n_elements"].as_u64().unwrap(),
            "{name}"
        );
        let sum: f64 = w.iter().map(|&x| f64::from(x)).sum();
        let abs_sum: f64 = w.iter().map(|&x| f64::from(x).abs()).sum();
        let sum_sq: f64 = w.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        let max_abs = w.iter().fold(0f32, |m, &x| m.max(x.abs()));
        close(sum, &want["sum"], abs_sum, &format!("{name} sum"));
        close(sum_sq, &want["sum_sq"], 0.0, &format!("{name} sum_sq"));
        close(
            max_abs.into(),
            &want["max_abs"],
            0.0,
            &format!("{name} max_abs"),
        );
        let first = want["first"].as_array().unwrap();
        for (i, v) in first.iter().enumerate() {
            close(w[i].into(), v, 0.0, &format!("{name}[{i}]"));
        }
        let last = want["last"].as_array().unwrap();
        for (i, v) in last.iter().enumerate() {
            let at = w.len() - last.len() + i;
            close(w[at].into(), v, 0.0, &format!("{name}[{at}]"));
        }
    }
}

#[test]
fn smollm2_tokenizer_matches_transformers() {
    let Some(file) = smollm2("smollm2_tokenizer_matches_transformers") else {
        return;
    };
    let tok = GgufTokenizer::from_gguf(&file).unwrap();
    assert!(!tok.add_bos(), "SmolLM2 adds no BOS");
    assert_eq!((tok.bos(), tok.eos()), (Some(1), Some(2)));
    let fx = fixture();
    let mut cases: Vec<(String, Vec<u64>)> = Vec::new();
    for case in fx["tokenizer"]
        .as_array()
        .unwrap()
        .iter()
        .chain(fx["cases"].as_array().unwrap())
    {
        let ids = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap())
            .collect();
        cases.push((case["text"].as_str().unwrap().to_string(), ids));
    }
    let greedy = &fx["greedy"];
    let new_ids: Vec<u64> = greedy["new_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap())
        .collect();
    cases.push((greedy["new_text"].as_str().unwrap().to_string(), new_ids));
    for (text, want) in &cases {
        let got: Vec<u64> = tok
            .encode(text)
            .unwrap()
            .into_iter()
            .map(u64::from)
            .collect();
        assert_eq!(&got, want, "{text:?}");
        let ids: Vec<u32> = got.iter().map(|&i| i as u32).collect();
        assert_eq!(&tok.decode(&ids).unwrap(), text, "decode of {text:?}");
    }
    // Control tokens are single tokens, as in the chat template.
    assert_eq!(tok.encode("<|im_start|>user").unwrap().len(), 2);
}

#[test]
fn smollm2_truncated_headers_are_error_values() {
    let Some(path) = cache::model_or_skip(
        "smollm2_truncated_headers_are_error_values",
        cache::smollm2_gguf(),
    ) else {
        return;
    };
    let bytes = std::fs::read(path).unwrap();
    let data_offset = parse(bytes.clone()).unwrap().data_offset();
    // Cuts inside the metadata (tokens, merges), inside the tensor table and just before the end.
    let cuts = [
        3,
        24,
        1000,
        100_000,
        700_000,
        1_400_000,
        data_offset - 1,
        data_offset,
        bytes.len() - 1,
    ];
    for n in cuts {
        let err = parse(bytes[..n].to_vec()).expect_err(&format!("cut at {n} parsed"));
        assert!(matches!(err, Error::TensorFile { .. }), "cut at {n}: {err}");
    }
}

#[test]
fn smollm2_unpermuted_qk_rows_match_transformers() {
    let Some(file) = smollm2("smollm2_unpermuted_qk_rows_match_transformers") else {
        return;
    };
    for want in fixture()["hf_weights"].as_array().unwrap() {
        let name = want["gguf_name"].as_str().unwrap();
        let (info, w) = file.dequantize(name).unwrap();
        let (cols, rows) = (info.dims[0] as usize, info.dims[1] as usize);
        assert_eq!(want["shape"], serde_json::json!([rows, cols]), "{name}");
        let heads = rows / 64;
        let hf = unpermute_qk_rows(&w, rows, cols, heads).unwrap();
        let row_sums = |m: &[f32]| -> Vec<(f64, f64)> {
            m.chunks(cols)
                .map(|r| {
                    r.iter().fold((0.0, 0.0), |(s, a), &x| {
                        (s + f64::from(x), a + f64::from(x).abs())
                    })
                })
                .collect()
        };
        let sums = want["row_sums"].as_array().unwrap();
        for (r, ((s, a), v)) in row_sums(&hf).into_iter().zip(sums).enumerate() {
            close(s, v, a, &format!("{name} row {r} sum"));
        }
        // The GGUF order itself differs: the test would catch a missing or wrong permutation.
        let mismatched = row_sums(&w)
            .iter()
            .zip(sums)
            .filter(|((s, a), v)| (s - v.as_f64().unwrap()).abs() > 1e-6 * a)
            .count();
        assert!(mismatched > rows / 2, "{name}: only {mismatched} rows move");
        for (r, row) in want["first_rows_first_cols"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            for (c, v) in row.as_array().unwrap().iter().enumerate() {
                close(
                    hf[r * cols + c].into(),
                    v,
                    0.0,
                    &format!("{name}[{r}][{c}]"),
                );
            }
        }
    }
    assert!(matches!(
        unpermute_qk_rows(&[0.0; 6], 3, 2, 1),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        unpermute_qk_rows(&[0.0; 6], 4, 2, 1),
        Err(Error::Shape(_))
    ));
}
