//! One tensor-core attention launch by kernel name on hand-built parameters (softmax, f16,
//! one head, d64, contiguous), for kernels the library does not pick (seeded bugs), and the
//! reference's o for the same inputs.

use quietattn::abi::{self, QaAttnParams, QaTensorDesc};
use quietattn::launch::KernelRef;
use quietattn::ops::attention::plan;
use quietattn::{AttentionInputs, AttentionOptions, DType, Device, KernelChoice, Result, Tensor};

use super::{download, upload};

pub const D: usize = 64;

/// Inputs `[1, len, 1, 64]` in [-2, 2), rounded to f16.
fn input(len: usize, salt: usize) -> Tensor {
    let values: Vec<f64> = (0..len * D)
        .map(|i| ((i * 7919 + salt * 104_729) % 1009) as f64 / 1009.0 * 4.0 - 2.0)
        .collect();
    Tensor::from_f64(DType::F16, &values, &[1, len, 1, D]).expect("input tensor")
}

fn desc(addr: u64, len: usize) -> QaTensorDesc {
    let len = len as i64;
    let d = D as i64;
    QaTensorDesc {
        ptr: addr,
        stride_batch: len * d,
        stride_seq: d,
        stride_head: d,
        dtype: abi::QaDtype_QA_DTYPE_F16,
        reserved: 0,
    }
}

/// `module::name` on `sq` queries and `sk` keys: (kernel o, reference o), row-major.
pub fn run(
    dev: &Device,
    module: &'static str,
    name: &str,
    sq: usize,
    sk: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (q, k, v) = (input(sq, 1), input(sk, 2), input(sk, 3));
    let options = AttentionOptions::default();
    let want = quietattn::reference::attention(
        &AttentionInputs::new(q.view(), k.view(), v.view()),
        &options,
    )?;
    let (qb, kb, vb) = (
        upload(dev, q.data.as_bytes()),
        upload(dev, k.data.as_bytes()),
        upload(dev, v.data.as_bytes()),
    );
    let ob = upload(dev, &vec![0u16; sq * D]);
    let lse = upload(dev, &vec![0f32; sq.max(4)]);
    let p = QaAttnParams {
        q: desc(qb.addr(), sq),
        k: desc(kb.addr(), sk),
        v: desc(vb.addr(), sk),
        o: desc(ob.addr(), sq),
        lse: lse.addr(),
        lse_stride_batch: sq as i64,
        lse_stride_head: sq as i64,
        batch: 1,
        heads: 1,
        kv_heads: 1,
        head_dim: D as u32,
        seqlen_q: sq as u32,
        seqlen_k: sk as u32,
        window_left: -1,
        window_right: -1,
        scale: 1.0 / (D as f32).sqrt(),
        ..Default::default()
    };
    // The geometry of the production kernel with the same template arguments.
    let launch = plan(&p, KernelChoice::TensorCore, (8, 0))?;
    let kernel = KernelRef {
        module,
        name: name.to_string(),
    };
    dev.executor().expect("an executing device").launch(
        &kernel,
        abi::as_bytes(&p),
        &launch.geometry,
    )?;
    let o: Vec<u16> = download(dev, &ob, sq * D);
    let o = o
        .iter()
        .map(|&b| f64::from(half::f16::from_bits(b)))
        .collect();
    Ok((o, want.o))
}
