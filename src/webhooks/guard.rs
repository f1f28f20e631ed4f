//! The SSRF guard: webhook targets on loopback, private, link-local and other non-public
//! addresses are refused unless `webhook_allow_private` is set. The check runs when a
//! subscription is saved *and* on every delivery (DNS may change in between): deliveries resolve
//! names through [`GuardedResolver`], which drops non-public addresses, and never follow
//! redirects.

use super::addresses::is_public;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("target must be an absolute http:// or https:// URL")]
    NotHttp,
    #[error("target host `{0}` cannot be resolved")]
    Unresolvable(String),
    #[error("target `{0}` is on a loopback or private address; set PRESENCE_WEBHOOK_ALLOW_PRIVATE=true to allow it")]
    Private(String),
}

/// Parses a target URL; only http(s) with a host.
pub fn parse_target(target: &str) -> Result<Url, TargetError> {
    let url = Url::parse(target).map_err(|_| TargetError::NotHttp)?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(TargetError::NotHttp);
    }
    Ok(url)
}

/// Resolves the target and refuses it if any of its addresses is not public.
pub async fn check_target(url: &Url, allow_private: bool) -> Result<(), TargetError> {
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| TargetError::Unresolvable(host.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable(host.to_string()));
    }
    if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(TargetError::Private(host.to_string()));
    }
    Ok(())
}

/// DNS for deliveries: the system resolver, minus every non-public address.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(TargetError::Private(host));
                return Err(e);
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_targets_parse() {
        assert!(parse_target("https://example.com/hook").is_ok());
        assert_eq!(parse_target("ftp://example.com"), Err(TargetError::NotHttp));
        assert_eq!(parse_target("not a url"), Err(TargetError::NotHttp));
    }

    #[tokio::test]
    async fn loopback_targets_need_the_setting() {
        let url = parse_target("http://127.0.0.1:9/hook").unwrap();
        assert!(matches!(
            check_target(&url, false).await,
            Err(TargetError::Private(_))
        ));
        assert_eq!(check_target(&url, true).await, Ok(()));
        let named = parse_target("http://localhost:9/hook").unwrap();
        assert!(check_target(&named, false).await.is_err());
    }
}
