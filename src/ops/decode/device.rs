//! Decode on memory the engine owns: the query, the K/V pages, the block table and
//! `seq_lens_k` stay in device memory, the launches are queued on the device's stream, and the
//! split partials go to a workspace the engine sized once ([`crate::problem::workspace_bytes`]).
//! Nothing is allocated, copied or waited for per call.
//!
//! Validation is the host path's: [`PagedCache::new`] for the cache, the shared validator
//! ([`AttentionGeometry::new`]) for the contiguous call the pages stand for, and the output
//! checks of [`crate::ops::attention::attention_device`]. Indices only the device holds (table
//! entries, lengths) are checked by the kernels into the workspace's error record
//! ([`crate::ops::ErrorRecord`]).

use super::decode_launches;
use super::host::choose_plan;
use super::paged_params::paged_params;
use crate::abi;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result, shape_err};
use crate::ops::attention::compute_capability;
use crate::ops::attention::params::{self, Operands};
use crate::ops::attention::{
    DeviceIndex, DeviceTensor, StatsTarget, check_head_dim, check_memory, check_operands, enqueue,
};
use crate::problem::{AttentionGeometry, AttentionLayout, PagedCache, SeqLens, SplitPlan};
use crate::tensor::contiguous_strides;
use crate::variant::AttentionOptions;

/// Varlen queries of a decode call on device memory (speculative decoding with a different
/// number of new tokens per sequence): `q` and `o` `[total_q, h, d]`, `lse` `[h, total_q]`,
/// gate `[total_q, h(, d)]`; sequence `b`'s rows are `cu_seqlens_q[b]..cu_seqlens_q[b + 1]`,
/// and under causal they are the last positions of its `seq_lens_k[b]` keys.
///
/// The offsets stay in device memory: the kernels check `0 ≤ cu[b] ≤ cu[b + 1] ≤ total_q` and
/// `cu[b + 1] − cu[b] ≤ max_seqlen_q`, record a violation in the workspace's error record
/// ([`crate::ops::ErrorRecord`]) and leave that sequence's rows unwritten.
///
/// ```
/// use quietattn::ops::attention::{DeviceIndex, DeviceTensor};
/// use quietattn::ops::ErrorRecord;
/// use quietattn::ops::decode::{DecodeWorkspace, DevicePagedArgs, DevicePagedQueries, paged_decode_device};
/// use quietattn::problem::{DecodeBounds, workspace_bytes};
/// use quietattn::{AttentionOptions, DType, Device};
///
/// # fn main() -> quietattn::Result<()> {
/// let device = Device::emulator()?;
/// let exec = device.executor().expect("the emulator runs kernels");
/// let (h, d, page) = (2, 64, 16);
/// // Two sequences of 16 and 5 keys (pages 0 and 1); sequence 0 verifies 3 draft tokens,
/// // sequence 1 decodes one: 4 query rows in all.
/// let bounds = DecodeBounds {
///     max_batch: 2, heads: h, kv_heads: 1, max_seqlen_q: 3, max_seqlen_k: page,
///     head_dim: d, page_size: page, stats: false,
/// };
/// let mut ws = exec.alloc_zeroed(workspace_bytes(&bounds, 132)?)?;
/// let f32s = |x: f32, n: usize| bytemuck::cast_slice(&vec![x; n]).to_vec();
/// let q = exec.upload(&f32s(1.0, 4 * h * d))?;
/// let k = exec.upload(&f32s(1.0, 2 * page * d))?;
/// let v = exec.upload(&f32s(0.25, 2 * page * d))?;
/// let table = exec.upload(bytemuck::cast_slice(&[0i32, 1]))?;
/// let lens = exec.upload(bytemuck::cast_slice(&[16i32, 5]))?;
/// let cu_q = exec.upload(bytemuck::cast_slice(&[0i32, 3, 4]))?;
/// let (mut o, mut lse) = (exec.alloc_zeroed(4 * h * d * 4)?, exec.alloc_zeroed(h * 4 * 4)?);
/// let cache = [2, page, 1, d];
/// let args = DevicePagedArgs {
///     q: DeviceTensor::from_buffer(&q, DType::F32, &[4, h, d])?,
///     k_cache: DeviceTensor::from_buffer(&k, DType::F32, &cache)?,
///     v_cache: DeviceTensor::from_buffer(&v, DType::F32, &cache)?,
///     block_table: DeviceIndex::from_buffer(&table),
///     max_pages: 1,
///     seq_lens_k: DeviceIndex::from_buffer(&lens),
///     max_seqlen_k: page,
///     o: DeviceTensor::from_buffer_mut(&mut o, DType::F32, &[4, h, d])?,
///     lse: DeviceTensor::from_buffer_mut(&mut lse, DType::F32, &[h, 4])?,
///     sinks: None,
///     gate: None,
///     stats: None,
///     plan: None,
///     varlen_q: Some(DevicePagedQueries {
///         cu_seqlens_q: DeviceIndex::from_buffer(&cu_q),
///         batch: 2,
///         max_seqlen_q: 3,
///     }),
/// };
/// let words = ws.len() / 4;
/// let workspace = DecodeWorkspace {
///     memory: DeviceTensor::from_buffer_mut(&mut ws, DType::F32, &[words])?,
///     sm_count: 132,
/// };
/// let options = AttentionOptions { causal: true, ..AttentionOptions::default() };
/// let g = paged_decode_device(&device, &args, &options, &workspace)?;
/// assert_eq!(g.total_q, 4);
/// drop((args, workspace));
/// ErrorRecord::read(exec, &ws)?.check()?;
/// let mut out = vec![0f32; 4 * h * d];
/// exec.download(&o, bytemuck::cast_slice_mut(&mut out))?;
/// assert!(out.iter().all(|&x| x == 0.25)); // every row sees a key: the mean of the values
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DevicePagedQueries<'a> {
    /// Query offsets, i32 `[batch + 1]`.
    pub cu_seqlens_q: DeviceIndex<'a>,
    /// Sequences (rows of the block table).
    pub batch: usize,
    /// The longest q_len a sequence may have: the masks, the split plan and the combine grid
    /// are sized by it.
    pub max_seqlen_q: usize,
}

/// The operands of one decode call on device memory.
///
/// `q` `[b, q_len, h, d]` (or `[total_q, h, d]` with [`DevicePagedQueries`]),
/// `k_cache`/`v_cache` `[num_pages, page_size, hkv, d]` (any strides, contiguous head
/// dimension), `block_table` i32 `[b, max_pages]` row-major, `seq_lens_k` i32 `[b]` (each at
/// most `max_seqlen_k`), `o` the dtype and shape of q, `lse` f32 `[b, h, q_len]` (or
/// `[h, total_q]`); sinks (f32 `[h]`, finite: not inspected), gate and statistics as in
/// [`crate::ops::attention::DeviceAttentionArgs`].
#[derive(Debug)]
pub struct DevicePagedArgs<'a> {
    /// Queries.
    pub q: DeviceTensor<'a>,
    /// Key pages.
    pub k_cache: DeviceTensor<'a>,
    /// Value pages (the shape and dtype of `k_cache`).
    pub v_cache: DeviceTensor<'a>,
    /// Each sequence's pages, `max_pages` entries per row.
    pub block_table: DeviceIndex<'a>,
    /// Entries per block-table row.
    pub max_pages: usize,
    /// Keys per sequence.
    pub seq_lens_k: DeviceIndex<'a>,
    /// The longest `seq_lens_k` entry the call may hold: the plan and the masks are sized by
    /// it, and a longer entry is a kernel-side index error.
    pub max_seqlen_k: usize,
    /// Output.
    pub o: DeviceTensor<'a>,
    /// Log-sum-exp per row (f32).
    pub lse: DeviceTensor<'a>,
    /// Per-head sink logits for [`crate::Normaliser::Sink`].
    pub sinks: Option<DeviceTensor<'a>>,
    /// Gate logits when the options name a gate.
    pub gate: Option<DeviceTensor<'a>>,
    /// Where to add statistics; required exactly when `options.stats` is set.
    pub stats: Option<StatsTarget<'a>>,
    /// The split; `None`: [`SplitPlan::new`] for the workspace's `sm_count`.
    pub plan: Option<SplitPlan>,
    /// Varlen queries; `None` for batched `[b, q_len, h, d]`.
    pub varlen_q: Option<DevicePagedQueries<'a>>,
}

/// The scratch of decode calls: f32 memory of at least
/// [`crate::problem::workspace_bytes`]` / 4` elements, zeroed once before the first call. Its
/// first [`crate::problem::ERROR_RECORD_BYTES`] are the error record
/// ([`crate::ops::ErrorRecord`]: sticky until [`crate::ops::ErrorRecord::reset`]), the rest the
/// split partials.
#[derive(Debug)]
pub struct DecodeWorkspace<'a> {
    /// The memory (contiguous f32; from a cudarc slice, an executor buffer or a raw address).
    pub memory: DeviceTensor<'a>,
    /// The SM count the workspace was sized for; the automatic plan aims at it (132 when 0).
    pub sm_count: usize,
}

impl DecodeWorkspace<'_> {
    /// Bytes available, after checking the memory is contiguous f32.
    fn bytes(&self) -> Result<usize> {
        let m = &self.memory;
        if m.dtype() != DType::F32 || m.strides() != contiguous_strides(m.shape()).as_slice() {
            return Err(Error::InvalidOption(format!(
                "the decode workspace must be contiguous f32, got {} with strides {:?}",
                m.dtype(),
                m.strides()
            )));
        }
        Ok(m.shape().iter().product::<usize>().saturating_mul(4))
    }
}

impl DevicePagedArgs<'_> {
    /// Validates every layout and the options (the checks the host path applies, see the module
    /// docs) and returns the geometry of the contiguous call the pages stand for (with this
    /// call's `max_seqlen_k`) with the cache's dimensions.
    pub fn geometry(&self, options: &AttentionOptions) -> Result<(AttentionGeometry, PagedCache)> {
        let cache = PagedCache::new(&self.k_cache.layout(), &self.v_cache.layout())?;
        // varlen: K/V as one sequence's gathered rows, all the validator needs to bound
        // max_seqlen_k
        let (batch, lead, seqlens) = match &self.varlen_q {
            None => {
                let batch = self.q.shape().first().copied().unwrap_or(0);
                (batch, vec![batch, self.max_seqlen_k], SeqLens::Batched)
            }
            Some(v) => {
                let seqlens = SeqLens::VarlenMax {
                    batch: v.batch,
                    max_seqlen_q: v.max_seqlen_q,
                    max_seqlen_k: self.max_seqlen_k,
                };
                (v.batch, vec![self.max_seqlen_k], seqlens)
            }
        };
        self.check_indices(batch, &cache)?;
        let layout = AttentionLayout {
            q: self.q.layout(),
            k: cache.gathered(&lead),
            v: cache.gathered(&lead),
            sinks: self.sinks.as_ref().map(|s| s.shape().iter().product()),
            gate: self.gate.as_ref().map(DeviceTensor::layout),
            seqlens,
        };
        let g = AttentionGeometry::new(&layout, options)?;
        check_head_dim(g.head_dim)?;
        check_operands(
            &g,
            options,
            &self.o,
            &self.lse,
            self.sinks.as_ref(),
            self.stats.as_ref(),
        )?;
        Ok((g, cache))
    }

    /// The table maps `max_seqlen_k` keys, and the index arrays (when their length is known)
    /// hold `batch` rows (`cu_seqlens_q`: `batch + 1` offsets).
    fn check_indices(&self, batch: usize, cache: &PagedCache) -> Result<()> {
        let mapped = self.max_pages.saturating_mul(cache.page_size);
        if self.max_seqlen_k > mapped {
            return Err(shape_err!(
                "max_seqlen_k {} is beyond the cache a block-table row maps ({} pages × {} keys)",
                self.max_seqlen_k,
                self.max_pages,
                cache.page_size
            ));
        }
        let entries = batch
            .checked_mul(self.max_pages)
            .ok_or_else(|| Error::Overflow(format!("block table {batch} × {}", self.max_pages)))?;
        let offsets = self.varlen_q.as_ref().map(|v| {
            let want = batch.saturating_add(1);
            ("cu_seqlens_q", v.cu_seqlens_q.len(), want)
        });
        for (name, have, want) in [
            ("block_table", self.block_table.len(), entries),
            ("seq_lens_k", self.seq_lens_k.len(), batch),
        ]
        .into_iter()
        .chain(offsets)
        {
            if let Some(n) = have.filter(|&n| n < want) {
                return Err(shape_err!(
                    "{name} holds {n} entries, this call needs {want}"
                ));
            }
        }
        Ok(())
    }
}

/// Paged decode on device memory: validates, plans the split, and queues the chunk and combine
/// launches (on CUDA on the device's stream, without waiting; on the emulator each runs to
/// completion). Returns the validated geometry. Statistics are added to `args.stats`.
///
/// A plan that does not fit `workspace` is an error before anything is queued. Bad table
/// entries or lengths are not errors of this call: the kernels record the first one in the
/// workspace and compute that sequence as empty; read it with [`crate::ops::ErrorRecord::read`]
/// when the stream is synchronised anyway.
///
/// ```
/// use quietattn::ops::attention::{DeviceIndex, DeviceTensor};
/// use quietattn::ops::ErrorRecord;
/// use quietattn::ops::decode::{DecodeWorkspace, DevicePagedArgs, paged_decode_device};
/// use quietattn::problem::{DecodeBounds, workspace_bytes};
/// use quietattn::{AttentionOptions, DType, Device};
///
/// # fn main() -> quietattn::Result<()> {
/// let device = Device::emulator()?; // Device::cuda(0)? on a GPU
/// let exec = device.executor().expect("the emulator runs kernels");
/// let (h, hkv, d, pages, page) = (4, 2, 64, 2, 16);
/// // Once, at start-up: the workspace every call within these bounds fits in.
/// let bounds = DecodeBounds {
///     max_batch: 1, heads: h, kv_heads: hkv, max_seqlen_q: 1, max_seqlen_k: pages * page,
///     head_dim: d, page_size: page, stats: false,
/// };
/// let mut ws = exec.alloc_zeroed(workspace_bytes(&bounds, 132)?)?;
/// // The engine's tensors: q of ones, every cached key ones, every value 0.5.
/// let f32s = |x: f32, n: usize| bytemuck::cast_slice(&vec![x; n]).to_vec();
/// let q = exec.upload(&f32s(1.0, h * d))?;
/// let k = exec.upload(&f32s(1.0, pages * page * hkv * d))?;
/// let v = exec.upload(&f32s(0.5, pages * page * hkv * d))?;
/// let table = exec.upload(bytemuck::cast_slice(&[1i32, 0]))?; // page 1, then page 0
/// let lens = exec.upload(bytemuck::cast_slice(&[20i32]))?;
/// let (mut o, mut lse) = (exec.alloc_zeroed(h * d * 4)?, exec.alloc_zeroed(h * 4)?);
/// let cache = [pages, page, hkv, d];
/// let args = DevicePagedArgs {
///     q: DeviceTensor::from_buffer(&q, DType::F32, &[1, 1, h, d])?,
///     k_cache: DeviceTensor::from_buffer(&k, DType::F32, &cache)?,
///     v_cache: DeviceTensor::from_buffer(&v, DType::F32, &cache)?,
///     block_table: DeviceIndex::from_buffer(&table),
///     max_pages: pages,
///     seq_lens_k: DeviceIndex::from_buffer(&lens),
///     max_seqlen_k: 20,
///     o: DeviceTensor::from_buffer_mut(&mut o, DType::F32, &[1, 1, h, d])?,
///     lse: DeviceTensor::from_buffer_mut(&mut lse, DType::F32, &[1, h, 1])?,
///     sinks: None,
///     gate: None,
///     stats: None,
///     plan: None,
///     varlen_q: None,
/// };
/// let words = ws.len() / 4;
/// let workspace = DecodeWorkspace {
///     memory: DeviceTensor::from_buffer_mut(&mut ws, DType::F32, &[words])?,
///     sm_count: 132,
/// };
/// paged_decode_device(&device, &args, &AttentionOptions::default(), &workspace)?;
/// drop((args, workspace));
/// ErrorRecord::read(exec, &ws)?.check()?; // no bad device-side index
/// let mut out = vec![0f32; h * d];
/// exec.download(&o, bytemuck::cast_slice_mut(&mut out))?;
/// assert!(out.iter().all(|&x| x == 0.5)); // equal logits: the mean of the values
/// # Ok(())
/// # }
/// ```
pub fn paged_decode_device(
    device: &Device,
    args: &DevicePagedArgs<'_>,
    options: &AttentionOptions,
    workspace: &DecodeWorkspace<'_>,
) -> Result<AttentionGeometry> {
    let (g, cache) = args.geometry(options)?;
    let workspace_bytes = workspace.bytes()?;
    check_origins(device, args, workspace)?;
    let plan = choose_plan(args.plan, workspace.sm_count, &g, options, cache.page_size)?;
    // q, o and gate are [total_q, h, ..] when varlen; the caches are always [page, slot, h, d]
    let desc = |t: &DeviceTensor<'_>, rows_packed: bool| {
        params::desc(t.addr(), t.dtype(), t.strides(), rows_packed)
    };
    let operands = Operands {
        q: desc(&args.q, g.varlen)?,
        k: desc(&args.k_cache, false)?,
        v: desc(&args.v_cache, false)?,
        o: desc(&args.o, g.varlen)?,
        gate: args.gate.as_ref().map(|t| desc(t, g.varlen)).transpose()?,
        lse: args.lse.addr(),
        lse_strides: params::lse_strides(g.varlen, args.lse.strides())?,
        cu_seqlens: args.varlen_q.as_ref().map(|v| (v.cu_seqlens_q.addr(), 0)),
        sinks: args.sinks.as_ref().map_or(0, DeviceTensor::addr),
        stats: args
            .stats
            .as_ref()
            .map_or_else(Default::default, |t| t.layout().pointers(t.addr())),
    };
    let dp = paged_params(
        params::build(&g, options, &operands)?,
        &cache,
        args.max_pages,
        args.block_table.addr(),
        args.seq_lens_k.addr(),
    )?;
    // Every launch is planned (and the workspace checked) before the first is queued.
    let cc = compute_capability(device)?;
    let launches = decode_launches(
        &dp,
        &plan,
        options.kernel,
        cc,
        workspace.memory.addr(),
        workspace_bytes,
    )?;
    for l in &launches {
        enqueue(device, &l.kernel, abi::as_bytes(&l.params), &l.geometry)?;
    }
    Ok(g)
}

/// Every operand and the workspace are memory of the launching device.
fn check_origins(
    device: &Device,
    args: &DevicePagedArgs<'_>,
    workspace: &DecodeWorkspace<'_>,
) -> Result<()> {
    let tensors = [
        &args.q,
        &args.k_cache,
        &args.v_cache,
        &args.o,
        &args.lse,
        &workspace.memory,
    ]
    .into_iter()
    .chain(args.sinks.as_ref())
    .chain(args.gate.as_ref())
    .map(DeviceTensor::origin);
    let indices = [args.block_table.origin(), args.seq_lens_k.origin()]
        .into_iter()
        .chain(args.varlen_q.as_ref().map(|v| v.cu_seqlens_q.origin()));
    check_memory(device, tensors.chain(indices))
}
