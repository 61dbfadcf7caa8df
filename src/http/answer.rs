//! The one place where errors become HTTP answers: an [`AppError`] becomes its status,
//! headers and body (an HTML page for people, JSON for programs).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::pages::{Page, Pages};
use crate::error::{AppError, Challenge};

/// What the answer may depend on besides the error itself.
pub struct Audience<'a> {
    pub wants_html: bool,
    pub pages: &'a Pages,
    /// `admin.contact`: whom people should ask.
    pub contact: Option<&'a str>,
}

/// Turns an error into the response; also logs it at a level matching its cause.
pub fn render(err: &AppError, to: &Audience<'_>) -> HttpResponse {
    let (status, page, code) = match err {
        AppError::Unauthenticated(ch) => return challenge(ch, to),
        AppError::NoCertificate(why) => (
            StatusCode::UNAUTHORIZED,
            Page::no_certificate(*why),
            why.code(),
        ),
        AppError::CertRejected(e) => (
            StatusCode::from_u16(495).unwrap_or(StatusCode::BAD_REQUEST),
            Page::message("Certificate not accepted", &e.to_string(), e.hint()),
            e.code(),
        ),
        AppError::InsufficientScope(why) => {
            let mut res = json(
                StatusCode::FORBIDDEN,
                &serde_json::json!({"error": "insufficient_scope", "error_description": why}),
            );
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"certgate\", error=\"insufficient_scope\""),
            );
            return res;
        }
        AppError::Gone(why) => (
            StatusCode::GONE,
            Page::message(
                "Link no longer valid",
                why,
                "Enrollment links work once and for a few minutes.",
            ),
            "gone",
        ),
        AppError::Forbidden(why) => (
            StatusCode::FORBIDDEN,
            Page::message(
                "Access denied",
                why,
                &match to.contact {
                    Some(c) => format!("If you should have access, ask {c}, and mention the rule named above."),
                    None => "If you should have access, ask the administrator of this site, and mention the rule named above.".into(),
                },
            ),
            "forbidden",
        ),
        AppError::BadRequest(why) => (
            StatusCode::BAD_REQUEST,
            Page::message(
                "Bad request",
                why,
                "This is usually a proxy configuration problem.",
            ),
            "bad_request",
        ),
        AppError::OAuth {
            status,
            code,
            description,
        } => {
            return json(
                *status,
                &serde_json::json!({"error": code, "error_description": description}),
            );
        }
        AppError::Unavailable(why) => {
            tracing::warn!(reason = %why, "answering 503: state unknown");
            let page = Page {
                code: Some("503 · temporarily_unavailable".into()),
                ..Page::message(
                    "Temporarily unavailable",
                    "certgate cannot check your access right now, so it lets no one in.",
                    "Try again in a minute. If it lasts, tell the administrator: the log says why.",
                )
            };
            let mut res = if to.wants_html {
                html(StatusCode::SERVICE_UNAVAILABLE, to.pages.render(&page))
            } else {
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({"error": "temporarily_unavailable", "error_description": "certgate cannot check access right now; try again"}),
                )
            };
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return res;
        }
        AppError::Internal(why) => {
            tracing::error!(error = %why, "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Page::message(
                    "Something went wrong",
                    "certgate could not finish this request.",
                    "Try again; if it keeps happening, the log says why.",
                ),
                "internal",
            )
        }
    };
    if status.is_client_error() {
        tracing::info!(status = status.as_u16(), reason = %err, "request refused");
    }
    if to.wants_html {
        let page = Page {
            code: Some(format!("{} · {code}", status.as_u16())),
            ..page
        };
        html(status, to.pages.render(&page))
    } else {
        json(
            status,
            &serde_json::json!({"error": code, "error_description": err.to_string()}),
        )
    }
}

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
    let www = match ch.bearer_error {
        Some(e) => format!("Bearer realm=\"certgate\", error=\"{e}\""),
        None => "Bearer realm=\"certgate\"".to_string(),
    };
    let mut res = json(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({"error": ch.bearer_error.unwrap_or("unauthenticated"), "error_description": "present a certgate bearer token, the session cookie, or a client certificate"}),
    );
    if let Ok(v) = HeaderValue::from_str(&www) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
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
