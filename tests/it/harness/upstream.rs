//! The protected app for proxy tests (a stand-in for Home Assistant or Grafana, not for
//! anything certgate talks to): plain HTTP requests get back the identity headers the app
//! received, then every header as it arrived (see [`seen_headers`]); WebSocket handshakes
//! are accepted and every text message is echoed with the `Remote-User` the handshake
//! carried.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

pub struct Upstream {
    pub port: u16,
}

impl Upstream {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = serve(stream);
                });
            }
        });
        Self { port }
    }
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let head = peek_head(&stream)?;
    let lower = head.to_ascii_lowercase();
    if lower.contains("\r\nupgrade: websocket") {
        return websocket(stream);
    }
    plain(stream, &head)
}

/// The request head, without consuming it (tungstenite reads it again for WebSockets).
fn peek_head(stream: &TcpStream) -> std::io::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.peek(&mut buf) {
            // See `Restarting`: a socket with a timeout is not restarted after a signal.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            n => n?,
        };
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            return Ok(text[..end + 4].to_string());
        }
        if n == 0 || Instant::now() > deadline {
            return Ok(text);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Where the app's answer starts listing every header it received, one `Name: value` a line.
const HEADERS: &str = "--- headers ---\n";

/// Every header the app received (name as sent, value trimmed), from its answer's body.
pub fn seen_headers(body: &str) -> Vec<(String, String)> {
    body.split_once(HEADERS)
        .map(|(_, all)| all)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .unwrap_or("")
}

fn plain(mut stream: TcpStream, head: &str) -> std::io::Result<()> {
    let mut consumed = vec![0u8; head.len()];
    stream.read_exact(&mut consumed)?;
    // Read the body too (a webhook's POST): a socket closed with unread data sends a reset,
    // which can take the answer with it before the proxy has read it.
    let length: usize = header(head, "content-length").parse().unwrap_or(0);
    let mut request_body = vec![0u8; length];
    stream.read_exact(&mut request_body)?;
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let all: String = head
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let body = format!(
        "app saw: remote-user=[{}] remote-groups=[{}] remote-email=[{}] remote-name=[{}] path=[{path}] underscored=[{}{}{}{}]\n{HEADERS}{all}",
        header(head, "remote-user"),
        header(head, "remote-groups"),
        header(head, "remote-email"),
        header(head, "remote-name"),
        header(head, "remote_user"),
        header(head, "remote_groups"),
        header(head, "remote_email"),
        header(head, "remote_name"),
    );
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[allow(clippy::result_large_err)] // the error type is tungstenite's callback contract
fn websocket(stream: TcpStream) -> std::io::Result<()> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let record = std::sync::Arc::clone(&seen);
    let callback = move |req: &tungstenite::handshake::server::Request, resp| {
        let user = req
            .headers()
            .get("remote-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        *record.lock().unwrap() = user.to_string();
        Ok(resp)
    };
    let mut ws = tungstenite::accept_hdr(super::Restarting(stream), callback)
        .map_err(std::io::Error::other)?;
    let user = seen.lock().unwrap().clone();
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => {
                let reply = format!("{user}: {t}");
                ws.send(tungstenite::Message::text(reply))
                    .map_err(std::io::Error::other)?;
            }
            Ok(tungstenite::Message::Close(_)) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}
