//! Which kernel family serves a call: the one rule prefill and decode share.

use crate::error::{Error, Result};
use crate::variant::KernelChoice;

/// The family serving a call under `choice`. `families` lists every family of the operation in
/// order of preference, `name` gives the [`KernelChoice`] name that pins each, `supports` says
/// whether one serves the call (and why not). `Auto` takes the first that does, or fails with
/// every family's reason; a pinned family that cannot serve the call fails with its own.
pub(crate) fn choose<F: Copy>(
    choice: KernelChoice,
    families: &[F],
    name: impl Fn(F) -> &'static str,
    supports: impl Fn(F) -> Result<()>,
) -> Result<F> {
    if choice == KernelChoice::Auto {
        let mut why = Vec::new();
        for &family in families {
            match supports(family) {
                Ok(()) => return Ok(family),
                Err(e) => why.push(e.to_string()),
            }
        }
        return Err(Error::Unsupported(why.join("; ")));
    }
    let pinned = families
        .iter()
        .copied()
        .find(|&f| name(f) == choice.name())
        .ok_or_else(|| Error::Unsupported(format!("no {} kernels here", choice.name())))?;
    supports(pinned)?;
    Ok(pinned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(f: u8) -> &'static str {
        ["tensor-core", "cuda-core"][f as usize]
    }

    #[test]
    fn auto_keeps_every_reason_and_pinning_keeps_its_own() {
        let none = |f: u8| Err(Error::Unsupported(format!("{} says no", names(f))));
        let e = choose(KernelChoice::Auto, &[0, 1], names, none).unwrap_err();
        let (msg, tc, cc) = (e.to_string(), "tensor-core says no", "cuda-core says no");
        assert!(msg.contains(tc) && msg.find(tc) < msg.find(cc), "{msg}");
        let second = |f: u8| if f == 1 { Ok(()) } else { none(f) };
        assert_eq!(
            choose(KernelChoice::Auto, &[0, 1], names, second).unwrap(),
            1
        );
        let e = choose(KernelChoice::TensorCore, &[0, 1], names, second).unwrap_err();
        assert!(e.to_string().contains("tensor-core says no"), "{e}");
        assert_eq!(
            choose(KernelChoice::CudaCore, &[0, 1], names, second).unwrap(),
            1
        );
        assert!(choose(KernelChoice::CudaCore, &[0], names, second).is_err());
    }
}
