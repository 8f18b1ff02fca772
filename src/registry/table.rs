//! The one table of what is instantiated: normalisers × kernel families. `build.rs` reads it
//! (through `#[path]`) to generate one instantiation unit per (family, normaliser) under
//! `OUT_DIR/generated/<folder>/<module>.cu`; the host reads it to name modules and kernels and
//! to say what a family serves. Plain data only: the build script compiles this file on its own.
//!
//! Adding a normaliser is a row in [`NORMALISERS`] (its policy in
//! `kernels/attention/variant.cuh`, its ABI value in `kernels/abi.h`); adding a family is a row
//! in [`FAMILIES`] (its folder's `kernel.cuh` defines the instantiation macro).

/// A normaliser: a compile-time policy in the kernels, an ABI value on the host.
#[derive(Debug)]
pub struct NormaliserRow {
    /// Its name in module and kernel names (`off_by_one`).
    pub stem: &'static str,
    /// Its value in `enum QaNormaliser` (`kernels/abi.h`).
    pub abi: u32,
    /// The C++ policy type (`kernels/attention/variant.cuh`).
    pub policy: &'static str,
    /// Passes over the keys: 2 where the weights need the row's final lse (clipped). The
    /// generated units assert it equals the policy's `kPasses`.
    pub passes: u32,
}

/// An element type a family is instantiated for.
#[derive(Debug, PartialEq)]
pub struct DtypeRow {
    /// Its name in kernel names (`bf16`).
    pub stem: &'static str,
    /// Its value in `enum QaDtype` (`kernels/abi.h`).
    pub abi: u32,
    /// The C++ element type.
    pub cpp: &'static str,
}

/// f32 inputs.
pub const F32: DtypeRow = DtypeRow {
    stem: "f32",
    abi: 0,
    cpp: "float",
};
/// f16 inputs.
pub const F16: DtypeRow = DtypeRow {
    stem: "f16",
    abi: 1,
    cpp: "qa::f16",
};
/// bf16 inputs.
pub const BF16: DtypeRow = DtypeRow {
    stem: "bf16",
    abi: 2,
    cpp: "qa::bf16",
};

/// A kernel family: one folder `kernels/<folder>/` whose `kernel.cuh` defines `instantiate`.
#[derive(Debug)]
pub struct FamilyRow {
    /// Its folder under `kernels/`, and its id on the host.
    pub folder: &'static str,
    /// What it computes, for the generated units' header comment.
    pub summary: &'static str,
    /// Module names are `<module_prefix>_<normaliser stem>`.
    pub module_prefix: &'static str,
    /// Kernel names are `<kernel_prefix>_<normaliser>_<dtype>_d<dim>[_stats]`.
    pub kernel_prefix: &'static str,
    /// The macro of `kernels/<folder>/kernel.cuh` taking (name, policy, element type, dim,
    /// statistics) that defines one kernel (decode's also defines its `_combine`).
    pub instantiate: &'static str,
    /// The virtual architecture it compiles for (`compute_75`), or one arch-specific target
    /// (`sm_90a`): the oldest device it serves.
    pub arch: &'static str,
    /// False for a family whose inline PTX has no emulated twin yet.
    pub emulate: bool,
    /// Element types, each with every head dim.
    pub dtypes: &'static [DtypeRow],
    /// Head dims it is instantiated at; a family that pads (`pads`) serves any multiple of 8
    /// up to the largest by the smallest instantiation at least as wide.
    pub dims: &'static [u32],
    /// True when a head dim between two instantiations runs zero-padded in the wider one.
    pub pads: bool,
}

/// Every normaliser, by ABI value.
pub const NORMALISERS: &[NormaliserRow] = &[
    NormaliserRow {
        stem: "softmax",
        abi: 0,
        policy: "qa::attn::Softmax",
        passes: 1,
    },
    NormaliserRow {
        stem: "off_by_one",
        abi: 1,
        policy: "qa::attn::OffByOne",
        passes: 1,
    },
    NormaliserRow {
        stem: "sink",
        abi: 2,
        policy: "qa::attn::Sink",
        passes: 1,
    },
    NormaliserRow {
        stem: "clipped",
        abi: 3,
        policy: "qa::attn::Clipped",
        passes: 2,
    },
    NormaliserRow {
        stem: "softpick",
        abi: 4,
        policy: "qa::attn::Softpick",
        passes: 1,
    },
    NormaliserRow {
        stem: "sigmoid",
        abi: 5,
        policy: "qa::attn::Sigmoid",
        passes: 1,
    },
];

/// Every attention family; each is instantiated for every normaliser.
pub const FAMILIES: &[FamilyRow] = &[
    FamilyRow {
        folder: "cuda_core",
        summary: "flash attention on CUDA cores",
        module_prefix: "attn",
        kernel_prefix: "qa_attn",
        instantiate: "QA_ATTN_KERNEL",
        arch: "compute_75",
        emulate: true,
        dtypes: &[F32, F16, BF16],
        dims: &[64, 128, 256],
        pads: true,
    },
    FamilyRow {
        folder: "tensor_core",
        summary: "flash attention on tensor cores",
        module_prefix: "tc",
        kernel_prefix: "qa_tc",
        instantiate: "QA_TC_KERNEL",
        arch: "compute_80",
        emulate: true,
        dtypes: &[F16, BF16],
        dims: &[32, 64, 96, 128, 192, 256],
        pads: false,
    },
    FamilyRow {
        folder: "decode",
        summary: "decode against a paged KV cache on CUDA cores: the split-KV chunk and the \
                  combine every decode family shares",
        module_prefix: "decode",
        kernel_prefix: "qa_decode",
        instantiate: "QA_DECODE_KERNEL",
        arch: "compute_75",
        emulate: true,
        dtypes: &[F32, F16, BF16],
        dims: &[64, 128, 256],
        pads: true,
    },
    FamilyRow {
        folder: "decode_tc",
        summary: "decode against a paged KV cache on tensor cores: the split-KV chunk (its \
                  combine is the decode family's)",
        module_prefix: "decode_tc",
        kernel_prefix: "qa_decode_tc",
        instantiate: "QA_DECODE_TC_KERNEL",
        arch: "compute_80",
        emulate: true,
        dtypes: &[F16, BF16],
        // Not 256: there the O accumulator (16 rows x 256 channels per warp, 128 floats per
        // lane) spills on sm_80 and sm_90 (ptxas: 36-52 bytes, 272 with statistics); the
        // decode family serves head dims above 128.
        dims: &[64, 128],
        pads: true,
    },
];
