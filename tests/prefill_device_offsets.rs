//! Varlen prefill whose offsets only the device holds (issue 20, "no silent rows"): every entry
//! that disagrees with the bounds the host was given — a sequence longer than `max_seqlen_q` /
//! `max_seqlen_k`, a negative or decreasing offset, an offset past the rows of q or k — is an
//! `Error::Index` naming it, on both kernel families. The other sequences of the call still
//! match the f64 reference; the bad one is never computed from its offsets (the emulator's
//! guard pages fault on any read past a buffer); a good call after a bad one is `Ok`.

mod common;

use half::f16;
use quietattn::abi::{self, QaAttnParams, QaTensorDesc};
use quietattn::check::outputs::{lse_tolerance, o_tolerance};
use quietattn::launch::{Buffer, Executor};
use quietattn::ops::attention::{
    DeviceAttentionArgs, DeviceIndex, DeviceTensor, DeviceVarlen, attention_device, attention_raw,
};
use quietattn::ops::{ErrorRecord, ErrorTarget};
use quietattn::reference::ReferenceAttention;
use quietattn::{AttentionInputs, AttentionOptions, DType, Device, Error, KernelChoice, Tensor};

/// Sequence 1 is longer than a query tile of either family (32 and 64 rows at d64), so a
/// `max_seqlen_q` of 64 gave it too few tiles: its last rows were never written.
const Q_LENS: [usize; 3] = [3, 70, 5];
const K_LENS: [usize; 3] = [4, 70, 6];
const HEADS: usize = 2;
const KV_HEADS: usize = 1;
const D: usize = 64;
const FAMILIES: [KernelChoice; 2] = [KernelChoice::CudaCore, KernelChoice::TensorCore];

fn offsets(lens: &[usize]) -> Vec<i32> {
    let mut cu = vec![0i32];
    for &n in lens {
        cu.push(cu[cu.len() - 1] + n as i32);
    }
    cu
}

/// f16 values in [-2, 2), a different sequence per `salt`.
fn input(rows: usize, heads: usize, salt: usize) -> Tensor {
    let values: Vec<f64> = (0..rows * heads * D)
        .map(|i| ((i * 7919 + salt * 104_729) % 1009) as f64 / 1009.0 * 4.0 - 2.0)
        .collect();
    Tensor::from_f64(DType::F16, &values, &[rows, heads, D]).expect("input tensor")
}

fn options(kernel: KernelChoice) -> AttentionOptions {
    AttentionOptions {
        causal: true,
        kernel,
        ..AttentionOptions::default()
    }
}

/// The inputs with their valid offsets, and the reference on them.
struct Fixture {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cu_q: Vec<i32>,
    cu_k: Vec<i32>,
    want: ReferenceAttention,
}

impl Fixture {
    fn new() -> Self {
        let (cu_q, cu_k) = (offsets(&Q_LENS), offsets(&K_LENS));
        let (total_q, total_k) = (cu_q[3] as usize, cu_k[3] as usize);
        let (q, k, v) = (
            input(total_q, HEADS, 1),
            input(total_k, KV_HEADS, 2),
            input(total_k, KV_HEADS, 3),
        );
        let mut inputs = AttentionInputs::new(q.view(), k.view(), v.view());
        inputs.cu_seqlens_q = Some(&cu_q);
        inputs.cu_seqlens_k = Some(&cu_k);
        let want = quietattn::reference::attention(&inputs, &options(KernelChoice::Auto))
            .expect("reference");
        Fixture {
            q,
            k,
            v,
            cu_q,
            cu_k,
            want,
        }
    }

    fn total_q(&self) -> usize {
        self.cu_q[3] as usize
    }

    fn total_k(&self) -> usize {
        self.cu_k[3] as usize
    }
}

/// The device memory of one call: inputs, offsets, outputs pre-filled with NaN (so an unwritten
/// row stays NaN).
struct Placed {
    q: Buffer,
    k: Buffer,
    v: Buffer,
    cu_q: Buffer,
    cu_k: Buffer,
    o: Buffer,
    lse: Buffer,
}

impl Placed {
    fn new(exec: &dyn Executor, f: &Fixture, cu_q: &[i32], cu_k: &[i32]) -> Self {
        let up = |bytes: &[u8]| exec.upload(bytes).expect("upload");
        let nan_o = vec![f16::NAN; f.total_q() * HEADS * D];
        let nan_lse = vec![f32::NAN; HEADS * f.total_q()];
        Placed {
            q: up(f.q.data.as_bytes()),
            k: up(f.k.data.as_bytes()),
            v: up(f.v.data.as_bytes()),
            cu_q: up(bytemuck::cast_slice(cu_q)),
            cu_k: up(bytemuck::cast_slice(cu_k)),
            o: up(bytemuck::cast_slice(&nan_o)),
            lse: up(bytemuck::cast_slice(&nan_lse)),
        }
    }

    /// `attention_device` declaring `max_seqlen_q` / `max_seqlen_k`, recording into `errors`
    /// when given.
    fn call(
        &mut self,
        device: &Device,
        f: &Fixture,
        kernel: KernelChoice,
        (max_seqlen_q, max_seqlen_k): (usize, usize),
        errors: Option<ErrorTarget<'_>>,
    ) -> quietattn::Result<()> {
        let (tq, tk) = (f.total_q(), f.total_k());
        let mut args = DeviceAttentionArgs::new(
            packed(&self.q, tq, HEADS)?,
            packed(&self.k, tk, KV_HEADS)?,
            packed(&self.v, tk, KV_HEADS)?,
            DeviceTensor::from_buffer_mut(&mut self.o, DType::F16, &[tq, HEADS, D])?,
            DeviceTensor::from_buffer_mut(&mut self.lse, DType::F32, &[HEADS, tq])?,
        );
        args.varlen = Some(DeviceVarlen {
            cu_seqlens_q: DeviceIndex::from_buffer(&self.cu_q),
            cu_seqlens_k: DeviceIndex::from_buffer(&self.cu_k),
            batch: Q_LENS.len(),
            max_seqlen_q,
            max_seqlen_k,
        });
        args.errors = errors;
        attention_device(device, &args, &options(kernel)).map(|_| ())
    }

    /// o `[total_q, h, d]` and lse `[h, total_q]` as they are now.
    fn outputs(&self, exec: &dyn Executor, f: &Fixture) -> (Vec<f64>, Vec<f32>) {
        let mut o = vec![f16::ZERO; f.total_q() * HEADS * D];
        exec.download(&self.o, bytemuck::cast_slice_mut(&mut o))
            .expect("download o");
        let mut lse = vec![0f32; HEADS * f.total_q()];
        exec.download(&self.lse, bytemuck::cast_slice_mut(&mut lse))
            .expect("download lse");
        (o.iter().map(|x| f64::from(x.to_f32())).collect(), lse)
    }
}

/// `[rows, heads, D]` f16 at the start of `buf`.
fn packed(buf: &Buffer, rows: usize, heads: usize) -> quietattn::Result<DeviceTensor<'_>> {
    DeviceTensor::from_buffer(buf, DType::F16, &[rows, heads, D])
}

/// What became of the sequence with the bad entry.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    /// Bad query offsets: none of its rows is known, none is written.
    Unwritten,
    /// Bad key offsets: its rows are rows that see no key (softmax: o = 0, lse = -inf).
    NoKeys,
}

/// Every row against the reference, but sequence `bad`'s, which must show its fate.
fn check_rows(f: &Fixture, (o, lse): &(Vec<f64>, Vec<f32>), bad: Option<(usize, Fate)>, at: &str) {
    let total_q = f.total_q();
    for (b, w) in f.cu_q.windows(2).enumerate() {
        let fate = bad.filter(|&(s, _)| s == b).map(|(_, fate)| fate);
        for row in w[0] as usize..w[1] as usize {
            for h in 0..HEADS {
                let at = format!("{at}: sequence {b}, row {row}, head {h}");
                let base = (row * HEADS + h) * D;
                let (got, want) = (&o[base..base + D], &f.want.o[base..base + D]);
                let lse_at = lse[h * total_q + row];
                match fate {
                    Some(Fate::Unwritten) => {
                        assert!(got.iter().all(|x| x.is_nan()), "{at}: o was written");
                        assert!(lse_at.is_nan(), "{at}: lse was written");
                    }
                    Some(Fate::NoKeys) => {
                        assert!(got.iter().all(|&x| x == 0.0), "{at}: o {got:?}");
                        assert_eq!(lse_at, f32::NEG_INFINITY, "{at}: lse");
                    }
                    None => {
                        let row_max = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                        for (c, (&g, &w)) in got.iter().zip(want).enumerate() {
                            let tol = o_tolerance(DType::F16, w, row_max);
                            assert!((g - w).abs() <= tol, "{at}: o[{c}] = {g}, reference {w}");
                        }
                        let w = f.want.lse[h * total_q + row];
                        let tol = lse_tolerance(DType::F16, w);
                        let g = f64::from(lse_at);
                        assert!((g - w).abs() <= tol, "{at}: lse = {g}, reference {w}");
                    }
                }
            }
        }
    }
}

/// One bad entry: the offsets and maxima of the call, what the error says, which sequence it
/// breaks.
struct Bad {
    label: &'static str,
    cu_q: Option<(usize, i32)>,
    cu_k: Option<(usize, i32)>,
    max: (usize, usize),
    want: &'static str,
    broken: (usize, Fate),
}

/// The valid offsets are cu_q [0, 3, 73, 78] over 78 rows, cu_k [0, 4, 74, 80] over 80 rows;
/// the longest sequences hold 70 rows each.
fn bad_cases() -> Vec<Bad> {
    let max = (70, 70);
    vec![
        Bad {
            label: "a query sequence longer than max_seqlen_q",
            cu_q: None,
            cu_k: None,
            max: (64, 70),
            want: "cu_seqlens_q[2] = 73: sequence 1 spans 70 rows from cu_seqlens_q[1] = 3, \
                   more than max_seqlen_q = 64",
            broken: (1, Fate::Unwritten),
        },
        Bad {
            label: "a key sequence longer than max_seqlen_k",
            cu_q: None,
            cu_k: None,
            max: (70, 64),
            want: "cu_seqlens_k[2] = 74: sequence 1 spans 70 rows from cu_seqlens_k[1] = 4, \
                   more than max_seqlen_k = 64",
            broken: (1, Fate::NoKeys),
        },
        Bad {
            label: "a negative query offset",
            cu_q: Some((0, -1)),
            cu_k: None,
            max,
            want: "cu_seqlens_q[0] = -1 is negative (sequence 0)",
            broken: (0, Fate::Unwritten),
        },
        Bad {
            label: "a negative key offset",
            cu_q: None,
            cu_k: Some((0, -2)),
            max,
            want: "cu_seqlens_k[0] = -2 is negative (sequence 0)",
            broken: (0, Fate::NoKeys),
        },
        Bad {
            label: "a decreasing query offset",
            cu_q: Some((3, 72)),
            cu_k: None,
            max,
            want: "cu_seqlens_q[3] = 72 is less than cu_seqlens_q[2] = 73",
            broken: (2, Fate::Unwritten),
        },
        Bad {
            label: "a decreasing key offset",
            cu_q: None,
            cu_k: Some((3, 73)),
            max,
            want: "cu_seqlens_k[3] = 73 is less than cu_seqlens_k[2] = 74",
            broken: (2, Fate::NoKeys),
        },
        Bad {
            label: "a query offset past the rows of q",
            cu_q: Some((3, 79)),
            cu_k: None,
            max,
            want: "cu_seqlens_q[3] = 79 is beyond the 78 rows of q (sequence 2)",
            broken: (2, Fate::Unwritten),
        },
        Bad {
            label: "a key offset past the rows of k",
            cu_q: None,
            cu_k: Some((3, 81)),
            max,
            want: "cu_seqlens_k[3] = 81 is beyond the 80 rows of k and v (sequence 2)",
            broken: (2, Fate::NoKeys),
        },
    ]
}

fn planted(valid: &[i32], entry: Option<(usize, i32)>) -> Vec<i32> {
    let mut cu = valid.to_vec();
    if let Some((at, value)) = entry {
        cu[at] = value;
    }
    cu
}

#[test]
fn each_bad_offset_is_an_index_error_naming_it_on_both_families() {
    let f = Fixture::new();
    for device in common::devices("prefill bad device-side offsets") {
        let exec = device.executor().expect("a kernel device");
        for kernel in FAMILIES {
            for bad in bad_cases() {
                let at = format!("{} ({kernel:?}, {})", bad.label, device.name());
                let (cu_q, cu_k) = (planted(&f.cu_q, bad.cu_q), planted(&f.cu_k, bad.cu_k));
                let mut placed = Placed::new(exec, &f, &cu_q, &cu_k);
                match placed.call(&device, &f, kernel, bad.max, None) {
                    Err(Error::Index(m)) => assert!(m.contains(bad.want), "{at}: {m}"),
                    other => panic!("{at}: expected the Index error, got {other:?}"),
                }
                check_rows(&f, &placed.outputs(exec, &f), Some(bad.broken), &at);
            }
            // Each call records into a record of its own: the bad calls left nothing behind.
            let mut placed = Placed::new(exec, &f, &f.cu_q, &f.cu_k);
            let at = format!("the valid offsets after the bad ones ({kernel:?})");
            placed
                .call(&device, &f, kernel, (70, 70), None)
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            check_rows(&f, &placed.outputs(exec, &f), None, &at);
        }
    }
}

#[test]
fn a_caller_record_keeps_the_first_error_until_reset() {
    let f = Fixture::new();
    let over = (64, 70); // sequence 1 holds 70 query rows
    let want = "cu_seqlens_q[2] = 73";
    for device in common::devices("prefill error record in caller memory") {
        let exec = device.executor().expect("a kernel device");
        let kernel = KernelChoice::CudaCore;
        let mut placed = Placed::new(exec, &f, &f.cu_q, &f.cu_k);
        let mut record = exec.alloc_zeroed(64).expect("alloc");
        let errors = ErrorTarget::from_buffer(&mut record).expect("fits");
        // Asynchronous: the call itself succeeds, the record holds the error.
        placed
            .call(&device, &f, kernel, over, Some(errors))
            .expect("queued");
        let read = |record: &Buffer| ErrorRecord::read(exec, record).expect("read");
        match read(&record).check() {
            Err(Error::Index(m)) => assert!(m.contains(want), "{m}"),
            other => panic!("expected the recorded error, got {other:?}"),
        }
        // Sticky: a good call does not clear it ...
        let errors = ErrorTarget::from_buffer(&mut record).expect("fits");
        placed
            .call(&device, &f, kernel, (70, 70), Some(errors))
            .expect("queued");
        assert!(
            !read(&record).is_ok(),
            "the record was cleared by a good call"
        );
        // ... a reset does, and a good call then leaves it clear.
        ErrorRecord::reset(&mut record).expect("reset");
        let errors = ErrorTarget::from_buffer(&mut record).expect("fits");
        placed
            .call(&device, &f, kernel, (70, 70), Some(errors))
            .expect("queued");
        read(&record).check().expect("no error after the reset");
        check_rows(&f, &placed.outputs(exec, &f), None, "after the reset");

        // The same record by raw address.
        let addr = record.addr();
        // SAFETY: `record` is a live 64-byte allocation of this device for the whole block.
        unsafe {
            placed
                .call(&device, &f, kernel, over, Some(ErrorTarget::from_raw(addr)))
                .expect("queued");
            let raw = ErrorRecord::read_at(&device, addr).expect("read");
            assert!(raw.check().is_err_and(|e| e.to_string().contains(want)));
            ErrorRecord::reset_at(&device, addr).expect("reset");
            assert!(ErrorRecord::read_at(&device, addr).expect("read").is_ok());
        }

        // And in a cudarc slice, on a GPU.
        if let Device::Cuda(gpu) = &device {
            let stream = gpu.stream();
            let mut slice = stream.alloc_zeros::<i32>(8).expect("alloc");
            let errors = ErrorTarget::from_cuda(&mut slice, stream).expect("fits");
            placed
                .call(&device, &f, kernel, over, Some(errors))
                .expect("queued");
            let got = ErrorRecord::read_cuda(&slice, stream).expect("read");
            assert!(got.check().is_err_and(|e| e.to_string().contains(want)));
            ErrorRecord::reset_cuda(&mut slice, stream).expect("reset");
            assert!(
                ErrorRecord::read_cuda(&slice, stream)
                    .expect("read")
                    .is_ok()
            );
        }
    }
}

#[test]
fn attention_raw_returns_the_error_of_its_own_record() {
    let f = Fixture::new();
    for device in common::devices("attention_raw with bad device-side offsets") {
        let exec = device.executor().expect("a kernel device");
        let placed = Placed::new(exec, &f, &f.cu_q, &f.cu_k);
        let desc = |b: &Buffer, heads: usize| QaTensorDesc {
            ptr: b.addr(),
            stride_batch: 0,
            stride_seq: (heads * D) as i64,
            stride_head: D as i64,
            dtype: abi::QaDtype_QA_DTYPE_F16,
            reserved: 0,
        };
        let params = |max_seqlen_q: u32| QaAttnParams {
            q: desc(&placed.q, HEADS),
            k: desc(&placed.k, KV_HEADS),
            v: desc(&placed.v, KV_HEADS),
            o: desc(&placed.o, HEADS),
            lse: placed.lse.addr(),
            lse_stride_head: f.total_q() as i64,
            cu_seqlens_q: placed.cu_q.addr(),
            cu_seqlens_k: placed.cu_k.addr(),
            batch: Q_LENS.len() as u32,
            heads: HEADS as u32,
            kv_heads: KV_HEADS as u32,
            head_dim: D as u32,
            seqlen_q: max_seqlen_q,
            seqlen_k: 70,
            total_q: f.total_q() as u32,
            total_k: f.total_k() as u32,
            causal: 1,
            window_left: -1,
            window_right: -1,
            scale: 1.0 / (D as f32).sqrt(),
            ..Default::default()
        };
        let kernel = KernelChoice::CudaCore;
        match attention_raw(exec, &params(64), kernel) {
            Err(Error::Index(m)) => assert!(m.contains("cu_seqlens_q[2] = 73"), "{m}"),
            other => panic!("expected the Index error, got {other:?}"),
        }
        attention_raw(exec, &params(70), kernel).expect("the valid call after the bad one");
        check_rows(&f, &placed.outputs(exec, &f), None, "attention_raw");
    }
}
