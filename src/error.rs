//! The one error type of the crate: every bad input and every device failure ends here.

/// Everything that can go wrong in quietattn. Bad input never panics; it returns one of these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor's shape or strides do not fit what the operation needs.
    #[error("shape error: {0}")]
    Shape(String),
    /// An option or parameter is out of its domain (window, softcap, clip bounds, ...).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A head dimension, dtype or combination the kernels do not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An index stored in an input (a page of a block table, a cache slot) points outside
    /// what it indexes.
    #[error("index out of range: {0}")]
    Index(String),
    /// A length or offset does not fit the index types the kernels use.
    #[error("size overflow: {0}")]
    Overflow(String),
    /// The crate was built without nvcc, so there is no PTX to load.
    #[error(
        "CUDA kernels were not built: nvcc was not found when quietattn was compiled. Install it \
         (e.g. `python3 -m venv ~/.cache/quietattn/nvcc && ~/.cache/quietattn/nvcc/bin/pip install \
         \"nvidia-cuda-nvcc==13.0.*\" \"nvidia-nvvm==13.0.*\" \"nvidia-cuda-crt==13.0.*\" \
         \"nvidia-cuda-runtime==13.0.*\" \"nvidia-cuda-cccl==13.0.*\"`), point NVCC at its \
         bin/nvcc, and rebuild"
    )]
    KernelsNotBuilt,
    /// No CUDA driver library could be loaded, or it reports no device.
    #[error("no CUDA device: {0}")]
    NoDevice(String),
    /// A CUDA driver call failed (out of memory, launch failure, ...).
    #[error("CUDA driver error in {context}: {message}")]
    Driver {
        /// What quietattn was doing.
        context: String,
        /// What the driver said.
        message: String,
    },
    /// `quietattn check` found kernels that disagree with the reference or could not run.
    #[error("check failed: {mismatches} mismatch(es) and {errors} error(s) in {total} cases")]
    CheckFailed {
        /// Cases whose results were out of tolerance.
        mismatches: usize,
        /// Cases that could not run.
        errors: usize,
        /// Cases run.
        total: usize,
    },
    /// The crate was built without the `emulator` feature.
    #[error("the SIMT emulator is not compiled in (enable the `emulator` feature)")]
    EmulatorNotBuilt,
    /// A kernel broke the execution model inside the emulator (divergent barrier, bad shuffle, ...).
    #[error("emulated kernel failed: {0}")]
    Emulator(String),
    /// The requested kernel name is not in the embedded PTX / emulator registry.
    #[error("unknown kernel `{0}`")]
    UnknownKernel(String),
    /// Reading or writing a tensor file.
    #[error("tensor file {path}: {message}")]
    TensorFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// Reading or writing a file other than through its tensor contents (type, size, paths
    /// that alias, a failed write).
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Non-finite values, or values outside the range the kernels promise, where the caller
    /// asked for them to be errors.
    #[error("numeric range: {0}")]
    Numeric(String),
    /// I/O with no file to name. The crate's own file and folder operations report
    /// [`Error::File`] or [`Error::TensorFile`], which name the path; this variant is what an
    /// `io::Error` converts into through `?`.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for building a [`Error::Shape`] from `format!` arguments.
macro_rules! shape_err {
    ($($arg:tt)*) => { $crate::error::Error::Shape(format!($($arg)*)) };
}
pub(crate) use shape_err;
