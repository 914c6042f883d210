//! The shape of a game plugin, written once: its prompt variants as an enum
//! ([`variants!`](crate::variants)), the [`Game`] trait that says what is specific to the
//! game, and [`plugin!`](crate::plugin), which turns a [`Game`] into the plugin the host
//! loads (`descry_abi::game::GamePlugin` and the exported root module).
//!
//! Variant names are strings across the ABI; a plugin parses them into its enum at the
//! edge ([`Variant::parse`]), so that every `match` on a variant inside the game is
//! exhaustive and a new variant cannot fall into another one's arm.

use crate::{
    json::{context, parse_params},
    options::{plugin_info, VariantSpec},
    KitError,
};
use abi_stable::std_types::RVec;
use descry_abi::types::{
    DecisionOption, DecisionPoint, GameInfo, LoadRequest, LoadedData, Prompt, PromptVariant,
};
use serde::de::DeserializeOwned;
use std::path::Path;

/// A game's prompt variants: a field-less enum, declared with [`variants!`](crate::variants).
pub trait Variant: Copy + Eq + std::fmt::Debug + 'static {
    /// Every variant, in declaration order (the first is the default).
    const ALL: &'static [Self];

    /// The variant's name, description and transcript property.
    fn spec(self) -> VariantSpec;

    /// The name the config refers to.
    fn name(self) -> &'static str {
        self.spec().name
    }

    /// The variant named `name`, or an error for decision point `point` listing the
    /// variants there are.
    fn parse(point: &str, name: &str) -> Result<Self, KitError> {
        Self::ALL.iter().copied().find(|v| v.name() == name).ok_or_else(|| KitError::Render {
            point: point.to_string(),
            message: format!(
                "unknown prompt variant `{name}`; this game has: {}",
                Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// The ABI list of the variants, in declaration order.
    fn abi() -> RVec<PromptVariant> {
        Self::ALL.iter().map(|v| v.spec().to_abi()).collect()
    }
}

/// Declares a game's prompt variants as an enum implementing [`Variant`]: each variant with
/// its config name, whether it is a transcript (see [`crate::transcript`]) and its
/// description (also the variant's doc comment). The first is the default.
///
/// ```
/// descry_game_kit::variants! {
///     /// The prompt variants.
///     pub enum Variant {
///         Native = "native", transcript: false,
///             "Rules in the system message, the offer in the user message.";
///         Predict = "predict", transcript: false,
///             "Observer framing: predict the responder's answer.";
///     }
/// }
/// use descry_game_kit::game::Variant as _;
/// assert_eq!(Variant::parse("p1", "predict").unwrap(), Variant::Predict);
/// assert_eq!(Variant::ALL[0].name(), "native");
/// ```
#[macro_export]
macro_rules! variants {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $variant:ident = $spelling:literal, transcript: $transcript:literal,
                    $description:literal;
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $(
                #[doc = $description]
                $variant,
            )+
        }

        impl $crate::game::Variant for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];

            fn spec(self) -> $crate::options::VariantSpec {
                match self {
                    $(
                        $name::$variant => $crate::options::VariantSpec {
                            name: $spelling,
                            description: $description,
                            transcript: $transcript,
                        },
                    )+
                }
            }
        }
    };
}

/// What a game plugin is, beyond the boilerplate: its declaration, how it loads a data set
/// and how it renders one decision point's context in one variant. [`plugin!`](crate::plugin)
/// writes the rest.
pub trait Game {
    /// The plugin's name, also its analysis family (`GameInfo.family`).
    const NAME: &'static str;
    /// One line on what the plugin reads and predicts.
    const DESCRIPTION: &'static str;
    /// Whether an episode may hold more than one decision.
    const MULTI_ROUND: bool;
    /// The option whose rate the human outcome gives.
    const TARGET_OPTION: &'static str;
    /// The load parameters (`#[serde(deny_unknown_fields)]`; [`NoParams`] for none).
    type Params: DeserializeOwned + Default;
    /// The prompt variants ([`variants!`](crate::variants)).
    type Variant: Variant;
    /// What a decision point stores in `context_json` for rendering.
    type Context: DeserializeOwned;

    /// The decision options with their surface forms ([`crate::options::option`]).
    fn options() -> Vec<DecisionOption>;

    /// Reads the data set at `path`.
    fn load(path: &Path, params: Self::Params) -> Result<LoadedData, KitError>;

    /// The prompt of a decision point, from its context, in one variant.
    fn prompt(context: &Self::Context, variant: Self::Variant) -> Prompt;

    /// The game's info; `version` is the plugin crate's version.
    fn info(version: &str) -> GameInfo {
        GameInfo {
            plugin: plugin_info(Self::NAME, version, Self::DESCRIPTION),
            family: Self::NAME.into(),
            multi_round: Self::MULTI_ROUND,
            options: Self::options().into(),
            target_option: Self::TARGET_OPTION.into(),
            variants: Self::Variant::abi(),
        }
    }

    /// Parses a load request's parameters (errors name the parameter) and loads its path.
    fn load_request(request: &LoadRequest) -> Result<LoadedData, KitError> {
        let params = parse_params(Self::NAME, request.params_json.as_str())?;
        Self::load(Path::new(request.path.as_str()), params)
    }

    /// Renders a decision point made by [`Game::load`] in the variant named `variant`.
    fn render(point: &DecisionPoint, variant: &str) -> Result<Prompt, KitError> {
        let variant = Self::Variant::parse(point.id.as_str(), variant)?;
        let context: Self::Context = context(point)?;
        Ok(Self::prompt(&context, variant))
    }
}

/// The parameters of a game that takes none: `{}` (or nothing); any key is an error.
#[derive(Debug, Default, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Makes a unit struct implementing [`Game`] the plugin the host loads: implements
/// `descry_abi::game::GamePlugin` by [`Game::info`] (with the calling crate's version),
/// [`Game::load_request`] and [`Game::render`], and exports the root module
/// (`descry_abi::export_game!`). The calling crate needs `abi_stable` as a dependency.
#[macro_export]
macro_rules! plugin {
    ($game:ident) => {
        impl $crate::__private::GamePlugin for $game {
            fn info(&self) -> $crate::__private::GameInfo {
                <$game as $crate::game::Game>::info(env!("CARGO_PKG_VERSION"))
            }

            fn load(
                &self,
                request: &$crate::__private::LoadRequest,
            ) -> Result<$crate::__private::LoadedData, $crate::__private::PluginError> {
                Ok(<$game as $crate::game::Game>::load_request(request)?)
            }

            fn render(
                &self,
                point: &$crate::__private::DecisionPoint,
                variant: &str,
            ) -> Result<$crate::__private::Prompt, $crate::__private::PluginError> {
                Ok(<$game as $crate::game::Game>::render(point, variant)?)
            }
        }

        /// The exported root module (the export macro's items carry no docs of their own).
        mod export {
            use super::$game;
            $crate::__private::descry_abi::export_game!($game);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::variants! {
        /// Two variants.
        enum Two {
            First = "first", transcript: false, "The first.";
            Second = "second", transcript: true, "The second.";
        }
    }

    #[test]
    fn variants_parse_by_name_and_list_in_order() {
        assert_eq!(Two::ALL, [Two::First, Two::Second]);
        assert_eq!(Two::parse("p", "second").unwrap(), Two::Second);
        assert!(Two::Second.spec().transcript && !Two::First.spec().transcript);
        let err = Two::parse("p-r3", "Second").unwrap_err().to_string();
        assert!(err.contains("p-r3"), "{err}");
        assert!(
            err.contains("unknown prompt variant `Second`; this game has: first, second"),
            "{err}"
        );
        let abi = Two::abi();
        let names: Vec<&str> = abi.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["first", "second"]);
        assert_eq!(abi[1].description.as_str(), "The second.");
    }
}
