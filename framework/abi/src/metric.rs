//! Metric plugins: one library exports a set of metrics.

use crate::{guard::guarded, types::*, PluginError};
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RBoxError, RResult, RVec},
    StableAbi,
};

/// What a metric author implements.
pub trait MetricPlugin: Send + Sync + 'static {
    /// Name, description, direction.
    fn info(&self) -> MetricInfo;
    /// Computes the metric. Degenerate input (empty, constant, NaN) returns an error or a
    /// documented NaN, never a panic.
    fn compute(&self, input: &MetricInput) -> Result<f64, PluginError>;
}

/// The metric interface as seen across the ABI.
#[sabi_trait]
pub trait Metric: Send + Sync {
    /// See [`MetricPlugin::info`].
    fn info(&self) -> RResult<MetricInfo, RBoxError>;
    /// See [`MetricPlugin::compute`].
    #[sabi(last_prefix_field)]
    fn compute(&self, input: &MetricInput) -> RResult<f64, RBoxError>;
}

/// A boxed metric trait object.
pub type MetricBox = Metric_TO<'static, RBox<()>>;

/// The root module a metrics library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = MetricsModuleRef)))]
#[sabi(missing_field(panic))]
pub struct MetricsModule {
    /// The [`crate::ABI_VERSION`] the plugin was built against.
    pub abi_version: u32,
    /// The library's name and version.
    pub info: extern "C" fn() -> PluginInfo,
    /// Creates every metric the library provides.
    #[sabi(last_prefix_field)]
    pub new: extern "C" fn() -> RResult<RVec<MetricBox>, RBoxError>,
}

impl RootModule for MetricsModuleRef {
    declare_root_module_statics! {MetricsModuleRef}
    const BASE_NAME: &'static str = crate::root_names::METRICS;
    const NAME: &'static str = crate::root_names::METRICS;
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Wraps a [`MetricPlugin`] so that every call is panic-safe and errors name the metric.
pub struct GuardedMetric {
    inner: Box<dyn MetricPlugin>,
    name: String,
}

impl Metric for GuardedMetric {
    fn info(&self) -> RResult<MetricInfo, RBoxError> {
        guarded(&self.name, "info", || Ok(self.inner.info()))
    }
    fn compute(&self, input: &MetricInput) -> RResult<f64, RBoxError> {
        guarded(&self.name, "compute", || self.inner.compute(input))
    }
}

/// Builds the boxed, guarded metrics; used by [`crate::export_metrics!`].
#[doc(hidden)]
pub fn new_guarded_metrics(
    crate_name: &str,
    make: impl FnOnce() -> Vec<Box<dyn MetricPlugin>>,
) -> RResult<RVec<MetricBox>, RBoxError> {
    guarded(crate_name, "new", || {
        Ok(make()
            .into_iter()
            .map(|inner| {
                let name = format!("{crate_name}/{}", inner.info().name);
                Metric_TO::from_value(
                    GuardedMetric { inner, name },
                    abi_stable::sabi_trait::TD_Opaque,
                )
            })
            .collect())
    })
}

/// Exports a metrics plugin:
/// `descry_abi::export_metrics!(info_expr, vec![Box::new(Pearson) as Box<dyn MetricPlugin>, ...]);`.
/// The crate must be a `cdylib` and depend on `abi_stable`.
#[macro_export]
macro_rules! export_metrics {
    ($info:expr, $make:expr) => {
        #[doc(hidden)]
        #[::abi_stable::export_root_module]
        pub fn descry_metrics_root_module() -> $crate::metric::MetricsModuleRef {
            extern "C" fn info() -> $crate::types::PluginInfo {
                $info
            }
            extern "C" fn new() -> ::abi_stable::std_types::RResult<
                ::abi_stable::std_types::RVec<$crate::metric::MetricBox>,
                ::abi_stable::std_types::RBoxError,
            > {
                $crate::metric::new_guarded_metrics(env!("CARGO_PKG_NAME"), || $make)
            }
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::metric::MetricsModule { abi_version: $crate::ABI_VERSION, info, new }
                .leak_into_prefix()
        }
    };
}
