//! Attention on memory the caller owns: engines pass descriptors of their own device buffers
//! and get one asynchronous launch, with no copy and no synchronisation.
//!
//! The call is validated by the same [`AttentionGeometry`] checks as [`super::attention`] on
//! host tensors, and the kernel parameters come from the same builder, so both paths mean the
//! same thing for the same shapes.

use super::device_stats::StatsTarget;
use super::device_tensor::{DeviceIndex, DeviceTensor, Origin};
use super::params::{self, Operands};
use super::{StatsLayout, check_head_dim, plan};
use crate::abi;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result, shape_err};
use crate::launch::{KernelRef, LaunchGeometry};
use crate::ops::{ErrorRecord, ErrorTarget};
use crate::problem::{AttentionGeometry, AttentionLayout, ERROR_RECORD_BYTES, SeqLens};
use crate::variant::{AttentionOptions, Normaliser};

/// Varlen batch delimitation in device memory (FlashAttention's convention).
///
/// The host never reads the offsets; the kernels check each sequence's against the bounds
/// given here and the rows of the tensors: `0 ≤ cu[b] ≤ cu[b + 1] ≤ rows` (q's rows for
/// `cu_seqlens_q`, k's for `cu_seqlens_k`) and `cu[b + 1] − cu[b] ≤ max_seqlen_*`. A sequence
/// that breaks one is not computed from its offsets (bad query offsets: none of its rows is
/// read or written; bad key offsets: its rows see no key) and the entry is recorded in the
/// error record ([`DeviceAttentionArgs::errors`]). Rows outside every sequence (padding past
/// the last offset) are not written.
#[derive(Debug)]
pub struct DeviceVarlen<'a> {
    /// Query offsets, `batch + 1` values starting at 0.
    pub cu_seqlens_q: DeviceIndex<'a>,
    /// Key offsets, `batch + 1` values starting at 0.
    pub cu_seqlens_k: DeviceIndex<'a>,
    /// Number of sequences.
    pub batch: usize,
    /// The longest query sequence (the grid covers this many rows per sequence).
    pub max_seqlen_q: usize,
    /// The longest key sequence.
    pub max_seqlen_k: usize,
}

/// The operands of one attention launch on caller-owned memory.
///
/// Layouts are those of [`crate::AttentionInputs`]: `q` `[b, sq, h, d]`, `k`/`v`
/// `[b, sk, hkv, d]` (varlen: `[total, heads, d]`), any strides with a contiguous head
/// dimension; `o` the dtype of `q` in [`AttentionGeometry::o_shape`], `lse` f32 in
/// [`AttentionGeometry::lse_shape`] (both with a contiguous last axis, other strides free).
/// Device-side offsets are checked by the kernels ([`DeviceVarlen`]); rows no sequence covers
/// are not written.
#[derive(Debug)]
pub struct DeviceAttentionArgs<'a> {
    /// Queries.
    pub q: DeviceTensor<'a>,
    /// Keys.
    pub k: DeviceTensor<'a>,
    /// Values.
    pub v: DeviceTensor<'a>,
    /// Output.
    pub o: DeviceTensor<'a>,
    /// Log-sum-exp per row (f32).
    pub lse: DeviceTensor<'a>,
    /// Per-head sink logits, f32 `[heads]`, for [`Normaliser::Sink`] (values must be finite:
    /// unlike the host path they are not inspected).
    pub sinks: Option<DeviceTensor<'a>>,
    /// Gate logits when the options name a gate.
    pub gate: Option<DeviceTensor<'a>>,
    /// Varlen offsets; `None` for a fixed-length batch.
    pub varlen: Option<DeviceVarlen<'a>>,
    /// Where to add statistics; required exactly when `options.stats` is set.
    pub stats: Option<StatsTarget<'a>>,
    /// Where the kernels record a bad varlen offset ([`ErrorRecord`], sticky until reset): the
    /// call stays asynchronous and the engine reads the record when it synchronises anyway.
    /// `None` with varlen offsets: the call records into memory of its own, waits for the
    /// launch and returns the record's [`Error::Index`] itself (on CUDA that synchronises the
    /// stream). Fixed-length calls have no device-side index and ignore it.
    pub errors: Option<ErrorTarget<'a>>,
}

impl<'a> DeviceAttentionArgs<'a> {
    /// A fixed-length batch without sinks, gate or statistics.
    pub fn new(
        q: DeviceTensor<'a>,
        k: DeviceTensor<'a>,
        v: DeviceTensor<'a>,
        o: DeviceTensor<'a>,
        lse: DeviceTensor<'a>,
    ) -> Self {
        DeviceAttentionArgs {
            q,
            k,
            v,
            o,
            lse,
            sinks: None,
            gate: None,
            varlen: None,
            stats: None,
            errors: None,
        }
    }

    /// The shared validation of shapes, strides, dtypes and options, plus the checks of the
    /// operands the host path allocates itself (`o`, `lse`, `sinks`, statistics).
    pub fn geometry(&self, options: &AttentionOptions) -> Result<AttentionGeometry> {
        let layout = AttentionLayout {
            q: self.q.layout(),
            k: self.k.layout(),
            v: self.v.layout(),
            sinks: self.sinks.as_ref().map(|s| s.shape().iter().product()),
            gate: self.gate.as_ref().map(DeviceTensor::layout),
            seqlens: match &self.varlen {
                None => SeqLens::Batched,
                Some(v) => SeqLens::VarlenMax {
                    batch: v.batch,
                    max_seqlen_q: v.max_seqlen_q,
                    max_seqlen_k: v.max_seqlen_k,
                },
            },
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
        if let Some(v) = &self.varlen {
            for (name, cu) in [
                ("cu_seqlens_q", &v.cu_seqlens_q),
                ("cu_seqlens_k", &v.cu_seqlens_k),
            ] {
                if let Some(n) = cu.len().filter(|&n| n < v.batch + 1) {
                    return Err(shape_err!(
                        "{name} holds {n} offsets, a batch of {} needs {}",
                        v.batch,
                        v.batch + 1
                    ));
                }
            }
        }
        Ok(g)
    }
}

/// The operands a host path would allocate itself, checked against the validated geometry:
/// `o` (dtype of q, [`AttentionGeometry::o_shape`]), `lse` (f32, [`AttentionGeometry::lse_shape`]),
/// the sinks and the statistics buffer. Shared by every device-memory entry point.
pub(crate) fn check_operands(
    g: &AttentionGeometry,
    options: &AttentionOptions,
    o: &DeviceTensor<'_>,
    lse: &DeviceTensor<'_>,
    sinks: Option<&DeviceTensor<'_>>,
    stats: Option<&StatsTarget<'_>>,
) -> Result<()> {
    check_output("o", o, g.dtype, &g.o_shape())?;
    check_output("lse", lse, DType::F32, &g.lse_shape())?;
    if let (Normaliser::Sink, Some(s)) = (options.normaliser, sinks) {
        check_output("sinks", s, DType::F32, &[g.heads])?;
    }
    match (stats, options.stats) {
        (Some(t), true) => {
            let want = StatsLayout::new(g.heads, g.kv_heads, g.head_dim);
            if *t.layout() != want {
                return Err(shape_err!(
                    "the statistics buffer is laid out for another head configuration \
                         ({} bytes, this call needs {})",
                    t.layout().bytes,
                    want.bytes
                ));
            }
        }
        (None, false) => {}
        (Some(_), false) => {
            return Err(Error::InvalidOption(
                "a statistics buffer was given but options.stats is off".into(),
            ));
        }
        (None, true) => {
            return Err(Error::InvalidOption(
                "options.stats is on but no statistics buffer was given".into(),
            ));
        }
    }
    Ok(())
}

/// `t` has `dtype`, `shape` and a contiguous last axis.
fn check_output(name: &str, t: &DeviceTensor<'_>, dtype: DType, shape: &[usize]) -> Result<()> {
    if t.dtype() != dtype {
        return Err(Error::Unsupported(format!(
            "{name} must be {dtype}, got {}",
            t.dtype()
        )));
    }
    if t.shape() != shape {
        return Err(shape_err!(
            "{name} has shape {:?}, expected {shape:?}",
            t.shape()
        ));
    }
    if let (Some(&n), Some(&s)) = (shape.last(), t.strides().last())
        && n > 1
        && s != 1
    {
        return Err(shape_err!(
            "{name}: the last axis must be contiguous, got strides {:?}",
            t.strides()
        ));
    }
    Ok(())
}

/// Runs attention on caller-owned memory; returns the validated geometry.
///
/// On a CUDA device the kernel is queued on the device's stream ([`crate::cuda::CudaDevice::stream`],
/// or the engine's own through [`crate::cuda::CudaDevice::from_stream`]) and the call returns
/// without waiting; errors of the kernel itself surface at the next synchronisation. On the
/// emulator the launch runs to completion. Statistics are added to `args.stats` (zero it first,
/// or keep accumulating).
///
/// Varlen offsets are checked by the kernel ([`DeviceVarlen`]): with `args.errors` a bad entry
/// is recorded there for the engine to read ([`ErrorRecord`], example at [`ErrorTarget`]);
/// without it the call waits for the launch and returns the [`Error::Index`] naming the entry.
///
/// ```
/// use quietattn::ops::attention::{DeviceAttentionArgs, DeviceTensor, attention_device};
/// use quietattn::{AttentionOptions, DType, Device};
///
/// # fn main() -> quietattn::Result<()> {
/// let device = Device::emulator()?; // Device::cuda(0)? on a GPU
/// let exec = device.executor().expect("the emulator runs kernels");
/// let (b, s, h, d) = (1, 4, 1, 8);
/// let ones: Vec<u8> = bytemuck::cast_slice(&vec![half::bf16::ONE; b * s * h * d]).to_vec();
/// let qkv = exec.upload(&ones)?; // q, k and v all read this buffer
/// let mut o = exec.alloc_zeroed(ones.len())?;
/// let mut lse = exec.alloc_zeroed(b * h * s * 4)?;
/// let t = |shape: &[usize]| shape.to_vec();
/// let args = DeviceAttentionArgs::new(
///     DeviceTensor::from_buffer(&qkv, DType::BF16, &t(&[b, s, h, d]))?,
///     DeviceTensor::from_buffer(&qkv, DType::BF16, &t(&[b, s, h, d]))?,
///     DeviceTensor::from_buffer(&qkv, DType::BF16, &t(&[b, s, h, d]))?,
///     DeviceTensor::from_buffer_mut(&mut o, DType::BF16, &t(&[b, s, h, d]))?,
///     DeviceTensor::from_buffer_mut(&mut lse, DType::F32, &t(&[b, h, s]))?,
/// );
/// let geometry = attention_device(&device, &args, &AttentionOptions::default())?;
/// assert_eq!(geometry.o_shape(), vec![b, s, h, d]);
/// drop(args);
/// let mut out = vec![0u8; ones.len()];
/// exec.download(&o, &mut out)?;
/// // Every value row is ones, so every output is 1.
/// assert!(bytemuck::cast_slice::<u8, half::bf16>(&out).iter().all(|x| x.to_f32() == 1.0));
/// # Ok(())
/// # }
/// ```
pub fn attention_device(
    device: &Device,
    args: &DeviceAttentionArgs<'_>,
    options: &AttentionOptions,
) -> Result<AttentionGeometry> {
    let g = args.geometry(options)?;
    check_origins(device, args)?;
    let varlen = g.varlen;
    let desc = |t: &DeviceTensor<'_>| params::desc(t.addr(), t.dtype(), t.strides(), varlen);
    let operands = Operands {
        q: desc(&args.q)?,
        k: desc(&args.k)?,
        v: desc(&args.v)?,
        o: desc(&args.o)?,
        gate: args.gate.as_ref().map(desc).transpose()?,
        lse: args.lse.addr(),
        lse_strides: params::lse_strides(varlen, args.lse.strides())?,
        cu_seqlens: args
            .varlen
            .as_ref()
            .map(|v| (v.cu_seqlens_q.addr(), v.cu_seqlens_k.addr())),
        sinks: args.sinks.as_ref().map_or(0, DeviceTensor::addr),
        stats: args
            .stats
            .as_ref()
            .map_or_else(Default::default, |t| t.layout().pointers(t.addr())),
    };
    let mut p = params::build(&g, options, &operands)?;
    let launch = plan(&p, options.kernel, compute_capability(device)?)?;
    if p.batch == 0 {
        return Ok(g);
    }
    // Varlen offsets are checked by the kernel; without the caller's record it gets one of the
    // call's own, read back below, so a bad offset is this call's error and never a silent row.
    let own_record = match (&args.errors, varlen) {
        (Some(t), _) => {
            p.errors = t.addr();
            None
        }
        (None, true) => {
            let exec = device.executor().ok_or_else(reference_has_no_memory)?;
            let record = exec.alloc_zeroed(ERROR_RECORD_BYTES)?;
            p.errors = record.addr();
            Some((exec, record))
        }
        (None, false) => None,
    };
    enqueue(device, &launch.kernel, abi::as_bytes(&p), &launch.geometry)?;
    if let Some((exec, record)) = own_record {
        ErrorRecord::read(exec, &record)?.check()?;
    }
    Ok(g)
}

/// Queues one launch: on CUDA on the device's stream without waiting, on the emulator run to
/// completion by its executor.
pub(crate) fn enqueue(
    device: &Device,
    kernel: &KernelRef,
    params: &[u8],
    geometry: &LaunchGeometry,
) -> Result<()> {
    match device {
        Device::Cuda(c) => c.launch_async(kernel, params, geometry),
        other => match other.executor() {
            Some(e) => e.launch(kernel, params, geometry),
            None => Err(reference_has_no_memory()),
        },
    }
}

fn reference_has_no_memory() -> Error {
    Error::Unsupported("the reference device has no device memory to run on".into())
}

/// Every operand's memory belongs to the kind of device that launches, and cudarc guards were
/// taken on the stream the launch goes to.
fn check_origins(device: &Device, args: &DeviceAttentionArgs<'_>) -> Result<()> {
    let tensors = [&args.q, &args.k, &args.v, &args.o, &args.lse]
        .into_iter()
        .chain(args.sinks.as_ref())
        .chain(args.gate.as_ref())
        .map(DeviceTensor::origin);
    let indices = args
        .varlen
        .iter()
        .flat_map(|v| [v.cu_seqlens_q.origin(), v.cu_seqlens_k.origin()]);
    let record = args.errors.iter().map(ErrorTarget::origin);
    check_memory(device, tensors.chain(indices).chain(record))
}

/// Every origin is memory the launching device can use (see [`check_origins`]).
pub(crate) fn check_memory(device: &Device, origins: impl Iterator<Item = Origin>) -> Result<()> {
    let stream = match device {
        Device::Reference => return Err(reference_has_no_memory()),
        Device::Cuda(c) => Some(c.stream().cu_stream() as usize),
        #[cfg(feature = "emulator")]
        Device::Emulator(_) => None,
    };
    for origin in origins {
        let ok = match (origin, stream) {
            (Origin::Raw, _) => true,
            #[cfg(feature = "emulator")]
            (Origin::Host, None) => true,
            (Origin::Cuda(None), Some(_)) => true,
            (Origin::Cuda(Some(s)), Some(launch)) => s == launch,
            _ => false,
        };
        if !ok {
            return Err(Error::InvalidOption(format!(
                "an operand's memory ({origin:?}) does not belong to {} (or its guard was taken \
                 on another stream)",
                device.name()
            )));
        }
    }
    Ok(())
}

/// The compute capability `device` runs kernels at (the emulator reports the one it implements);
/// the reference device runs none.
pub(crate) fn compute_capability(device: &Device) -> Result<(u32, u32)> {
    Ok(match device {
        Device::Cuda(c) => c.compute_capability(),
        other => other
            .executor()
            .ok_or_else(reference_has_no_memory)?
            .compute_capability(),
    })
}
