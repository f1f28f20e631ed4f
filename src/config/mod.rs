//! Typed configuration, layered: `config/default.toml` (compiled in) < the file named by
//! `--config` / `PRESENCE_CONFIG` < environment (`PRESENCE_<KEY>`) < command-line flags
//! (`--<key-with-dashes>`).
//!
//! One table, [`SETTINGS`], names every setting once; the file key, the environment variable and
//! the flag are all derived from it, so they cannot drift apart. Every value is validated at
//! start-up, and a bad one is refused with a message naming the setting and where it came from.

use crate::auth::jwks::JwksSource;
use crate::domain::{Partitions, MAX_PARTITIONS};
use crate::store::redis::{RedisSettings, Target};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

mod layers;
mod settings;
#[cfg(test)]
mod tests;

pub use settings::{env_name, flag_name, SETTINGS};

use layers::{Source, Values};

/// The compiled-in defaults: the same file that ships as `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// A value that must not appear in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// May carry a password, hence secret.
    pub url: Secret,
    pub settings: RedisSettings,
}

#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub retry_schedule: Vec<Duration>,
    pub timeout: Duration,
    pub allow_private: bool,
}

/// `jwt_jwks`: where the key set is, and which layer said so. The set itself is read by
/// `App::build` (a URL needs the async runtime); a failure there is still a configuration error,
/// reported through [`JwksSetting::error`] like every other bad value.
#[derive(Clone, Debug)]
pub struct JwksSetting {
    pub source: JwksSource,
    origin: String,
}

impl JwksSetting {
    /// A configuration error about this setting: `problem` says what went wrong.
    pub fn error(&self, problem: &str) -> ConfigError {
        Self::refused(&self.origin, &self.source.to_string(), problem)
    }

    /// The one message of a refused `jwt_jwks`, whether its text does not parse or the set it
    /// names cannot be used.
    fn refused(origin: &str, shown: &str, problem: &str) -> ConfigError {
        ConfigError(format!(
            "setting `jwt_jwks` (from {origin}) = {shown:?}: {problem}"
        ))
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub redis: Option<RedisConfig>,
    pub jwt_secret: Option<Secret>,
    pub jwt_jwks: Option<JwksSetting>,
    pub jwt_ttl: Duration,
    pub node_id: String,
    pub offline_grace: Duration,
    pub node_ttl: Duration,
    pub heartbeat: Duration,
    pub webhook: WebhookConfig,
    pub max_connections_per_user: u32,
    pub max_connections: usize,
    /// Time a connection has to send a complete request head (from its accept, or from the end
    /// of the previous response).
    pub http_header_timeout: Duration,
    /// A sign-up without `invite_token` still converts its email's pending invitations.
    pub signup_claims_invitations: bool,
    /// Events kept in the log; a resume point older than that gets a resync snapshot.
    pub event_retention: usize,
    pub log_format: LogFormat,
    pub log_level: String,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// The raw sources, before layering.
#[derive(Debug, Default)]
pub struct Layers {
    /// Contents and path of the `--config` / `PRESENCE_CONFIG` file.
    pub file: Option<(String, String)>,
    /// `PRESENCE_*` environment variables.
    pub env: BTreeMap<String, String>,
    /// `--key value` flags, by setting key.
    pub flags: BTreeMap<String, String>,
}

impl Config {
    /// Layers the sources and validates the result.
    pub fn load(layers: &Layers) -> Result<Self, ConfigError> {
        let mut values = Values::default();
        values.merge_toml(DEFAULT_TOML, Source::Defaults)?;
        if let Some((path, text)) = &layers.file {
            values.merge_toml(text, Source::File(path.clone()))?;
        }
        for (key, _) in SETTINGS {
            if let Some(v) = layers.env.get(&env_name(key)) {
                values.set(
                    key,
                    toml::Value::String(v.clone()),
                    Source::Env(env_name(key)),
                );
            }
            if let Some(v) = layers.flags.get(*key) {
                values.set(
                    key,
                    toml::Value::String(v.clone()),
                    Source::Flag(flag_name(key)),
                );
            }
        }
        values.build()
    }

    /// Defaults plus `overrides` (setting key → value), as if given by flags. For tests and tools.
    pub fn with_overrides<'a>(
        overrides: impl IntoIterator<Item = (&'a str, String)>,
    ) -> Result<Self, ConfigError> {
        let flags = overrides
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Self::load(&Layers {
            flags,
            ..Default::default()
        })
    }
}
