//! Driver errors as [`Error::Driver`] values (cudarc's `DriverError` is not a std error).

use cudarc::driver::DriverError;

use crate::error::Error;

/// A closure for `map_err` that records what quietattn was doing when the driver failed.
pub(crate) fn driver(context: impl Into<String>) -> impl FnOnce(DriverError) -> Error {
    let context = context.into();
    move |e| Error::Driver {
        context,
        message: format!("{e:?}"),
    }
}
