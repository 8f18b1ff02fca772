//! The engine path of decode (`paged_decode_device`): the paged fixture's tensors placed in
//! executor memory and described by `DeviceTensor`/`DeviceIndex`, against the host path
//! (`paged_decode`) on the same device. Both end in the same kernels with the same parameter
//! builder, so on the emulator o, lse and the statistics must agree bit for bit; a difference
//! means the device path validated, planned or addressed something differently.
//! Also: wrong layouts are error values before any launch, and a bad table entry only the
//! device holds comes back through the workspace's error record.

mod common;
mod paged_parts;

use paged_parts::{Fixture, LENS, Q_LENS, Shape, covering_options};

use quietattn::launch::{Buffer, Executor};
use quietattn::ops::attention::{DeviceIndex, DeviceStats, DeviceTensor, StatsTarget};
use quietattn::ops::decode::{
    DecodeCall, DecodeErrors, DecodeWorkspace, DevicePagedArgs, DevicePagedQueries, paged_decode,
    paged_decode_device,
};
use quietattn::problem::{DecodeBounds, ERROR_RECORD_BYTES, SplitPlan, workspace_bytes};
use quietattn::stats::OutlierStats;
use quietattn::{AttentionOptions, DType, Device, Error, KernelChoice, Normaliser};

/// The fixture in executor memory, plus the outputs and a workspace.
struct Placed {
    q: Buffer,
    k: Buffer,
    v: Buffer,
    table: Buffer,
    lens: Buffer,
    sinks: Buffer,
    gate: Buffer,
    cu_q: Option<Buffer>,
    o: Buffer,
    lse: Buffer,
    workspace: Buffer,
}

/// What a call left behind: o's bytes, lse, the statistics.
type Outputs = (Vec<u8>, Vec<f32>, Option<OutlierStats>);

fn upload(exec: &dyn Executor, bytes: &[u8]) -> Buffer {
    exec.upload(bytes).expect("upload")
}

impl Placed {
    fn new(exec: &dyn Executor, f: &Fixture, table: &[i32], workspace_bytes: usize) -> Self {
        let s = f.shape;
        let rows = f.total_q() * s.heads;
        Placed {
            q: upload(exec, f.q.data.as_bytes()),
            k: upload(exec, f.k_cache.data.as_bytes()),
            v: upload(exec, f.v_cache.data.as_bytes()),
            table: upload(exec, bytemuck::cast_slice(table)),
            lens: upload(exec, bytemuck::cast_slice(&f.lens)),
            sinks: upload(exec, bytemuck::cast_slice(&f.sinks)),
            gate: upload(exec, f.gate.data.as_bytes()),
            cu_q: f
                .cu_q
                .as_ref()
                .map(|cu| upload(exec, bytemuck::cast_slice(cu))),
            o: exec.alloc_zeroed(f.q.data.as_bytes().len()).unwrap(),
            lse: exec.alloc_zeroed(rows * 4).unwrap(),
            workspace: exec.alloc_zeroed(workspace_bytes).unwrap(),
        }
    }

    /// The call's arguments on this memory (no statistics unless `stats` is given).
    fn args<'a>(
        &'a mut self,
        f: &Fixture,
        stats: Option<StatsTarget<'a>>,
        plan: Option<SplitPlan>,
    ) -> (DevicePagedArgs<'a>, DecodeWorkspace<'a>) {
        let s = f.shape;
        let (b, dt) = (LENS.len(), s.dtype);
        let cache = &f.k_cache.shape;
        let words = self.workspace.len() / 4;
        let tensor =
            |buf, dtype, shape: &[usize]| DeviceTensor::from_buffer(buf, dtype, shape).unwrap();
        let gate_shape = match f.cu_q {
            Some(_) => vec![f.total_q(), s.heads],
            None => vec![b, s.q_len, s.heads],
        };
        let args = DevicePagedArgs {
            q: tensor(&self.q, dt, &f.q_shape()),
            k_cache: tensor(&self.k, dt, cache),
            v_cache: tensor(&self.v, dt, cache),
            block_table: DeviceIndex::from_buffer(&self.table),
            max_pages: f.max_pages,
            seq_lens_k: DeviceIndex::from_buffer(&self.lens),
            max_seqlen_k: *LENS.iter().max().unwrap(),
            o: DeviceTensor::from_buffer_mut(&mut self.o, dt, &f.q_shape()).unwrap(),
            lse: DeviceTensor::from_buffer_mut(&mut self.lse, DType::F32, &f.lse_shape()).unwrap(),
            sinks: Some(tensor(&self.sinks, DType::F32, &[s.heads])),
            gate: Some(tensor(&self.gate, DType::F32, &gate_shape)),
            stats,
            plan,
            varlen_q: self.cu_q.as_ref().map(|cu| DevicePagedQueries {
                cu_seqlens_q: DeviceIndex::from_buffer(cu),
                batch: b,
                max_seqlen_q: s.q_len,
            }),
        };
        let workspace = DecodeWorkspace {
            memory: DeviceTensor::from_buffer_mut(&mut self.workspace, DType::F32, &[words])
                .unwrap(),
            sm_count: 132,
        };
        (args, workspace)
    }

    /// Runs the device path, with fresh statistics counters when `options.stats`.
    fn call(
        &mut self,
        device: &Device,
        f: &Fixture,
        options: &AttentionOptions,
        plan: Option<SplitPlan>,
    ) -> quietattn::Result<Option<OutlierStats>> {
        let s = f.shape;
        let mut stats = options
            .stats
            .then(|| DeviceStats::new(device, s.heads, s.kv_heads, s.dim).unwrap());
        let (args, workspace) = self.args(f, stats.as_mut().map(DeviceStats::target), plan);
        paged_decode_device(device, &args, options, &workspace)?;
        drop((args, workspace));
        stats.map(|st| st.read(device)).transpose()
    }

    fn outputs(&self, exec: &dyn Executor, stats: Option<OutlierStats>) -> Outputs {
        let mut o = vec![0u8; self.o.len()];
        exec.download(&self.o, &mut o).unwrap();
        let mut lse = vec![0f32; self.lse.len() / 4];
        exec.download(&self.lse, bytemuck::cast_slice_mut(&mut lse))
            .unwrap();
        (o, lse, stats)
    }

    fn errors(&self, exec: &dyn Executor) -> quietattn::Result<()> {
        DecodeErrors::read(exec, &self.workspace)?.check()
    }
}

fn shape(dtype: DType, page_size: usize, q_len: usize, heads: (usize, usize)) -> Shape {
    Shape {
        dtype,
        dim: 8,
        page_size,
        q_len,
        heads: heads.0,
        kv_heads: heads.1,
    }
}

/// Workspace bytes for `plan` (statistics or not), exactly.
fn need(f: &Fixture, plan: SplitPlan, stats: bool) -> usize {
    let s = f.shape;
    // partial rows: [batch, q_len] batched, [total_q] varlen
    let (seqs, rows) = match f.cu_q {
        Some(_) => (f.total_q(), 1),
        None => (LENS.len(), s.q_len),
    };
    plan.partial_bytes(seqs, s.heads, rows, s.dim, stats) + ERROR_RECORD_BYTES
}

/// What an engine serving the fixture's shapes would size its workspace for, once.
fn bounds(f: &Fixture, stats: bool) -> DecodeBounds {
    let s = f.shape;
    DecodeBounds {
        max_batch: LENS.len(),
        heads: s.heads,
        kv_heads: s.kv_heads,
        max_seqlen_q: s.q_len,
        max_seqlen_k: *LENS.iter().max().unwrap(),
        head_dim: s.dim,
        page_size: s.page_size,
        stats,
    }
}

/// The host path's o, lse and statistics for the same call.
fn host(
    device: &Device,
    f: &Fixture,
    options: &AttentionOptions,
    plan: Option<SplitPlan>,
) -> Outputs {
    let exec = device.executor().unwrap();
    let call = DecodeCall {
        plan,
        ..DecodeCall::default()
    };
    let out = paged_decode(exec, &f.paged(), options, &call).unwrap();
    let lse = match out.lse.data {
        quietattn::TensorData::F32(v) => v,
        other => panic!("lse is f32, got {other:?}"),
    };
    (out.o.data.as_bytes().to_vec(), lse, out.stats)
}

/// The device path's outputs equal the host path's bit for bit (statistics compared through
/// their exact `Debug` rendering, so NaN sums compare equal to themselves).
fn same_as_host(
    device: &Device,
    f: &Fixture,
    options: &AttentionOptions,
    plan: Option<SplitPlan>,
    label: &str,
) {
    let exec = device.executor().unwrap();
    let bytes = match plan {
        Some(plan) => need(f, plan, options.stats),
        None => workspace_bytes(&bounds(f, options.stats), 132).unwrap(),
    };
    let mut placed = Placed::new(exec, f, &f.table, bytes);
    let stats = placed
        .call(device, f, options, plan)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    placed
        .errors(exec)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let (o, lse, stats) = placed.outputs(exec, stats);
    let (host_o, host_lse, host_stats) = host(device, f, options, plan);
    assert!(o == host_o, "{label}: o differs from the host path");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&lse), bits(&host_lse), "{label}: lse");
    assert_eq!(
        stats.is_some(),
        options.stats,
        "{label}: statistics present"
    );
    assert_eq!(
        format!("{stats:?}"),
        format!("{host_stats:?}"),
        "{label}: statistics"
    );
}

#[test]
fn device_path_equals_the_host_path_bit_for_bit() {
    let device = common::emulator();
    for (n, norm) in Normaliser::all_defaults().into_iter().enumerate() {
        // Every normaliser once; splits 1 and 3 alternate, GQA 2:1 and 3:1 (q_len 4),
        // the window variant and statistics each on a share of the cases.
        let (page, q_len, heads) = if n % 2 == 0 {
            (16, 1, (4, 2))
        } else {
            (64, 4, (6, 2))
        };
        let f = Fixture::new(700 + n as u64, shape(DType::F32, page, q_len, heads));
        // The last one plans automatically in a workspace sized by `workspace_bytes`.
        let plan = match n {
            5 => None,
            _ if n % 2 == 0 => Some(SplitPlan {
                splits: 3,
                chunk: 48,
            }),
            _ => Some(SplitPlan {
                splits: 1,
                chunk: 0,
            }),
        };
        let options = covering_options(norm, n % 3, n >= 3);
        let label = format!(
            "{} {plan:?} heads {heads:?} stats {}",
            norm.name(),
            options.stats
        );
        same_as_host(&device, &f, &options, plan, &label);
    }
}

#[test]
fn device_path_with_statistics_and_a_split_under_a_window_equals_the_host_path() {
    let device = common::emulator();
    let f = Fixture::new(720, shape(DType::BF16, 16, 1, (6, 2)));
    let plan = SplitPlan {
        splits: 9,
        chunk: 16,
    };
    // both chunk-kernel families (Auto takes the tensor-core one for bf16 on the emulator)
    for family in [KernelChoice::CudaCore, KernelChoice::TensorCore] {
        let options = AttentionOptions {
            kernel: family,
            ..covering_options(Normaliser::Softmax, 1, true)
        };
        let label = format!("{} bf16 window stats 9 splits", family.name());
        same_as_host(&device, &f, &options, Some(plan), &label);
    }
}

#[test]
fn wrong_layouts_are_errors_before_any_launch() {
    let device = common::emulator();
    let exec = device.executor().unwrap();
    let f = Fixture::new(730, shape(DType::F32, 16, 1, (4, 2)));
    let options = AttentionOptions::default();
    let plan = SplitPlan {
        splits: 3,
        chunk: 48,
    };
    let cache = f.k_cache.shape.clone();
    // The V cache in another dtype than K, and the K bytes regrouped into pages of 48 keys (not
    // a power of two).
    let v16 = exec
        .upload(&vec![0u8; cache.iter().product::<usize>() * 2])
        .unwrap();
    let k = exec.upload(f.k_cache.data.as_bytes()).unwrap();
    let odd = [cache[0] / 3, 48, cache[2], cache[3]];
    let mut placed = Placed::new(exec, &f, &f.table, need(&f, plan, false));
    for case in 0..4 {
        let (mut args, workspace) = placed.args(&f, None, Some(plan));
        let (what, want) = match case {
            0 => {
                args.v_cache = DeviceTensor::from_buffer(&v16, DType::F16, &cache).unwrap();
                ("dtype mismatch", "share one dtype")
            }
            1 => {
                args.k_cache = DeviceTensor::from_buffer(&k, DType::F32, &odd).unwrap();
                args.v_cache = DeviceTensor::from_buffer(&k, DType::F32, &odd).unwrap();
                ("page size 48", "power of two")
            }
            2 => {
                args.max_seqlen_k = args.max_pages * 16 + 1;
                ("table too narrow", "block-table row maps")
            }
            _ => {
                args.max_pages += 1; // the uploaded table holds fewer rows of that width
                ("table shorter than batch × max_pages", "block_table holds")
            }
        };
        match paged_decode_device(&device, &args, &options, &workspace) {
            Err(e) => assert!(e.to_string().contains(want), "{what}: {e}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
    let (o, lse, _) = placed.outputs(exec, None);
    assert!(
        o.iter().all(|&b| b == 0) && lse.iter().all(|&x| x == 0.0),
        "a launch ran"
    );
    // The workspace one float short of the plan: refused, nothing written.
    let short = need(&f, plan, false) - 4;
    let mut small = Placed::new(exec, &f, &f.table, short);
    match small.call(&device, &f, &options, Some(plan)) {
        Err(Error::InvalidOption(m)) => assert!(m.contains("workspace"), "{m}"),
        other => panic!("small workspace: {other:?}"),
    }
    let (o, lse, _) = small.outputs(exec, None);
    assert!(
        o.iter().all(|&b| b == 0) && lse.iter().all(|&x| x == 0.0),
        "a launch ran"
    );
}

#[test]
fn a_bad_device_side_table_entry_is_reported_by_the_error_record() {
    let f = Fixture::new(740, shape(DType::F32, 16, 1, (2, 1)));
    let options = AttentionOptions::default();
    for device in common::devices("decode bad device-side table entry") {
        let exec = device.executor().unwrap();
        for plan in [
            SplitPlan {
                splits: 1,
                chunk: 0,
            },
            SplitPlan {
                splits: 3,
                chunk: 48,
            },
        ] {
            let mut table = f.table.clone();
            table[4 * f.max_pages + 2] = -7; // a page the 70-key sequence (row 4) reads
            let mut placed = Placed::new(exec, &f, &table, need(&f, plan, false));
            // Nothing host-side saw the table: the call itself succeeds.
            placed.call(&device, &f, &options, Some(plan)).unwrap();
            match placed.errors(exec) {
                Err(Error::Index(m)) => assert!(m.contains("block_table[4, 2] = -7"), "{m}"),
                other => panic!("{plan:?}: expected the index error, got {other:?}"),
            }
        }
    }
}

#[test]
fn device_path_on_a_gpu_equals_its_host_path() {
    let Some(device) = quietattn::testing::cuda_or_skip("decode device path on GPU") else {
        return;
    };
    // Without statistics: float atomics make GPU statistics order-dependent. Both chunk-kernel
    // families.
    let f = Fixture::new(750, shape(DType::BF16, 16, 1, (4, 2)));
    for (norm, family) in Normaliser::all_defaults()
        .into_iter()
        .flat_map(|n| [(n, KernelChoice::CudaCore), (n, KernelChoice::TensorCore)])
    {
        let options = AttentionOptions {
            kernel: family,
            ..covering_options(norm, 0, false)
        };
        for plan in [
            None,
            Some(SplitPlan {
                splits: 3,
                chunk: 48,
            }),
        ] {
            let label = format!("GPU {} {}", family.name(), norm.name());
            same_as_host(&device, &f, &options, plan, &label);
        }
    }
}

#[test]
fn varlen_queries_on_the_device_path_equal_the_host_path() {
    // Ragged q lengths (Q_LENS: 0, 1 and more rows than keys) with cu_seqlens_q in device
    // memory: every normaliser, splits 3 / 1 / automatic, GQA 2:1 and 3:1, statistics on half.
    let device = common::emulator();
    for (n, norm) in Normaliser::all_defaults().into_iter().enumerate() {
        let heads = if n % 2 == 0 { (4, 2) } else { (6, 2) };
        let f = Fixture::varlen(740 + n as u64, shape(DType::F32, 16, 4, heads), &Q_LENS);
        let plan = match n % 3 {
            0 => Some(SplitPlan {
                splits: 3,
                chunk: 48,
            }),
            1 => Some(SplitPlan {
                splits: 1,
                chunk: 0,
            }),
            _ => None,
        };
        let options = covering_options(norm, n % 3, n % 2 == 1);
        let label = format!("varlen {} {plan:?} stats {}", norm.name(), options.stats);
        same_as_host(&device, &f, &options, plan, &label);
    }
}

#[test]
fn bad_device_cu_seqlens_q_is_the_error_record_and_nothing_else_is_read() {
    // Offsets only the device holds: decreasing, beyond the rows of q, a sequence longer than
    // the declared max_seqlen_q. The call succeeds; the record names the first bad offset.
    let f = Fixture::varlen(760, shape(DType::F32, 16, 4, (4, 2)), &Q_LENS);
    let total = f.total_q() as i32;
    let good = f.cu_q.clone().unwrap(); // [0, 2, 5, 5, 6, 10, 11]
    // each breaks one sequence only (the first record wins, in any block order)
    let cases = [
        (3, 4, "cu_seqlens_q[3] = 4"),
        (6, total + 1, "cu_seqlens_q[6] = 12"),
        // sequence 3 now holds no row, sequence 4 rows 5..10: 5 > max_seqlen_q 4
        (4, 5, "cu_seqlens_q[5] = 10"),
    ];
    for device in common::devices("decode bad device-side cu_seqlens_q") {
        let exec = device.executor().unwrap();
        for splits in [1, 3] {
            let plan = SplitPlan { splits, chunk: 48 };
            for (at, value, want) in cases {
                let mut cu = good.clone();
                cu[at] = value;
                let mut placed = Placed::new(exec, &f, &f.table, need(&f, plan, false));
                placed.cu_q = Some(upload(exec, bytemuck::cast_slice(&cu)));
                placed
                    .call(&device, &f, &AttentionOptions::default(), Some(plan))
                    .unwrap();
                match placed.errors(exec) {
                    Err(Error::Index(m)) => assert!(m.contains(want), "{m}"),
                    other => {
                        panic!("cu_seqlens_q[{at}] = {value}: expected the record, got {other:?}")
                    }
                }
            }
        }
    }
}
