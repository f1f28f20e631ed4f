//! A raw WebSocket client on a plain `TcpStream` (RFC 6455 by hand), for frames no WebSocket
//! library would send: unmasked, reserved bits or opcodes, oversized or fragmented control
//! frames, invalid UTF-8. Shared by `close_codes` and `timeouts`.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CONTINUATION: u8 = 0x0;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

pub const HEARTBEAT: &str = r#"{"action":"heartbeat","payload":{"message":{"text":"ping"}}}"#;

/// How long a test waits for the server's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// One client frame, as it goes on the wire.
#[derive(Clone, Debug)]
pub struct Frame {
    pub fin: bool,
    /// The three RSV bits (0 to 7).
    pub rsv: u8,
    pub opcode: u8,
    /// `None`: unmasked (a protocol violation from a client).
    pub mask: Option<[u8; 4]>,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A final, masked frame with no reserved bits.
    pub fn new(opcode: u8, payload: impl Into<Vec<u8>>) -> Frame {
        Frame {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some([0x37, 0xfa, 0x21, 0x3d]),
            payload: payload.into(),
        }
    }

    pub fn text(text: &str) -> Frame {
        Frame::new(TEXT, text.as_bytes())
    }

    pub fn fin(mut self, fin: bool) -> Frame {
        self.fin = fin;
        self
    }

    pub fn rsv(mut self, rsv: u8) -> Frame {
        self.rsv = rsv;
        self
    }

    pub fn mask(mut self, mask: Option<[u8; 4]>) -> Frame {
        self.mask = mask;
        self
    }

    /// The frame's bytes: header, then the (masked) payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = header(
            self.fin,
            self.rsv,
            self.opcode,
            self.mask,
            self.payload.len() as u64,
        );
        let mut payload = self.payload.clone();
        if let Some(mask) = self.mask {
            apply_mask(&mut payload, mask, 0);
        }
        out.extend_from_slice(&payload);
        out
    }
}

/// A frame header announcing `len` payload bytes (the payload may follow in pieces).
pub fn header(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, len: u64) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0x0f)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
    }
    out
}

/// Masks `data` in place; `offset` is its position in the frame's payload.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte ^= mask[(offset + i) % 4];
    }
}

/// The frames the server sends, read from one half of the connection.
pub struct ServerFrames {
    read: OwnedReadHalf,
    buf: Vec<u8>,
}

/// Opens `/ws?{query}` by hand; panics unless the server answers 101 with the right accept key.
pub async fn connect(port: u16, query: &str) -> (ServerFrames, OwnedWriteHalf) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let request = format!(
        "GET /ws?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("a handshake answer within 5 s")
            .expect("read the handshake answer");
        assert!(n > 0, "connection closed during the handshake: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "handshake answer: {head}");
    let accept = derive_accept_key(key.as_bytes()).to_ascii_lowercase();
    assert!(
        head.contains(&format!("sec-websocket-accept: {accept}")),
        "accept key: {head}"
    );
    let (read, write) = stream.into_split();
    let buf = buf.split_off(end);
    (ServerFrames { read, buf }, write)
}

impl ServerFrames {
    /// The next frame's opcode and payload, or how the connection ended first.
    pub async fn next(&mut self) -> Result<(u8, Vec<u8>), End> {
        loop {
            if let Some((frame, used)) = parse(&self.buf).map_err(End::Garbled)? {
                self.buf.drain(..used);
                return Ok(frame);
            }
            let mut chunk = [0u8; 8192];
            match self.read.read(&mut chunk).await {
                Ok(0) => {
                    return Err(End::Eof {
                        pending: self.buf.len(),
                    })
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(End::Failed(e)),
            }
        }
    }

    /// Reads (skipping other frames) until the server's close frame and returns its code (1005
    /// for an empty close frame), or `None` if the connection ended without one (printed), or
    /// none came within 5 s.
    pub async fn close_code(&mut self) -> Option<u16> {
        let ending = tokio::time::timeout(CLOSE_WAIT, async {
            loop {
                match self.next().await {
                    Ok((CLOSE, payload)) if payload.len() >= 2 => {
                        return Ok(u16::from_be_bytes([payload[0], payload[1]]))
                    }
                    Ok((CLOSE, _)) => return Ok(1005),
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        match ending {
            Ok(Ok(code)) => Some(code),
            Ok(Err(e)) => {
                println!("the connection ended without a close frame: {e}");
                None
            }
            Err(_) => {
                println!("no close frame within {CLOSE_WAIT:?}");
                None
            }
        }
    }

    /// Whether the server ends the connection cleanly (EOF, at a frame boundary) within
    /// `within`, with no frame in between.
    pub async fn ends_within(&mut self, within: Duration) -> Result<(), String> {
        match tokio::time::timeout(within, self.next()).await {
            Err(_) => Err(format!("still open after {within:?}")),
            Ok(Ok((opcode, payload))) => Err(format!(
                "a frame after the close: opcode {opcode}, {} bytes",
                payload.len()
            )),
            Ok(Err(End::Eof { pending: 0 })) => Ok(()),
            Ok(Err(end)) => Err(format!("ended badly: {end}")),
        }
    }
}

/// How a connection ended.
pub enum End {
    /// EOF, with this many bytes of an incomplete frame before it.
    Eof { pending: usize },
    /// A read error (a reset, typically).
    Failed(std::io::Error),
    /// Not a valid server frame.
    Garbled(String),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Eof { pending } => write!(f, "EOF with {pending} bytes of a frame pending"),
            End::Failed(e) => write!(f, "read error: {e}"),
            End::Garbled(e) => write!(f, "garbled: {e}"),
        }
    }
}

/// One complete server frame at the start of `buf`, and its length.
#[allow(clippy::type_complexity)]
fn parse(buf: &[u8]) -> Result<Option<((u8, Vec<u8>), usize)>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[1] & 0x80 != 0 {
        return Err("a masked frame from the server".into());
    }
    let (len, start) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(n) as usize, 10)
        }
        126 | 127 => return Ok(None),
        n => (n as usize, 2),
    };
    if buf.len() < start + len {
        return Ok(None);
    }
    Ok(Some((
        (buf[0] & 0x0f, buf[start..start + len].to_vec()),
        start + len,
    )))
}

/// Sends `bytes`, ignoring a connection the server already closed.
pub async fn send(write: &mut OwnedWriteHalf, bytes: &[u8]) {
    let _ = write.write_all(bytes).await;
}
