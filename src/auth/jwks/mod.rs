//! The JSON Web Key Set (`jwt_jwks`): the public keys that verify RS256, ES256 and EdDSA tokens.
//!
//! A backend that signs tokens with its own private key publishes the public half as a JWKS
//! (`{"keys":[...]}`), in a file or at an `https://` URL. The set is read once at start, where
//! any problem stops the gateway, and again when a token names a `kid` the set lacks (the
//! backend rotated its key). Those re-reads are limited to one per [`REFRESH_MIN_INTERVAL`],
//! counting the read at start, and run one at a time: a flood of tokens with made-up `kid`s
//! costs the JWKS host at most one request per interval per node. A re-read that fails keeps
//! the keys already known. A set older than [`MAX_AGE`] is also re-read, in the background, at
//! the next lookup: a key the backend removed (revoked) stops verifying within about that long.
//!
//! What a JWKS document means (which of its keys are usable, each bound to one algorithm) is
//! [`super::jwk`].

use super::jwk::{parse, Key, KeyMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The least time between two reads of the JWKS. Ten seconds picks up a rotated key quickly and
/// is in line with common JWKS clients (jwks-rsa allows 10 requests a minute).
pub const REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// A set older than this is re-read in the background at the next lookup.
pub const MAX_AGE: Duration = Duration::from_secs(300);
/// One read of a JWKS URL gives up after this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS larger than this is refused (a real one is a few KiB).
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Where the JWKS comes from. `Debug` and `Display` leave out a URL's user info and query.
#[derive(Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(reqwest::Url),
}

impl JwksSource {
    /// A file path, or an `https://` URL. Plain `http://` is refused: whoever could alter the
    /// response could sign tokens for any user.
    pub fn parse(text: &str) -> Result<JwksSource, String> {
        if text.starts_with("https://") {
            let url = reqwest::Url::parse(text).map_err(|e| format!("not a valid URL: {e}"))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err("the URL names no host".into());
            }
            Ok(JwksSource::Url(url))
        } else if text.contains("://") {
            Err(
                "expected a file path or an https:// URL (http:// and other schemes are refused)"
                    .into(),
            )
        } else {
            Ok(JwksSource::File(PathBuf::from(text)))
        }
    }
}

impl fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwksSource({self})")
    }
}

impl fmt::Display for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksSource::File(path) => write!(f, "{}", path.display()),
            // Without user info or query: either may hold a credential, and this is logged.
            JwksSource::Url(url) => {
                let host = url.host_str().unwrap_or_default();
                match url.port() {
                    Some(port) => write!(f, "https://{host}:{port}{}", url.path()),
                    None => write!(f, "https://{host}{}", url.path()),
                }
            }
        }
    }
}

/// The key set, refreshed on unknown `kid`s (see the module documentation).
pub struct Jwks {
    source: JwksSource,
    client: Option<reqwest::Client>,
    keys: RwLock<Arc<KeyMap>>,
    /// When the set was last read; held during a refresh, so refreshes run one at a time.
    last_read: Arc<tokio::sync::Mutex<Instant>>,
    min_interval: Duration,
    max_age: Duration,
    /// Reads so far, the one at start included.
    reads: AtomicU64,
}

impl Jwks {
    /// Reads and parses the set; an error (unreadable, not a JWKS, no usable key) says why.
    pub async fn load(source: JwksSource) -> Result<Jwks, String> {
        Self::load_with(source, REFRESH_MIN_INTERVAL, MAX_AGE).await
    }

    async fn load_with(
        source: JwksSource,
        min_interval: Duration,
        max_age: Duration,
    ) -> Result<Jwks, String> {
        let client = match &source {
            JwksSource::File(_) => None,
            JwksSource::Url(_) => Some(
                crate::net::client_builder()
                    .timeout(FETCH_TIMEOUT)
                    .redirect(https_redirects_only())
                    .build()
                    .map_err(|e| format!("cannot build the HTTPS client: {e}"))?,
            ),
        };
        let jwks = Jwks {
            source,
            client,
            keys: RwLock::new(Arc::default()),
            last_read: Arc::new(tokio::sync::Mutex::new(Instant::now())),
            min_interval,
            max_age,
            reads: AtomicU64::new(0),
        };
        let keys = jwks.read().await?;
        *jwks.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(jwks)
    }

    /// How many usable keys the set holds.
    pub fn len(&self) -> usize {
        self.current().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn current(&self) -> Arc<KeyMap> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key `kid` names. An unknown `kid` re-reads the set first, unless it was read less
    /// than the minimum interval ago; concurrent callers wait for one re-read instead of each
    /// starting their own. A known `kid` is answered at once, and starts a background re-read
    /// if the set is older than the maximum age.
    pub async fn key(self: &Arc<Self>, kid: &str) -> Option<Arc<Key>> {
        if let Some(key) = self.current().get(kid) {
            self.reread_if_stale();
            return Some(key.clone());
        }
        let mut last_read = self.last_read.lock().await;
        // Another caller may have re-read the set while this one waited for the lock.
        if let Some(key) = self.current().get(kid) {
            return Some(key.clone());
        }
        if last_read.elapsed() < self.min_interval {
            return None;
        }
        // A failed read counts too, so a failing host is not asked again at once.
        *last_read = Instant::now();
        self.reread().await;
        drop(last_read);
        self.current().get(kid).cloned()
    }

    /// Starts a background re-read if the set is older than the maximum age and no re-read is
    /// running.
    fn reread_if_stale(self: &Arc<Self>) {
        let Ok(mut last_read) = self.last_read.clone().try_lock_owned() else {
            return;
        };
        if last_read.elapsed() < self.max_age {
            return;
        }
        *last_read = Instant::now();
        let jwks = Arc::clone(self);
        tokio::spawn(async move {
            jwks.reread().await;
            drop(last_read);
        });
    }

    /// Reads the set again and swaps it in; a failure keeps the keys already known.
    async fn reread(&self) {
        match self.read().await {
            Ok(keys) => {
                metrics::counter!("jwks_refreshes_total", "outcome" => "ok").increment(1);
                tracing::info!(source = %self.source, keys = keys.len(), "JWKS re-read");
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
            }
            Err(e) => {
                metrics::counter!("jwks_refreshes_total", "outcome" => "error").increment(1);
                tracing::warn!(
                    source = %self.source,
                    error = %e,
                    "cannot re-read the JWKS; keeping the keys already known"
                );
            }
        }
    }

    async fn read(&self) -> Result<KeyMap, String> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let bytes = match (&self.source, &self.client) {
            (JwksSource::File(path), _) => {
                // Read at most one byte past the limit: a wrong path such as /dev/zero must
                // not fill the memory.
                use tokio::io::AsyncReadExt;
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| format!("cannot read the file: {e}"))?;
                let mut bytes = Vec::new();
                file.take(MAX_JWKS_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
                    .await
                    .map_err(|e| format!("cannot read the file: {e}"))?;
                if bytes.len() > MAX_JWKS_BYTES {
                    return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
                }
                bytes
            }
            (JwksSource::Url(url), Some(client)) => fetch(client, url).await?,
            (JwksSource::Url(_), None) => unreachable!("a URL source always has a client"),
        };
        let (keys, skipped) = parse(&bytes)?;
        for reason in &skipped {
            tracing::warn!(source = %self.source, "JWKS key ignored: {reason}");
        }
        if keys.is_empty() {
            return Err(format!(
                "no usable key (RS256, ES256 or EdDSA, with a `kid`){}",
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(": {}", skipped.join("; "))
                }
            ));
        }
        Ok(keys)
    }
}

/// Redirects are followed (a few) only to `https://`, never down to plain HTTP.
fn https_redirects_only() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.url().scheme() != "https" {
            attempt.error("JWKS redirect to a non-https URL")
        } else if attempt.previous().len() >= 3 {
            attempt.error("too many JWKS redirects")
        } else {
            attempt.follow()
        }
    })
}

async fn fetch(client: &reqwest::Client, url: &reqwest::Url) -> Result<Vec<u8>, String> {
    let mut response = client
        .get(url.clone())
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("cannot fetch it: {}", describe(&e)))?;
    if !response.status().is_success() {
        return Err(format!("the server answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("cannot read the response: {}", describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest error with its causes (the top level alone says little, e.g. "error sending
/// request").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
