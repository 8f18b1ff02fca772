//! A Llama-family causal decoder (SmolLM2 and kin) from one GGUF file: RMSNorm, RoPE (θ from
//! the metadata), grouped-query attention through quietattn (causal), SwiGLU, tied or separate
//! LM head. Weights are dequantised to f32 by [`crate::model::gguf`].

use std::path::Path;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::model::gguf::GgufFile;
use crate::probe::attention_layer::{HeadLayout, attend};
use crate::probe::dense::{Dense, place_all};
use crate::probe::matrix::{Linear, Matrix};
use crate::probe::norm::{rms_norm, silu};
use crate::probe::rope::rope_adjacent_pairs;
use crate::probe::trace::Trace;
use crate::variant::AttentionOptions;

/// The hyper-parameters read from the GGUF metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Layers.
    pub layers: usize,
    /// Residual width.
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// RoPE base θ.
    pub rope_theta: f64,
    /// RMSNorm ε.
    pub rms_eps: f64,
}

struct Layer {
    attn_norm: Vec<f32>,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ffn_norm: Vec<f32>,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// A loaded Llama decoder.
pub struct Llama {
    /// Its hyper-parameters.
    pub config: LlamaConfig,
    embeddings: Matrix,
    layers: Vec<Layer>,
    final_norm: Vec<f32>,
    head: Linear,
}

impl LlamaConfig {
    /// Reads the `llama.*` metadata; another architecture is [`Error::Unsupported`].
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let arch = file.metadata_str("general.architecture")?;
        if arch != "llama" {
            return Err(Error::Unsupported(format!(
                "{}: architecture `{arch}` (the probe runs `llama` GGUF files and BERT checkpoints)",
                file.origin()
            )));
        }
        let u =
            |k: &str| -> Result<usize> { Ok(file.metadata_u64(&format!("llama.{k}"))? as usize) };
        let config = LlamaConfig {
            layers: u("block_count")?,
            hidden: u("embedding_length")?,
            heads: u("attention.head_count")?,
            kv_heads: u("attention.head_count_kv")?,
            rope_theta: file.metadata_f64("llama.rope.freq_base").unwrap_or(10000.0),
            rms_eps: file.metadata_f64("llama.attention.layer_norm_rms_epsilon")?,
        };
        let ok = config.heads > 0
            && config.kv_heads > 0
            && config.hidden % config.heads == 0
            && config.heads % config.kv_heads == 0;
        if !ok {
            return Err(Error::InvalidOption(format!(
                "{}: {} heads / {} kv heads do not split a width of {}",
                file.origin(),
                config.heads,
                config.kv_heads,
                config.hidden
            )));
        }
        Ok(config)
    }

    /// Head layout of every layer.
    pub fn layout(&self) -> HeadLayout {
        HeadLayout {
            heads: self.heads,
            kv_heads: self.kv_heads,
            head_dim: self.hidden / self.heads,
        }
    }
}

/// The dequantised matrix `name` (GGUF dims `[cols, rows]`).
fn matrix(file: &GgufFile, name: &str) -> Result<Matrix> {
    let (info, data) = file.dequantize(name)?;
    match info.dims.as_slice() {
        &[cols, rows] => Matrix::new(rows as usize, cols as usize, data),
        dims => Err(Error::Shape(format!(
            "{}: tensor `{name}` has dims {dims:?}, expected 2",
            file.origin()
        ))),
    }
}

fn vector(file: &GgufFile, name: &str, len: usize) -> Result<Vec<f32>> {
    let (_, data) = file.dequantize(name)?;
    if data.len() != len {
        return Err(Error::Shape(format!(
            "{}: `{name}` has {} values, expected {len}",
            file.origin(),
            data.len()
        )));
    }
    Ok(data)
}

fn linear(file: &GgufFile, name: &str, inputs: usize) -> Result<Linear> {
    let w = matrix(file, name)?;
    if w.cols != inputs {
        return Err(Error::Shape(format!(
            "{}: `{name}` takes {} inputs, expected {inputs}",
            file.origin(),
            w.cols
        )));
    }
    Linear::new(w, None)
}

impl Llama {
    /// Reads a GGUF file.
    pub fn load(path: &Path) -> Result<(Self, GgufFile)> {
        let file = GgufFile::open(path)?;
        let config = LlamaConfig::from_gguf(&file)?;
        let h = config.hidden;
        let layers = (0..config.layers)
            .map(|i| load_layer(&file, i, h))
            .collect::<Result<Vec<_>>>()?;
        let embeddings = matrix(&file, "token_embd.weight")?;
        let head = match file.tensor("output.weight") {
            Some(_) => linear(&file, "output.weight", h)?,
            None => Linear::new(embeddings.clone(), None)?,
        };
        let model = Llama {
            final_norm: vector(&file, "output_norm.weight", h)?,
            embeddings,
            layers,
            head,
            config,
        };
        Ok((model, file))
    }

    /// Runs every dense layer and the LM head on `dense` from now on (weights uploaded once);
    /// on an error they all stay on the CPU.
    pub fn place_dense(&mut self, dense: &Dense) -> Result<()> {
        let mut layers: Vec<&mut Linear> = self
            .layers
            .iter_mut()
            .flat_map(|l| {
                [
                    &mut l.q,
                    &mut l.k,
                    &mut l.v,
                    &mut l.o,
                    &mut l.gate,
                    &mut l.up,
                    &mut l.down,
                ]
            })
            .collect();
        layers.push(&mut self.head);
        place_all(layers, dense)
    }

    /// Runs the decoder over `ids` (causal) with attention `options` on `device`; the trace
    /// holds the logits of every position.
    pub fn forward(
        &self,
        device: &Device,
        ids: &[u32],
        options: &AttentionOptions,
    ) -> Result<Trace> {
        let mut trace = Trace::new();
        let mut x = self.embed(ids)?;
        trace.record_hidden(device, &x)?;
        let options = AttentionOptions {
            causal: true,
            ..options.clone()
        };
        let (layout, eps) = (self.config.layout(), self.config.rms_eps);
        for layer in &self.layers {
            let mut n = x.clone();
            rms_norm(&mut n, &layer.attn_norm, eps)?;
            let mut q = layer.q.forward(&n)?;
            let mut k = layer.k.forward(&n)?;
            let v = layer.v.forward(&n)?;
            rope_adjacent_pairs(&mut q, layout.head_dim, self.config.rope_theta);
            rope_adjacent_pairs(&mut k, layout.head_dim, self.config.rope_theta);
            let att = attend(device, layout, &q, &k, &v, &options)?;
            x.add_assign(&layer.o.forward(&att.output)?)?;
            let mut n = x.clone();
            rms_norm(&mut n, &layer.ffn_norm, eps)?;
            let mut g = layer.gate.forward(&n)?;
            let u = layer.up.forward(&n)?;
            for (a, b) in g.data.iter_mut().zip(&u.data) {
                *a = silu(*a) * b;
            }
            x.add_assign(&layer.down.forward(&g)?)?;
            trace.attention.push(att.into());
            trace.record_hidden(device, &x)?;
        }
        rms_norm(&mut x, &self.final_norm, eps)?;
        trace.logits = Some(self.head.forward(&x)?);
        Ok(trace)
    }

    fn embed(&self, ids: &[u32]) -> Result<Matrix> {
        let mut x = Matrix::zeros(ids.len(), self.config.hidden);
        for (t, &id) in ids.iter().enumerate() {
            if id as usize >= self.embeddings.rows {
                return Err(Error::Index(format!(
                    "token {t}: id {id} outside the vocabulary of {}",
                    self.embeddings.rows
                )));
            }
            x.row_mut(t)
                .copy_from_slice(self.embeddings.row(id as usize));
        }
        Ok(x)
    }
}

fn load_layer(file: &GgufFile, i: usize, h: usize) -> Result<Layer> {
    let name = |t: &str| format!("blk.{i}.{t}.weight");
    let q = linear(file, &name("attn_q"), h)?;
    let ff = linear(file, &name("ffn_gate"), h)?;
    let ffn = ff.out_features();
    Ok(Layer {
        attn_norm: vector(file, &name("attn_norm"), h)?,
        k: linear(file, &name("attn_k"), h)?,
        v: linear(file, &name("attn_v"), h)?,
        o: linear(file, &name("attn_output"), q.out_features())?,
        q,
        ffn_norm: vector(file, &name("ffn_norm"), h)?,
        gate: ff,
        up: linear(file, &name("ffn_up"), h)?,
        down: linear(file, &name("ffn_down"), ffn)?,
    })
}

/// Greedy continuation: `n` new token ids after `prompt`, re-running the whole forward per
/// token (reference-sized prompts; no KV cache).
pub fn greedy(
    model: &Llama,
    device: &Device,
    prompt: &[u32],
    n: usize,
    options: &AttentionOptions,
) -> Result<Vec<u32>> {
    let mut ids = prompt.to_vec();
    for _ in 0..n {
        let trace = model.forward(device, &ids, options)?;
        let logits = trace
            .logits
            .ok_or_else(|| Error::Unsupported("the decoder gave no logits".into()))?;
        let last: Vec<f64> = logits
            .row(logits.rows - 1)
            .iter()
            .map(|&x| f64::from(x))
            .collect();
        ids.push(crate::probe::replay::argmax(&last) as u32);
    }
    Ok(ids[prompt.len()..].to_vec())
}
