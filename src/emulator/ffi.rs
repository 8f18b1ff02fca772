//! The C interface of the emulator runtime (kernels/emu/) and the generated module list.
use std::ffi::{CStr, c_char, c_void};

/// `qa_emu::KernelInfo`: one kernel of an emulated module.
#[repr(C)]
pub(crate) struct RawKernel {
    pub name: *const c_char,
    pub params_size: usize,
    pub max_threads: u32,
    pub entry: Option<unsafe extern "C" fn(*const c_void)>,
}

/// `qa_emu_module_<stem>`: writes the module's kernel table and returns its length.
pub(crate) type ModuleFn = unsafe extern "C" fn(*mut *const RawKernel) -> usize;

unsafe extern "C" {
    pub(crate) fn qa_emu_launch(
        kernel: *const RawKernel,
        params: *const c_void,
        params_len: usize,
        grid: *const u32,
        block: *const u32,
        dyn_smem: u32,
        timeout_s: f64,
        err: *mut c_char,
        err_cap: usize,
    ) -> i32;
}

include!(concat!(env!("OUT_DIR"), "/emu_modules.rs"));

/// True for a module built without the emulator (`// quietattn-emulate: no`).
pub(crate) fn is_not_emulated(module: &str) -> bool {
    NOT_EMULATED.contains(&module)
}

/// The kernels of emulated module `module`, or `None` when there is no such module.
pub(crate) fn module_kernels(module: &str) -> Option<&'static [RawKernel]> {
    let (_, table) = MODULES.iter().find(|(m, _)| *m == module)?;
    let mut ptr: *const RawKernel = std::ptr::null();
    // SAFETY: the generated function writes a pointer to a static table of `n` entries that
    // lives as long as the program.
    let n = unsafe { table(&mut ptr) };
    if ptr.is_null() || n == 0 {
        return Some(&[]);
    }
    // SAFETY: see above; the table is never modified after static initialisation.
    Some(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// The kernel's name as registered by `QA_KERNEL`.
pub(crate) fn kernel_name(k: &RawKernel) -> &str {
    // SAFETY: `name` is a string literal from the kernel source (`#name` in QA_KERNEL).
    unsafe { CStr::from_ptr(k.name) }.to_str().unwrap_or("")
}
