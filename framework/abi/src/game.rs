//! Game plugins: one game family each.

use crate::{guard::guarded, types::*, PluginError};
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RBoxError, RResult, RStr},
    StableAbi,
};

/// What a game plugin author implements (plain Rust; the export macro does the FFI).
pub trait GamePlugin: Send + Sync + 'static {
    /// The game's name, options and variants.
    fn info(&self) -> GameInfo;
    /// Reads a data set into episodes of decision points.
    fn load(&self, request: &LoadRequest) -> Result<LoadedData, PluginError>;
    /// Renders one decision point in one prompt variant.
    fn render(&self, point: &DecisionPoint, variant: &str) -> Result<Prompt, PluginError>;
}

/// The game interface as seen across the ABI.
#[sabi_trait]
pub trait Game: Send + Sync {
    /// See [`GamePlugin::info`].
    fn info(&self) -> RResult<GameInfo, RBoxError>;
    /// See [`GamePlugin::load`].
    fn load(&self, request: &LoadRequest) -> RResult<LoadedData, RBoxError>;
    /// See [`GamePlugin::render`].
    #[sabi(last_prefix_field)]
    fn render(&self, point: &DecisionPoint, variant: RStr<'_>) -> RResult<Prompt, RBoxError>;
}

/// A boxed game trait object, as returned by a game library.
pub type GameBox = Game_TO<'static, RBox<()>>;

/// The root module a game library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = GameModuleRef)))]
#[sabi(missing_field(panic))]
pub struct GameModule {
    /// The [`crate::ABI_VERSION`] the plugin was built against.
    pub abi_version: u32,
    /// Creates the game.
    #[sabi(last_prefix_field)]
    pub new: extern "C" fn() -> RResult<GameBox, RBoxError>,
}

impl RootModule for GameModuleRef {
    declare_root_module_statics! {GameModuleRef}
    const BASE_NAME: &'static str = crate::root_names::GAME;
    const NAME: &'static str = crate::root_names::GAME;
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Wraps a [`GamePlugin`] so that every call is panic-safe and errors name the plugin.
pub struct GuardedGame<T> {
    inner: T,
    name: String,
}

impl<T: GamePlugin> Game for GuardedGame<T> {
    fn info(&self) -> RResult<GameInfo, RBoxError> {
        guarded(&self.name, "info", || Ok(self.inner.info()))
    }
    fn load(&self, request: &LoadRequest) -> RResult<LoadedData, RBoxError> {
        guarded(&self.name, "load", || self.inner.load(request))
    }
    fn render(&self, point: &DecisionPoint, variant: RStr<'_>) -> RResult<Prompt, RBoxError> {
        guarded(&self.name, "render", || self.inner.render(point, variant.as_str()))
    }
}

/// Builds the boxed, guarded game; used by [`crate::export_game!`].
#[doc(hidden)]
pub fn new_guarded_game<T: GamePlugin>(
    crate_name: &str,
    make: impl FnOnce() -> T,
) -> RResult<GameBox, RBoxError> {
    guarded(crate_name, "new", || {
        let inner = make();
        let name = inner.info().plugin.name.into_string();
        Ok(Game_TO::from_value(GuardedGame { inner, name }, abi_stable::sabi_trait::TD_Opaque))
    })
}

/// Exports a game plugin: `descry_abi::export_game!(MyGame::default());`.
///
/// The plugin crate must be a `cdylib` and depend on `abi_stable` (the root-module
/// attribute refers to it by its absolute path).
#[macro_export]
macro_rules! export_game {
    ($make:expr) => {
        $crate::__export_game_with_abi!($make, $crate::ABI_VERSION);
    };
}

/// Like [`export_game!`] with an explicit ABI version; only for testing the host's version
/// check.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_game_with_abi {
    ($make:expr, $abi:expr) => {
        #[doc(hidden)]
        #[::abi_stable::export_root_module]
        pub fn descry_game_root_module() -> $crate::game::GameModuleRef {
            extern "C" fn new() -> ::abi_stable::std_types::RResult<
                $crate::game::GameBox,
                ::abi_stable::std_types::RBoxError,
            > {
                $crate::game::new_guarded_game(env!("CARGO_PKG_NAME"), || $make)
            }
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::game::GameModule { abi_version: $abi, new }.leak_into_prefix()
        }
    };
}
