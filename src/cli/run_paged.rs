//! `quietattn run` over a paged KV cache: `q`, `k_cache`, `v_cache`, `block_table`, `seq_lens_k`
//! (and `sinks`, `gate`, and `cu_seqlens_q` for varlen queries `[total_q, h, d]`) → the decode
//! kernels on the emulator or a GPU, or the f64 paged reference.

use quietattn::io::TensorFile;
use quietattn::ops::decode::{DecodeCall, paged_decode};
use quietattn::problem::PagedProblem;
use quietattn::reference::paged_attention;
use quietattn::{
    AttentionOptions, AttentionOutput, BlockTable, DeviceKind, Gate, Normaliser,
    PagedAttentionInputs, Result, Tensor,
};

/// The paged tensors of an input file.
pub struct PagedTensors<'f> {
    q: &'f Tensor,
    k_cache: &'f Tensor,
    v_cache: &'f Tensor,
    table: BlockTable<'f>,
    seq_lens_k: &'f [i32],
    sinks: Option<Vec<f32>>,
    gate: Option<&'f Tensor>,
    cu_seqlens_q: Option<&'f [i32]>,
}

impl<'f> PagedTensors<'f> {
    /// `None` when the file has no `k_cache` (an ordinary call); an error when it mixes the
    /// two forms or lacks a paged tensor.
    pub fn from_file(file: &'f TensorFile) -> Result<Option<Self>> {
        if file.float("k_cache", &[4])?.is_none() {
            return Ok(None);
        }
        for name in ["k", "v", "cu_seqlens_k"] {
            if file.float(name, &[1, 2, 3, 4]).ok().flatten().is_some()
                || file.i32_vector(name).ok().flatten().is_some()
            {
                return Err(file.error(format!(
                    "tensor `{name}` cannot be combined with a paged cache (`k_cache`)"
                )));
            }
        }
        let (entries, shape) = file
            .i32_tensor("block_table", 2)?
            .ok_or_else(|| file.error("required tensor `block_table` is missing"))?;
        let seq_lens_k = file
            .i32_vector("seq_lens_k")?
            .ok_or_else(|| file.error("required tensor `seq_lens_k` is missing"))?;
        // varlen queries (one offset per block-table row, + 1): q [total_q, h, d], gate
        // [total_q, h(, d)], as in an ordinary varlen call
        let cu_seqlens_q = file.i32_vector("cu_seqlens_q")?;
        let (q_ranks, gate_ranks) = match cu_seqlens_q {
            Some(_) => (&[3][..], &[2, 3][..]),
            None => (&[4][..], &[3, 4][..]),
        };
        Ok(Some(PagedTensors {
            q: file.require_float("q", q_ranks)?,
            k_cache: file.require_float("k_cache", &[4])?,
            v_cache: file.require_float("v_cache", &[4])?,
            table: BlockTable::new(entries, shape[0], shape[1])?,
            seq_lens_k,
            sinks: file
                .float("sinks", &[1])?
                .map(|t| t.to_f64().iter().map(|&x| x as f32).collect()),
            gate: file.float("gate", gate_ranks)?,
            cu_seqlens_q,
        }))
    }

    fn inputs(&self, options: &AttentionOptions) -> PagedAttentionInputs<'_> {
        let mut inputs = PagedAttentionInputs::new(
            self.q.view(),
            self.k_cache.view(),
            self.v_cache.view(),
            self.table,
            self.seq_lens_k,
        );
        inputs.sinks = self
            .sinks
            .as_deref()
            .filter(|_| options.normaliser == Normaliser::Sink);
        inputs.gate = self
            .gate
            .filter(|_| options.gate != Gate::None)
            .map(Tensor::view);
        inputs.cu_seqlens_q = self.cu_seqlens_q;
        inputs
    }

    /// Validates, then runs on `kind`: the reference, or the decode kernels.
    pub fn run(
        &self,
        kind: DeviceKind,
        options: &AttentionOptions,
        strict_numerics: bool,
    ) -> Result<AttentionOutput> {
        let inputs = self.inputs(options);
        let problem = PagedProblem::new(&inputs, options)?;
        let device = super::open_device(kind)?;
        let out = match device.executor() {
            None => paged_attention(&inputs, options)?.into_output(options.stats)?,
            Some(executor) => paged_decode(executor, &inputs, options, &DecodeCall::default())?,
        };
        outln!(
            "{} on {} (paged): q {:?} cache {:?} {}, {} sequence(s), page size {}, {}",
            options.normaliser.name(),
            device.name(),
            self.q.shape,
            self.k_cache.shape,
            problem.geometry.dtype,
            problem.geometry.batch,
            problem.cache.page_size,
            super::options::mask_text(options)
        );
        super::numeric_policy::after_launch(&out.numerics, strict_numerics)?;
        Ok(out)
    }
}
