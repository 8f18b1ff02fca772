//! A BERT-family encoder (MiniLM, bert-base layouts) from `config.json` + `model.safetensors`,
//! run on the CPU with quietattn's attention (bidirectional, no padding).

use std::path::Path;

use serde::Deserialize;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::probe::attention_layer::{HeadLayout, attend};
use crate::probe::dense::{Dense, place_all};
use crate::probe::matrix::{Linear, Matrix};
use crate::probe::norm::{gelu, layer_norm};
use crate::probe::trace::Trace;
use crate::probe::weights::Weights;
use crate::variant::AttentionOptions;

/// The fields of a Hugging Face BERT `config.json` the forward needs.
#[derive(Clone, Debug, Deserialize)]
pub struct BertConfig {
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Positions the position table holds.
    pub max_position_embeddings: usize,
    /// Token types (segments).
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    /// Vocabulary.
    pub vocab_size: usize,
    /// ε of every LayerNorm.
    #[serde(default = "bert_eps")]
    pub layer_norm_eps: f64,
    /// Must be `gelu` (exact GELU).
    #[serde(default = "gelu_name")]
    pub hidden_act: String,
}

fn two() -> usize {
    2
}
fn bert_eps() -> f64 {
    1e-12
}
fn gelu_name() -> String {
    "gelu".into()
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: Norm,
    up: Linear,
    down: Linear,
    out_norm: Norm,
}

/// A loaded BERT encoder.
pub struct Bert {
    /// Its configuration.
    pub config: BertConfig,
    words: Matrix,
    positions: Matrix,
    types: Matrix,
    embed_norm: Norm,
    layers: Vec<Layer>,
}

impl Bert {
    /// Reads the checkpoint `weights` for `config`.
    pub fn load(config: BertConfig, weights: &Path) -> Result<Self> {
        check_config(&config)?;
        let w = Weights::read(weights, &["", "bert."], "embeddings.word_embeddings.weight")?;
        let h = config.hidden_size;
        let norm = |name: &str| -> Result<Norm> {
            Ok(Norm {
                gamma: w.vector(&format!("{name}.weight"), h)?,
                beta: w.vector(&format!("{name}.bias"), h)?,
            })
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| load_layer(&w, &config, &format!("encoder.layer.{i}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert {
            words: w.table("embeddings.word_embeddings.weight", config.vocab_size, h)?,
            positions: w.table(
                "embeddings.position_embeddings.weight",
                config.max_position_embeddings,
                h,
            )?,
            types: w.table(
                "embeddings.token_type_embeddings.weight",
                config.type_vocab_size,
                h,
            )?,
            embed_norm: norm("embeddings.LayerNorm")?,
            layers,
            config,
        })
    }

    /// Runs every dense layer on `dense` from now on (weights uploaded once); on an error
    /// they all stay on the CPU.
    pub fn place_dense(&mut self, dense: &Dense) -> Result<()> {
        let layers = self
            .layers
            .iter_mut()
            .flat_map(|l| {
                [
                    &mut l.query,
                    &mut l.key,
                    &mut l.value,
                    &mut l.attn_out,
                    &mut l.up,
                    &mut l.down,
                ]
            })
            .collect();
        place_all(layers, dense)
    }

    /// Head layout of every layer.
    pub fn layout(&self) -> HeadLayout {
        let heads = self.config.num_attention_heads;
        HeadLayout {
            heads,
            kv_heads: heads,
            head_dim: self.config.hidden_size / heads,
        }
    }

    /// Runs the encoder over `ids` / `type_ids` with attention `options` on `device`.
    pub fn forward(
        &self,
        device: &Device,
        ids: &[u32],
        type_ids: &[u32],
        options: &AttentionOptions,
    ) -> Result<Trace> {
        let mut trace = Trace::new();
        let mut x = self.embed(ids, type_ids)?;
        trace.record_hidden(device, &x)?;
        let eps = self.config.layer_norm_eps;
        let options = AttentionOptions {
            causal: false,
            ..options.clone()
        };
        for layer in &self.layers {
            let q = layer.query.forward(&x)?;
            let k = layer.key.forward(&x)?;
            let v = layer.value.forward(&x)?;
            let att = attend(device, self.layout(), &q, &k, &v, &options)?;
            let mut a = layer.attn_out.forward(&att.output)?;
            a.add_assign(&x)?;
            layer_norm(&mut a, &layer.attn_norm.gamma, &layer.attn_norm.beta, eps)?;
            let mut f = layer.up.forward(&a)?;
            f.map_in_place(gelu);
            let mut y = layer.down.forward(&f)?;
            y.add_assign(&a)?;
            layer_norm(&mut y, &layer.out_norm.gamma, &layer.out_norm.beta, eps)?;
            trace.attention.push(att.into());
            trace.record_hidden(device, &y)?;
            x = y;
        }
        Ok(trace)
    }

    /// Word + position + token-type embeddings, then LayerNorm.
    fn embed(&self, ids: &[u32], type_ids: &[u32]) -> Result<Matrix> {
        let c = &self.config;
        if ids.len() > c.max_position_embeddings {
            return Err(Error::InvalidOption(format!(
                "{} tokens; the model takes at most {}",
                ids.len(),
                c.max_position_embeddings
            )));
        }
        let mut x = Matrix::zeros(ids.len(), c.hidden_size);
        for (t, &id) in ids.iter().enumerate() {
            let ty = type_ids.get(t).copied().unwrap_or(0) as usize;
            let (id, ty) = (id as usize, ty);
            if id >= c.vocab_size || ty >= c.type_vocab_size {
                return Err(Error::Index(format!(
                    "token {t}: id {id} / type {ty} outside the vocabulary"
                )));
            }
            let row = x.row_mut(t);
            for (i, v) in row.iter_mut().enumerate() {
                *v = self.words.row(id)[i] + self.positions.row(t)[i] + self.types.row(ty)[i];
            }
        }
        let n = &self.embed_norm;
        layer_norm(&mut x, &n.gamma, &n.beta, c.layer_norm_eps)?;
        Ok(x)
    }
}

fn check_config(c: &BertConfig) -> Result<()> {
    if c.hidden_act != "gelu" {
        return Err(Error::Unsupported(format!(
            "BERT activation `{}` (only exact `gelu`)",
            c.hidden_act
        )));
    }
    let heads = c.num_attention_heads;
    if heads == 0 || c.hidden_size % heads != 0 || c.hidden_size == 0 {
        return Err(Error::InvalidOption(format!(
            "hidden size {} does not split into {heads} heads",
            c.hidden_size
        )));
    }
    Ok(())
}

fn load_layer(w: &Weights, c: &BertConfig, p: &str) -> Result<Layer> {
    let (h, ff) = (c.hidden_size, c.intermediate_size);
    let norm = |name: String| -> Result<Norm> {
        Ok(Norm {
            gamma: w.vector(&format!("{name}.weight"), h)?,
            beta: w.vector(&format!("{name}.bias"), h)?,
        })
    };
    Ok(Layer {
        query: w.linear(&format!("{p}.attention.self.query"), h, h)?,
        key: w.linear(&format!("{p}.attention.self.key"), h, h)?,
        value: w.linear(&format!("{p}.attention.self.value"), h, h)?,
        attn_out: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
        attn_norm: norm(format!("{p}.attention.output.LayerNorm"))?,
        up: w.linear(&format!("{p}.intermediate.dense"), h, ff)?,
        down: w.linear(&format!("{p}.output.dense"), ff, h)?,
        out_norm: norm(format!("{p}.output.LayerNorm"))?,
    })
}
