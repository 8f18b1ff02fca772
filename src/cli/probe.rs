//! `quietattn probe`: a real checkpoint's forward pass with quietattn's attention (statistics
//! on) and the activation-statistics op on every hidden state; the docs/contract.md §8 readings per
//! layer and head as a table and JSON; `--variant` replays the same weights under another
//! normaliser.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use quietattn::files::{OutputSet, read_input};
use quietattn::probe::dense::Dense;
use quietattn::probe::plots::{plot_paths, stage_plots};
use quietattn::probe::replay::{Movement, movement};
use quietattn::probe::tokenizer::Encoded;
use quietattn::probe::{LoadedModel, ProbeReport};
use quietattn::{AttentionOptions, Device, DeviceKind, Error, Normaliser, Result};
use serde::Serialize;

use super::options::VariantName;
use super::probe_table::{print_heads, print_layers, print_replay};

/// The text probed when none is given.
const DEFAULT_TEXT: &str =
    "The capital of France is Paris. The quick brown fox jumps over the lazy dog.";
/// Largest `--text-file` read.
const MAX_TEXT_BYTES: u64 = 1 << 20;

/// Arguments of `quietattn probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// A model: a directory with config.json, model.safetensors and tokenizer.json (BERT
    /// family; also its `model/` subdirectory), or a .gguf file (Llama family).
    #[arg(long)]
    model: PathBuf,
    /// The text to run.
    #[arg(long, conflicts_with = "text_file")]
    text: Option<String>,
    /// Read the text from this file (UTF-8).
    #[arg(long)]
    text_file: Option<PathBuf>,
    /// Where attention and the statistics run: auto, reference, emulator or cuda (cuda, and
    /// auto with a GPU, also runs the dense layers there through cuBLAS).
    #[arg(long, default_value = "auto", value_parser = super::parse_device)]
    device: DeviceKind,
    /// Replay the same weights under this normaliser as well (the model was trained with
    /// softmax) and report how far the output moves. `sink` is not offered: it needs learned
    /// per-head sink logits, which these checkpoints do not have.
    #[arg(long, value_enum, default_value_t = ReplayName::Softmax)]
    variant: ReplayName,
    /// Clipped softmax γ of the replay (≤ 0; default -0.03).
    #[arg(long, allow_negative_numbers = true)]
    gamma: Option<f32>,
    /// Clipped softmax ζ of the replay (≥ 1; default 1).
    #[arg(long, allow_negative_numbers = true)]
    zeta: Option<f32>,
    /// Sigmoid attention bias b of the replay (default -ln(kv_len)).
    #[arg(long, allow_negative_numbers = true)]
    sigmoid_bias: Option<f32>,
    /// Also write the report to this JSON file (replaced atomically; a failed run leaves it).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also draw the pictures into this folder (created if missing): sink-score heat map,
    /// per-layer kurtosis and inf-norm curves, log2 histograms, each as SVG and PNG.
    #[arg(long)]
    plots: Option<PathBuf>,
}

/// The `--variant` names of `probe`: the normalisers a softmax checkpoint can be replayed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ReplayName {
    /// No replay: the checkpoint's own softmax.
    Softmax,
    /// softmax1: `e^s / (1 + Σ e^s)`.
    OffByOne,
    /// Clipped softmax (`--gamma`, `--zeta`).
    Clipped,
    /// softpick.
    Softpick,
    /// Sigmoid attention (`--sigmoid-bias`).
    Sigmoid,
}

impl ReplayName {
    fn variant(self) -> VariantName {
        match self {
            ReplayName::Softmax => VariantName::Softmax,
            ReplayName::OffByOne => VariantName::OffByOne,
            ReplayName::Clipped => VariantName::Clipped,
            ReplayName::Softpick => VariantName::Softpick,
            ReplayName::Sigmoid => VariantName::Sigmoid,
        }
    }
}

/// The replay under `--variant`.
#[derive(Serialize)]
struct ReplayDoc {
    note: &'static str,
    normaliser: String,
    movement: Movement,
    report: ProbeReport,
}

/// The JSON document of `probe`.
#[derive(Serialize)]
struct ProbeDoc {
    model: String,
    architecture: &'static str,
    device: String,
    dense: String,
    normaliser: &'static str,
    text: String,
    ids: Vec<u32>,
    tokens: Vec<String>,
    report: ProbeReport,
    replay: Option<ReplayDoc>,
}

/// Runs the probe.
pub fn probe(args: &ProbeArgs) -> Result<()> {
    let mut inputs: Vec<&Path> = vec![&args.model];
    inputs.extend(args.text_file.as_deref());
    let plot_files = match &args.plots {
        Some(dir) => {
            plots_folder(dir)?;
            plot_paths(dir)
        }
        None => Vec::new(),
    };
    let mut targets: Vec<&Path> = args.json.iter().map(PathBuf::as_path).collect();
    targets.extend(plot_files.iter().map(PathBuf::as_path));
    let mut outputs = OutputSet::prepare(&inputs, &targets)?;
    let variant = replay_normaliser(args)?;
    let text = read_text(args)?;
    let mut model = LoadedModel::load(&args.model)?;
    let device = super::open_device(args.device)?;
    let dense = place_dense(&mut model, &device, args.device)?;
    let input = model.encode(&text)?;
    let start = Instant::now();
    let trained = model.forward(&device, &input, &AttentionOptions::default())?;
    let report = ProbeReport::new(&trained);
    outln!(
        "{} ({}), {} tokens, {} layers, attention on {}, dense layers on {} ({:.0} ms)",
        model.source,
        model.kind(),
        input.ids.len(),
        report.layers.len(),
        device.name(),
        dense.name(),
        super::millis(start.elapsed())
    );
    print_layers(&report, model.is_causal());
    print_heads(&report);
    let replay = variant
        .map(|n| replay(&model, &device, &input, &trained, n))
        .transpose()?;
    let doc = ProbeDoc {
        model: model.source.clone(),
        architecture: model.kind(),
        device: device.name(),
        dense: dense.name(),
        normaliser: "softmax",
        text,
        ids: input.ids,
        tokens: input.tokens,
        report,
        replay,
    };
    if let Some(path) = &args.json {
        outputs.stage(0, &super::json_bytes(&doc, path)?)?;
    }
    if args.plots.is_some() {
        let title = model_title(&doc.model);
        stage_plots(
            &doc.report,
            &title,
            &mut outputs,
            usize::from(args.json.is_some()),
        )?;
    }
    outputs.commit()?;
    if let Some(path) = &args.json {
        outln!("report written to {}", path.display());
    }
    if let Some(dir) = &args.plots {
        outln!(
            "plots written to {} ({} files)",
            dir.display(),
            plot_files.len()
        );
    }
    Ok(())
}

/// Creates the `--plots` folder (and its parents) unless it exists; every failure names it.
fn plots_folder(dir: &Path) -> Result<()> {
    let err = |message: String| Error::File {
        path: dir.display().to_string(),
        message,
    };
    if dir.exists() && !dir.is_dir() {
        return Err(err(
            "exists and is not a directory (--plots names a folder to draw into)".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create the folder: {e}")))
}

/// Puts the dense layers beside attention: cuBLAS when `device` is a GPU. Asked for by name
/// (`--device cuda`) a cuBLAS failure is an error; under `auto` the CPU takes over, with a note.
fn place_dense(model: &mut LoadedModel, device: &Device, asked: DeviceKind) -> Result<Dense> {
    let placed = Dense::for_device(device).and_then(|d| model.place_dense(&d).map(|()| d));
    match placed {
        Ok(d) => Ok(d),
        Err(e) if asked == DeviceKind::Auto => {
            errln!("note: dense layers run on the CPU: {e}");
            Ok(Dense::Cpu)
        }
        Err(e) => Err(e),
    }
}

/// A short model name for plot titles: the file name, or its folder for `model.safetensors`.
fn model_title(source: &str) -> String {
    let path = Path::new(source);
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    match name(path).as_deref() {
        Some("model.safetensors") => path
            .parent()
            .and_then(|p| {
                if p.ends_with("model") {
                    p.parent()
                } else {
                    Some(p)
                }
            })
            .and_then(name)
            .unwrap_or_else(|| source.to_string()),
        Some(n) => n.trim_end_matches(".gguf").to_string(),
        None => source.to_string(),
    }
}

/// The replay's normaliser (`None` for softmax: nothing to replay).
fn replay_normaliser(args: &ProbeArgs) -> Result<Option<Normaliser>> {
    let n = args
        .variant
        .variant()
        .normaliser(args.gamma, args.zeta, args.sigmoid_bias);
    n.validate()?;
    Ok((n != Normaliser::Softmax).then_some(n))
}

fn read_text(args: &ProbeArgs) -> Result<String> {
    let text = match (&args.text, &args.text_file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => {
            String::from_utf8(read_input(f, MAX_TEXT_BYTES)?).map_err(|_| Error::File {
                path: f.display().to_string(),
                message: "is not UTF-8 text".into(),
            })?
        }
        (None, None) => DEFAULT_TEXT.to_string(),
    };
    if text.trim().is_empty() {
        return Err(Error::InvalidOption("the text to probe is empty".into()));
    }
    Ok(text)
}

fn replay(
    model: &LoadedModel,
    device: &Device,
    input: &Encoded,
    trained: &quietattn::probe::Trace,
    normaliser: Normaliser,
) -> Result<ReplayDoc> {
    let options = AttentionOptions {
        normaliser,
        ..AttentionOptions::default()
    };
    let trace = model.forward(device, input, &options)?;
    let doc = ReplayDoc {
        note: "replay: the checkpoint was trained with softmax; these are its weights run under \
               another normaliser, not a model trained with it",
        normaliser: normaliser.name().to_string(),
        movement: movement(trained, &trace),
        report: ProbeReport::new(&trace),
    };
    print_replay(&doc.normaliser, &doc.movement, &doc.report);
    Ok(doc)
}
