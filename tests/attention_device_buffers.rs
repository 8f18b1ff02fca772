//! Attention on caller-owned device memory (`attention_device`): on the emulator, against the
//! host-tensor path (same kernel, so bit-identical) and against the f64 reference; plus the
//! validation errors, statistics accumulation, and a cudarc round trip on a GPU when present.

mod attention_device_parts;
#[allow(dead_code)]
mod attention_parts;

use attention_device_parts::exec;
use attention_device_parts::packed::Packed;
use attention_parts::cases::{Batching, Case, CaseData, Layout, MaskKind, Owned};
use quietattn::check::{Expected, verify};
use quietattn::launch::Buffer;
use quietattn::ops::attention::{
    DeviceAttentionArgs, DeviceIndex, DeviceStats, DeviceTensor, DeviceVarlen, attention_device,
    read_stats_at,
};
use quietattn::stats::compare::check_reproducible;
use quietattn::{
    AttentionOptions, AttentionOutput, AttentionProblem, DType, Device, Error, Gate, KernelChoice,
    Normaliser, OutlierStats, Tensor, TensorData,
};

fn emulator() -> Device {
    Device::emulator().expect("the emulator feature is on in tests")
}

/// Uploads an owned tensor's whole storage; the descriptor walks it with the view's strides.
fn upload(device: &Device, t: &Owned) -> Buffer {
    exec(device).upload(t.data.as_bytes()).expect("upload")
}

fn describe<'a>(buf: &'a Buffer, t: &Owned) -> DeviceTensor<'a> {
    DeviceTensor::from_buffer(buf, t.data.dtype(), &[t.data.len()])
        .and_then(|d| d.strided(&t.shape, &t.strides, t.offset))
        .expect("descriptor fits its buffer")
}

/// The device path's results: o, lse (rows no sequence covers keep the NaN they started as),
/// statistics.
struct DeviceRun {
    o: Tensor,
    lse: Vec<f32>,
    stats: Option<OutlierStats>,
}

/// Where the device path writes `o`: `offset` elements into its buffer, token rows of
/// `heads · d + token_pad` elements; the rest of the buffer starts as NaN bits and must stay so.
#[derive(Clone, Copy)]
struct OView {
    offset: usize,
    token_pad: usize,
}

impl OView {
    const DENSE: OView = OView {
        offset: 0,
        token_pad: 0,
    };

    /// Element strides of `shape` (`[.., tokens, heads, d]`) in this view.
    fn strides(&self, shape: &[usize]) -> Vec<usize> {
        let n = shape.len();
        let mut strides = vec![1; n];
        strides[n - 2] = shape[n - 1];
        strides[n - 3] = shape[n - 2] * shape[n - 1] + self.token_pad;
        for i in (0..n - 3).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        strides
    }

    /// Buffer element of each element of `shape`, in row-major order.
    fn positions(&self, shape: &[usize]) -> Vec<usize> {
        let strides = self.strides(shape);
        let mut at = vec![self.offset];
        for (&len, &stride) in shape.iter().zip(&strides) {
            at = at
                .iter()
                .flat_map(|&a| (0..len).map(move |i| a + i * stride))
                .collect();
        }
        at
    }
}

/// Runs `data` through `attention_device` on buffers holding exactly the inputs' storage.
fn run_device(device: &Device, data: &CaseData, options: &AttentionOptions) -> DeviceRun {
    run_device_with(device, data, options, OView::DENSE)
}

/// `run_device` with `o` written through `view` (16-bit dtypes when not dense).
fn run_device_with(
    device: &Device,
    data: &CaseData,
    options: &AttentionOptions,
    view: OView,
) -> DeviceRun {
    let e = exec(device);
    let problem = AttentionProblem::new(&data.inputs(), options).expect("valid case");
    let g = problem.geometry();
    let (q, k, v) = (
        upload(device, &data.q),
        upload(device, &data.k),
        upload(device, &data.v),
    );
    let gate = data.gate.as_ref().map(|t| upload(device, t));
    let sinks = e.upload(bytemuck::cast_slice(&data.sinks)).expect("upload");
    let cu = (!data.cu_q.is_empty()).then(|| {
        let up = |c: &[i32]| e.upload(bytemuck::cast_slice(c)).expect("upload");
        (up(&data.cu_q), up(&data.cu_k))
    });
    let o_shape = g.o_shape();
    let mut o = Tensor::zeros(g.dtype, &o_shape).expect("o");
    let positions = view.positions(&o_shape);
    let o_elems = positions
        .iter()
        .max()
        .map_or(0, |&m| m + 1 + view.token_pad);
    let mut o_buf = if view.offset == 0 && view.token_pad == 0 {
        e.alloc_zeroed(o.data.as_bytes().len()).expect("alloc")
    } else {
        e.upload(&vec![0xff; 2 * o_elems]).expect("upload")
    };
    let o_desc = DeviceTensor::from_buffer_mut(&mut o_buf, g.dtype, &[o_elems.max(1)])
        .and_then(|t| t.strided(&o_shape, &view.strides(&o_shape), view.offset))
        .expect("o view fits its buffer");
    let lse_len: usize = g.lse_shape().iter().product();
    let mut lse = vec![f32::NAN; lse_len];
    let mut lse_buf = e.upload(bytemuck::cast_slice(&lse)).expect("upload");
    let mut stats = options
        .stats
        .then(|| DeviceStats::new(device, g.heads, g.kv_heads, g.head_dim).expect("stats"));

    let mut args = DeviceAttentionArgs::new(
        describe(&q, &data.q),
        describe(&k, &data.k),
        describe(&v, &data.v),
        o_desc,
        DeviceTensor::from_buffer_mut(&mut lse_buf, DType::F32, &g.lse_shape()).expect("lse"),
    );
    args.sinks = (options.normaliser == Normaliser::Sink)
        .then(|| DeviceTensor::from_buffer(&sinks, DType::F32, &[g.heads]).expect("sinks"));
    args.gate = gate
        .as_ref()
        .zip(data.gate.as_ref())
        .map(|(b, t)| describe(b, t));
    args.varlen = cu.as_ref().map(|(cq, ck)| DeviceVarlen {
        cu_seqlens_q: DeviceIndex::from_buffer(cq),
        cu_seqlens_k: DeviceIndex::from_buffer(ck),
        batch: g.batch,
        max_seqlen_q: g.max_seqlen_q,
        max_seqlen_k: g.max_seqlen_k,
    });
    args.stats = stats.as_mut().map(DeviceStats::target);
    let got = attention_device(device, &args, options).expect("device-buffer attention");
    assert_eq!(got, g, "the device path resolved another geometry");
    drop(args);

    if view.offset == 0 && view.token_pad == 0 {
        e.download(&o_buf, o.data.as_bytes_mut()).expect("download");
    } else {
        let mut raw = vec![0u8; 2 * o_elems];
        e.download(&o_buf, &mut raw).expect("download");
        let mut written = vec![false; o_elems];
        let bytes = o.data.as_bytes_mut();
        for (i, &at) in positions.iter().enumerate() {
            bytes[2 * i..2 * i + 2].copy_from_slice(&raw[2 * at..2 * at + 2]);
            written[at] = true;
        }
        for (at, w) in written.iter().enumerate() {
            let bits = [raw[2 * at], raw[2 * at + 1]];
            assert!(
                *w || bits == [0xff, 0xff],
                "o buffer element {at} outside the view was written"
            );
        }
    }
    e.download(&lse_buf, bytemuck::cast_slice_mut(&mut lse))
        .expect("download");
    DeviceRun {
        o,
        lse,
        stats: stats.map(|s| s.read(device).expect("read stats")),
    }
}

/// Device path == host path bit for bit (the emulator's schedule is deterministic, so even the
/// float sums of the statistics repeat exactly); then the device results against the reference.
fn check_case(case: &Case, seed: u64) {
    let device = emulator();
    let data = CaseData::new(case, seed);
    let inputs = data.inputs();
    let options = case.options();
    let label = case.label();
    let host = quietattn::attention(&device, &inputs, &options).expect("host path");
    let dev = run_device(&device, &data, &options);
    assert_eq!(dev.o, host.o, "{label}: o differs from the host path");
    assert_eq!(dev.stats, host.stats, "{label}: statistics differ");

    let problem = AttentionProblem::new(&inputs, &options).expect("valid");
    let host_lse = host.lse.to_f64();
    let mut covered = vec![false; host_lse.len()];
    for (b, s) in problem.seqs.iter().enumerate() {
        for h in 0..problem.heads {
            for i in 0..s.q_len {
                covered[problem.lse_index(b, h, i)] = true;
            }
        }
    }
    for (i, (&d, &hst)) in dev.lse.iter().zip(&host_lse).enumerate() {
        if covered[i] {
            assert_eq!(d.to_bits(), (hst as f32).to_bits(), "{label}: lse[{i}]");
        } else {
            assert!(d.is_nan(), "{label}: lse[{i}] of no sequence was written");
        }
    }

    let expected = Expected::new(&inputs, &options).expect("reference");
    let problem = &expected.reference.problem;
    // Rows of no sequence are the host path's business (it pre-fills them); the rest must match.
    let lse: Vec<f32> = dev
        .lse
        .iter()
        .zip(&host_lse)
        .zip(&covered)
        .map(|((&d, &hst), &c)| if c { d } else { hst as f32 })
        .collect();
    let out = AttentionOutput {
        o: dev.o,
        lse: Tensor::new(TensorData::F32(lse), &problem.lse_shape()).expect("lse"),
        stats: dev.stats,
        numerics: Default::default(),
    };
    verify(case.dtype, &expected, &out, case.stats).unwrap_or_else(|e| panic!("{label}: {e}"));
}

fn case(norm: Normaliser, dtype: DType, batching: Batching) -> Case {
    Case {
        norm,
        mask: MaskKind::None,
        softcap: false,
        gate: Gate::None,
        dtype,
        head_dim: 64,
        layout: Layout::Gqa,
        batching,
        stats: false,
        padded: false,
        scale: None,
    }
}

#[test]
fn strided_batched_sink_gate_stats_match_host_path_and_reference() {
    let mut c = case(
        Normaliser::Sink,
        DType::BF16,
        Batching::Batched {
            q_len: 19,
            k_len: 27,
        },
    );
    c.mask = MaskKind::Causal;
    c.padded = true;
    c.stats = true;
    check_case(&c, 11);
    c.gate = Gate::SigmoidHeadwise;
    c.stats = false;
    check_case(&c, 12);
}

#[test]
fn varlen_with_device_offsets_matches_host_path_and_reference() {
    let mut c = case(
        Normaliser::Clipped {
            gamma: -0.03,
            zeta: 1.0,
        },
        DType::F16,
        Batching::Varlen,
    );
    c.mask = MaskKind::Window;
    c.gate = Gate::SigmoidElementwise;
    c.layout = Layout::Mqa;
    check_case(&c, 21);
    let mut s = case(Normaliser::Softmax, DType::F32, Batching::Varlen);
    s.stats = true;
    check_case(&s, 22);
}

/// `o` written through a strided view: rows 16-byte aligned (the tensor-core epilogue's 16-byte
/// chunk stores) and misaligned by one element (its element stores), for each family: the same
/// bits as the dense host path, nothing outside the view touched.
#[test]
fn strided_and_misaligned_o_matches_host_path() {
    let device = emulator();
    let mut c = case(
        Normaliser::Softmax,
        DType::BF16,
        Batching::Batched {
            q_len: 70,
            k_len: 45,
        },
    );
    c.mask = MaskKind::Causal;
    c.gate = Gate::SigmoidElementwise;
    c.stats = true;
    let data = CaseData::new(&c, 31);
    for kernel in [KernelChoice::TensorCore, KernelChoice::CudaCore] {
        let options = AttentionOptions {
            kernel,
            ..c.options()
        };
        let host = quietattn::attention(&device, &data.inputs(), &options).expect("host path");
        for view in [
            OView {
                offset: 8,
                token_pad: 8,
            },
            OView {
                offset: 1,
                token_pad: 3,
            },
        ] {
            let dev = run_device_with(&device, &data, &options, view);
            let at = format!("{kernel:?}, offset {}, pad {}", view.offset, view.token_pad);
            assert_eq!(dev.o, host.o, "{at}: o differs from the dense host path");
            assert_eq!(dev.stats, host.stats, "{at}: statistics differ");
        }
    }
}

#[test]
fn packed_qkv_in_one_buffer_matches_host_path_and_reference() {
    let device = emulator();
    let packed = Packed::new(0);
    let options = AttentionOptions {
        causal: true,
        normaliser: Normaliser::OffByOne,
        ..Default::default()
    };
    let o = packed.run(&device, &options, None);
    let inputs = packed.inputs();
    let host = quietattn::attention(&device, &inputs, &options).expect("host path");
    assert_eq!(o, host.o, "packed: device path differs from the host path");
    let expected = Expected::new(&inputs, &options).expect("reference");
    let out = AttentionOutput { o, ..host };
    verify(DType::BF16, &expected, &out, false).unwrap_or_else(|e| panic!("packed: {e}"));
}

/// docs/contract.md §5: counters are sums, so two launches into one buffer read as the sum of each.
#[test]
fn two_launches_accumulate_into_one_statistics_buffer() {
    let device = emulator();
    let options = AttentionOptions {
        stats: true,
        ..Default::default()
    };
    let (a, b) = (Packed::new(0), Packed::new(500));
    let one = |p: &Packed| {
        quietattn::attention(&device, &p.inputs(), &options)
            .expect("host path")
            .stats
            .expect("stats requested")
    };
    let (sa, sb) = (one(&a), one(&b));
    let (_, _, h, kv, d) = a.dims;
    let mut stats = DeviceStats::new(&device, h, kv, d).expect("stats buffer");
    a.run(&device, &options, Some(&mut stats));
    b.run(&device, &options, Some(&mut stats));
    let both = stats.read(&device).expect("read");
    assert!(
        sa.heads.iter().any(|h| h.rows > 0),
        "the launches counted no rows"
    );
    let mut sum = sa.clone();
    sum.accumulate(&sb);
    check_reproducible(&both, &sum).unwrap_or_else(|e| panic!("two launches: {e}"));

    // Zeroing starts a new window: one launch then reads exactly as one launch.
    stats.zero(&device).expect("zero");
    assert_eq!(
        stats.read(&device).expect("read"),
        OutlierStats::zeroed(h, kv, d)
    );
    b.run(&device, &options, Some(&mut stats));
    assert_eq!(stats.read(&device).expect("read"), sb);
    let addr = stats.target().addr();
    // SAFETY: `stats` owns `layout.bytes` bytes of emulator (host) memory at `addr`.
    let raw = unsafe { read_stats_at(&device, addr, stats.layout()) }.expect("raw read");
    assert_eq!(raw, sb);
}

/// f16 `o` `[b, s, h, d]` and f32 `lse` `[b, h, s]` over whole buffers.
fn outputs<'a>(
    o: &'a mut Buffer,
    lse: &'a mut Buffer,
    [b, s, h, d]: [usize; 4],
) -> (DeviceTensor<'a>, DeviceTensor<'a>) {
    let o = DeviceTensor::from_buffer_mut(o, DType::F16, &[b, s, h, d]).expect("fits");
    let lse = DeviceTensor::from_buffer_mut(lse, DType::F32, &[b, h, s]).expect("fits");
    (o, lse)
}

/// Bad descriptors are `Error` values, checked before anything launches.
#[test]
fn invalid_device_arguments_are_errors() {
    let device = emulator();
    let e = exec(&device);
    let (b, s, h, d) = (1, 8, 2, 64);
    let n = b * s * h * d;
    let x = e.alloc_zeroed(n * 2).expect("alloc");
    let mut o = e.alloc_zeroed(n * 2).expect("alloc");
    let mut lse = e.alloc_zeroed(b * h * s * 4).expect("alloc");
    let t = |shape: &[usize]| DeviceTensor::from_buffer(&x, DType::F16, shape).expect("fits");
    let opts = AttentionOptions::default();

    // o in the wrong dtype.
    let args = DeviceAttentionArgs::new(
        t(&[b, s, h, d]),
        t(&[b, s, h, d]),
        t(&[b, s, h, d]),
        DeviceTensor::from_buffer_mut(&mut o, DType::BF16, &[b, s, h, d]).expect("fits"),
        DeviceTensor::from_buffer_mut(&mut lse, DType::F32, &[b, h, s]).expect("fits"),
    );
    assert!(matches!(
        attention_device(&device, &args, &opts),
        Err(Error::Unsupported(_))
    ));
    drop(args);

    // k with another head dim (the shared validator), and lse of the wrong shape.
    let bad = [
        (t(&[b, s, h, d]), t(&[b, s, h * 2, d / 2]), [b, h, s]),
        (t(&[b, s, h, d]), t(&[b, s, h, d]), [b, s, h]),
    ];
    for (q, k, lse_shape) in bad {
        let v = t(k.shape());
        let args = DeviceAttentionArgs::new(
            q,
            k,
            v,
            DeviceTensor::from_buffer_mut(&mut o, DType::F16, &[b, s, h, d]).expect("fits"),
            DeviceTensor::from_buffer_mut(&mut lse, DType::F32, &lse_shape).expect("fits"),
        );
        let r = attention_device(&device, &args, &opts);
        assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    }

    // Statistics requested without a buffer; a buffer for other heads.
    let dims = [b, s, h, d];
    let stats_on = AttentionOptions {
        stats: true,
        ..Default::default()
    };
    let (o1, l1) = outputs(&mut o, &mut lse, dims);
    let args =
        DeviceAttentionArgs::new(t(&[b, s, h, d]), t(&[b, s, h, d]), t(&[b, s, h, d]), o1, l1);
    let r = attention_device(&device, &args, &stats_on);
    assert!(matches!(r, Err(Error::InvalidOption(_))), "{r:?}");
    drop(args);
    let mut other = DeviceStats::new(&device, h * 2, h, d).expect("stats");
    let (o1, l1) = outputs(&mut o, &mut lse, dims);
    let mut args =
        DeviceAttentionArgs::new(t(&[b, s, h, d]), t(&[b, s, h, d]), t(&[b, s, h, d]), o1, l1);
    args.stats = Some(other.target());
    let r = attention_device(&device, &args, &stats_on);
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    drop(args);

    // A view reaching past its buffer, and the reference device (no device memory).
    let past = DeviceTensor::from_buffer(&x, DType::F16, &[n])
        .and_then(|t| t.strided(&[b, s, h, d], &[n, h * d, d, 1], 1));
    assert!(matches!(past, Err(Error::Shape(_))), "{past:?}");
    let (o1, l1) = outputs(&mut o, &mut lse, dims);
    let args =
        DeviceAttentionArgs::new(t(&[b, s, h, d]), t(&[b, s, h, d]), t(&[b, s, h, d]), o1, l1);
    let r = attention_device(&Device::reference(), &args, &opts);
    assert!(matches!(r, Err(Error::Unsupported(_))), "{r:?}");
}

/// cudarc slices on the device's stream, no copies in the call: same result as the host path.
#[test]
fn gpu_cudarc_slices_match_host_path() {
    let test = "gpu_cudarc_slices_match_host_path";
    let Some(device) = quietattn::testing::cuda_or_skip(test) else {
        return;
    };
    let Device::Cuda(cuda) = &device else {
        unreachable!("Device::cuda returns a CUDA device")
    };
    let packed = Packed::new(3);
    let (b, s, h, _, d) = packed.dims;
    let options = AttentionOptions {
        causal: true,
        stats: true,
        ..Default::default()
    };
    let host = quietattn::attention(&device, &packed.inputs(), &options).expect("host path");
    let stream = cuda.stream();
    let TensorData::BF16(values) = &packed.data else {
        unreachable!("packed data is bf16")
    };
    let qkv = stream.clone_htod(values).expect("upload");
    let mut o = stream
        .alloc_zeros::<half::bf16>(b * s * h * d)
        .expect("alloc");
    let mut lse = stream.alloc_zeros::<f32>(b * h * s).expect("alloc");
    let mut stats = DeviceStats::new(&device, h, packed.dims.3, d).expect("stats");
    {
        let [q, k, v] = packed.parts().map(|(shape, strides, offset)| {
            DeviceTensor::from_cuda(&qkv, stream, &[values.len()])
                .and_then(|t| t.strided(&shape, &strides, offset))
                .expect("fits")
        });
        let mut args = DeviceAttentionArgs::new(
            q,
            k,
            v,
            DeviceTensor::from_cuda_mut(&mut o, stream, &[b, s, h, d]).expect("o"),
            DeviceTensor::from_cuda_mut(&mut lse, stream, &[b, h, s]).expect("lse"),
        );
        args.stats = Some(stats.target());
        attention_device(&device, &args, &options).expect("device attention");
    }
    let o_host = stream.clone_dtoh(&o).expect("download");
    let lse_host = stream.clone_dtoh(&lse).expect("download");
    let TensorData::BF16(want_o) = &host.o.data else {
        unreachable!("o has the dtype of q")
    };
    assert_eq!(&o_host, want_o);
    assert_eq!(
        lse_host,
        host.lse
            .to_f64()
            .iter()
            .map(|&x| x as f32)
            .collect::<Vec<_>>()
    );
    // Outputs are bit-reproducible; the statistics' float sums only within REPRODUCIBLE_REL
    // (f32 block partials merged by atomics in completion order), the counters exactly.
    let want = host.stats.expect("stats requested");
    let got = stats.read(&device).expect("read");
    check_reproducible(&got, &want).unwrap_or_else(|e| panic!("{test}: {e}"));
}
