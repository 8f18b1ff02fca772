//! `quietattn bench`: forward-attention time of every normaliser, causal and not, statistics
//! off and on, on device-resident operands (the engine path), as one table with the ratios
//! measured in the same run.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use quietattn::files::OutputSet;
use quietattn::perf::{
    self, BenchRow, BenchSelection, H200_BF16_TENSOR_PEAK_FLOPS, H200_FP32_PEAK_FLOPS,
};
use quietattn::{DType, Device, DeviceKind, Error, KernelChoice, Normaliser, Result};

use super::table::{Table, num};

/// Arguments of `quietattn bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Where to run: auto (GPU, else emulator), cuda or emulator.
    #[arg(long, default_value = "auto", value_parser = super::parse_device)]
    device: DeviceKind,
    /// Query and key length (default 4096 on a GPU, 32 on the emulator).
    #[arg(long)]
    seq: Option<usize>,
    /// Head dimension.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Element type: bf16, f16 or f32.
    #[arg(long, default_value = "bf16", value_parser = parse_dtype)]
    dtype: DType,
    /// Timed launches per configuration (default 20 on a GPU, 1 on the emulator).
    #[arg(long)]
    iters: Option<usize>,
    /// Sequences (default: 16384 tokens / seq on a GPU, 1 on the emulator).
    #[arg(long)]
    batch: Option<usize>,
    /// Query (= kv) heads (default 16 on a GPU, 2 on the emulator).
    #[arg(long)]
    heads: Option<usize>,
    /// Masks to time: both, yes (causal only) or no.
    #[arg(long, value_enum, default_value_t = Masks::Both)]
    causal: Masks,
    /// Time only this normaliser (default: all six, softmax first).
    #[arg(long)]
    variant: Option<String>,
    /// Also write the rows as JSON (for gpu/torch_sdpa.py).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Kernel family: auto (every family that can serve the shape, ratios from one run),
    /// cuda-core or tensor-core.
    #[arg(long, default_value = "auto", value_parser = super::parse_kernel)]
    kernel: KernelChoice,
}

/// `--causal` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Masks {
    /// Causal and not.
    Both,
    /// Causal only.
    Yes,
    /// No mask only.
    No,
}

fn selection(args: &BenchArgs) -> Result<BenchSelection> {
    let causal = match args.causal {
        Masks::Both => vec![false, true],
        Masks::Yes => vec![true],
        Masks::No => vec![false],
    };
    let normalisers = match &args.variant {
        None => Normaliser::all_defaults().to_vec(),
        Some(name) => vec![
            Normaliser::all_defaults()
                .into_iter()
                .find(|n| n.name() == name)
                .ok_or_else(|| {
                    Error::InvalidOption(format!("--variant {name}: unknown normaliser"))
                })?,
        ],
    };
    Ok(BenchSelection {
        causal,
        normalisers,
    })
}

fn parse_dtype(s: &str) -> std::result::Result<DType, String> {
    s.parse::<DType>().map_err(|e| e.to_string())
}

/// Query tokens per GPU launch: enough blocks for many waves on 132 SMs.
const GPU_TOKENS: usize = 16_384;
/// Heads of every benchmark launch.
const GPU_HEADS: usize = 16;

/// Runs the benchmark and prints the table.
pub fn bench(args: &BenchArgs) -> Result<()> {
    // The JSON output is checked before minutes of timing, and written atomically.
    let json_targets: Vec<&std::path::Path> = args.json.iter().map(|p| p.as_path()).collect();
    let mut outputs = OutputSet::prepare(&[], &json_targets)?;
    let device = super::open_device(args.device)?;
    let gpu = match device.kind() {
        DeviceKind::Cuda => true,
        DeviceKind::Emulator => false,
        _ => {
            return Err(Error::Unsupported(
                "bench needs a kernel device (--device cuda or emulator); the reference runs no \
                 kernels"
                    .into(),
            ));
        }
    };
    let seq = args.seq.unwrap_or(if gpu { 4096 } else { 32 });
    if seq == 0 {
        return Err(Error::InvalidOption("--seq must be at least 1".into()));
    }
    let iters = args.iters.unwrap_or(if gpu { 20 } else { 1 }).max(1);
    let (batch, heads) = if gpu {
        ((GPU_TOKENS / seq).max(1), GPU_HEADS)
    } else {
        (1, 2)
    };
    let (batch, heads) = (args.batch.unwrap_or(batch), args.heads.unwrap_or(heads));
    if batch == 0 || heads == 0 {
        return Err(Error::InvalidOption(
            "--batch and --heads must be at least 1".into(),
        ));
    }
    let selection = selection(args)?;
    outln!(
        "attention benchmark on {}: [batch {batch}, seq {seq}, heads {heads}, dim {}] {}, \
         {iters} launch(es) per row",
        device.name(),
        args.dim,
        args.dtype
    );
    if !gpu {
        outln!(
            "emulator times: the kernels run on the CPU through the SIMT emulator; these are \
             emulator times, not GPU performance"
        );
    }
    outln!(
        "FLOPs = 4*b*h*s^2*d (/2 causal); % peak: cuda-core rows of the H200's FP32 CUDA-core \
         peak, {:.0} TFLOP/s; tensor-core rows of its dense BF16 tensor peak, {:.0} TFLOP/s \
         (NVIDIA datasheet, 1979 with sparsity / 2)",
        H200_FP32_PEAK_FLOPS / 1e12,
        H200_BF16_TENSOR_PEAK_FLOPS / 1e12
    );
    let kernels = perf::families(&device, args.kernel, args.dim, args.dtype)?;
    let rows = perf::run_selection(
        &device,
        [batch, seq, heads, args.dim],
        args.dtype,
        iters,
        &kernels,
        &selection,
        &mut |_| {},
    )?;
    outln!("{}", table(&rows, gpu).render());
    if let Some(path) = &args.json {
        outputs.stage(0, &super::json_bytes(&json(&device, &rows), path)?)?;
    }
    outputs.commit()?;
    Ok(())
}

/// The rows as `{device, rows: [{kernel, variant, batch, seq, heads, head_dim, dtype, causal,
/// stats, seconds, tflops}]}` (`kernel`: the family that ran, `cuda-core` or `tensor-core`).
fn json(device: &Device, rows: &[BenchRow]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let c = &r.config;
            serde_json::json!({
                "kernel": c.kernel.name(),
                "variant": c.normaliser.name(),
                "batch": c.batch,
                "seq": c.seq,
                "heads": c.heads,
                "head_dim": c.head_dim,
                "dtype": c.dtype.name(),
                "causal": c.causal,
                "stats": c.stats,
                "seconds": r.seconds,
                "tflops": r.tflops,
            })
        })
        .collect();
    serde_json::json!({ "device": device.name(), "rows": rows })
}

fn table(rows: &[BenchRow], gpu: bool) -> Table {
    let mut t = Table::new(
        &[
            "kernel",
            "variant",
            "causal",
            "stats",
            "time ms",
            "TFLOP/s",
            "% peak",
            "x softmax",
            "x off",
            "x cuda-core",
        ],
        4,
    );
    for r in rows {
        let c = &r.config;
        t.row(vec![
            c.kernel.name().into(),
            c.normaliser.name().into(),
            if c.causal { "yes" } else { "no" }.into(),
            if c.stats { "on" } else { "off" }.into(),
            num(Some(r.seconds * 1e3)),
            if gpu { num(Some(r.tflops)) } else { "-".into() },
            if gpu {
                num(Some(r.peak_percent))
            } else {
                "-".into()
            },
            num(Some(r.vs_softmax)),
            if c.stats {
                num(Some(r.stats_cost))
            } else {
                "-".into()
            },
            r.vs_cuda_core.map_or_else(|| "-".into(), |x| num(Some(x))),
        ]);
    }
    t
}
