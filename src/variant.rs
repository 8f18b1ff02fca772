//! The attention variants of docs/contract.md §2–4: normalisers, logit transform and output gates.

use crate::abi;
use crate::error::{Error, Result};

/// How the weights of a row are formed from its logits (docs/contract.md §3). In the kernels this
/// is a compile-time policy; here it is a value that selects the instantiation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Normaliser {
    /// `e^s / Σ e^s`.
    Softmax,
    /// softmax1: `e^s / (1 + Σ e^s)` (E. Miller, "Attention is off by one").
    OffByOne,
    /// Learned per-head sink logit `σ_h`: `e^s / (e^σ + Σ e^s)` (gpt-oss). Needs `sinks`.
    Sink,
    /// Clipped softmax `clip((ζ-γ)·softmax + γ, 0, 1)` (Bondarenko et al., arXiv 2306.12929).
    Clipped {
        /// γ ≤ 0.
        gamma: f32,
        /// ζ ≥ 1.
        zeta: f32,
    },
    /// softpick `relu(e^s - 1) / (Σ |e^s - 1| + ε)` (arXiv 2504.20966).
    Softpick,
    /// Sigmoid attention `sigmoid(s + b)` (arXiv 2409.04431); `None` = `b = -ln(kv_len)`.
    Sigmoid {
        /// The bias `b`; `None` uses `-ln(kv_len)` of each sequence.
        bias: Option<f32>,
    },
}

/// ε of softpick's denominator.
pub const SOFTPICK_EPS: f64 = 1e-6;

impl Normaliser {
    /// The ABI value.
    pub fn abi(&self) -> u32 {
        match self {
            Normaliser::Softmax => abi::QaNormaliser_QA_NORM_SOFTMAX,
            Normaliser::OffByOne => abi::QaNormaliser_QA_NORM_OFF_BY_ONE,
            Normaliser::Sink => abi::QaNormaliser_QA_NORM_SINK,
            Normaliser::Clipped { .. } => abi::QaNormaliser_QA_NORM_CLIPPED,
            Normaliser::Softpick => abi::QaNormaliser_QA_NORM_SOFTPICK,
            Normaliser::Sigmoid { .. } => abi::QaNormaliser_QA_NORM_SIGMOID,
        }
    }

    /// The CLI / report name.
    pub fn name(&self) -> &'static str {
        match self {
            Normaliser::Softmax => "softmax",
            Normaliser::OffByOne => "off-by-one",
            Normaliser::Sink => "sink",
            Normaliser::Clipped { .. } => "clipped",
            Normaliser::Softpick => "softpick",
            Normaliser::Sigmoid { .. } => "sigmoid",
        }
    }

    /// True for the normalisers with a virtual sink outcome (`off_by_one`, `sink`).
    pub fn has_virtual_sink(&self) -> bool {
        matches!(self, Normaliser::OffByOne | Normaliser::Sink)
    }

    /// Checks the parameters' domains.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Normaliser::Clipped { gamma, zeta } => {
                if !(gamma.is_finite() && gamma <= 0.0) {
                    return Err(Error::InvalidOption(format!(
                        "clipped softmax needs a finite gamma <= 0, got {gamma}"
                    )));
                }
                if !(zeta.is_finite() && zeta >= 1.0) {
                    return Err(Error::InvalidOption(format!(
                        "clipped softmax needs a finite zeta >= 1, got {zeta}"
                    )));
                }
            }
            Normaliser::Sigmoid { bias: Some(b) } if !b.is_finite() => {
                return Err(Error::InvalidOption(format!(
                    "sigmoid bias must be finite, got {b}"
                )));
            }
            _ => {}
        }
        Ok(())
    }

    /// Every normaliser with default parameters (clipped: γ = -0.03, ζ = 1).
    pub fn all_defaults() -> [Normaliser; 6] {
        [
            Normaliser::Softmax,
            Normaliser::OffByOne,
            Normaliser::Sink,
            Normaliser::Clipped {
                gamma: -0.03,
                zeta: 1.0,
            },
            Normaliser::Softpick,
            Normaliser::Sigmoid { bias: None },
        ]
    }
}

/// Output gate applied in the epilogue, after normalisation (docs/contract.md §4). The gate logits
/// are an input tensor: `[b, sq, h]` for the headwise kinds, `[b, sq, h, d]` for elementwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// No gate.
    None,
    /// `o *= sigmoid(g_h)`.
    SigmoidHeadwise,
    /// `o_c *= sigmoid(g_c)`.
    SigmoidElementwise,
    /// `o *= 2·sigmoid(g_h)` (context-aware scaling, arXiv 2502.06415).
    ContextScale,
}

impl Gate {
    /// The ABI value.
    pub fn abi(self) -> u32 {
        match self {
            Gate::None => abi::QaGate_QA_GATE_NONE,
            Gate::SigmoidHeadwise => abi::QaGate_QA_GATE_SIGMOID_HEADWISE,
            Gate::SigmoidElementwise => abi::QaGate_QA_GATE_SIGMOID_ELEMENTWISE,
            Gate::ContextScale => abi::QaGate_QA_GATE_CONTEXT_SCALE,
        }
    }

    /// True when the gate has one logit per channel rather than per head.
    pub fn is_elementwise(self) -> bool {
        self == Gate::SigmoidElementwise
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Gate::None => "none",
            Gate::SigmoidHeadwise => "sigmoid-headwise",
            Gate::SigmoidElementwise => "sigmoid-elementwise",
            Gate::ContextScale => "context-scale",
        }
    }

    /// The factor the output is multiplied by for gate logit `g`.
    pub fn factor(self, g: f64) -> f64 {
        let sigmoid = 1.0 / (1.0 + (-g).exp());
        match self {
            Gate::None => 1.0,
            Gate::SigmoidHeadwise | Gate::SigmoidElementwise => sigmoid,
            Gate::ContextScale => 2.0 * sigmoid,
        }
    }
}

/// Which kernel family serves an attention call.
///
/// `Auto` takes the tensor-core family where it can serve the problem (compute capability
/// ≥ 8.0, f16/bf16, head dim 32/64/96/128/192/256) and the CUDA-core family otherwise. Pinning
/// a family that cannot serve the problem is an [`Error::Unsupported`] that says why.
///
/// ```
/// use quietattn::{AttentionOptions, KernelChoice};
///
/// let options = AttentionOptions { kernel: KernelChoice::CudaCore, ..AttentionOptions::default() };
/// assert_eq!(options.kernel.name(), "cuda-core");
/// assert_eq!("tensor-core".parse::<KernelChoice>()?, KernelChoice::TensorCore);
/// # Ok::<(), quietattn::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KernelChoice {
    /// The tensor-core family where it applies, else the CUDA-core family.
    #[default]
    Auto,
    /// The CUDA-core family (any sm_75+, f32/f16/bf16, head dims multiple of 8 up to 256).
    CudaCore,
    /// The tensor-core family (sm_80+, f16/bf16, head dims 32/64/96/128/192/256).
    TensorCore,
}

impl KernelChoice {
    /// Every choice, `Auto` first.
    pub const ALL: [KernelChoice; 3] = [
        KernelChoice::Auto,
        KernelChoice::CudaCore,
        KernelChoice::TensorCore,
    ];

    /// The command-line name (`auto`, `cuda-core`, `tensor-core`).
    pub fn name(self) -> &'static str {
        match self {
            KernelChoice::Auto => "auto",
            KernelChoice::CudaCore => "cuda-core",
            KernelChoice::TensorCore => "tensor-core",
        }
    }
}

impl std::str::FromStr for KernelChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        KernelChoice::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                Error::InvalidOption(format!(
                    "kernel `{s}`: expected auto, cuda-core or tensor-core"
                ))
            })
    }
}

/// Options of one attention call.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionOptions {
    /// The normaliser.
    pub normaliser: Normaliser,
    /// Causal mask, aligned bottom-right (FlashAttention ≥ 2.1).
    pub causal: bool,
    /// Sliding window `(left, right)`; -1 = unbounded on that side.
    pub window: Option<(i32, i32)>,
    /// Softcap `c`: `s ← c·tanh(s/c)` (Gemma 2).
    pub softcap: Option<f32>,
    /// Output gate kind (the logits are an input).
    pub gate: Gate,
    /// Logit scale; `None` = `1/sqrt(d)`.
    pub scale: Option<f32>,
    /// Collect the outlier statistics of docs/contract.md §5.
    pub stats: bool,
    /// The kernel family (GPU and emulator; the reference ignores it).
    pub kernel: KernelChoice,
}

impl Default for AttentionOptions {
    fn default() -> Self {
        AttentionOptions {
            normaliser: Normaliser::Softmax,
            causal: false,
            window: None,
            softcap: None,
            gate: Gate::None,
            scale: None,
            stats: false,
            kernel: KernelChoice::Auto,
        }
    }
}

impl AttentionOptions {
    /// Checks every option's domain.
    pub fn validate(&self) -> Result<()> {
        self.normaliser.validate()?;
        if let Some((l, r)) = self.window
            && (l < -1 || r < -1)
        {
            return Err(Error::InvalidOption(format!(
                "window ({l}, {r}): sides must be >= 0 or -1 (unbounded)"
            )));
        }
        if let Some(c) = self.softcap
            && !(c.is_finite() && c > 0.0)
        {
            return Err(Error::InvalidOption(format!(
                "softcap must be finite and > 0, got {c}"
            )));
        }
        if let Some(s) = self.scale
            && !s.is_finite()
        {
            return Err(Error::InvalidOption(format!(
                "scale must be finite, got {s}"
            )));
        }
        Ok(())
    }
}
