//! The CUDA device layer: error values without a GPU, memory and launches with one.

use quietattn::launch::{KernelRef, LaunchGeometry};
use quietattn::{Device, DeviceKind, Error, Tensor, TensorData, kernels};

/// The CUDA device, or `None` after printing why (a failure under QUIETATTN_REQUIRE_GPU=1).
fn gpu(test: &str) -> Option<Device> {
    quietattn::testing::cuda_or_skip(test)
}

#[test]
fn cuda_result_matches_what_is_missing() {
    let built = kernels::KERNELS_BUILT;
    match Device::cuda(0) {
        Ok(d) => {
            assert!(built, "a CUDA device opened without PTX");
            assert_eq!(d.kind(), DeviceKind::Cuda);
        }
        Err(Error::KernelsNotBuilt) => assert!(!built, "KernelsNotBuilt although PTX was built"),
        Err(Error::NoDevice(why)) => {
            assert!(!why.is_empty());
            let msg = Error::NoDevice(why.clone()).to_string();
            assert!(msg.starts_with("no CUDA device: "), "{msg}");
            assert!(
                why.contains("driver") || why.contains("device"),
                "the reason names neither the driver nor a device: {why}"
            );
        }
        Err(other) => panic!("unexpected error kind from Device::cuda: {other:?}"),
    }
}

#[test]
fn out_of_range_ordinal_is_no_device() {
    match Device::cuda(4096) {
        Err(Error::NoDevice(why)) => assert!(!why.is_empty()),
        Err(other) => panic!("expected NoDevice, got {other:?}"),
        Ok(d) => panic!("opened device 4096: {}", d.name()),
    }
}

#[test]
fn sm_count_is_a_value_never_a_panic() {
    // Without a driver (or for an ordinal the driver lacks) an error value; with a GPU its SMs.
    match quietattn::cuda::sm_count(4096) {
        Err(Error::NoDevice(why)) => assert!(!why.is_empty()),
        other => panic!("expected NoDevice for ordinal 4096, got {other:?}"),
    }
    match (quietattn::cuda::sm_count(0), Device::cuda(0)) {
        (Ok(n), Ok(d)) => assert_eq!(d.sm_count(), Some(n)),
        (Ok(n), Err(_)) => assert!(n > 0), // a GPU, but no kernels built
        (Err(Error::NoDevice(_)), _) => {}
        (Err(other), _) => panic!("expected NoDevice, got {other:?}"),
    }
    assert_eq!(Device::reference().sm_count(), None);
}

#[test]
fn alloc_zeroed_elems_sizes_by_dtype_and_refuses_overflow() {
    let Ok(device) = Device::emulator() else {
        return; // built without the emulator
    };
    let exec = device.executor().expect("the emulator runs kernels");
    let buf = exec
        .alloc_zeroed_elems(quietattn::DType::BF16, 5)
        .expect("10 bytes");
    assert_eq!(buf.len(), 10);
    match exec.alloc_zeroed_elems(quietattn::DType::F32, usize::MAX / 2) {
        Err(Error::Overflow(why)) => assert!(why.contains("elements"), "{why}"),
        Err(other) => panic!("expected Overflow, got {other:?}"),
        Ok(_) => panic!("allocated usize::MAX / 2 f32s"),
    }
}

#[test]
fn auto_falls_back_without_cuda() {
    let auto = Device::auto();
    if Device::cuda(0).is_ok() {
        assert_eq!(auto.kind(), DeviceKind::Cuda);
        return;
    }
    let expected = if cfg!(feature = "emulator") {
        DeviceKind::Emulator
    } else {
        DeviceKind::Reference
    };
    assert_eq!(auto.kind(), expected);
    assert!(Device::from_kind(DeviceKind::Cuda).is_err());
}

#[test]
fn name_reports_ordinal_and_arch() {
    let Some(dev) = gpu("name_reports_ordinal_and_arch") else {
        return;
    };
    let name = dev.name();
    assert!(name.starts_with("cuda:0 "), "{name}");
    assert!(name.contains("(sm_") && name.ends_with(')'), "{name}");
}

#[test]
fn memory_round_trip() {
    let Some(dev) = gpu("memory_round_trip") else {
        return;
    };
    let Some(exec) = dev.executor() else {
        panic!("a CUDA device without an executor");
    };
    let bytes: Vec<u8> = (0..10_007u32).map(|i| (i * 31 % 251) as u8).collect();
    let buf = exec.upload(&bytes).expect("upload");
    assert_eq!(buf.len(), bytes.len());
    assert_ne!(buf.addr(), 0);
    let mut back = vec![0u8; bytes.len()];
    exec.download(&buf, &mut back).expect("download");
    assert_eq!(back, bytes);
    // A prefix only.
    let mut head = vec![0u8; 17];
    exec.download(&buf, &mut head).expect("prefix download");
    assert_eq!(head, bytes[..17]);
    // Zeroed memory is zero; empty buffers work; over-long downloads are errors.
    let z = exec.alloc_zeroed(4096).expect("alloc");
    let mut zb = vec![0xAAu8; 4096];
    exec.download(&z, &mut zb).expect("download zeros");
    assert!(zb.iter().all(|&b| b == 0));
    let empty = exec.upload(&[]).expect("empty upload");
    assert!(empty.is_empty());
    let mut too_long = vec![0u8; bytes.len() + 1];
    assert!(exec.download(&buf, &mut too_long).is_err());
}

#[test]
fn launch_errors_are_values() {
    let Some(dev) = gpu("launch_errors_are_values") else {
        return;
    };
    let Some(exec) = dev.executor() else {
        panic!("a CUDA device without an executor");
    };
    let geometry = LaunchGeometry {
        grid: [1, 1, 1],
        block: [32, 8, 1],
        dynamic_smem: 0,
    };
    let params = [0u8; 64];
    let missing = KernelRef {
        module: "act_stats",
        name: "qa_no_such_kernel".into(),
    };
    assert!(matches!(
        exec.launch(&missing, &params, &geometry),
        Err(Error::UnknownKernel(_))
    ));
    let no_module = KernelRef {
        module: "no_such_module",
        name: "qa_act_stats_f32".into(),
    };
    assert!(matches!(
        exec.launch(&no_module, &params, &geometry),
        Err(Error::UnknownKernel(_))
    ));
    // The parameter struct of act_stats is not 3 bytes.
    let real = KernelRef {
        module: "act_stats",
        name: "qa_act_stats_f32".into(),
    };
    assert!(exec.launch(&real, &[0u8; 3], &geometry).is_err());
}

#[test]
fn act_stats_kernel_runs_on_gpu() {
    let Some(dev) = gpu("act_stats_kernel_runs_on_gpu") else {
        return;
    };
    // Every element k of a [64, 300] tensor is k - 9600: sums per channel and the absmax of each
    // row follow in closed form.
    let (t, c) = (64usize, 300usize);
    let values: Vec<f64> = (0..t * c).map(|k| k as f64 - 9600.0).collect();
    let x = Tensor::new(
        TensorData::from_f64(quietattn::DType::F32, &values),
        &[t, c],
    )
    .expect("tensor");
    let stats = quietattn::activation_stats(&dev, &x.view()).expect("kernel");
    for (ch, s) in stats.channels.iter().enumerate() {
        assert_eq!(s.count, t as u64);
        let expected: f64 = (0..t).map(|r| (r * c + ch) as f64 - 9600.0).sum();
        assert!(
            (s.sum - expected).abs() <= 1e-6 * expected.abs().max(1.0),
            "channel {ch}"
        );
    }
    for (r, &m) in stats.token_absmax.iter().enumerate() {
        let row = (r * c) as f64 - 9600.0;
        let expected = row.abs().max((row + (c - 1) as f64).abs());
        assert_eq!(m as f64, expected, "token {r}");
    }
    assert_eq!(stats.tensor.zeros, 1);
}
