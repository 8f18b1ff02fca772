//! `quietattn stats`: outlier statistics of 2-D activation tensors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use quietattn::files::{DEFAULT_MAX_INPUT_BYTES, OutputSet};
use quietattn::io::{FileTensor, TensorFile};
use quietattn::stats::json::ActivationStatsJson;
use quietattn::stats::report::{
    ActivationReport, INT8_THRESHOLD, MASSIVE_ABS, MASSIVE_RATIO, SIGMA_MULTIPLE,
};
use quietattn::{DeviceKind, Result, Tensor};
use serde::Serialize;

use super::table::num;

/// Arguments of `quietattn stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// A safetensors file of `[tokens, channels]` activations.
    #[arg(long)]
    input: PathBuf,
    /// Only this tensor (it must be a 2-D float tensor).
    #[arg(long)]
    tensor: Option<String>,
    /// Where to compute: auto, reference, emulator or cuda.
    #[arg(long, default_value = "auto", value_parser = super::parse_device)]
    device: DeviceKind,
    /// Also write raw counters and the derived report to this JSON file (replaced atomically,
    /// never the input).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Largest input file read, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_INPUT_BYTES)]
    max_input_bytes: u64,
}

/// A tensor left out and why.
#[derive(Serialize)]
struct Skipped {
    name: String,
    shape: Vec<usize>,
    dtype: String,
}

/// The JSON document of `stats`.
#[derive(Serialize)]
struct StatsDoc {
    file: String,
    device: String,
    tensors: BTreeMap<String, ActivationStatsJson>,
    skipped: Vec<Skipped>,
}

/// Computes, prints and optionally saves the statistics.
pub fn stats(args: &StatsArgs) -> Result<()> {
    let targets: Vec<&Path> = args.json.iter().map(PathBuf::as_path).collect();
    let mut outputs = OutputSet::prepare(&[&args.input], &targets)?;
    let file = TensorFile::read_limited(&args.input, args.max_input_bytes)?;
    let mut chosen: Vec<(&str, &Tensor)> = Vec::new();
    let mut skipped = Vec::new();
    if let Some(name) = &args.tensor {
        if !file.tensors.contains_key(name) {
            let names: Vec<&str> = file.tensors.keys().map(String::as_str).collect();
            return Err(file.error(format!(
                "no tensor `{name}` (the file has: {})",
                names.join(", ")
            )));
        }
        chosen.push((name, file.require_float(name, &[2])?));
    } else {
        for (name, t) in &file.tensors {
            match t {
                FileTensor::Float(x) if x.shape.len() == 2 => chosen.push((name, x)),
                other => skipped.push(Skipped {
                    name: name.clone(),
                    shape: other.shape().to_vec(),
                    dtype: other.dtype_name(),
                }),
            }
        }
    }
    if chosen.is_empty() {
        return Err(file.error("holds no 2-D f32/f16/bf16 tensor to analyse"));
    }
    let device = super::open_device(args.device)?;
    let mut doc = StatsDoc {
        file: file.path.clone(),
        device: device.name(),
        tensors: BTreeMap::new(),
        skipped,
    };
    for (name, t) in chosen {
        let start = Instant::now();
        let raw = quietattn::activation_stats(&device, &t.view())?;
        let ms = super::millis(start.elapsed());
        let report = ActivationReport::new(&raw);
        println!(
            "{name} {:?} {} ({}, {ms:.2} ms)",
            t.shape,
            t.dtype(),
            device.name()
        );
        print_report(&report);
        doc.tensors
            .insert(name.to_string(), ActivationStatsJson::new(&raw));
    }
    for s in &doc.skipped {
        println!(
            "skipped {} {:?} {}: not a 2-D float tensor",
            s.name, s.shape, s.dtype
        );
    }
    if let Some(path) = &args.json {
        outputs.stage(0, &super::json_bytes(&doc)?)?;
        outputs.commit()?;
        println!("statistics written to {}", path.display());
    }
    Ok(())
}

/// How many outlier channels a line names before summarising the rest.
const LISTED: usize = 12;

fn print_report(r: &ActivationReport) {
    let t = &r.tensor;
    println!(
        "  {} finite elements, {} zeros, {} non-finite; σ {}, median |x| ≈ {}, max |x| {}",
        t.finite,
        t.zeros,
        t.non_finite,
        num(t.sigma),
        num(t.median_abs),
        num(Some(t.max_inf_norm))
    );
    let overflowed = t.channels.iter().filter(|c| c.overflowed).count();
    if overflowed > 0 || t.pooled.overflowed {
        println!(
            "  note: the f32 power sums overflowed ({overflowed} channel(s)): moments shown as - \
             are not available (|x| above ~1.4e9 for x^4, ~1.8e19 for x^2)"
        );
    }
    let kurt = t.max_kurtosis.map_or("-".into(), |(c, k)| {
        format!("{} (channel {c})", num(Some(k)))
    });
    let tokens: Vec<String> = r
        .top_tokens
        .iter()
        .take(4)
        .map(|(i, a)| format!("{i} ({})", num(Some(*a))))
        .collect();
    println!(
        "  tensor kurtosis {} (all values pooled); max channel kurtosis {kurt}; \
         largest token inf-norms: {}",
        num(t.tensor_kurtosis),
        tokens.join(", ")
    );
    let absmax = |c: usize| num(Some(t.channels[c].absmax));
    let list = |chs: &[usize]| -> String {
        if chs.is_empty() {
            return "none".into();
        }
        let mut s: Vec<String> = chs
            .iter()
            .take(LISTED)
            .map(|&c| format!("{c} ({})", absmax(c)))
            .collect();
        if chs.len() > LISTED {
            s.push(format!("... {} more", chs.len() - LISTED));
        }
        format!("{}: {}", chs.len(), s.join(", "))
    };
    let o = &t.outliers;
    println!("  outlier channels (channel (absmax)):");
    println!(
        "    |x| >= {INT8_THRESHOLD} (LLM.int8)           {}",
        list(&o.llm_int8)
    );
    println!(
        "    |x| > {SIGMA_MULTIPLE}σ = {:<10}        {}",
        num(t.sigma.map(|s| s * SIGMA_MULTIPLE)),
        list(&o.six_sigma)
    );
    println!(
        "    massive (>= {MASSIVE_ABS}, >= {MASSIVE_RATIO}x median) {}",
        list(&o.massive)
    );
}
