//! A relying party's back-channel logout endpoint: records every request it gets and answers
//! with the statuses it was given, in turn (then 200), so a test can make certgate retry.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as it arrived, and what it was answered.
#[derive(Debug, Clone)]
pub struct Post {
    pub at: Instant,
    pub method: String,
    pub content_type: String,
    pub body: String,
    pub answered: u16,
}

impl Post {
    /// The `logout_token` form field.
    pub fn logout_token(&self) -> String {
        url::form_urlencoded::parse(self.body.as_bytes())
            .find(|(k, _)| k == "logout_token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no logout_token in {self:?}"))
    }
}

pub struct Receiver {
    pub port: u16,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Receiver {
    /// Answers the first requests with `statuses`, every later one with 200.
    pub fn start(statuses: &[u16]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let record = Arc::clone(&posts);
        let statuses = statuses.to_vec();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = Arc::clone(&record);
                let statuses = statuses.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = serve(stream, &record, &statuses);
                });
            }
        });
        Self { port, posts }
    }

    /// [`Self::start`] over TLS with `server` (a certificate for 127.0.0.1): its URL is
    /// [`Self::https_url`].
    pub fn start_tls(statuses: &[u16], server: &super::pki::CertFiles) -> Self {
        let tls = std::sync::Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(
                    vec![server.issued.cert_der.clone().into()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(server.issued.key_der.clone().into()),
                )
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let record = Arc::clone(&posts);
        let statuses = statuses.to_vec();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (record, statuses, tls) =
                    (Arc::clone(&record), statuses.clone(), Arc::clone(&tls));
                std::thread::spawn(move || {
                    let Ok(conn) = rustls::ServerConnection::new(tls) else {
                        return;
                    };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    // A client that refuses the certificate ends the handshake: nothing recorded.
                    let _ = serve(rustls::StreamOwned::new(conn, stream), &record, &statuses);
                });
            }
        });
        Self { port, posts }
    }

    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}/backchannel", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/backchannel", self.port)
    }

    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }

    /// The requests, once there are at least `n` (or `limit` passed: then what there is).
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Post> {
        let deadline = Instant::now() + limit;
        loop {
            let posts = self.posts();
            if posts.len() >= n || Instant::now() > deadline {
                return posts;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve<S: Read + Write>(
    stream: S,
    record: &Mutex<Vec<Post>>,
    statuses: &[u16],
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let method = request_line
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    let (mut length, mut content_type) = (0usize, String::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "content-type" => content_type = v.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let answered = {
        let mut posts = record.lock().unwrap();
        let answered = statuses.get(posts.len()).copied().unwrap_or(200);
        posts.push(Post {
            at: Instant::now(),
            method,
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
            answered,
        });
        answered
    };
    let stream = reader.get_mut();
    write!(
        stream,
        "HTTP/1.1 {answered} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()
}
