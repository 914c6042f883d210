//! Panic containment for plugin entry points.

use abi_stable::std_types::{RBoxError, RResult};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The error type plugin authors return from their plain Rust trait methods.
pub type PluginError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Runs one plugin entry point, turning an `Err` into an `RBoxError` and a panic into an
/// error that names the plugin and the entry point. Unwinding must never cross the FFI
/// boundary: abi_stable would abort the whole host.
pub fn guarded<T>(
    plugin: &str,
    entry: &str,
    f: impl FnOnce() -> Result<T, PluginError>,
) -> RResult<T, RBoxError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => RResult::ROk(value),
        Ok(Err(error)) => RResult::RErr(RBoxError::from_box(error)),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string());
            RResult::RErr(RBoxError::from_fmt(&format_args!(
                "plugin '{plugin}' panicked in {entry}: {message}"
            )))
        }
    }
}
