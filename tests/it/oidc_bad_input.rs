//! Bad input at every OpenID Connect endpoint (issue 17, "Bad input"): malformed, oversized and
//! duplicated parameters, unknown `response_type`/`grant_type`, `request`/`request_uri`
//! objects. Each gets its RFC error code, never a 500, and nothing is issued: no code, no token.

use crate::direct::Setup;
use crate::harness::curl::{Curl, Response};
use crate::harness::require;
use crate::oidc::{authorize_url, code_request, enc, json, new_code, query, CALLBACK, SECRET};

/// What a refusal looks like, and its error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A page on certgate (never a redirect): an untrusted request.
    Page,
    /// A redirect to the client's registered URI with `error`.
    Back,
    /// JSON `{"error": …}`.
    Json,
}

struct Case {
    name: &'static str,
    status: u16,
    answer: Answer,
    error: &'static str,
    send: Box<dyn Fn(&Setup) -> Response>,
}

fn case(
    name: &'static str,
    (status, answer, error): (u16, Answer, &'static str),
    send: impl Fn(&Setup) -> Response + 'static,
) -> Case {
    Case {
        name,
        status,
        answer,
        error,
        send: Box::new(send),
    }
}

fn grafana(s: &Setup) -> Curl {
    s.curl().arg("-u").arg(format!("grafana:{SECRET}"))
}

fn post(s: &Setup, endpoint: &str, form: &str) -> Response {
    grafana(s).post(&s.cg.mtls(&format!("/oidc/{endpoint}")), form)
}

/// alice at /oidc/authorize with grafana's usual request, `extra` query text appended.
fn authorize(s: &Setup, params: &[(&str, &str)], extra: &str) -> Response {
    let url = format!("{}{extra}", authorize_url(s, params));
    s.as_alice().get(&url)
}

fn code_flow(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    code_request("grafana", extra)
}

/// Everything in one table, by endpoint. `code` is a live code of grafana's, which none of
/// these may use up.
fn cases(code: &str) -> Vec<Case> {
    use Answer::{Back, Json, Page};
    let exchange = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}",
        enc(code),
        enc(CALLBACK)
    );
    let big = "a".repeat(17 * 1024);
    let mut cases = vec![
        // --- /oidc/authorize
        case(
            "authorize: client_id twice",
            (400, Page, "invalid_request"),
            |s| authorize(s, &code_flow(&[]), "&client_id=grafana"),
        ),
        case(
            "authorize: redirect_uri twice",
            (400, Page, "invalid_request"),
            |s| {
                authorize(
                    s,
                    &code_flow(&[]),
                    &format!("&redirect_uri={}", enc(CALLBACK)),
                )
            },
        ),
        case(
            "authorize: scope twice",
            (400, Page, "invalid_request"),
            |s| authorize(s, &code_flow(&[]), "&scope=openid"),
        ),
        case(
            "authorize: a 3 kB parameter",
            (400, Page, "invalid_request"),
            |s| {
                let long = "s".repeat(3000);
                authorize(s, &code_flow(&[]), &format!("&x={long}"))
            },
        ),
        case(
            "authorize: a 20 kB query",
            (400, Page, "invalid_request"),
            |s| {
                let long = "q".repeat(20_000);
                authorize(s, &code_flow(&[]), &format!("&x={long}"))
            },
        ),
        case(
            "authorize: a client_id with NUL",
            (400, Page, "invalid_request"),
            |s| {
                s.as_alice().get(&format!(
                    "{}?response_type=code&client_id=graf%00ana&redirect_uri={}&scope=openid",
                    s.cg.mtls("/oidc/authorize"),
                    enc(CALLBACK)
                ))
            },
        ),
        case(
            "authorize: response_type=token",
            (302, Back, "unsupported_response_type"),
            |s| {
                let mut p = code_flow(&[]);
                p[0] = ("response_type", "token");
                authorize(s, &p, "")
            },
        ),
        case(
            "authorize: response_type=code id_token",
            (302, Back, "unsupported_response_type"),
            |s| {
                let mut p = code_flow(&[]);
                p[0] = ("response_type", "code id_token");
                authorize(s, &p, "")
            },
        ),
        case(
            "authorize: no response_type",
            (302, Back, "invalid_request"),
            |s| authorize(s, &code_flow(&[])[1..], ""),
        ),
        case(
            "authorize: a request object",
            (302, Back, "request_not_supported"),
            |s| {
                authorize(
                    s,
                    &code_flow(&[("request", "eyJhbGciOiJub25lIn0.e30.")]),
                    "",
                )
            },
        ),
        case(
            "authorize: a request_uri",
            (302, Back, "request_uri_not_supported"),
            |s| {
                authorize(
                    s,
                    &code_flow(&[("request_uri", "urn:ietf:params:oauth:request_uri:x")]),
                    "",
                )
            },
        ),
        case(
            "authorize: response_mode=fragment",
            (302, Back, "invalid_request"),
            |s| authorize(s, &code_flow(&[("response_mode", "fragment")]), ""),
        ),
        case(
            "authorize: code_challenge_method=plain",
            (302, Back, "invalid_request"),
            |s| {
                authorize(
                    s,
                    &code_flow(&[
                        (
                            "code_challenge",
                            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                        ),
                        ("code_challenge_method", "plain"),
                    ]),
                    "",
                )
            },
        ),
        case(
            "authorize: a code_challenge that is no S256 hash",
            (302, Back, "invalid_request"),
            |s| {
                authorize(
                    s,
                    &code_flow(&[
                        ("code_challenge", "short"),
                        ("code_challenge_method", "S256"),
                    ]),
                    "",
                )
            },
        ),
        case(
            "authorize: prompt=none with login",
            (302, Back, "invalid_request"),
            |s| authorize(s, &code_flow(&[("prompt", "none login")]), ""),
        ),
        case(
            "authorize: no openid scope",
            (302, Back, "invalid_scope"),
            |s| {
                let mut p = code_flow(&[]);
                p[3] = ("scope", "profile email");
                authorize(s, &p, "")
            },
        ),
    ];
    let token_cases: Vec<(&'static str, (u16, Answer, &'static str), String)> = vec![
        (
            "token: code twice",
            (400, Json, "invalid_request"),
            format!("{exchange}&code=again"),
        ),
        (
            "token: grant_type twice",
            (400, Json, "invalid_request"),
            format!("{exchange}&grant_type=authorization_code"),
        ),
        (
            "token: a 17 KiB body",
            (400, Json, "invalid_request"),
            format!("{exchange}&padding={big}"),
        ),
        (
            "token: grant_type=password",
            (400, Json, "unsupported_grant_type"),
            "grant_type=password&username=alice&password=x".into(),
        ),
        (
            "token: grant_type=client_credentials",
            (400, Json, "unsupported_grant_type"),
            "grant_type=client_credentials".into(),
        ),
        (
            "token: grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer",
            (400, Json, "unsupported_grant_type"),
            format!(
                "grant_type={}&assertion=x",
                enc("urn:ietf:params:oauth:grant-type:jwt-bearer")
            ),
        ),
        (
            "token: a device_code nobody was given",
            (400, Json, "invalid_grant"),
            format!(
                "grant_type={}&device_code=x",
                enc("urn:ietf:params:oauth:grant-type:device_code")
            ),
        ),
        (
            "token: the device grant without device_code",
            (400, Json, "invalid_request"),
            format!(
                "grant_type={}",
                enc("urn:ietf:params:oauth:grant-type:device_code")
            ),
        ),
        (
            "token: no grant_type",
            (400, Json, "invalid_request"),
            format!("code={}&redirect_uri={}", enc(code), enc(CALLBACK)),
        ),
        (
            "token: no code",
            (400, Json, "invalid_request"),
            format!(
                "grant_type=authorization_code&redirect_uri={}",
                enc(CALLBACK)
            ),
        ),
        (
            "token: a code that is not UTF-8",
            (400, Json, "invalid_grant"),
            format!(
                "grant_type=authorization_code&code=%FF%FE&redirect_uri={}",
                enc(CALLBACK)
            ),
        ),
        (
            "token: a 10 kB code",
            (400, Json, "invalid_grant"),
            format!(
                "grant_type=authorization_code&code={}&redirect_uri={}",
                "c".repeat(10_000),
                enc(CALLBACK)
            ),
        ),
        (
            "token: no refresh_token",
            (400, Json, "invalid_request"),
            "grant_type=refresh_token".into(),
        ),
        (
            "token: refresh_token twice",
            (400, Json, "invalid_request"),
            "grant_type=refresh_token&refresh_token=a&refresh_token=b".into(),
        ),
        (
            "token: Basic and client_secret",
            (400, Json, "invalid_request"),
            format!("{exchange}&client_secret={SECRET}"),
        ),
    ];
    for (name, expect, form) in token_cases {
        cases.push(case(name, expect, move |s| post(s, "token", &form)));
    }
    for (name, chunked) in [
        ("token: a 1 MiB body", false),
        ("token: a 1 MiB body, chunked", true),
    ] {
        let form = format!("{exchange}&padding={}", "p".repeat(1 << 20));
        cases.push(case(name, (400, Json, "invalid_request"), move |s| {
            let file = s.dir.path().join("big-form");
            std::fs::write(&file, &form).unwrap();
            let mut c = grafana(s)
                .header("Content-Type: application/x-www-form-urlencoded")
                .arg("--data-binary")
                .arg(format!("@{}", file.display()));
            if chunked {
                c = c.header("Transfer-Encoding: chunked");
            }
            c.get(&s.cg.mtls("/oidc/token"))
        }));
    }
    let token = exchange.clone();
    cases.push(case(
        "token: JSON instead of a form",
        (400, Json, "invalid_request"),
        move |s| {
            grafana(s)
                .header("Content-Type: application/json")
                .post(&s.cg.mtls("/oidc/token"), &token)
        },
    ));
    let token = exchange.clone();
    cases.push(case(
        "token: Basic credentials that are not base64",
        (401, Json, "invalid_client"),
        move |s| {
            s.curl()
                .header("Authorization: Basic !!!")
                .post(&s.cg.mtls("/oidc/token"), &token)
        },
    ));
    let token = exchange.clone();
    cases.push(case(
        "token: Basic credentials without a colon",
        (401, Json, "invalid_client"),
        move |s| {
            s.curl()
                .header("Authorization: Basic Z3JhZmFuYQ==")
                .post(&s.cg.mtls("/oidc/token"), &token)
        },
    ));
    // --- /oidc/userinfo
    for (name, header, status, error) in [
        ("userinfo: no token", None, 401, "invalid_request"),
        (
            "userinfo: Basic",
            Some("Authorization: Basic Z3JhZmFuYTp4"),
            401,
            "invalid_request",
        ),
        (
            "userinfo: an unknown token",
            Some("Authorization: Bearer nope"),
            401,
            "invalid_token",
        ),
        (
            "userinfo: a token with spaces",
            Some("Authorization: Bearer a b c"),
            401,
            "invalid_token",
        ),
        (
            "userinfo: an empty token",
            Some("Authorization: Bearer "),
            401,
            "invalid_request",
        ),
    ] {
        cases.push(case(name, (status, Json, error), move |s| {
            let mut c = s.curl();
            if let Some(h) = header {
                c = c.header(h);
            }
            c.get(&s.cg.mtls("/oidc/userinfo"))
        }));
    }
    let long = format!("Authorization: Bearer {}", "t".repeat(6000));
    cases.push(case(
        "userinfo: a 6 kB token",
        (401, Json, "invalid_token"),
        move |s| s.curl().header(&long).get(&s.cg.mtls("/oidc/userinfo")),
    ));
    cases.push(case(
        "userinfo: the token in a POST body (not taken)",
        (401, Json, "invalid_request"),
        |s| {
            s.curl()
                .post(&s.cg.mtls("/oidc/userinfo"), "access_token=nope")
        },
    ));
    // --- /oidc/device (RFC 8628), /oidc/introspect and /oidc/revoke
    for (what, status, error, form) in [
        (
            "scope twice",
            400,
            "invalid_request",
            "scope=openid&scope=openid".to_string(),
        ),
        (
            "a 17 KiB body",
            400,
            "invalid_request",
            format!("scope={big}"),
        ),
        (
            "no openid scope",
            400,
            "invalid_scope",
            "scope=profile".to_string(),
        ),
    ] {
        let name: &'static str = Box::leak(format!("device: {what}").into_boxed_str());
        cases.push(case(name, (status, Json, error), move |s| {
            post(s, "device", &form)
        }));
    }
    cases.push(case(
        "device: no client",
        (401, Json, "invalid_client"),
        |s| s.curl().post(&s.cg.mtls("/oidc/device"), "scope=openid"),
    ));
    cases.push(case(
        "device: JSON instead of a form",
        (400, Json, "invalid_request"),
        |s| {
            grafana(s)
                .header("Content-Type: application/json")
                .post(&s.cg.mtls("/oidc/device"), "{\"scope\": \"openid\"}")
        },
    ));
    for endpoint in ["introspect", "revoke"] {
        let bad: Vec<(&'static str, u16, &'static str, String)> = vec![
            (
                "token twice",
                400,
                "invalid_request",
                "token=a&token=b".into(),
            ),
            (
                "no token",
                400,
                "invalid_request",
                "token_type_hint=access_token".into(),
            ),
            ("an empty token", 400, "invalid_request", "token=".into()),
            (
                "a 17 KiB body",
                400,
                "invalid_request",
                format!("token={big}"),
            ),
            (
                "client_id twice",
                400,
                "invalid_request",
                "token=a&client_id=grafana&client_id=grafana".into(),
            ),
        ];
        for (what, status, error, form) in bad {
            let name: &'static str = Box::leak(format!("{endpoint}: {what}").into_boxed_str());
            cases.push(case(name, (status, Json, error), move |s| {
                post(s, endpoint, &form)
            }));
        }
        let name: &'static str = Box::leak(format!("{endpoint}: no client").into_boxed_str());
        cases.push(case(name, (401, Json, "invalid_client"), move |s| {
            s.curl()
                .post(&s.cg.mtls(&format!("/oidc/{endpoint}")), "token=a")
        }));
        let name: &'static str =
            Box::leak(format!("{endpoint}: JSON instead of a form").into_boxed_str());
        cases.push(case(name, (400, Json, "invalid_request"), move |s| {
            grafana(s).header("Content-Type: application/json").post(
                &s.cg.mtls(&format!("/oidc/{endpoint}")),
                "{\"token\": \"a\"}",
            )
        }));
    }
    cases
}

/// The error code an answer carries, as its kind of answer says.
fn error_of(r: &Response, answer: Answer) -> Option<String> {
    match answer {
        Answer::Back => {
            let loc = r.header("location")?;
            assert!(loc.starts_with(CALLBACK), "{loc}");
            let q = query(loc);
            assert!(!q.contains_key("code"), "a code came back: {loc}");
            q.get("error").cloned()
        }
        Answer::Json => serde_json::from_str::<serde_json::Value>(&r.body)
            .ok()?
            .get("error")?
            .as_str()
            .map(String::from),
        Answer::Page => {
            assert!(r.header("location").is_none(), "{r:?}");
            assert!(r.body.contains("Sign-in request refused"), "{r:?}");
            r.body
                .contains("· invalid_request")
                .then(|| "invalid_request".to_string())
        }
    }
}

#[test]
fn bad_input_at_every_oidc_endpoint_gets_its_rfc_error_and_nothing_is_issued() {
    if !require("curl") {
        return;
    }
    let s = crate::oidc_introspect::provider();
    let code = new_code(&s, "grafana", &[]);
    let mut failures = Vec::new();
    for c in cases(&code) {
        let r = (c.send)(&s);
        let error = error_of(&r, c.answer);
        let body = serde_json::from_str::<serde_json::Value>(&r.body).unwrap_or_default();
        let issued = [
            "access_token",
            "refresh_token",
            "id_token",
            "device_code",
            "user_code",
        ]
        .iter()
        .any(|key| body.get(key).is_some())
            || body["active"] == true
            || r.header("location")
                .is_some_and(|l| query(l).contains_key("code"));
        let challenged = c.error != "invalid_client"
            || r.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Basic"));
        if r.status != c.status || error.as_deref() != Some(c.error) || issued || !challenged {
            failures.push(format!(
                "{}: expected {} {}, got {} {error:?}{}{}\n  {r:?}",
                c.name,
                c.status,
                c.error,
                r.status,
                if issued {
                    " and something was issued"
                } else {
                    ""
                },
                if challenged {
                    ""
                } else {
                    " without a Basic challenge"
                }
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Each refusal counted under a configured client or `unknown`, and audited with its
    // error and reason (never a token: the code is in no log line).
    let counted = |endpoint: &str, client: &str, outcome: &str| {
        s.cg.metric(&format!(
            "certgate_oidc_requests_total{{client=\"{client}\",endpoint=\"{endpoint}\",outcome=\"{outcome}\"}}"
        ))
        .unwrap_or(0.0)
    };
    assert_eq!(
        counted("authorize", "grafana", "unsupported_response_type"),
        2.0
    );
    assert_eq!(
        counted("authorize", "grafana", "request_not_supported"),
        1.0
    );
    // Parameters that cannot be read (given twice, too long) name no client either.
    assert_eq!(counted("authorize", "unknown", "invalid_request"), 5.0);
    assert_eq!(counted("token", "grafana", "unsupported_grant_type"), 3.0);
    assert_eq!(counted("token", "unknown", "invalid_client"), 2.0);
    assert_eq!(counted("userinfo", "unknown", "invalid_token"), 3.0);
    assert_eq!(counted("device", "grafana", "invalid_request"), 3.0);
    assert_eq!(counted("device", "unknown", "invalid_client"), 1.0);
    for (endpoint, client) in [("introspect", "grafana"), ("revoke", "grafana")] {
        assert_eq!(
            counted(endpoint, client, "invalid_request"),
            6.0,
            "{endpoint}"
        );
        assert_eq!(
            counted(endpoint, "unknown", "invalid_client"),
            1.0,
            "{endpoint}"
        );
    }
    let refused = crate::oidc_introspect::events(&s, "oidc_refused");
    let found = |endpoint: &str, error: &str, reason: &str| {
        refused.iter().any(|e| {
            e["endpoint"] == endpoint
                && e["error"] == error
                && e["reason"].as_str().is_some_and(|r| r.contains(reason))
        })
    };
    assert!(
        found("authorize", "request_not_supported", "request objects"),
        "{refused:?}"
    );
    assert!(
        found("token", "invalid_request", "grant_type is given twice"),
        "{refused:?}"
    );
    assert!(
        found("token", "invalid_request", "16384 bytes"),
        "{refused:?}"
    );
    assert!(
        found("introspect", "invalid_client", "no client credentials"),
        "{refused:?}"
    );
    assert!(!s.cg.logs().contains(&code), "the code in the log");

    // Nothing issued, nothing answered 500, and the code none of them could use still works.
    assert_eq!(crate::oidc_introspect::events(&s, "oidc_token").len(), 0);
    assert_eq!(crate::oidc_introspect::events(&s, "oidc_code").len(), 1);
    assert!(!s.cg.logs().contains("internal error"), "{}", s.cg.logs());
    let exchange = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}",
        enc(&code),
        enc(CALLBACK)
    );
    let r = post(&s, "token", &exchange);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(json(&r)["access_token"].is_string());
}
