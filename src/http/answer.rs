//! The one place where errors become HTTP answers: an [`AppError`] becomes its status
//! ([`AppError::status`]), headers and body: an HTML page for people, JSON for programs.
//! Also the one home of the RFC 6750 `WWW-Authenticate: Bearer` challenge.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::pages::{Page, Pages};
use crate::error::{AppError, Challenge, Code, Denial, OUT_OF_SCOPE};

/// What the answer may depend on besides the error itself.
pub struct Audience<'a> {
    pub wants_html: bool,
    pub pages: &'a Pages,
    /// `admin.contact`: whom people should ask.
    pub contact: Option<&'a str>,
}

/// Turns an error into the response; also logs it at a level matching its cause.
pub fn render(err: &AppError, to: &Audience<'_>) -> HttpResponse {
    match err {
        AppError::Unauthenticated(ch) => challenge(ch, to),
        AppError::InsufficientScope => {
            let mut res = json(
                err.status(),
                &serde_json::json!({"error": err.code().as_str(), "error_description": OUT_OF_SCOPE}),
            );
            bearer_challenge(&mut res, Some(Code::InsufficientScope));
            res
        }
        AppError::OAuth { error, description } => json(
            err.status(),
            &serde_json::json!({"error": error.code().as_str(), "error_description": description}),
        ),
        AppError::Unavailable(why) => unavailable(why, to),
        _ => refusal(err, to),
    }
}

/// A refusal or failure answered alike to people (a page) and programs (JSON with the error's
/// own words).
fn refusal(err: &AppError, to: &Audience<'_>) -> HttpResponse {
    let status = err.status();
    if let AppError::Internal(why) = err {
        tracing::error!(error = %why, "internal error");
    }
    if status.is_client_error() {
        tracing::info!(status = status.as_u16(), reason = %err, "request refused");
    }
    let code = err.code();
    if to.wants_html {
        let page = Page {
            code: Some(format!("{} · {code}", status.as_u16())),
            ..page(err, to)
        };
        html(status, to.pages.render(&page))
    } else {
        json(
            status,
            &serde_json::json!({"error": code.as_str(), "error_description": err.to_string()}),
        )
    }
}

/// Whom to ask, and what to mention: the rule that refused, or that no rule lets anyone in.
fn ask(why: &Denial, contact: Option<&str>) -> String {
    let whom = contact.unwrap_or("the administrator of this site");
    match why {
        Denial::ByRule { rule: Some(_), .. } => {
            format!("If you should have access, ask {whom}, and mention the rule named above.")
        }
        Denial::ByRule { rule: None, .. } => format!(
            "No rule lets anyone in here. If you should have access, ask {whom} to add a [[rules]] entry that allows you on this host and path."
        ),
        _ => format!("If you should have access, ask {whom}."),
    }
}

/// What a person reads about a refusal or failure.
fn page(err: &AppError, to: &Audience<'_>) -> Page {
    match err {
        AppError::NoCertificate(why) => Page::no_certificate(*why),
        AppError::CertRejected(e) => {
            Page::message("Certificate not accepted", &e.to_string(), e.hint())
        }
        AppError::Gone(why) => Page::message(
            "Link no longer valid",
            &why.to_string(),
            "Enrollment links work once and for a few minutes.",
        ),
        AppError::Forbidden(why) => {
            Page::message("Access denied", &why.to_string(), &ask(why, to.contact))
        }
        AppError::BadRequest(why) => Page::message(
            "Bad request",
            &why.to_string(),
            "This is usually a proxy configuration problem.",
        ),
        AppError::Unauthenticated(_)
        | AppError::InsufficientScope
        | AppError::OAuth { .. }
        | AppError::Unavailable(_)
        | AppError::Internal(_) => Page::message(
            "Something went wrong",
            "certgate could not finish this request.",
            "Try again; if it keeps happening, the log says why.",
        ),
    }
}

/// 503: nobody is let in while the state to decide by is unknown; try again soon.
fn unavailable(why: &str, to: &Audience<'_>) -> HttpResponse {
    tracing::warn!(reason = %why, "answering 503: state unknown");
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let code = Code::TemporarilyUnavailable;
    let mut res = if to.wants_html {
        let page = Page {
            code: Some(format!("{} · {code}", status.as_u16())),
            ..Page::message(
                "Temporarily unavailable",
                "certgate cannot check your access right now, so it lets no one in.",
                "Try again in a minute. If it lasts, tell the administrator: the log says why.",
            )
        };
        html(status, to.pages.render(&page))
    } else {
        json(
            status,
            &serde_json::json!({"error": code.as_str(), "error_description": "certgate cannot check access right now; try again"}),
        )
    };
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    res
}

/// A browser with somewhere to go is sent to sign in (401 with `Location`, or 302 when it
/// asked for redirects); anyone else gets the RFC 6750 challenge.
fn challenge(ch: &Challenge, to: &Audience<'_>) -> HttpResponse {
    tracing::debug!(reason = %ch.reason, "credentials required");
    if let (true, Some(location)) = (to.wants_html, &ch.location) {
        let status = if ch.redirect {
            StatusCode::FOUND
        } else {
            StatusCode::UNAUTHORIZED
        };
        let page = Page::sign_in(location);
        let mut res = html(status, to.pages.render(&page));
        if let Ok(v) = HeaderValue::from_str(location) {
            res.headers_mut().insert(header::LOCATION, v);
        }
        return res;
    }
    let error = ch.bearer_error();
    let mut res = json(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({"error": error.unwrap_or(Code::Unauthenticated).as_str(), "error_description": "present a certgate bearer token, the session cookie, or a client certificate"}),
    );
    bearer_challenge(&mut res, error);
    res
}

/// Sets `WWW-Authenticate: Bearer realm="certgate"`, with RFC 6750 `error` when there is one.
fn bearer_challenge(res: &mut HttpResponse, error: Option<Code>) {
    const REALM: &str = "Bearer realm=\"certgate\"";
    let value = match error {
        None => HeaderValue::from_static(REALM),
        Some(code) => HeaderValue::from_str(&format!("{REALM}, error=\"{code}\""))
            .unwrap_or(HeaderValue::from_static(REALM)),
    };
    res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
}

pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // No page of certgate's may be framed (clickjacking of admin and enrollment forms).
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"))
        .body(body)
}

/// JSON with a trailing newline, so `curl` output ends cleanly in a terminal.
pub fn json(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!("{body}\n"))
}

#[cfg(test)]
mod tests;
