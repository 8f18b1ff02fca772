//! Argument parsing and dispatch; one module per subcommand.

mod bench;
mod check;
mod demo;
mod numeric_policy;
mod options;
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
    /// Attention over the tensors of a safetensors file.
    Run(run::RunArgs),
    /// Outlier statistics of the 2-D activation tensors of a safetensors file.
    Stats(stats::StatsArgs),
    /// Every variant on a synthetic workload that plants no-op heads and outlier channels.
    Demo(demo::DemoArgs),
    /// Writes the embedded PTX to a directory (for ptxas checks).
    Ptx(ptx::PtxArgs),
    /// Times forward attention of every variant (GPU, or small sizes on the emulator).
    Bench(bench::BenchArgs),
    /// The correctness suite: every kernel family against the f64 reference (exit 0 only when
    /// all pass).
    Check(check::CheckArgs),
    /// A real checkpoint's forward pass with quietattn's attention: sink scores, entropies,
    /// kurtosis, outlier channels and massive activations per layer and head.
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

/// A statistics document as pretty JSON, for an [`quietattn::files::OutputSet`] to write.
fn json_bytes<T: serde::Serialize>(doc: &T) -> Result<Vec<u8>> {
    let text = serde_json::to_string_pretty(doc).map_err(std::io::Error::other)?;
    Ok(text.into_bytes())
}

/// Milliseconds of a duration, for messages.
fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
