//! Device enrollment through a one-time link: `GET /enroll/{secret}` explains and offers the
//! two PKCS#12 kinds; `POST` uses the link up, issues the certificate in memory and shows the
//! one-time password; `GET /enroll/download/{id}` hands the file over once. The private key
//! exists only inside that file, in memory, until it is downloaded or expires.

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::answer;
use super::extract::RequestMeta;
use super::pages::{Form, Page};
use super::{AppState, State};
use crate::ca::enroll::EnrollStore;
use crate::ca::store::CaStore;
use crate::ca::P12Kind;
use crate::error::{AppError, BadInput, OneTime};

/// How long a prepared file waits for its download.
const DOWNLOAD_SECS: i64 = 600;

struct Download {
    /// Holds the private key: wiped when dropped.
    bytes: zeroize::Zeroizing<Vec<u8>>,
    filename: String,
    expires_at: i64,
}

/// Files prepared for download, by one-time id.
#[derive(Default)]
pub struct Downloads(Mutex<HashMap<String, Download>>);

impl std::fmt::Debug for Downloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Downloads")
    }
}

impl Downloads {
    fn put(&self, download: Download, now: i64) -> Option<String> {
        let id = crate::jwt::random_id()?;
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, d| d.expires_at > now);
        map.insert(id.clone(), download);
        Some(id)
    }

    fn take(&self, id: &str, now: i64) -> Option<Download> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = map.remove(id).filter(|d| d.expires_at > now);
        map.retain(|_, d| d.expires_at > now);
        found
    }
}

fn gone() -> AppError {
    AppError::Gone(OneTime::Enrollment)
}

fn person<'a>(req: &'a HttpRequest, state: &AppState) -> RequestMeta<'a> {
    let mut meta = RequestMeta::from_request(req, state);
    meta.wants_html = true;
    meta
}

pub async fn show(req: HttpRequest, path: web::Path<String>, state: State) -> HttpResponse {
    let meta = person(&req, &state);
    let store = EnrollStore::new(&state.config.data_dir);
    let e = match store.peek(&path, state.clock.now()) {
        Ok(Some(e)) => e,
        Ok(None) => return state.reply(&meta, &gone()),
        Err(e) => return state.reply(&meta, &AppError::Internal(e.to_string())),
    };
    let who = match &e.device {
        Some(d) => format!("{} ({d})", e.user),
        None => e.user.clone(),
    };
    let page = Page {
        title: "Install your certificate".into(),
        message: format!("This link installs a certificate for {who} on this device. It works once."),
        hints: vec![
            "iPhone, iPad: choose Modern, open the downloaded profile in Settings > Profile Downloaded, install it, and type the password shown next.".into(),
            "Android 14 and newer: choose Modern; Android 13 and older: choose Legacy. Then Settings > Security > Encryption & credentials > Install a certificate > VPN & app user certificate, and type the password.".into(),
            "Wear OS: choose Legacy, and install it from the paired phone's Wear OS app as a user certificate.".into(),
            "Desktop browsers: choose Modern, then import the file in the browser's certificate settings (Firefox: Settings > Privacy & Security > View Certificates > Your Certificates > Import).".into(),
            "A phone that says \"wrong password\" with the right password needs the Legacy file: ask for a new link.".into(),
        ],
        link: None,
        secret: None,
        svg: None,
        form: Some(Form {
            action: state.public(&format!("/enroll/{}", path.as_str())),
            fields: Vec::new(),
            buttons: vec![
                ("kind".into(), "modern".into(), "Modern (.p12)".into()),
                ("kind".into(), "legacy".into(), "Legacy (.p12 for Android 13 and older, Wear OS)".into()),
            ],
        }),
        ..Page::default()
    };
    answer::html(StatusCode::OK, state.pages.render(&page))
}

pub async fn redeem(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: State,
) -> HttpResponse {
    let meta = person(&req, &state);
    match issue(&path, &body, &state) {
        Ok(page) => answer::html(StatusCode::OK, state.pages.render(&page)),
        Err(e) => state.reply(&meta, &e),
    }
}

fn issue(secret: &str, body: &[u8], state: &AppState) -> Result<Page, AppError> {
    let now = state.clock.now();
    let kind = match url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "kind")
        .map(|(_, v)| v.into_owned())
        .as_deref()
    {
        Some("legacy") => P12Kind::Legacy,
        Some("modern") | None => P12Kind::Modern,
        Some(other) => {
            return Err(AppError::BadRequest(BadInput::Field {
                field: "kind",
                problem: format!("`{other}` is neither modern nor legacy"),
            }))
        }
    };
    let links = EnrollStore::new(&state.config.data_dir);
    let e = links
        .consume(secret, now)
        .map_err(|e| AppError::Internal(e.to_string()))?
        .ok_or_else(gone)?;
    let password = crate::jwt::random_id()
        .ok_or_else(|| AppError::Internal("the system RNG failed".into()))?;
    let issued = CaStore::new(&state.config.data_dir).issue_p12(
        &e.user,
        e.device.as_deref(),
        e.days,
        kind,
        &password,
        now,
    );
    let (bytes, record) = match issued {
        Ok(issued) => issued,
        Err(err) => {
            // Nothing was handed out: the link may be used again.
            links.restore(secret, &e);
            return Err(AppError::Internal(err.to_string()));
        }
    };
    let bytes = zeroize::Zeroizing::new(bytes);
    let filename = format!(
        "{}.p12",
        e.device
            .as_deref()
            .unwrap_or(&e.user)
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    );
    let id = state
        .downloads
        .put(
            Download {
                bytes,
                filename,
                expires_at: now + DOWNLOAD_SECS,
            },
            now,
        )
        .ok_or_else(|| AppError::Internal("the system RNG failed".into()))?;
    tracing::info!(event = "enroll", user = %e.user, device = ?e.device, serial = %record.serial, "certificate issued through an enrollment link");
    Ok(Page {
        title: "Your certificate is ready".into(),
        message: "Download it, then install it with this password (shown once):".into(),
        hints: vec![
            "The download works once and for 10 minutes; the file is not kept after that.".into(),
        ],
        link: Some(super::pages::Link {
            href: state.public(&format!("/enroll/download/{id}")),
            text: "Download the certificate".into(),
        }),
        secret: Some(password),
        ..Page::default()
    })
}

pub async fn download(req: HttpRequest, path: web::Path<String>, state: State) -> HttpResponse {
    let meta = person(&req, &state);
    match state.downloads.take(&path, state.clock.now()) {
        Some(d) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/x-pkcs12"))
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", d.filename),
            ))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(d.bytes.to_vec()),
        None => state.reply(&meta, &gone()),
    }
}
