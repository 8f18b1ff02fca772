//! What a probed forward pass leaves behind: per layer the attention's per-head readings and
//! raw statistics, and per hidden state (embeddings first, then each layer's output) the
//! activation statistics and the state itself.

use crate::device::Device;
use crate::error::Result;
use crate::probe::attention_layer::{AttentionLayer, HeadProbe};
use crate::probe::hidden::{HiddenProbe, hidden_probe};
use crate::probe::matrix::Matrix;
use crate::stats::OutlierStats;

/// One layer's attention, without its output (which flowed on into the model).
#[derive(Clone, Debug)]
pub struct AttentionTrace {
    /// Per head.
    pub heads: Vec<HeadProbe>,
    /// The raw counters of the layer's attention call.
    pub stats: OutlierStats,
    /// `[heads, tokens, tokens]` attention weights (softmax runs only).
    pub map: Option<Vec<f32>>,
}

impl From<AttentionLayer> for AttentionTrace {
    fn from(a: AttentionLayer) -> Self {
        AttentionTrace {
            heads: a.heads,
            stats: a.stats,
            map: a.map,
        }
    }
}

/// One hidden state and its statistics.
#[derive(Clone, Debug)]
pub struct HiddenTrace {
    /// `[tokens, hidden]`.
    pub state: Matrix,
    /// Its statistics.
    pub probe: HiddenProbe,
}

/// A probed forward pass.
#[derive(Clone, Debug)]
pub struct Trace {
    /// One per layer.
    pub attention: Vec<AttentionTrace>,
    /// Embeddings' output, then one per layer (layers + 1 entries, as Hugging Face's
    /// `hidden_states`).
    pub hidden: Vec<HiddenTrace>,
    /// Next-token logits `[tokens, vocab]` of a causal model; `None` for an encoder.
    pub logits: Option<Matrix>,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Trace {
            attention: Vec::new(),
            hidden: Vec::new(),
            logits: None,
        }
    }

    /// Records hidden state `x` after computing its statistics on `device`.
    pub fn record_hidden(&mut self, device: &Device, x: &Matrix) -> Result<()> {
        let probe = hidden_probe(device, x)?;
        self.hidden.push(HiddenTrace {
            state: x.clone(),
            probe,
        });
        Ok(())
    }

    /// The last hidden state (the model's output before any head).
    pub fn last_hidden(&self) -> Option<&Matrix> {
        self.hidden.last().map(|h| &h.state)
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}
