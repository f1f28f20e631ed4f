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

mod settings;
#[cfg(test)]
mod tests;

pub use settings::{env_name, flag_name, SETTINGS};

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

/// Where a value came from, for error messages.
#[derive(Clone, Debug)]
enum Source {
    Defaults,
    File(String),
    Env(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Defaults => f.write_str("config/default.toml"),
            Source::File(path) => write!(f, "config file {path}"),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::Flag(flag) => write!(f, "flag --{flag}"),
        }
    }
}

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

#[derive(Default)]
struct Values(BTreeMap<String, (toml::Value, Source)>);

impl Values {
    fn set(&mut self, key: &str, value: toml::Value, source: Source) {
        self.0.insert(key.to_string(), (value, source));
    }

    fn merge_toml(&mut self, text: &str, source: Source) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e| ConfigError(format!("{source} is not valid TOML: {e}")))?;
        for (key, value) in table {
            if !SETTINGS.iter().any(|(k, _)| *k == key) {
                return Err(ConfigError(format!("{source}: unknown setting `{key}`")));
            }
            self.set(&key, value, source.clone());
        }
        Ok(())
    }

    fn raw(&self, key: &str) -> Result<(String, &Source), ConfigError> {
        let (value, source) = self
            .0
            .get(key)
            .ok_or_else(|| ConfigError(format!("setting `{key}` is missing from the defaults")))?;
        let text = match value {
            toml::Value::String(s) => s.trim().to_string(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(ConfigError(format!(
                    "setting `{key}` (from {source}): expected a string, number or boolean, got {}",
                    other.type_str()
                )))
            }
        };
        Ok((text, source))
    }

    fn invalid(&self, key: &str, expected: &str) -> ConfigError {
        match self.raw(key) {
            Ok((value, source)) => ConfigError(format!(
                "setting `{key}` (from {source}) = {value:?}: expected {expected}"
            )),
            Err(e) => e,
        }
    }

    fn string(&self, key: &str) -> Result<String, ConfigError> {
        Ok(self.raw(key)?.0)
    }

    fn optional(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let value = self.string(key)?;
        Ok((!value.is_empty()).then_some(value))
    }

    fn millis(&self, key: &str, min_ms: u64) -> Result<Duration, ConfigError> {
        let expected = format!("a whole number of milliseconds, at least {min_ms}");
        let ms: u64 = self
            .string(key)?
            .parse()
            .map_err(|_| self.invalid(key, &expected))?;
        if ms < min_ms {
            return Err(self.invalid(key, &expected));
        }
        Ok(Duration::from_millis(ms))
    }

    /// A whole number in `min..=max`.
    fn whole<T>(&self, key: &str, min: T, max: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display,
    {
        self.string(key)?
            .parse()
            .ok()
            .filter(|n| *n >= min && *n <= max)
            .ok_or_else(|| self.invalid(key, &format!("a whole number from {min} to {max}")))
    }

    fn bool(&self, key: &str) -> Result<bool, ConfigError> {
        match self.string(key)?.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(self.invalid(key, "true or false")),
        }
    }

    fn build(&self) -> Result<Config, ConfigError> {
        let listen = self
            .string("listen")?
            .parse()
            .map_err(|_| self.invalid("listen", "an address like 127.0.0.1:8080"))?;
        let redis = match self.optional("redis_url")? {
            None => None,
            Some(url) => {
                // rediss:// (TLS) is refused: the Redis client is built without TLS support.
                if let Err(problem) = Target::parse(&url) {
                    return Err(ConfigError(format!(
                        "setting `redis_url` (from {}): {problem}",
                        self.raw("redis_url")?.1
                    )));
                }
                let prefix = self.string("redis_prefix")?;
                // Braces would make a hash tag of the prefix and put every key in one slot.
                if prefix.is_empty()
                    || prefix.contains(|c: char| c.is_whitespace() || "{}".contains(c))
                {
                    return Err(
                        self.invalid("redis_prefix", "a non-empty word without spaces or braces")
                    );
                }
                let partitions = self.whole("redis_partitions", 1, MAX_PARTITIONS)?;
                Some(RedisConfig {
                    url: Secret(url),
                    settings: RedisSettings {
                        prefix,
                        timeout: self.millis("redis_timeout_ms", 10)?,
                        partitions: Partitions::new(partitions),
                        wait_replicas: self.whole("redis_wait_replicas", 0, 16)?,
                    },
                })
            }
        };
        let jwt_secret = self.optional("jwt_secret")?.map(Secret);
        if jwt_secret.as_ref().is_some_and(|s| s.0.len() < 8) {
            return Err(ConfigError(format!(
                "setting `jwt_secret` (from {}): must be at least 8 characters",
                self.raw("jwt_secret")?.1
            )));
        }
        let jwt_jwks = match self.optional("jwt_jwks")? {
            None => None,
            Some(text) => {
                let origin = self.raw("jwt_jwks")?.1.to_string();
                let source = JwksSource::parse(&text)
                    .map_err(|e| JwksSetting::refused(&origin, &text, &e))?;
                Some(JwksSetting { source, origin })
            }
        };
        let jwt_ttl_secs: u64 = self
            .string("jwt_ttl_secs")?
            .parse()
            .ok()
            .filter(|s| *s >= 60)
            .ok_or_else(|| {
                self.invalid("jwt_ttl_secs", "a whole number of seconds, at least 60")
            })?;
        let node_id = self
            .optional("node_id")?
            .unwrap_or_else(|| crate::domain::new_id().simple().to_string()[..12].to_string());
        if node_id.len() > 64
            || !node_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(self.invalid("node_id", "up to 64 letters, digits, `-`, `_` or `.`"));
        }
        let retry_schedule = self
            .string("webhook_retry_ms")?
            .split(',')
            .map(|part| part.trim().parse::<u64>().map(Duration::from_millis))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                self.invalid(
                    "webhook_retry_ms",
                    "comma-separated whole numbers of milliseconds",
                )
            })?;
        let max_connections_per_user = self
            .string("max_connections_per_user")?
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                self.invalid("max_connections_per_user", "a whole number, at least 1")
            })?;
        let max_connections = self
            .string("max_connections")?
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| self.invalid("max_connections", "a whole number, at least 1"))?;
        let event_retention = self
            .string("event_retention")?
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| self.invalid("event_retention", "a whole number, at least 1"))?;
        let log_format = match self.string("log_format")?.as_str() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            _ => return Err(self.invalid("log_format", "`pretty` or `json`")),
        };
        let log_level = self.string("log_level")?;
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(self.invalid("log_level", "a tracing filter such as `info`"));
        }
        Ok(Config {
            listen,
            redis,
            jwt_secret,
            jwt_jwks,
            jwt_ttl: Duration::from_secs(jwt_ttl_secs),
            node_id,
            offline_grace: self.millis("offline_grace_ms", 0)?,
            node_ttl: self.millis("node_ttl_ms", 100)?,
            heartbeat: self.millis("heartbeat_ms", 100)?,
            webhook: WebhookConfig {
                retry_schedule,
                timeout: self.millis("webhook_timeout_ms", 100)?,
                allow_private: self.bool("webhook_allow_private")?,
            },
            max_connections_per_user,
            max_connections,
            http_header_timeout: self.millis("http_header_timeout_ms", 100)?,
            signup_claims_invitations: self.bool("signup_claims_invitations")?,
            event_retention,
            log_format,
            log_level,
        })
    }
}
