//! The layers' values before they are typed: each setting's raw TOML value with where it came
//! from, then [`Values::build`] turns them into a validated [`Config`].

use super::*;

/// Where a value came from, for error messages.
#[derive(Clone, Debug)]
pub(super) enum Source {
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

#[derive(Default)]
pub(super) struct Values(BTreeMap<String, (toml::Value, Source)>);

impl Values {
    pub(super) fn set(&mut self, key: &str, value: toml::Value, source: Source) {
        self.0.insert(key.to_string(), (value, source));
    }

    pub(super) fn merge_toml(&mut self, text: &str, source: Source) -> Result<(), ConfigError> {
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

    pub(super) fn build(&self) -> Result<Config, ConfigError> {
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
