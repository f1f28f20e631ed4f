//! Outgoing HTTP: the one place every client of the gateway starts (webhook deliveries, the
//! JWKS fetch). A leaf module, so that `auth` and `webhooks` can both use it.

/// Installs the process-wide TLS crypto provider (ring) that HTTP clients built with this crate's
/// reqwest features need, for webhook deliveries to https targets and the JWKS. Idempotent; every
/// process that links the crate and builds a reqwest client (the gateway, the loadtest) calls it
/// first.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The start of every outgoing HTTP client of the gateway (webhook deliveries, the JWKS): the TLS
/// provider installed, the gateway's user agent. Server certificates are checked against the
/// operating system's roots (rustls-platform-verifier; on Linux it reads them with
/// rustls-native-certs, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`).
pub fn client_builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder().user_agent(concat!("presence-gateway/", env!("CARGO_PKG_VERSION")))
}
