//! Every route in certgate's one route table, asked anonymously by a `proxy.trusted` peer (the
//! proxy's position) on each listener: what each class promises. A route added later is
//! walked too, with whatever class it was given.

use actix_web::http::Method;
use certgate::http::routes::{Class, Route, ROUTES};

use crate::direct::{setup, LOOPBACK};
use crate::harness::curl::{Curl, Response};
use crate::harness::require;

/// The router's own 404 (no route at this path), as opposed to a handler's answer.
fn no_such_route(r: &Response) -> bool {
    r.status == 404 && r.body.contains("no such route")
}

/// An anonymous request for `route` at `base`, from 127.0.0.1 (trusted): JSON, no credentials.
fn ask(curl: Curl, base: &str, route: &Route) -> Response {
    // `{secret}`, `{id}`: any one segment.
    let path: String = route
        .path
        .split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/");
    let url = format!("{base}{path}");
    match &route.method {
        Some(m) if *m == Method::POST => curl.post(&url, ""),
        Some(m) if *m == Method::GET => curl.get(&url),
        Some(m) => curl.arg("-X").arg(m.as_str()).get(&url),
        None => curl.get(&url),
    }
}

#[test]
fn every_route_behaves_as_its_class_promises_on_every_listener() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "[admin]\ngroups = [\"admins\"]");
    let http = s.cg.http("");
    let mtls = s.cg.mtls("");
    let metrics = s.cg.metrics("");
    assert!(ROUTES.len() >= 18, "{ROUTES:?}");
    for route in ROUTES {
        let on_http = ask(s.curl(), &http, route);
        let on_mtls = ask(s.curl(), &mtls, route);
        let on_metrics = ask(s.curl(), &metrics, route);
        match route.class {
            Class::Public => {
                for (listener, r) in [("http", &on_http), ("mtls", &on_mtls)] {
                    assert!(
                        !no_such_route(r) && r.status < 500,
                        "{route:?} on {listener} must answer: {r:?}"
                    );
                }
                assert!(no_such_route(&on_metrics), "{route:?}: {on_metrics:?}");
            }
            Class::Admin => {
                for (listener, r) in [("http", &on_http), ("mtls", &on_mtls)] {
                    let to_sign_in = r.status == 302
                        && r.header("location")
                            .is_some_and(|l| l.contains("/auth?rd="));
                    assert!(
                        matches!(r.status, 401 | 403) || to_sign_in,
                        "{route:?} on {listener} must refuse: {r:?}"
                    );
                    assert!(!r.body.contains("<form"), "{route:?}: {r:?}");
                }
                assert!(no_such_route(&on_metrics), "{route:?}: {on_metrics:?}");
            }
            Class::Operator => {
                for (listener, r) in [("http", &on_http), ("mtls", &on_mtls)] {
                    assert!(
                        no_such_route(r),
                        "{route:?} must not exist on {listener}: {r:?}"
                    );
                    assert!(!r.body.contains("certgate_"), "{r:?}");
                }
                assert_eq!(on_metrics.status, 200, "{route:?}: {on_metrics:?}");
            }
        }
    }
    // The metrics listener has nothing but operator-only routes: not even the check.
    let verify = s
        .curl()
        .header("X-Original-URL: https://app.example.test/")
        .get(&s.cg.metrics("/verify"));
    assert!(no_such_route(&verify), "{verify:?}");
    let scraped = s.curl().get(&s.cg.metrics("/metrics"));
    assert!(
        scraped.body.contains("certgate_decisions_total"),
        "{scraped:?}"
    );
}

/// A certificate a trusted proxy forwards makes nobody an admin but an admin: the gate in front
/// of every admin route refuses a non-admin's certificate before the handler runs.
#[test]
fn admin_routes_refuse_a_non_admins_forwarded_certificate() {
    if !require("curl") {
        return;
    }
    let s = setup(
        LOOPBACK,
        "[admin]\ngroups = [\"wizards\"]\n[[users]]\nname = \"bob\"\ngroups = [\"family\"]",
    );
    let bob = s.pki.user("bob");
    let pem = std::fs::read_to_string(&bob.cert).unwrap();
    let escaped = percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC);
    for route in ROUTES.iter().filter(|r| r.class == Class::Admin) {
        let curl = s
            .curl()
            .header(&format!("X-SSL-Client-Cert: {escaped}"))
            .header("X-SSL-Client-Verify: SUCCESS");
        let r = ask(curl, &s.cg.http(""), route);
        assert_eq!(r.status, 403, "{route:?}: {r:?}");
        assert!(r.body.contains("admin.groups"), "{route:?}: {r:?}");
    }
}
