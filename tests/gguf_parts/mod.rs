//! A tiny GGUF writer for tests: small files with hand-checkable contents, every metadata
//! type and the tensor types quietattn dequantises.
#![allow(dead_code)]

use half::f16;

/// Builds a GGUF v3 image byte by byte.
pub struct GgufWriter {
    pub alignment: usize,
    kv: Vec<u8>,
    n_kv: u64,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

pub fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl GgufWriter {
    pub fn new() -> Self {
        Self {
            alignment: 32,
            kv: Vec::new(),
            n_kv: 0,
            tensors: Vec::new(),
        }
    }

    /// A metadata entry whose value bytes (after the type tag) the caller encodes.
    pub fn kv(&mut self, key: &str, ty: u32, value: &[u8]) -> &mut Self {
        string(&mut self.kv, key);
        self.kv.extend_from_slice(&ty.to_le_bytes());
        self.kv.extend_from_slice(value);
        self.n_kv += 1;
        self
    }

    pub fn kv_str(&mut self, key: &str, value: &str) -> &mut Self {
        let mut v = Vec::new();
        string(&mut v, value);
        self.kv(key, 8, &v)
    }

    pub fn kv_str_array(&mut self, key: &str, items: &[&str]) -> &mut Self {
        let mut v = 8u32.to_le_bytes().to_vec();
        v.extend_from_slice(&(items.len() as u64).to_le_bytes());
        for s in items {
            string(&mut v, s);
        }
        self.kv(key, 9, &v)
    }

    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, data: Vec<u8>) -> &mut Self {
        self.tensors
            .push((name.to_string(), dims.to_vec(), ty, data));
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.n_kv.to_le_bytes());
        out.extend_from_slice(&self.kv);
        let mut offset = 0usize;
        let mut offsets = Vec::new();
        for (name, dims, ty, data) in &self.tensors {
            string(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&(offset as u64).to_le_bytes());
            offsets.push(offset);
            offset = (offset + data.len()).div_ceil(self.alignment) * self.alignment;
        }
        out.resize(out.len().div_ceil(self.alignment) * self.alignment, 0);
        let base = out.len();
        for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
            out.resize(base + off, 0);
            out.extend_from_slice(data);
        }
        out
    }
}

pub fn f16_bytes(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_le_bytes()
}

/// One Q4_1 block: d = 0.5, m = −1, byte j = j | (15 − j) << 4, so element j = 0.5·j − 1 and
/// element j + 16 = 0.5·(15 − j) − 1.
pub fn q4_1_block() -> (Vec<u8>, Vec<f32>) {
    let mut b = [f16_bytes(0.5), f16_bytes(-1.0)].concat();
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let mut want: Vec<f32> = (0..16).map(|j| 0.5 * j as f32 - 1.0).collect();
    want.extend((0..16).map(|j| 0.5 * (15 - j) as f32 - 1.0));
    (b, want)
}

/// One Q4_0 block: d = 2, byte j = j | j << 4, so elements j and j + 16 are 2·(j − 8).
pub fn q4_0_block() -> (Vec<u8>, Vec<f32>) {
    let mut b = f16_bytes(2.0).to_vec();
    b.extend((0..16u8).map(|j| j | (j << 4)));
    let half: Vec<f32> = (0..16).map(|j| 2.0 * (j as f32 - 8.0)).collect();
    (b, [half.clone(), half].concat())
}

/// One Q8_0 block: d = 0.25, q_i = i − 16 (as i8), so element i = 0.25·(i − 16).
pub fn q8_0_block() -> (Vec<u8>, Vec<f32>) {
    let mut b = f16_bytes(0.25).to_vec();
    b.extend((0..32i32).map(|i| (i - 16) as i8 as u8));
    (b, (0..32).map(|i| 0.25 * (i as f32 - 16.0)).collect())
}

/// A small file with every metadata value type, a nested array, a byte-level BPE vocabulary and
/// one tensor of each type quietattn dequantises; returns the image and the expected tensors.
pub fn sample() -> (Vec<u8>, Vec<(&'static str, Vec<f32>)>) {
    let mut w = GgufWriter::new();
    w.kv_str("general.architecture", "llama")
        .kv("t.u8", 0, &[200])
        .kv("t.i8", 1, &(-5i8).to_le_bytes())
        .kv("t.u16", 2, &60000u16.to_le_bytes())
        .kv("t.i16", 3, &(-300i16).to_le_bytes())
        .kv("t.u32", 4, &4_000_000_000u32.to_le_bytes())
        .kv("t.i32", 5, &(-7i32).to_le_bytes())
        .kv("t.f32", 6, &1.5f32.to_le_bytes())
        .kv("t.bool", 7, &[1])
        .kv("t.u64", 10, &(1u64 << 40).to_le_bytes())
        .kv("t.i64", 11, &(-(1i64 << 40)).to_le_bytes())
        .kv("t.f64", 12, &0.125f64.to_le_bytes());
    // [[1, 2], []] of u16: an array of arrays.
    let mut nested = 9u32.to_le_bytes().to_vec();
    nested.extend_from_slice(&2u64.to_le_bytes());
    nested.extend_from_slice(&2u32.to_le_bytes());
    nested.extend_from_slice(&2u64.to_le_bytes());
    nested.extend_from_slice(&[1, 0, 2, 0]);
    nested.extend_from_slice(&2u32.to_le_bytes());
    nested.extend_from_slice(&0u64.to_le_bytes());
    w.kv("t.nested", 9, &nested);
    w.kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str_array(
            "tokenizer.ggml.tokens",
            &["a", "b", "ab", "Ġ", "Ġab", "<|end|>"],
        )
        .kv_str_array("tokenizer.ggml.merges", &["a b", "Ġ ab"]);
    let mut types = 5u32.to_le_bytes().to_vec();
    types.extend_from_slice(&6u64.to_le_bytes());
    for t in [1i32, 1, 1, 1, 1, 3] {
        types.extend_from_slice(&t.to_le_bytes());
    }
    w.kv("tokenizer.ggml.token_type", 9, &types);

    let (q41, w41) = q4_1_block();
    let (q40, w40) = q4_0_block();
    let (q80, w80) = q8_0_block();
    let f32s = [0.0f32, -2.5, 3.25];
    let f16s = [1.0f32, -0.5, 65504.0, 0.0];
    w.tensor("q4_1", &[32, 2], 3, [q41.clone(), q41].concat())
        .tensor("q4_0", &[32], 2, q40)
        .tensor("q8_0", &[32], 8, q80)
        .tensor(
            "f32",
            &[3],
            0,
            f32s.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
        .tensor(
            "f16",
            &[2, 2],
            1,
            f16s.iter().flat_map(|&x| f16_bytes(x)).collect(),
        );
    let want = vec![
        ("q4_1", [w41.clone(), w41].concat()),
        ("q4_0", w40),
        ("q8_0", w80),
        ("f32", f32s.to_vec()),
        ("f16", f16s.to_vec()),
    ];
    (w.build(), want)
}

/// Residual width of [`tiny_llama`].
pub const TINY_HIDDEN: usize = 8;

/// The sizes of a synthetic Llama ([`llama_gguf`]).
#[derive(Clone, Copy, Debug)]
pub struct LlamaShape {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub ffn: usize,
}

/// Deterministic weights in [-1, 1): value `i` of a tensor of salt `salt`.
fn weight(salt: usize, i: usize) -> f32 {
    ((i * 37 + salt * 11) % 17) as f32 / 8.5 - 1.0
}

/// An F32 tensor of [`weight`]s scaled by 1/√inputs, so activations keep their size through
/// the layers whatever the width.
fn f32_tensor(w: &mut GgufWriter, name: &str, dims: &[u64], salt: usize) -> Vec<f32> {
    let n = dims.iter().product::<u64>() as usize;
    let scale = 1.0 / (dims[0] as f32).sqrt();
    let values: Vec<f32> = (0..n).map(|i| weight(salt, i) * scale).collect();
    let bytes = values.iter().flat_map(|x| x.to_le_bytes()).collect();
    w.tensor(name, dims, 0, bytes);
    values
}

fn u32_kv(w: &mut GgufWriter, key: &str, v: usize) {
    w.kv(key, 4, &(v as u32).to_le_bytes());
}

/// A one-layer Llama (width 8, 2 query heads and 1 KV head of dim 4, feed-forward 8) over
/// [`sample`]'s vocabulary: see [`llama_gguf`].
pub fn tiny_llama(add_bos: Option<bool>, bos: Option<u32>) -> (Vec<u8>, Vec<f32>) {
    let shape = LlamaShape {
        layers: 1,
        hidden: TINY_HIDDEN,
        heads: 2,
        kv_heads: 1,
        ffn: 8,
    };
    llama_gguf(&shape, add_bos, bos)
}

/// A Llama of `shape` in F32 with deterministic weights and a tied LM head, over [`sample`]'s
/// six-token vocabulary, with `tokenizer.ggml.add_bos_token` and `tokenizer.ggml.bos_token_id`
/// as given (absent when `None`). Returns the image and the embedding table `[6, hidden]`,
/// row-major.
pub fn llama_gguf(
    shape: &LlamaShape,
    add_bos: Option<bool>,
    bos: Option<u32>,
) -> (Vec<u8>, Vec<f32>) {
    let (h, kv) = (
        shape.hidden as u64,
        (shape.hidden / shape.heads * shape.kv_heads) as u64,
    );
    let ff = shape.ffn as u64;
    let mut w = GgufWriter::new();
    w.kv_str("general.architecture", "llama");
    u32_kv(&mut w, "llama.block_count", shape.layers);
    u32_kv(&mut w, "llama.embedding_length", shape.hidden);
    u32_kv(&mut w, "llama.attention.head_count", shape.heads);
    u32_kv(&mut w, "llama.attention.head_count_kv", shape.kv_heads);
    w.kv(
        "llama.attention.layer_norm_rms_epsilon",
        6,
        &1e-5f32.to_le_bytes(),
    )
    .kv_str("tokenizer.ggml.model", "gpt2")
    .kv_str_array(
        "tokenizer.ggml.tokens",
        &["a", "b", "ab", "Ġ", "Ġab", "<|end|>"],
    )
    .kv_str_array("tokenizer.ggml.merges", &["a b", "Ġ ab"]);
    if let Some(flag) = add_bos {
        w.kv("tokenizer.ggml.add_bos_token", 7, &[u8::from(flag)]);
    }
    if let Some(id) = bos {
        w.kv("tokenizer.ggml.bos_token_id", 4, &id.to_le_bytes());
    }
    let embeddings = f32_tensor(&mut w, "token_embd.weight", &[h, 6], 1);
    // GGUF dims are [inputs, outputs].
    let shapes: [(&str, [u64; 2]); 7] = [
        ("attn_q", [h, h]),
        ("attn_k", [h, kv]),
        ("attn_v", [h, kv]),
        ("attn_output", [h, h]),
        ("ffn_gate", [h, ff]),
        ("ffn_up", [h, ff]),
        ("ffn_down", [ff, h]),
    ];
    let ones: Vec<u8> = (0..h).flat_map(|_| 1f32.to_le_bytes()).collect();
    for l in 0..shape.layers {
        for (salt, (name, dims)) in shapes.iter().enumerate() {
            let salt = 2 + l * shapes.len() + salt;
            f32_tensor(&mut w, &format!("blk.{l}.{name}.weight"), dims, salt);
        }
        for name in ["attn_norm", "ffn_norm"] {
            w.tensor(&format!("blk.{l}.{name}.weight"), &[h], 0, ones.clone());
        }
    }
    w.tensor("output_norm.weight", &[h], 0, ones);
    (w.build(), embeddings)
}
