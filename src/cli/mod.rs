//! Argument parsing and dispatch; one module per subcommand.

/// `println!` that neither panics nor stops the command when stdout is closed or fails (see
/// the `output` module).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::print_line(format_args!($($arg)*))
    };
}

/// `eprintln!` that ignores a failing stderr instead of panicking.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::eprint_line(format_args!($($arg)*))
    };
}

mod bench;
mod check;
mod demo;
mod numeric_policy;
mod options;
pub mod output;
mod probe;
mod probe_table;
mod ptx;
mod run;
mod run_paged;
mod stats;
mod table;
mod workload;

use clap::{Parser, Subcommand};
use quietattn::{Device, DeviceKind, Result};

/// Fused attention with softmax variants and in-kernel outlier statistics.
#[derive(Debug, Parser)]
#[command(name = "quietattn", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without one, `demo` runs.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs attention over the q/k/v tensors (or paged KV cache) of a safetensors file and
    /// writes o and lse, and the outlier statistics as JSON with --stats.
    Run(run::RunArgs),
    /// Prints the outlier statistics (kurtosis, outlier and massive channels) of the
    /// [tokens, channels] activation tensors of a safetensors file.
    Stats(stats::StatsArgs),
    /// Runs every variant on a synthetic workload that plants no-op heads and outlier channels
    /// and prints one row per variant (what runs without a command).
    Demo(demo::DemoArgs),
    /// Writes the kernel images embedded in this build (one fatbin per module: SASS for each
    /// architecture plus PTX) and a manifest to a folder, for cuobjdump and CI's checks.
    Ptx(ptx::PtxArgs),
    /// Times forward attention of every variant and prints its throughput (GPU, or small
    /// sizes on the emulator).
    Bench(bench::BenchArgs),
    /// Runs the correctness suite: every kernel family against the f64 reference (exit 0 only
    /// when all pass).
    Check(check::CheckArgs),
    /// Runs a real checkpoint's forward pass with quietattn's attention and prints sink scores,
    /// entropies, kurtosis, outlier channels and massive activations per layer and head.
    Probe(probe::ProbeArgs),
}

/// Runs the parsed command line.
pub fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        None => demo::demo(&demo::DemoArgs::default()),
        Some(Command::Run(a)) => run::run(&a),
        Some(Command::Stats(a)) => stats::stats(&a),
        Some(Command::Demo(a)) => demo::demo(&a),
        Some(Command::Ptx(a)) => ptx::ptx(&a),
        Some(Command::Bench(a)) => bench::bench(&a),
        Some(Command::Check(a)) => check::check(&a),
        Some(Command::Probe(a)) => probe::probe(&a),
    }
}

/// `--device` values.
fn parse_device(s: &str) -> std::result::Result<DeviceKind, String> {
    s.parse::<DeviceKind>().map_err(|e| e.to_string())
}

/// `--kernel auto|cuda-core|tensor-core`.
fn parse_kernel(s: &str) -> std::result::Result<quietattn::KernelChoice, String> {
    s.parse::<quietattn::KernelChoice>()
        .map_err(|e| e.to_string())
}

/// Opens the device `--device` names.
fn open_device(kind: DeviceKind) -> Result<Device> {
    Device::from_kind(kind)
}

/// A short device label for tables.
fn device_label(device: &Device) -> &'static str {
    match device.kind() {
        DeviceKind::Reference | DeviceKind::Auto => "ref",
        DeviceKind::Emulator => "emu",
        DeviceKind::Cuda => "cuda",
    }
}

/// A statistics document as pretty JSON, for an [`quietattn::files::OutputSet`] to write to
/// `path` (named in the error).
fn json_bytes<T: serde::Serialize>(doc: &T, path: &std::path::Path) -> Result<Vec<u8>> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| quietattn::Error::File {
        path: path.display().to_string(),
        message: format!("cannot encode the JSON document: {e}"),
    })?;
    Ok(text.into_bytes())
}

/// Milliseconds of a duration, for messages.
fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
