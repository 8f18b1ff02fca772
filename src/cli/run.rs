//! `quietattn run`: attention over the tensors of a safetensors file.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use quietattn::files::{DEFAULT_MAX_INPUT_BYTES, OutputSet};
use quietattn::io::{TensorFile, TensorRef, to_bytes};
use quietattn::ops::attention::check_head_dim;
use quietattn::problem::InputNumerics;
use quietattn::stats::json::AttentionStatsJson;
use quietattn::{
    AttentionInputs, AttentionOptions, AttentionOutput, AttentionProblem, Device, DeviceKind,
    Error, Gate, Normaliser, Result, Tensor,
};

use super::numeric_policy;
use super::options::{VariantArgs, mask_text};
use super::run_paged::PagedTensors;

/// The tensor names `run` understands; any other name in the input is an error.
const KNOWN: [&str; 11] = [
    "q",
    "k",
    "v",
    "sinks",
    "gate",
    "cu_seqlens_q",
    "cu_seqlens_k",
    "k_cache",
    "v_cache",
    "block_table",
    "seq_lens_k",
];

/// Arguments of `quietattn run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Input: `q` [b, sq, h, d], `k`/`v` [b, sk, hkv, d] (f32/f16/bf16); optional `sinks` [h],
    /// `gate`, and i32 `cu_seqlens_q`/`cu_seqlens_k` (then q is [total_q, h, d]). A paged KV
    /// cache instead of `k`/`v`: `k_cache`/`v_cache` [num_pages, page_size, hkv, d], i32
    /// `block_table` [b, max_pages] and `seq_lens_k` [b], with `cu_seqlens_q` for varlen queries
    /// (decode kernels on emulator/cuda).
    #[arg(long)]
    input: PathBuf,
    /// Output: `o` (dtype of q) and f32 `lse` [b, h, sq] ([h, total_q] varlen). Replaced
    /// atomically, never the input.
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
    /// Largest input file read, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_INPUT_BYTES)]
    max_input_bytes: u64,
    /// Non-finite inputs, inputs outside the kernels' f32 range and non-finite outputs from
    /// finite inputs are errors (exit 2, nothing written) instead of warnings.
    #[arg(long)]
    strict_numerics: bool,
}

/// The tensors of the input file, checked for rank and dtype.
struct RunTensors<'f> {
    q: &'f Tensor,
    k: &'f Tensor,
    v: &'f Tensor,
    sinks: Option<Vec<f32>>,
    gate: Option<&'f Tensor>,
    cu_q: Option<&'f [i32]>,
    cu_k: Option<&'f [i32]>,
}

impl<'f> RunTensors<'f> {
    fn from_file(file: &'f TensorFile) -> Result<Self> {
        let cu_q = file.i32_vector("cu_seqlens_q")?;
        let cu_k = file.i32_vector("cu_seqlens_k")?;
        let rank = if cu_q.is_some() || cu_k.is_some() {
            3
        } else {
            4
        };
        Ok(RunTensors {
            q: file.require_float("q", &[rank])?,
            k: file.require_float("k", &[rank])?,
            v: file.require_float("v", &[rank])?,
            sinks: file
                .float("sinks", &[1])?
                .map(|t| t.to_f64().iter().map(|&x| x as f32).collect()),
            gate: file.float("gate", &[rank - 1, rank])?,
            cu_q,
            cu_k,
        })
    }

    /// The library's inputs; tensors the options do not use are noted on stderr and left out.
    fn inputs(&self, options: &AttentionOptions) -> AttentionInputs<'_> {
        let sink = options.normaliser == Normaliser::Sink;
        if self.sinks.is_some() && !sink {
            errln!(
                "note: tensor `sinks` ignored (variant {})",
                options.normaliser.name()
            );
        }
        let gated = options.gate != Gate::None;
        if self.gate.is_some() && !gated {
            errln!("note: tensor `gate` ignored (no --gate)");
        }
        AttentionInputs {
            q: self.q.view(),
            k: self.k.view(),
            v: self.v.view(),
            sinks: self.sinks.as_deref().filter(|_| sink),
            gate: self.gate.filter(|_| gated).map(Tensor::view),
            cu_seqlens_q: self.cu_q,
            cu_seqlens_k: self.cu_k,
        }
    }
}

/// Runs attention on the file's tensors and writes `o`, `lse` and optionally the statistics.
pub fn run(args: &RunArgs) -> Result<()> {
    // Every output is checked (and kept apart from the input) before anything is read or run.
    let mut targets = vec![args.output.as_path()];
    targets.extend(args.stats.as_deref());
    let outputs = OutputSet::prepare(&[&args.input], &targets)?;
    let file = TensorFile::read_limited(&args.input, args.max_input_bytes)?;
    file.reject_unknown(&KNOWN)?;
    let options = args.variant.options(args.stats.is_some())?;
    if let Some(paged) = PagedTensors::from_file(&file)? {
        let out = paged.run(args.device, &options, args.strict_numerics)?;
        write_outputs(args, outputs, &out)?;
        print_written(args);
        return Ok(());
    }
    let tensors = RunTensors::from_file(&file)?;
    args.variant
        .unused_notes()
        .iter()
        .for_each(|n| errln!("{n}"));
    let inputs = tensors.inputs(&options);
    // Validating before opening a device reports bad inputs without waiting for a GPU context.
    let problem = AttentionProblem::new(&inputs, &options)?;
    numeric_policy::before_launch(
        &InputNumerics::scan(&inputs, &problem),
        args.strict_numerics,
    )?;
    let device = super::open_device(args.device)?;
    note_reference_only(&device, &problem);

    let start = Instant::now();
    let out = quietattn::attention(&device, &inputs, &options)?;
    let elapsed = start.elapsed();
    numeric_policy::after_launch(&out.numerics, args.strict_numerics)?;

    write_outputs(args, outputs, &out)?;
    let shapes = (tensors.q.shape.as_slice(), tensors.k.shape.as_slice());
    summary(&device, &options, &problem, shapes, elapsed);
    print_written(args);
    Ok(())
}

/// Writes `o`, `lse` and (when asked) the statistics, all or nothing.
fn write_outputs(args: &RunArgs, mut outputs: OutputSet, out: &AttentionOutput) -> Result<()> {
    let tensors_out = [
        ("o", TensorRef::Float(&out.o)),
        ("lse", TensorRef::Float(&out.lse)),
    ];
    outputs.stage(0, &to_bytes(&args.output, &tensors_out)?)?;
    if let Some(path) = &args.stats {
        let stats = out
            .stats
            .as_ref()
            .ok_or_else(|| Error::Unsupported("the device returned no statistics".into()))?;
        outputs.stage(
            1,
            &super::json_bytes(&AttentionStatsJson::new(stats), path)?,
        )?;
    }
    outputs.commit()
}

/// The reference computes any head dim; say so when the kernels would refuse this one.
fn note_reference_only(device: &Device, problem: &AttentionProblem) {
    if device.kind() == DeviceKind::Reference
        && let Err(e) = check_head_dim(problem.head_dim)
    {
        errln!("note: only the reference runs this: {e}");
    }
}

/// What ran: variant, device, shapes, mask and time.
fn summary(
    device: &Device,
    options: &AttentionOptions,
    problem: &AttentionProblem,
    (q, k): (&[usize], &[usize]),
    elapsed: std::time::Duration,
) {
    outln!(
        "{} on {}: q {q:?} k/v {k:?} {}, {} sequence(s), {} heads / {} kv heads, d {}, {} \
         in {:.2} ms",
        options.normaliser.name(),
        device.name(),
        problem.dtype,
        problem.batch,
        problem.heads,
        problem.kv_heads,
        problem.head_dim,
        mask_text(options),
        super::millis(elapsed)
    );
}

/// The files written, once they are in place.
fn print_written(args: &RunArgs) {
    let stats = args
        .stats
        .as_ref()
        .map(|p| format!("; statistics written to {}", p.display()))
        .unwrap_or_default();
    outln!("o and lse written to {}{stats}", args.output.display());
}
