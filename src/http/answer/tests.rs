//! The wire form of every error, pinned: proxies, scripts and the acceptance checks read these
//! statuses, headers and bodies byte for byte.

use actix_web::body::MessageBody;
use actix_web::http::header;

use super::*;
use crate::cert::CertError;
use crate::error::{BadInput, Denial, NoCert, OAuthError, OneTime, Outcome, Refused};
use crate::jwt::TokenKind;
use crate::policy::canonical::CanonicalError;

struct Answer {
    status: u16,
    headers: header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
}

fn answer(err: &AppError, wants_html: bool) -> Answer {
    let pages = Pages::new().unwrap();
    let to = Audience {
        wants_html,
        pages: &pages,
        contact: None,
    };
    let res = render(err, &to);
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.into_body().try_into_bytes().unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn json_of(err: &AppError) -> (u16, String) {
    let a = answer(err, false);
    assert_eq!(a.header(header::CONTENT_TYPE), "application/json");
    assert_eq!(a.header(header::CACHE_CONTROL), "no-store");
    (a.status, a.body)
}

fn challenge(refused: Option<Refused>) -> AppError {
    AppError::Unauthenticated(Challenge {
        location: Some("https://auth.example.test/auth?rd=x".into()),
        redirect: false,
        refused,
        reason: "why".into(),
    })
}

const PRESENT: &str =
    "present a certgate bearer token, the session cookie, or a client certificate";

#[test]
fn a_challenge_names_invalid_token_only_for_a_bearer_token() {
    for (refused, error, www) in [
        (None, "unauthenticated", "Bearer realm=\"certgate\""),
        (
            Some(Refused::Invalid(TokenKind::Bearer)),
            "invalid_token",
            "Bearer realm=\"certgate\", error=\"invalid_token\"",
        ),
        (
            Some(Refused::Revoked(TokenKind::Bearer)),
            "invalid_token",
            "Bearer realm=\"certgate\", error=\"invalid_token\"",
        ),
        (
            Some(Refused::Revoked(TokenKind::Session)),
            "unauthenticated",
            "Bearer realm=\"certgate\"",
        ),
        (
            Some(Refused::Certificate),
            "unauthenticated",
            "Bearer realm=\"certgate\"",
        ),
    ] {
        let err = challenge(refused);
        let a = answer(&err, false);
        assert_eq!(a.status, 401);
        assert_eq!(a.header(header::WWW_AUTHENTICATE), www);
        assert_eq!(
            a.body,
            format!("{{\"error\":\"{error}\",\"error_description\":\"{PRESENT}\"}}\n")
        );
    }
}

#[test]
fn a_challenge_sends_a_browser_to_sign_in() {
    let mut err = challenge(None);
    let a = answer(&err, true);
    assert_eq!(a.status, 401);
    assert_eq!(
        a.header(header::LOCATION),
        "https://auth.example.test/auth?rd=x"
    );
    assert!(!a.headers.contains_key(header::WWW_AUTHENTICATE));
    if let AppError::Unauthenticated(ch) = &mut err {
        ch.redirect = true;
    }
    assert_eq!(answer(&err, true).status, 302);
}

#[test]
fn metric_labels_are_the_ones_dashboards_know() {
    let labels = |e: &AppError| {
        let (result, reason) = e.labels();
        (result.as_str(), reason.as_str())
    };
    assert_eq!(
        labels(&challenge(None)),
        ("unauthenticated", "no_credentials")
    );
    assert_eq!(
        labels(&challenge(Some(Refused::Invalid(TokenKind::Session)))),
        ("unauthenticated", "invalid_token")
    );
    assert_eq!(
        labels(&challenge(Some(Refused::Revoked(TokenKind::Bearer)))),
        ("unauthenticated", "revoked")
    );
    assert_eq!(
        labels(&challenge(Some(Refused::Certificate))),
        ("unauthenticated", "bad_certificate")
    );
    assert_eq!(
        labels(&AppError::NoCertificate(NoCert::UntrustedPeer)),
        ("unauthenticated", "untrusted_proxy")
    );
    assert_eq!(
        labels(&AppError::CertRejected(CertError::Revoked)),
        ("unauthenticated", "cert_revoked")
    );
    assert_eq!(
        labels(&AppError::Forbidden(Denial::CrossSite)),
        ("deny", "forbidden")
    );
    assert_eq!(
        labels(&AppError::InsufficientScope),
        ("deny", "insufficient_scope")
    );
    let oauth = AppError::OAuth {
        error: OAuthError::InvalidScope,
        description: "x".into(),
    };
    assert_eq!(labels(&oauth), ("bad_request", "bad_request"));
    assert_eq!(
        labels(&AppError::Gone(OneTime::Enrollment)),
        ("bad_request", "gone")
    );
    assert_eq!(
        labels(&AppError::Unavailable("x".into())),
        ("unavailable", "state_unknown")
    );
    assert_eq!(
        labels(&AppError::Internal("x".into())),
        ("error", "internal")
    );
    assert_eq!(Outcome::Allow.as_str(), "allow");
}

#[test]
fn insufficient_scope_is_a_403_with_its_bearer_challenge() {
    let a = answer(&AppError::InsufficientScope, false);
    assert_eq!(a.status, 403);
    assert_eq!(
        a.header(header::WWW_AUTHENTICATE),
        "Bearer realm=\"certgate\", error=\"insufficient_scope\""
    );
    assert_eq!(
        a.body,
        "{\"error\":\"insufficient_scope\",\"error_description\":\"the token's scope does not cover this request\"}\n"
    );
}

#[test]
fn oauth_errors_carry_their_status_and_code() {
    for (error, status, code) in [
        (OAuthError::InvalidRequest, 400, "invalid_request"),
        (OAuthError::InvalidScope, 400, "invalid_scope"),
        (OAuthError::InvalidTarget, 400, "invalid_target"),
        (OAuthError::InvalidClient, 401, "invalid_client"),
    ] {
        let err = AppError::OAuth {
            error,
            description: "ttl: too long".into(),
        };
        assert_eq!(err.to_string(), format!("{code}: ttl: too long"));
        assert_eq!(
            json_of(&err),
            (
                status,
                format!("{{\"error\":\"{code}\",\"error_description\":\"ttl: too long\"}}\n")
            )
        );
    }
}

#[test]
fn unknown_state_is_a_503_to_try_again() {
    let err = AppError::Unavailable("the store is away".into());
    let a = answer(&err, false);
    assert_eq!(a.status, 503);
    assert_eq!(a.header(header::RETRY_AFTER), "5");
    assert_eq!(
        a.body,
        "{\"error\":\"temporarily_unavailable\",\"error_description\":\"certgate cannot check access right now; try again\"}\n"
    );
    let page = answer(&err, true);
    assert_eq!(page.header(header::RETRY_AFTER), "5");
    assert!(page.body.contains("503 · temporarily_unavailable"));
    assert!(!page.body.contains("the store is away"));
}

#[test]
fn refusals_say_why_in_their_own_words() {
    let expired = CertError::Expired {
        now: 86_400,
        not_after: 0,
    };
    for (err, status, code, description) in [
        (
            AppError::Forbidden(Denial::ByRule {
                user: Some("bob".into()),
                rule: Some(2),
                because: "denied by rules[2]".into(),
            }),
            403,
            "forbidden",
            "forbidden: bob may not open this: denied by rules[2].",
        ),
        (
            AppError::Forbidden(Denial::ByRule {
                user: None,
                rule: None,
                because: "denied: no rule matched".into(),
            }),
            403,
            "forbidden",
            "forbidden: Nobody may open this: denied: no rule matched.",
        ),
        (
            AppError::Forbidden(Denial::NotAdmin {
                user: "bob".into(),
            }),
            403,
            "forbidden",
            "forbidden: bob is not in an admin group (admin.groups)",
        ),
        (
            AppError::Forbidden(Denial::CrossSite),
            403,
            "forbidden",
            "forbidden: cross-site request refused",
        ),
        (
            AppError::BadRequest(BadInput::OriginalUrl(CanonicalError::EncodedSlash)),
            400,
            "bad_request",
            "bad request: original URL: the path contains an encoded slash or backslash",
        ),
        (
            AppError::BadRequest(BadInput::Field {
                field: "user",
                problem: "missing".into(),
            }),
            400,
            "bad_request",
            "bad request: user: missing",
        ),
        (
            AppError::Gone(OneTime::Enrollment),
            410,
            "gone",
            "gone: This enrollment link was used already or has expired. Ask your administrator for a new one.",
        ),
        (
            AppError::CertRejected(expired),
            495,
            "cert_expired",
            "certificate rejected: the certificate expired at 1970-01-01 00:00:00 UTC (now 1970-01-02 00:00:00 UTC)",
        ),
        (
            AppError::NoCertificate(NoCert::NotForwarded),
            401,
            "certificate_not_forwarded",
            "no client certificate (certificate_not_forwarded)",
        ),
        (
            AppError::Internal("disk full".into()),
            500,
            "internal",
            "internal error: disk full",
        ),
    ] {
        assert_eq!(
            json_of(&err),
            (
                status,
                format!("{{\"error\":\"{code}\",\"error_description\":\"{description}\"}}\n")
            ),
            "{err:?}"
        );
        let page = answer(&err, true);
        assert_eq!(page.status, status);
        assert!(
            page.body.contains(&format!("{status} · {code}")),
            "{err:?}"
        );
    }
}

#[test]
fn a_refusal_page_says_what_to_mention_and_never_a_rule_that_did_not_decide() {
    let by_rule = |rule| {
        AppError::Forbidden(Denial::ByRule {
            user: Some("bob".into()),
            rule,
            because: "x".into(),
        })
    };
    let page = answer(&by_rule(Some(2)), true).body;
    assert!(page.contains("mention the rule named above"), "{page}");
    let page = answer(&by_rule(None), true).body;
    assert!(
        page.contains("No rule lets anyone in here")
            && page.contains("add a [[rules]] entry")
            && !page.contains("mention the rule"),
        "{page}"
    );
    let page = answer(
        &AppError::Forbidden(Denial::NotAdmin { user: "bob".into() }),
        true,
    )
    .body;
    assert!(
        page.contains("If you should have access, ask the administrator of this site.")
            && !page.contains("rule"),
        "{page}"
    );
}
