//! `quietattn run`: attention over the tensors of a safetensors file.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use quietattn::io::{TensorFile, TensorRef, write_file};
use quietattn::stats::json::AttentionStatsJson;
use quietattn::{AttentionInputs, AttentionProblem, DeviceKind, Error, Gate, Normaliser, Result};

use super::options::VariantArgs;

/// The tensor names `run` understands; any other name in the input is an error.
const KNOWN: [&str; 7] = [
    "q",
    "k",
    "v",
    "sinks",
    "gate",
    "cu_seqlens_q",
    "cu_seqlens_k",
];

/// Arguments of `quietattn run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Input: `q` [b, sq, h, d], `k`/`v` [b, sk, hkv, d] (f32/f16/bf16); optional `sinks` [h],
    /// `gate`, and i32 `cu_seqlens_q`/`cu_seqlens_k` (then q is [total_q, h, d]).
    #[arg(long)]
    input: PathBuf,
    /// Output: `o` (dtype of q) and f32 `lse` [b, h, sq] ([h, total_q] varlen).
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    variant: VariantArgs,
    /// Where to compute: auto, reference, emulator or cuda.
    #[arg(long, default_value = "auto", value_parser = super::parse_device)]
    device: DeviceKind,
    /// Collect the outlier statistics and write them to this JSON file.
    #[arg(long)]
    stats: Option<PathBuf>,
}

/// Runs attention on the file's tensors and writes `o`, `lse` and optionally the statistics.
pub fn run(args: &RunArgs) -> Result<()> {
    let file = TensorFile::read(&args.input)?;
    file.reject_unknown(&KNOWN)?;
    let cu_q = file.i32_vector("cu_seqlens_q")?;
    let cu_k = file.i32_vector("cu_seqlens_k")?;
    let rank = if cu_q.is_some() || cu_k.is_some() {
        3
    } else {
        4
    };
    let q = file.require_float("q", &[rank])?;
    let k = file.require_float("k", &[rank])?;
    let v = file.require_float("v", &[rank])?;
    let options = args.variant.options(args.stats.is_some())?;

    let sinks: Option<Vec<f32>> = file
        .float("sinks", &[1])?
        .map(|t| t.to_f64().iter().map(|&x| x as f32).collect());
    if sinks.is_some() && options.normaliser != Normaliser::Sink {
        eprintln!(
            "note: tensor `sinks` ignored (variant {})",
            options.normaliser.name()
        );
    }
    let gate = file.float("gate", &[rank - 1, rank])?;
    if gate.is_some() && options.gate == Gate::None {
        eprintln!("note: tensor `gate` ignored (no --gate)");
    }

    let inputs = AttentionInputs {
        q: q.view(),
        k: k.view(),
        v: v.view(),
        sinks: sinks
            .as_deref()
            .filter(|_| options.normaliser == Normaliser::Sink),
        gate: gate
            .filter(|_| options.gate != Gate::None)
            .map(|g| g.view()),
        cu_seqlens_q: cu_q,
        cu_seqlens_k: cu_k,
    };
    // Validating before opening a device reports bad inputs without waiting for a GPU context.
    let problem = AttentionProblem::new(&inputs, &options)?;
    let device = super::open_device(args.device)?;

    let start = Instant::now();
    let out = quietattn::attention(&device, &inputs, &options)?;
    let elapsed = start.elapsed();

    write_file(
        &args.output,
        &[
            ("o", TensorRef::Float(&out.o)),
            ("lse", TensorRef::Float(&out.lse)),
        ],
    )?;
    if let Some(path) = &args.stats {
        let stats = out.stats.as_ref().ok_or_else(|| {
            Error::Unsupported(format!("{} returned no statistics", device.name()))
        })?;
        super::write_json(path, &AttentionStatsJson::new(stats))?;
    }
    println!(
        "{} on {}: q {:?} k/v {:?} {}, {} sequence(s), {} heads / {} kv heads, d {} -> {} in {:.2} ms",
        options.normaliser.name(),
        device.name(),
        q.shape,
        k.shape,
        problem.dtype,
        problem.batch,
        problem.heads,
        problem.kv_heads,
        problem.head_dim,
        args.output.display(),
        super::millis(elapsed)
    );
    Ok(())
}
