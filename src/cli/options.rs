//! The attention options shared by `run` (and usable by any command that runs attention).

use clap::{Args, ValueEnum};
use quietattn::{AttentionOptions, Gate, KernelChoice, Normaliser, Result};

/// The `--variant` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VariantName {
    /// `e^s / Σ e^s`.
    Softmax,
    /// softmax1: `e^s / (1 + Σ e^s)`.
    OffByOne,
    /// Learned per-head sink logits (tensor `sinks`).
    Sink,
    /// Clipped softmax (`--gamma`, `--zeta`).
    Clipped,
    /// softpick.
    Softpick,
    /// Sigmoid attention (`--sigmoid-bias`).
    Sigmoid,
}

/// The `--gate` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GateName {
    /// No gate.
    None,
    /// `o *= sigmoid(g)`, one logit per head (tensor `gate` `[b, sq, h]`).
    SigmoidHeadwise,
    /// `o *= sigmoid(g)`, one logit per channel (tensor `gate` `[b, sq, h, d]`).
    SigmoidElementwise,
    /// `o *= 2·sigmoid(g)`, one logit per head.
    ContextScale,
}

/// Attention options on the command line.
#[derive(Debug, Args)]
pub struct VariantArgs {
    /// The normaliser.
    #[arg(long, value_enum, default_value_t = VariantName::Softmax)]
    pub variant: VariantName,
    /// Clipped softmax γ (≤ 0; default -0.03). Other variants note that they ignore it.
    #[arg(long, allow_negative_numbers = true)]
    pub gamma: Option<f32>,
    /// Clipped softmax ζ (≥ 1; default 1). Other variants note that they ignore it.
    #[arg(long, allow_negative_numbers = true)]
    pub zeta: Option<f32>,
    /// Sigmoid attention bias b (default -ln(kv_len) of each sequence). Other variants note
    /// that they ignore it.
    #[arg(long, allow_negative_numbers = true)]
    pub sigmoid_bias: Option<f32>,
    /// Causal mask, aligned bottom-right.
    #[arg(long)]
    pub causal: bool,
    /// Sliding window `LEFT,RIGHT` (-1 = unbounded), e.g. `--window=-1,0`.
    #[arg(long, value_parser = parse_window, allow_hyphen_values = true)]
    pub window: Option<(i32, i32)>,
    /// Logit softcap c: s ← c·tanh(s/c).
    #[arg(long)]
    pub softcap: Option<f32>,
    /// Output gate (logits from tensor `gate`).
    #[arg(long, value_enum, default_value_t = GateName::None)]
    pub gate: GateName,
    /// Logit scale (default 1/sqrt(head_dim)).
    #[arg(long, allow_negative_numbers = true)]
    pub scale: Option<f32>,
    /// Kernel family: auto (tensor cores on sm_80+ for f16/bf16 and head dims
    /// 32/64/96/128/192/256, else CUDA cores), cuda-core or tensor-core.
    #[arg(long, default_value = "auto", value_parser = super::parse_kernel)]
    pub kernel: KernelChoice,
}

/// Clipped softmax γ when `--gamma` is not given.
const DEFAULT_GAMMA: f32 = -0.03;
/// Clipped softmax ζ when `--zeta` is not given.
const DEFAULT_ZETA: f32 = 1.0;

/// Parses `LEFT,RIGHT`.
fn parse_window(s: &str) -> std::result::Result<(i32, i32), String> {
    let parse = |x: &str| {
        x.trim()
            .parse::<i32>()
            .map_err(|_| format!("`{s}`: expected LEFT,RIGHT with integers (-1 = unbounded)"))
    };
    match s.split_once(',') {
        Some((l, r)) => Ok((parse(l)?, parse(r)?)),
        None => Err(format!("`{s}`: expected LEFT,RIGHT, e.g. 128,0 or -1,0")),
    }
}

impl VariantName {
    /// The normaliser with the command line's parameters (clipped defaults γ = -0.03, ζ = 1).
    pub fn normaliser(
        self,
        gamma: Option<f32>,
        zeta: Option<f32>,
        sigmoid_bias: Option<f32>,
    ) -> Normaliser {
        match self {
            VariantName::Softmax => Normaliser::Softmax,
            VariantName::OffByOne => Normaliser::OffByOne,
            VariantName::Sink => Normaliser::Sink,
            VariantName::Clipped => Normaliser::Clipped {
                gamma: gamma.unwrap_or(DEFAULT_GAMMA),
                zeta: zeta.unwrap_or(DEFAULT_ZETA),
            },
            VariantName::Softpick => Normaliser::Softpick,
            VariantName::Sigmoid => Normaliser::Sigmoid { bias: sigmoid_bias },
        }
    }
}

/// The mask of `options` as the summaries print it: `no mask`, `causal`, `window L,R`
/// (-1 = unbounded, as `--window` takes it) or both.
pub fn mask_text(options: &AttentionOptions) -> String {
    match (options.causal, options.window) {
        (false, None) => "no mask".into(),
        (true, None) => "causal".into(),
        (false, Some((l, r))) => format!("window {l},{r}"),
        (true, Some((l, r))) => format!("causal, window {l},{r}"),
    }
}

impl GateName {
    /// The library's gate.
    pub fn gate(self) -> Gate {
        match self {
            GateName::None => Gate::None,
            GateName::SigmoidHeadwise => Gate::SigmoidHeadwise,
            GateName::SigmoidElementwise => Gate::SigmoidElementwise,
            GateName::ContextScale => Gate::ContextScale,
        }
    }
}

impl VariantArgs {
    /// The validated options.
    pub fn options(&self, stats: bool) -> Result<AttentionOptions> {
        let options = AttentionOptions {
            normaliser: self
                .variant
                .normaliser(self.gamma, self.zeta, self.sigmoid_bias),
            causal: self.causal,
            window: self.window,
            softcap: self.softcap,
            gate: self.gate.gate(),
            scale: self.scale,
            stats,
            kernel: self.kernel,
        };
        options.validate()?;
        Ok(options)
    }

    /// One line per given parameter that the chosen variant does not use (silently ignoring
    /// one would let a typo in `--variant` go unnoticed).
    pub fn unused_notes(&self) -> Vec<String> {
        let variant = self.variant.normaliser(None, None, None).name();
        let clipped = self.variant == VariantName::Clipped;
        let sigmoid = self.variant == VariantName::Sigmoid;
        [
            ("--gamma", self.gamma.is_some() && !clipped),
            ("--zeta", self.zeta.is_some() && !clipped),
            ("--sigmoid-bias", self.sigmoid_bias.is_some() && !sigmoid),
        ]
        .iter()
        .filter(|(_, unused)| *unused)
        .map(|(flag, _)| format!("note: {flag} ignored (variant {variant})"))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse() {
        assert_eq!(parse_window("128,0"), Ok((128, 0)));
        assert_eq!(parse_window("-1, 4"), Ok((-1, 4)));
        assert!(parse_window("5").is_err());
        assert!(parse_window("a,1").is_err());
    }

    fn args(variant: VariantName, gamma: Option<f32>, bias: Option<f32>) -> VariantArgs {
        VariantArgs {
            variant,
            gamma,
            zeta: None,
            sigmoid_bias: bias,
            causal: false,
            window: None,
            softcap: None,
            gate: GateName::None,
            scale: None,
            kernel: KernelChoice::Auto,
        }
    }

    #[test]
    fn unused_parameters_are_noted() {
        let a = args(VariantName::Softmax, Some(-0.1), Some(-2.0));
        assert_eq!(
            a.unused_notes(),
            vec![
                "note: --gamma ignored (variant softmax)".to_string(),
                "note: --sigmoid-bias ignored (variant softmax)".to_string()
            ]
        );
        assert!(
            args(VariantName::Clipped, Some(-0.1), None)
                .unused_notes()
                .is_empty()
        );
        assert!(
            args(VariantName::Sigmoid, None, Some(-2.0))
                .unused_notes()
                .is_empty()
        );
        // The defaults still apply when nothing is given.
        let n = VariantName::Clipped.normaliser(None, None, None);
        assert_eq!(
            n,
            Normaliser::Clipped {
                gamma: -0.03,
                zeta: 1.0
            }
        );
    }
}
