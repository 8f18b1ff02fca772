//! An engine's packed QKV projection in one buffer, read in place by three strided views.

use quietattn::ops::attention::{DeviceAttentionArgs, DeviceStats, DeviceTensor, attention_device};
use quietattn::{AttentionInputs, AttentionOptions, DType, Device, Tensor, TensorData};

use super::exec;

/// The packed `[b, s, (h + 2·kv)·d]` projection of an engine, read in place by three views.
pub struct Packed {
    pub data: TensorData,
    pub dims: (usize, usize, usize, usize, usize),
}

impl Packed {
    pub fn new(seed: usize) -> Self {
        let (b, s, h, kv, d) = (2, 24, 4, 2, 64);
        let width = (h + 2 * kv) * d;
        let values: Vec<f64> = (0..b * s * width)
            .map(|i| (((i + seed) * 7919 % 1013) as f64 / 1013.0 - 0.5) * 3.0)
            .collect();
        Packed {
            data: TensorData::from_f64(DType::BF16, &values),
            dims: (b, s, h, kv, d),
        }
    }

    /// `(shape, strides, offset)` of q, k, v.
    pub fn parts(&self) -> [(Vec<usize>, Vec<usize>, usize); 3] {
        let (b, s, h, kv, d) = self.dims;
        let width = (h + 2 * kv) * d;
        let part = |heads: usize, offset: usize| {
            (vec![b, s, heads, d], vec![s * width, width, d, 1], offset)
        };
        [part(h, 0), part(kv, h * d), part(kv, (h + kv) * d)]
    }

    pub fn inputs(&self) -> AttentionInputs<'_> {
        let [q, k, v] = self.parts().map(|(shape, strides, offset)| {
            quietattn::TensorView::new(self.data.as_ref(), &shape, &strides, offset)
                .expect("packed view fits")
        });
        AttentionInputs::new(q, k, v)
    }

    /// Runs the device path on one uploaded buffer, adding statistics to `stats` when given.
    pub fn run(
        &self,
        device: &Device,
        options: &AttentionOptions,
        stats: Option<&mut DeviceStats>,
    ) -> Tensor {
        let e = exec(device);
        let (b, s, h, _, d) = self.dims;
        let qkv = e.upload(self.data.as_bytes()).expect("upload");
        let mut o = Tensor::zeros(DType::BF16, &[b, s, h, d]).expect("o");
        let mut o_buf = e.alloc_zeroed(o.data.as_bytes().len()).expect("alloc");
        let mut lse_buf = e.alloc_zeroed(b * h * s * 4).expect("alloc");
        let [q, k, v] = self.parts().map(|(shape, strides, offset)| {
            DeviceTensor::from_buffer(&qkv, DType::BF16, &[self.data.len()])
                .and_then(|t| t.strided(&shape, &strides, offset))
                .expect("packed descriptor fits")
        });
        let mut args = DeviceAttentionArgs::new(
            q,
            k,
            v,
            DeviceTensor::from_buffer_mut(&mut o_buf, DType::BF16, &[b, s, h, d]).expect("o"),
            DeviceTensor::from_buffer_mut(&mut lse_buf, DType::F32, &[b, h, s]).expect("lse"),
        );
        args.stats = stats.map(DeviceStats::target);
        attention_device(device, &args, options).expect("packed attention");
        drop(args);
        e.download(&o_buf, o.data.as_bytes_mut()).expect("download");
        o
    }
}
