//! `quietattn demo` (also what runs without arguments): every variant on one synthetic
//! workload, one table that shows why softmax needs an attention sink and the others do not.

use std::time::Instant;

use clap::Args;
use quietattn::stats::report::{AttentionReport, SINK_EPSILON};
use quietattn::{AttentionInputs, AttentionOptions, DType, DeviceKind, Error, Gate, Normaliser};
use quietattn::{Device, KernelChoice, Result};

use super::table::{Table, num};
use super::workload::{self, Plant, Shape};

/// Arguments of `quietattn demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to compute: auto (GPU, else emulator, else reference), reference, emulator, cuda.
    #[arg(long, default_value = "auto", value_parser = super::parse_device)]
    device: DeviceKind,
    /// Tokens per sequence.
    #[arg(long, default_value_t = DEFAULT_SHAPE.seq)]
    seq: usize,
    /// Attention heads.
    #[arg(long, default_value_t = DEFAULT_SHAPE.heads)]
    heads: usize,
    /// How many heads are no-op heads.
    #[arg(long, default_value_t = DEFAULT_SHAPE.noop_heads)]
    noop_heads: usize,
    /// Head dimension.
    #[arg(long, default_value_t = DEFAULT_SHAPE.dim)]
    dim: usize,
    /// Sequences.
    #[arg(long, default_value_t = DEFAULT_SHAPE.batch)]
    batch: usize,
    /// Element type: f16, bf16 or f32.
    #[arg(long, default_value = "f16", value_parser = parse_dtype)]
    dtype: DType,
    /// Causal mask (rows then see fewer keys; clipped softmax zeros need about 35).
    #[arg(long)]
    causal: bool,
    /// Seed of the random part of the workload.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Kernel family: auto, cuda-core or tensor-core.
    #[arg(long, default_value = "auto", value_parser = super::parse_kernel)]
    kernel: KernelChoice,
}

const DEFAULT_SHAPE: Shape = Shape {
    batch: 1,
    seq: 64,
    heads: 4,
    noop_heads: 2,
    dim: 64,
};
const DEFAULT_SEED: u64 = 7;

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            device: DeviceKind::Auto,
            seq: DEFAULT_SHAPE.seq,
            heads: DEFAULT_SHAPE.heads,
            noop_heads: DEFAULT_SHAPE.noop_heads,
            dim: DEFAULT_SHAPE.dim,
            batch: DEFAULT_SHAPE.batch,
            dtype: DType::F16,
            causal: false,
            seed: DEFAULT_SEED,
            kernel: KernelChoice::Auto,
        }
    }
}

fn parse_dtype(s: &str) -> std::result::Result<DType, String> {
    s.parse::<DType>().map_err(|e| e.to_string())
}

/// One row of the table: a variant and the no-op mechanism planted for it.
struct Scenario {
    name: &'static str,
    plant_label: &'static str,
    normaliser: Normaliser,
    gate: Gate,
    plant: Plant,
}

/// Each variant gets the cheapest plant that lets its no-op heads output ≈ 0; softmax also
/// gets `q = 0` to show that without a sink it cannot.
fn scenarios() -> Vec<Scenario> {
    let s = |name, plant_label, normaliser, gate, plant| Scenario {
        name,
        plant_label,
        normaliser,
        gate,
        plant,
    };
    let clipped = Normaliser::Clipped {
        gamma: -0.03,
        zeta: 1.0,
    };
    vec![
        s(
            "softmax",
            "s(key 0) = +8",
            Normaliser::Softmax,
            Gate::None,
            Plant::SinkKey(8.0),
        ),
        s(
            "softmax",
            "q = 0",
            Normaliser::Softmax,
            Gate::None,
            Plant::Zero,
        ),
        s(
            "off-by-one",
            "all s = -8",
            Normaliser::OffByOne,
            Gate::None,
            Plant::Quiet(8.0),
        ),
        s(
            "sink",
            "q = 0, sink 8",
            Normaliser::Sink,
            Gate::None,
            Plant::Zero,
        ),
        s("clipped", "q = 0", clipped, Gate::None, Plant::Zero),
        s(
            "softpick",
            "all s = -1",
            Normaliser::Softpick,
            Gate::None,
            Plant::Quiet(1.0),
        ),
        s(
            "sigmoid",
            "all s = -4",
            Normaliser::Sigmoid { bias: None },
            Gate::None,
            Plant::Quiet(4.0),
        ),
        s(
            "softmax+gate",
            "q = 0, gate -8",
            Normaliser::Softmax,
            Gate::SigmoidHeadwise,
            Plant::Zero,
        ),
    ]
}

/// Runs every scenario and prints the table with its reading guide.
pub fn demo(args: &DemoArgs) -> Result<()> {
    let shape = Shape {
        batch: args.batch,
        seq: args.seq,
        heads: args.heads,
        noop_heads: args.noop_heads,
        dim: args.dim,
    };
    let device = if args.device == DeviceKind::Auto {
        Device::auto()
    } else {
        super::open_device(args.device)?
    };
    outln!(
        "quietattn demo on {}: batch {}, {} tokens, {} heads of dim {} ({} no-op), {}, {}, seed {}",
        device.name(),
        shape.batch,
        shape.seq,
        shape.heads,
        shape.dim,
        shape.noop_heads,
        args.dtype,
        if args.causal { "causal" } else { "non-causal" },
        args.seed
    );
    outln!("token 0's value vector is ~0; the no-op heads want to output nothing.\n");
    let mut table = Table::new(
        &[
            "variant",
            "no-op plant",
            "sink score",
            "sink rate",
            "virt. sink",
            "entropy",
            "|o| no-op",
            "|o| other",
            "Q kurt",
            "Q max",
            "K kurt",
            "K max",
            "dev",
            "ms",
        ],
        2,
    );
    for sc in scenarios() {
        table.row(run_scenario(&device, &shape, args, &sc)?);
    }
    outln!("{}\n", table.render());
    print_guide(&shape);
    Ok(())
}

fn run_scenario(
    device: &Device,
    shape: &Shape,
    args: &DemoArgs,
    sc: &Scenario,
) -> Result<Vec<String>> {
    let w = workload::build(shape, sc.plant, args.seed, args.dtype)?;
    let mut inputs = AttentionInputs::new(w.q.view(), w.k.view(), w.v.view());
    if sc.normaliser == Normaliser::Sink {
        inputs.sinks = Some(&w.sinks);
    }
    if sc.gate != Gate::None {
        inputs.gate = Some(w.gate.view());
    }
    let options = AttentionOptions {
        normaliser: sc.normaliser,
        causal: args.causal,
        gate: sc.gate,
        stats: true,
        kernel: args.kernel,
        ..AttentionOptions::default()
    };
    let start = Instant::now();
    let out = quietattn::attention(device, &inputs, &options)?;
    let ms = super::millis(start.elapsed());
    let stats = out
        .stats
        .as_ref()
        .ok_or_else(|| Error::Unsupported(format!("{} returned no statistics", device.name())))?;
    let report = AttentionReport::new(stats);
    let o = out.o.to_f64();
    let noop = |h: usize| h < shape.noop_heads;
    let virt = sc.normaliser.has_virtual_sink().then(|| {
        let v: Vec<f64> = report
            .heads
            .iter()
            .filter_map(|h| h.virtual_sink_per_row)
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    });
    let (q, k) = (&report.tensors[0], &report.tensors[1]);
    Ok(vec![
        sc.name.into(),
        sc.plant_label.into(),
        num(report.mean_sink_score),
        num(report.sink_rate),
        virt.map_or("-".into(), |x| num(Some(x))),
        num(report.mean_entropy),
        num(workload::mean_row_norm(&o, shape, noop)),
        num(workload::mean_row_norm(&o, shape, |h| !noop(h))),
        num(q.max_kurtosis.map(|(_, k)| k)),
        num(Some(q.max_inf_norm)),
        num(k.max_kurtosis.map(|(_, k)| k)),
        num(Some(k.max_inf_norm)),
        super::device_label(device).into(),
        format!("{ms:.1}"),
    ])
}

fn print_guide(shape: &Shape) {
    let noop = shape.noop_heads as f64 / shape.heads as f64;
    let guide = format!(
        "How to read it. The first {n} heads want to output nothing (|o| no-op); token 0's value is ~0;
s = q.k/sqrt(d), the logit the plant gives those heads.
sink score = mean weight on token 0 over all heads; sink rate = share of heads scoring > {SINK_EPSILON}
(Gu et al. 2024); virt. sink = mean weight on the virtual sink outcome; entropy = mean normalised
row entropy. With {noop_pct:.0}% no-op heads, a sink rate of {noop:.2} means exactly they are sink heads.
- softmax: weights sum to 1, so a no-op head parks them on token 0 (row 1: high sink score, |o| ~0).
  Give it nothing to park on (row 2, q = 0) and it averages the values: |o| as large as the others.
- off-by-one and sink send the mass to a virtual outcome, clipped and softpick reach exact zeros,
  sigmoid weights need not sum to 1, the gate scales the head away: |o| ~0, no sink on token 0.
- Q/K kurt and max: largest per-channel kurtosis (Gaussian 3) and |x| the kernel measured; the
  softmax sink costs one large query-key channel pair (K kurt ~ tokens: a single huge element).",
        n = shape.noop_heads,
        noop_pct = noop * 100.0,
    );
    outln!("{guide}");
}
