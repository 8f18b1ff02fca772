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
    /// Clipped softmax γ (≤ 0).
    #[arg(long, default_value_t = -0.03, allow_negative_numbers = true)]
    pub gamma: f32,
    /// Clipped softmax ζ (≥ 1).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub zeta: f32,
    /// Sigmoid attention bias b (default -ln(kv_len) of each sequence).
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
    /// The normaliser with the command line's parameters.
    pub fn normaliser(self, gamma: f32, zeta: f32, sigmoid_bias: Option<f32>) -> Normaliser {
        match self {
            VariantName::Softmax => Normaliser::Softmax,
            VariantName::OffByOne => Normaliser::OffByOne,
            VariantName::Sink => Normaliser::Sink,
            VariantName::Clipped => Normaliser::Clipped { gamma, zeta },
            VariantName::Softpick => Normaliser::Softpick,
            VariantName::Sigmoid => Normaliser::Sigmoid { bias: sigmoid_bias },
        }
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
}
