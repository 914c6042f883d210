//! Backend plugins: inference engines that load a model and score token sequences.
//! Backends know nothing about games or text.

use crate::{guard::guarded, types::*, PluginError};
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RBoxError, RResult, RString, RVec},
    StableAbi,
};

/// What a backend plugin author implements.
pub trait BackendPlugin: Send + Sync + 'static {
    /// The model type this backend loads.
    type Model: ModelPlugin;
    /// Who the backend is and which model-folder artifacts it loads.
    fn info(&self) -> BackendInfo;
    /// Checks settings without loading anything: every problem, each with its key. The host
    /// calls it when a study is prepared, before any data is read, and reports the keys as
    /// config keys (`backend.threads`, `backend.<plugin>.KEY`). Unknown keys of the
    /// engine's own table are problems.
    fn check(&self, settings: &BackendSettings) -> Vec<SettingsProblem>;
    /// Loads a model folder with settings that [`BackendPlugin::check`] accepted.
    fn load(&self, request: &ModelLoadRequest) -> Result<Self::Model, PluginError>;
    /// Times square `n` × `n` f32 matrix multiplies through the engine, under the
    /// settings' device and threads: the engine's own arithmetic rate, which the benchmark
    /// compares a model's throughput with.
    fn matmul_rate(&self, settings: &BackendSettings, n: u32) -> Result<MatmulRate, PluginError>;
}

/// A loaded model.
pub trait ModelPlugin: Send + Sync + 'static {
    /// JSON describing the loaded model (architecture, vocabulary size, device, ...).
    fn describe(&self) -> String;
    /// Scores a batch of sequences.
    fn score(&self, request: &ScoreRequest) -> Result<ScoreResult, PluginError>;
}

/// The backend interface as seen across the ABI.
#[sabi_trait]
pub trait Backend: Send + Sync {
    /// See [`BackendPlugin::info`].
    fn info(&self) -> RResult<BackendInfo, RBoxError>;
    /// See [`BackendPlugin::check`].
    fn check(&self, settings: &BackendSettings) -> RResult<RVec<SettingsProblem>, RBoxError>;
    /// See [`BackendPlugin::load`].
    fn load(&self, request: &ModelLoadRequest) -> RResult<ModelBox, RBoxError>;
    /// See [`BackendPlugin::matmul_rate`].
    #[sabi(last_prefix_field)]
    fn matmul_rate(&self, settings: &BackendSettings, n: u32) -> RResult<MatmulRate, RBoxError>;
}

/// A loaded model as seen across the ABI.
#[sabi_trait]
pub trait Model: Send + Sync {
    /// See [`ModelPlugin::describe`].
    fn describe(&self) -> RResult<RString, RBoxError>;
    /// See [`ModelPlugin::score`].
    #[sabi(last_prefix_field)]
    fn score(&self, request: &ScoreRequest) -> RResult<ScoreResult, RBoxError>;
}

/// A boxed backend trait object.
pub type BackendBox = Backend_TO<'static, RBox<()>>;
/// A boxed model trait object.
pub type ModelBox = Model_TO<'static, RBox<()>>;

/// The root module a backend library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = BackendModuleRef)))]
#[sabi(missing_field(panic))]
pub struct BackendModule {
    /// The [`crate::ABI_VERSION`] the plugin was built against.
    pub abi_version: u32,
    /// Creates the backend.
    #[sabi(last_prefix_field)]
    pub new: extern "C" fn() -> RResult<BackendBox, RBoxError>,
}

impl RootModule for BackendModuleRef {
    declare_root_module_statics! {BackendModuleRef}
    const BASE_NAME: &'static str = crate::root_names::BACKEND;
    const NAME: &'static str = crate::root_names::BACKEND;
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Wraps a [`BackendPlugin`] so that every call is panic-safe and errors name the plugin.
pub struct GuardedBackend<T> {
    inner: T,
    name: String,
}

/// Wraps a [`ModelPlugin`] likewise.
pub struct GuardedModel<M> {
    inner: M,
    name: String,
}

impl<T: BackendPlugin> Backend for GuardedBackend<T> {
    fn info(&self) -> RResult<BackendInfo, RBoxError> {
        guarded(&self.name, "info", || Ok(self.inner.info()))
    }
    fn check(&self, settings: &BackendSettings) -> RResult<RVec<SettingsProblem>, RBoxError> {
        guarded(&self.name, "check", || Ok(RVec::from(self.inner.check(settings))))
    }
    fn load(&self, request: &ModelLoadRequest) -> RResult<ModelBox, RBoxError> {
        guarded(&self.name, "load", || {
            let inner = self.inner.load(request)?;
            let model = GuardedModel { inner, name: self.name.clone() };
            Ok(Model_TO::from_value(model, abi_stable::sabi_trait::TD_Opaque))
        })
    }
    fn matmul_rate(&self, settings: &BackendSettings, n: u32) -> RResult<MatmulRate, RBoxError> {
        guarded(&self.name, "matmul_rate", || self.inner.matmul_rate(settings, n))
    }
}

impl<M: ModelPlugin> Model for GuardedModel<M> {
    fn describe(&self) -> RResult<RString, RBoxError> {
        guarded(&self.name, "describe", || Ok(RString::from(self.inner.describe())))
    }
    fn score(&self, request: &ScoreRequest) -> RResult<ScoreResult, RBoxError> {
        guarded(&self.name, "score", || self.inner.score(request))
    }
}

/// Builds the boxed, guarded backend; used by [`crate::export_backend!`].
#[doc(hidden)]
pub fn new_guarded_backend<T: BackendPlugin>(
    crate_name: &str,
    make: impl FnOnce() -> T,
) -> RResult<BackendBox, RBoxError> {
    guarded(crate_name, "new", || {
        let inner = make();
        let name = inner.info().plugin.name.into_string();
        Ok(Backend_TO::from_value(
            GuardedBackend { inner, name },
            abi_stable::sabi_trait::TD_Opaque,
        ))
    })
}

/// Exports a backend plugin: `descry_abi::export_backend!(MyBackend::default());`.
/// The crate must be a `cdylib` and depend on `abi_stable`.
#[macro_export]
macro_rules! export_backend {
    ($make:expr) => {
        #[doc(hidden)]
        #[::abi_stable::export_root_module]
        pub fn descry_backend_root_module() -> $crate::backend::BackendModuleRef {
            extern "C" fn new() -> ::abi_stable::std_types::RResult<
                $crate::backend::BackendBox,
                ::abi_stable::std_types::RBoxError,
            > {
                $crate::backend::new_guarded_backend(env!("CARGO_PKG_NAME"), || $make)
            }
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::backend::BackendModule { abi_version: $crate::ABI_VERSION, new }
                .leak_into_prefix()
        }
    };
}
