//! `quietattn stats`: outlier statistics of 2-D activation tensors, and of higher-rank ones
//! read as `[tokens, channels]` with `--flatten`.

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
use quietattn::{DeviceKind, Result, Tensor, TensorView};
use serde::Serialize;

use super::table::num;

/// Arguments of `quietattn stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// A safetensors file of `[tokens, channels]` activations.
    #[arg(long)]
    input: PathBuf,
    /// Only this tensor (a 2-D float tensor, or any rank of at least 2 with --flatten).
    #[arg(long)]
    tensor: Option<String>,
    /// Read float tensors of more than 2 dimensions as `[tokens, channels]`: every axis but the
    /// last is folded into tokens, so a `[batch, seq, hidden]` hidden state is analysed as
    /// `[batch·seq, hidden]` (the channels stay the last axis). Without it they are skipped.
    #[arg(long)]
    flatten: bool,
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
        let t = match file.tensors.get(name) {
            Some(FileTensor::Float(t)) => t,
            Some(other) => {
                return Err(file.error(format!(
                    "tensor `{name}` has dtype {}, expected f32, f16 or bf16",
                    other.dtype_name()
                )));
            }
            None => {
                let names: Vec<&str> = file.tensors.keys().map(String::as_str).collect();
                return Err(file.error(format!(
                    "no tensor `{name}` (the file has: {})",
                    names.join(", ")
                )));
            }
        };
        if !analysable(t, args.flatten) {
            return Err(file.error(format!(
                "tensor `{name}` has shape {:?}: stats reads [tokens, channels]{}",
                t.shape,
                flatten_hint(&t.shape)
            )));
        }
        chosen.push((name, t));
    } else {
        for (name, t) in &file.tensors {
            match t {
                FileTensor::Float(x) if analysable(x, args.flatten) => chosen.push((name, x)),
                other => skipped.push(Skipped {
                    name: name.clone(),
                    shape: other.shape().to_vec(),
                    dtype: other.dtype_name(),
                }),
            }
        }
    }
    if chosen.is_empty() {
        let hint = if args.flatten {
            ""
        } else {
            " (pass --flatten to read higher-rank tensors as [tokens, channels])"
        };
        return Err(file.error(format!("holds no 2-D f32/f16/bf16 tensor to analyse{hint}")));
    }
    let device = super::open_device(args.device)?;
    let mut doc = StatsDoc {
        file: file.path.clone(),
        device: device.name(),
        tensors: BTreeMap::new(),
        skipped,
    };
    for (name, t) in chosen {
        let view = as_tokens_by_channels(t)?;
        let start = Instant::now();
        let raw = quietattn::activation_stats(&device, &view)?;
        let ms = super::millis(start.elapsed());
        let report = ActivationReport::new(&raw);
        let read_as = if t.shape.len() > 2 {
            format!(" read as {:?}", view.shape)
        } else {
            String::new()
        };
        outln!(
            "{name} {:?}{read_as} {} ({}, {ms:.2} ms)",
            t.shape,
            t.dtype(),
            device.name()
        );
        print_report(&report);
        doc.tensors
            .insert(name.to_string(), ActivationStatsJson::new(&raw));
    }
    for s in &doc.skipped {
        let hint = if s.shape.len() > 2 && !args.flatten && is_float(&s.dtype) {
            flatten_hint(&s.shape)
        } else {
            String::new()
        };
        outln!(
            "skipped {} {:?} {}: not a 2-D float tensor{hint}",
            s.name,
            s.shape,
            s.dtype
        );
    }
    if let Some(path) = &args.json {
        outputs.stage(0, &super::json_bytes(&doc, path)?)?;
        outputs.commit()?;
        outln!("statistics written to {}", path.display());
    }
    Ok(())
}

/// Whether `t` is read: rank 2, or any higher rank when `flatten` folds it.
fn analysable(t: &Tensor, flatten: bool) -> bool {
    t.shape.len() == 2 || (flatten && t.shape.len() > 2)
}

/// The dtypes `stats` reads (names as [`FileTensor::dtype_name`] gives them).
fn is_float(dtype: &str) -> bool {
    matches!(dtype, "f32" | "f16" | "bf16")
}

/// What a tensor of more than 2 dimensions needs, with the shape it would be read as.
fn flatten_hint(shape: &[usize]) -> String {
    match shape.split_last() {
        Some((channels, leading)) if !leading.is_empty() && shape.len() > 2 => {
            let tokens: usize = leading.iter().product();
            format!(
                "; pass --flatten to fold the leading axes into tokens (read as [{tokens}, \
                 {channels}]), or reshape it to [tokens, channels] before saving"
            )
        }
        _ => String::new(),
    }
}

/// `t` as a contiguous `[tokens, channels]` view: all leading axes folded into tokens.
fn as_tokens_by_channels(t: &Tensor) -> Result<TensorView<'_>> {
    let Some((&channels, leading)) = t.shape.split_last() else {
        return Err(quietattn::Error::Shape("a scalar has no channels".into()));
    };
    let tokens = leading.iter().product::<usize>();
    TensorView::contiguous(t.data.as_ref(), &[tokens, channels])
}

/// How many outlier channels a line names before summarising the rest.
const LISTED: usize = 12;

fn print_report(r: &ActivationReport) {
    let t = &r.tensor;
    outln!(
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
        outln!(
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
    outln!(
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
    outln!("  outlier channels (channel (absmax)):");
    outln!(
        "    |x| >= {INT8_THRESHOLD} (LLM.int8)           {}",
        list(&o.llm_int8)
    );
    outln!(
        "    |x| > {SIGMA_MULTIPLE}σ = {:<10}        {}",
        num(t.sigma.map(|s| s * SIGMA_MULTIPLE)),
        list(&o.six_sigma)
    );
    outln!(
        "    massive (>= {MASSIVE_ABS}, >= {MASSIVE_RATIO}x median) {}",
        list(&o.massive)
    );
}
