//! The WebSocket handshake and the end of a socket, on the raw TCP stream.
//!
//! Why by hand rather than axum's `WebSocketUpgrade`: axum hides the stream, and a server that
//! closes a socket must linger on it. Dropping a socket whose client is still sending (the rest
//! of an oversized message, say) makes the kernel answer with a reset, and the reset destroys the
//! close frame before the client reads it: about one 1009 close in five was lost that way.
//! [`close`] sends the close frame, half-closes, and reads until the client is done.

use super::{MAX_MESSAGE_BYTES, MAX_WRITE_BUFFER_BYTES, READ_BUFFER_BYTES, WRITE_BUFFER_BYTES};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// An agent socket: the WebSocket protocol straight on the TCP stream.
pub type Socket = WebSocketStream<TcpStream>;

/// How long a server-initiated close may take: sending the close frame (a client that stopped
/// reading may never take it), then lingering for the client's answer.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the upgraded connection may take to reach the session after the 101 answer.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request that asked for a WebSocket, ready to be answered with 101.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl Upgrade {
    /// The checks of RFC 6455 §4.2.1 (the same as axum's): a GET with `Connection: upgrade`,
    /// `Upgrade: websocket`, a `Sec-WebSocket-Key` and version 13, on a connection hyper can
    /// upgrade. `None` for anything else (answer it with [`Upgrade::required`]).
    pub fn from_request(request: &mut Request) -> Option<Upgrade> {
        let headers = request.headers();
        let asks = request.method() == Method::GET
            && header_has(headers, header::CONNECTION, |v| {
                v.to_ascii_lowercase().contains("upgrade")
            })
            && header_has(headers, header::UPGRADE, |v| {
                v.eq_ignore_ascii_case("websocket")
            })
            && header_has(headers, header::SEC_WEBSOCKET_VERSION, |v| v == "13");
        let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
        let on_upgrade = request.extensions_mut().remove::<OnUpgrade>();
        match (asks, key, on_upgrade) {
            (true, Some(key), Some(on_upgrade)) => Some(Upgrade { key, on_upgrade }),
            _ => None,
        }
    }

    /// The answer to a request that is not a WebSocket upgrade: 426 in the Tiledesk error shape.
    pub fn required() -> Response {
        let body = serde_json::json!({
            "success": false,
            "msg": "this endpoint expects a WebSocket upgrade",
        });
        (StatusCode::UPGRADE_REQUIRED, axum::Json(body)).into_response()
    }

    /// Answers 101 and runs `session` on the socket, in a task of its own, once hyper hands the
    /// connection over. The connection is dropped if that takes longer than [`UPGRADE_TIMEOUT`].
    pub fn accept<F, Fut>(self, session: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let upgraded = match tokio::time::timeout(UPGRADE_TIMEOUT, on_upgrade).await {
                Ok(Ok(upgraded)) => upgraded,
                Ok(Err(e)) => return tracing::debug!(error = %e, "WebSocket upgrade failed"),
                Err(_) => return tracing::debug!("WebSocket upgrade timed out"),
            };
            // The server loop serves plain TCP streams, so the downcast holds; the bytes hyper
            // read past the handshake (a client may send its first frame at once) come along.
            let Ok(parts) = upgraded.downcast::<TokioIo<TcpStream>>() else {
                return tracing::error!("an upgraded connection is not a TCP stream");
            };
            let stream = parts.io.into_inner();
            let socket = if parts.read_buf.is_empty() {
                WebSocketStream::from_raw_socket(stream, Role::Server, Some(config())).await
            } else {
                let read = parts.read_buf.to_vec();
                WebSocketStream::from_partially_read(stream, read, Role::Server, Some(config()))
                    .await
            };
            // A task of its own, so the upgrade's state is freed before the session starts.
            tokio::spawn(session(socket));
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .body(axum::body::Body::empty())
            .unwrap_or_default()
    }
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, test: impl Fn(&str) -> bool) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(test)
}

/// Buffers sized for presence traffic, and the size caps.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// Ends a socket the server closes: sends the close frame with `code` (after whatever is still
/// queued), half-closes the connection, and reads and drops what the client still sends until
/// it closes too or [`CLOSE_TIMEOUT`] passes. The client thus reads the code even when it was
/// still sending, and no reset destroys it. Returns whether the close frame went out.
pub async fn close(socket: &mut Socket, code: u16, reason: &'static str) -> bool {
    let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
    let frame = Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }));
    let sent = matches!(
        tokio::time::timeout_at(deadline, socket.send(frame)).await,
        Ok(Ok(()))
    );
    if sent {
        linger(socket.get_mut(), deadline).await;
    }
    sent
}

/// Ends a socket whose client sent its close frame: tungstenite has queued the answer; send it,
/// then close the connection (the client waits for the server to close first, RFC 6455 §7.1.1).
pub async fn finish(socket: &mut Socket) {
    let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
    if let Ok(Ok(())) = tokio::time::timeout_at(deadline, socket.flush()).await {
        linger(socket.get_mut(), deadline).await;
    }
}

/// Half-closes `stream` and drains it until the peer closes or `deadline`.
async fn linger(stream: &mut TcpStream, deadline: tokio::time::Instant) {
    let _ = tokio::time::timeout_at(deadline, async {
        if stream.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0u8; 4096];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
