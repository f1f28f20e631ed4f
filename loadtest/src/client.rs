//! A minimal agent-socket client that binds a chosen source address.

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use std::net::{IpAddr, SocketAddr};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Socket = WebSocketStream<tokio::net::TcpStream>;

pub async fn open(node: SocketAddr, source: IpAddr, query: &str) -> anyhow::Result<Socket> {
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::new(source, 0))
        .with_context(|| format!("bind {source}"))?;
    let stream = socket.connect(node).await.context("TCP connect")?;
    stream.set_nodelay(true)?;
    let url = format!("ws://{node}/ws?{query}");
    // tungstenite's 128 KiB default read buffer is zeroed on every read: with a thousand
    // sockets that memset alone took a third of the load generator's CPU.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .context("WebSocket handshake")?;
    Ok(ws)
}

/// Sends a heartbeat and waits for its pong: proves the session is up and serving.
pub async fn round_trip(ws: &mut Socket) -> anyhow::Result<()> {
    ws.send(Message::text(
        r#"{"action":"heartbeat","payload":{"message":{"text":"ping"}}}"#,
    ))
    .await?;
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message? {
            if text.contains("pong") {
                return Ok(());
            }
        }
    }
    anyhow::bail!("closed before the pong")
}

/// Sends a close and waits until the server has closed too.
pub async fn close(mut ws: Socket) -> anyhow::Result<()> {
    ws.close(None).await?;
    while let Some(message) = ws.next().await {
        if message.is_err() {
            break;
        }
    }
    Ok(())
}

/// Keeps a socket alive: reading answers the server's pings.
pub fn keep_alive(mut ws: Socket) -> tokio::task::JoinHandle<Socket> {
    tokio::spawn(async move {
        while let Some(Ok(_)) = ws.next().await {}
        ws
    })
}
