//! The rule table, case by case (including the bypasses peers suffered), and a property:
//! a path and its normalised form always get the same decision.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

fn rules() -> Policy {
    let rule = |index,
                host: Option<&str>,
                path: Option<&str>,
                methods: &[&str],
                users: &[&str],
                groups: &[&str],
                networks: &[&str],
                action| Rule {
        index,
        host: host.map(|h| HostPattern::parse(h).unwrap()),
        path: path.map(|p| PathPattern::parse(p).unwrap()),
        methods: methods.iter().map(|s| s.to_string()).collect(),
        users: users.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
        networks: networks.iter().map(|s| s.parse().unwrap()).collect(),
        action,
    };
    let app = Some("app.example.com");
    let any = Some("*.example.com");
    Policy {
        rules: vec![
            rule(
                0,
                None,
                Some("/manifest.json"),
                &[],
                &[],
                &[],
                &[],
                Action::Bypass,
            ),
            rule(
                1,
                app,
                Some("/admin/**"),
                &[],
                &[],
                &["admins"],
                &[],
                Action::Allow,
            ),
            rule(2, app, Some("/admin/**"), &[], &[], &[], &[], Action::Deny),
            rule(
                3,
                app,
                Some("/api/**"),
                &["GET"],
                &[],
                &[],
                &[],
                Action::Allow,
            ),
            rule(4, app, Some("/api/**"), &[], &[], &[], &[], Action::Deny),
            rule(
                5,
                any,
                Some("/internal/**"),
                &[],
                &[],
                &[],
                &["10.0.0.0/8"],
                Action::Allow,
            ),
            rule(
                6,
                any,
                Some("/internal/**"),
                &[],
                &[],
                &[],
                &[],
                Action::Deny,
            ),
            rule(7, app, None, &[], &["bob"], &[], &[], Action::Deny),
            rule(8, app, None, &[], &[], &[], &[], Action::Allow),
            rule(
                9,
                Some("grafana.example.com"),
                Some("/public/*.png"),
                &["GET", "HEAD"],
                &[],
                &[],
                &[],
                Action::Bypass,
            ),
            rule(
                10,
                Some("grafana.example.com"),
                None,
                &[],
                &[],
                &["family"],
                &[],
                Action::Allow,
            ),
        ],
        allow_unmatched: false,
        source: "test.toml".into(),
    }
}

fn who(name: &str) -> Option<Identity> {
    let groups = match name {
        "alice" => vec!["family".to_string()],
        "carol" => vec!["admins".to_string(), "family".to_string()],
        "bob" => vec![],
        _ => return None,
    };
    Some(Identity {
        user: name.into(),
        groups,
        email: None,
        email_verified: false,
        name: None,
    })
}

/// What /verify decides: canonicalise, ask without identity, then with it if needed.
fn decide(
    policy: &Policy,
    host: &str,
    target: &str,
    method: &str,
    client: Option<IpAddr>,
    user: &str,
) -> String {
    let host = match canonical::host(host) {
        Ok(h) => h,
        Err(_) => return "400".into(),
    };
    let path = match canonical::path(target) {
        Ok(p) => p,
        Err(_) => return "400".into(),
    };
    let request = Request {
        host: Some(host),
        path: Some(path),
        method: method.into(),
        client,
    };
    let identity = who(user);
    let mut decision = policy.evaluate(&request, None);
    if let (Decision::NeedsIdentity { .. }, Some(id)) = (&decision, &identity) {
        decision = policy.evaluate(&request, Some(id));
    }
    match decision {
        Decision::Bypass { rule } => format!("bypass:{rule}"),
        Decision::Allow { rule: Some(r) } => format!("allow:{r}"),
        Decision::Allow { rule: None } => "allow".into(),
        Decision::Deny { rule: Some(r) } => format!("deny:{r}"),
        Decision::Deny { rule: None } => "deny".into(),
        Decision::NeedsIdentity { .. } => "auth".into(),
    }
}

const TEN: &str = "10.1.2.3";
const OUT: &str = "203.0.113.9";

#[test]
fn rule_table() {
    let p = rules();
    // (host, target, method, client, user, expected)
    let cases: &[(&str, &str, &str, &str, &str, &str)] = &[
        // public paths need no credentials, on any host
        (
            "app.example.com",
            "/manifest.json",
            "GET",
            OUT,
            "",
            "bypass:0",
        ),
        ("other.test", "/manifest.json", "GET", OUT, "", "bypass:0"),
        (
            "app.example.com",
            "/manifest.json?x=1",
            "GET",
            OUT,
            "",
            "bypass:0",
        ),
        (
            "app.example.com",
            "//manifest.json",
            "GET",
            OUT,
            "",
            "bypass:0",
        ),
        (
            "app.example.com",
            "/manifest.json/..",
            "GET",
            OUT,
            "",
            "400",
        ),
        // admin area: admins only, whatever the spelling of the path
        ("app.example.com", "/admin", "GET", OUT, "carol", "allow:1"),
        ("app.example.com", "/admin", "GET", OUT, "alice", "deny:2"),
        ("app.example.com", "/admin", "GET", OUT, "", "auth"),
        (
            "app.example.com",
            "/admin/users",
            "POST",
            OUT,
            "alice",
            "deny:2",
        ),
        (
            "app.example.com",
            "/admin?x=/public",
            "GET",
            OUT,
            "alice",
            "deny:2",
        ),
        (
            "app.example.com",
            "/admin#/public",
            "GET",
            OUT,
            "alice",
            "deny:2",
        ),
        ("app.example.com", "//admin", "GET", OUT, "alice", "deny:2"),
        ("app.example.com", "/./admin", "GET", OUT, "alice", "400"),
        ("app.example.com", "/x/../admin", "GET", OUT, "alice", "400"),
        (
            "app.example.com",
            "/public/%2e%2e/admin",
            "GET",
            OUT,
            "alice",
            "400",
        ),
        (
            "app.example.com",
            "/public/%2E%2E/admin",
            "GET",
            OUT,
            "alice",
            "400",
        ),
        ("app.example.com", "/%2e/admin", "GET", OUT, "alice", "400"),
        (
            "app.example.com",
            "/public/..;/admin",
            "GET",
            OUT,
            "alice",
            "400",
        ),
        (
            "app.example.com",
            "/admin;jsessionid=x",
            "GET",
            OUT,
            "alice",
            "deny:2",
        ),
        ("app.example.com", "/admin/", "GET", OUT, "alice", "deny:2"),
        (
            "app.example.com",
            "/admin/./settings",
            "GET",
            OUT,
            "alice",
            "400",
        ),
        (
            "app.example.com",
            "/../../admin",
            "GET",
            OUT,
            "alice",
            "400",
        ),
        ("app.example.com", "/%61dmin", "GET", OUT, "alice", "deny:2"),
        ("app.example.com", "/admin%2Fx", "GET", OUT, "alice", "400"),
        ("app.example.com", "/admin%2fx", "GET", OUT, "carol", "400"),
        (
            "app.example.com",
            "/public%2F..%2Fadmin",
            "GET",
            OUT,
            "alice",
            "400",
        ),
        ("app.example.com", "/admin%5cx", "GET", OUT, "alice", "400"),
        ("app.example.com", "/admin%00", "GET", OUT, "alice", "400"),
        (
            "app.example.com",
            "/admin%0d%0a",
            "GET",
            OUT,
            "alice",
            "400",
        ),
        ("app.example.com", "/admin%ff", "GET", OUT, "alice", "400"),
        // paths are case-sensitive: /ADMIN is not /admin (the app decides what it serves)
        ("app.example.com", "/ADMIN", "GET", OUT, "alice", "allow:8"),
        (
            "app.example.com",
            "/administrator",
            "GET",
            OUT,
            "alice",
            "allow:8",
        ),
        // hosts are case-folded, without trailing dot or port
        ("App.Example.COM.", "/admin", "GET", OUT, "alice", "deny:2"),
        ("APP.EXAMPLE.COM", "/admin", "GET", OUT, "carol", "allow:1"),
        (
            "app.example.com:8443",
            "/admin",
            "GET",
            OUT,
            "alice",
            "deny:2",
        ),
        ("app.example.com.", "/", "GET", OUT, "alice", "allow:8"),
        // methods
        (
            "app.example.com",
            "/api/states",
            "GET",
            OUT,
            "alice",
            "allow:3",
        ),
        (
            "app.example.com",
            "/api/states",
            "POST",
            OUT,
            "alice",
            "deny:4",
        ),
        (
            "app.example.com",
            "/api/states",
            "DELETE",
            OUT,
            "carol",
            "deny:4",
        ),
        ("app.example.com", "/api", "GET", OUT, "alice", "allow:3"),
        (
            "app.example.com",
            "/api/../admin",
            "GET",
            OUT,
            "alice",
            "400",
        ),
        ("app.example.com", "/api/states", "GET", OUT, "", "auth"),
        ("app.example.com", "/api/states", "POST", OUT, "", "deny:4"),
        // networks
        (
            "app.example.com",
            "/internal/metrics",
            "GET",
            TEN,
            "alice",
            "allow:5",
        ),
        (
            "app.example.com",
            "/internal/metrics",
            "GET",
            OUT,
            "alice",
            "deny:6",
        ),
        (
            "grafana.example.com",
            "/internal/x",
            "GET",
            TEN,
            "alice",
            "allow:5",
        ),
        (
            "grafana.example.com",
            "/internal/x",
            "GET",
            OUT,
            "carol",
            "deny:6",
        ),
        (
            "app.example.com",
            "/internal/metrics",
            "GET",
            OUT,
            "",
            "deny:6",
        ),
        (
            "app.example.com",
            "/internal/metrics",
            "GET",
            TEN,
            "",
            "auth",
        ),
        (
            "app.example.com",
            "/internal/../metrics",
            "GET",
            OUT,
            "alice",
            "400",
        ),
        // a user singled out
        ("app.example.com", "/", "GET", OUT, "bob", "deny:7"),
        (
            "app.example.com",
            "/api/states",
            "GET",
            OUT,
            "bob",
            "allow:3",
        ),
        ("app.example.com", "/", "GET", OUT, "alice", "allow:8"),
        ("app.example.com", "/", "GET", OUT, "", "auth"),
        // grafana: a public glob, then family only
        (
            "grafana.example.com",
            "/public/logo.png",
            "GET",
            OUT,
            "",
            "bypass:9",
        ),
        (
            "grafana.example.com",
            "/public/logo.png",
            "HEAD",
            OUT,
            "",
            "bypass:9",
        ),
        (
            "grafana.example.com",
            "/public/logo.png",
            "POST",
            OUT,
            "",
            "auth",
        ),
        (
            "grafana.example.com",
            "/public/a/logo.png",
            "GET",
            OUT,
            "",
            "auth",
        ),
        (
            "grafana.example.com",
            "/public/logo.png.exe",
            "GET",
            OUT,
            "",
            "auth",
        ),
        (
            "grafana.example.com",
            "/d/abc",
            "GET",
            OUT,
            "alice",
            "allow:10",
        ),
        ("grafana.example.com", "/d/abc", "GET", OUT, "bob", "deny"),
        (
            "Grafana.Example.Com.",
            "/d/abc",
            "GET",
            OUT,
            "carol",
            "allow:10",
        ),
        // nothing matches: default deny
        ("other.test", "/", "GET", OUT, "carol", "deny"),
        ("example.com", "/", "GET", OUT, "carol", "deny"),
        ("evilexample.com", "/", "GET", OUT, "carol", "deny"),
        (
            "app.example.com.evil.test",
            "/",
            "GET",
            OUT,
            "carol",
            "deny",
        ),
    ];
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for (host, target, method, client, user, want) in cases {
        let got = decide(&p, host, target, method, client.parse().ok(), user);
        assert_eq!(
            &got, want,
            "{method} {host}{target} from {client} as {user:?}"
        );
    }
}

#[test]
fn allow_unmatched_lets_any_signed_in_user_through_only_where_no_rule_matches() {
    let mut p = rules();
    p.allow_unmatched = true;
    assert_eq!(decide(&p, "other.test", "/", "GET", None, "bob"), "allow");
    assert_eq!(decide(&p, "other.test", "/", "GET", None, ""), "auth");
    assert_eq!(
        decide(&p, "app.example.com", "/admin", "GET", None, "alice"),
        "deny:2"
    );
}

#[test]
fn a_network_rule_judges_the_client_address_it_is_given() {
    // Which address that is (never one an untrusted client wrote) is `http::extract`'s to
    // say: see `x_forwarded_for_from_an_untrusted_peer_is_never_the_client` there.
    let p = rules();
    let outside: Option<IpAddr> = OUT.parse().ok();
    let inside: Option<IpAddr> = TEN.parse().ok();
    assert_eq!(
        decide(
            &p,
            "app.example.com",
            "/internal/x",
            "GET",
            outside,
            "alice"
        ),
        "deny:6"
    );
    assert_eq!(
        decide(&p, "app.example.com", "/internal/x", "GET", inside, "alice"),
        "allow:5"
    );
}

/// Re-encodes a canonical path as a proxy would send it (a literal '%' becomes "%25").
fn encode(path: &str) -> String {
    path.replace('%', "%25")
}

proptest! {
    #[test]
    fn a_path_and_its_normalised_form_get_the_same_decision(
        parts in prop::collection::vec(
            prop::sample::select(vec!["/", "//", ".", "..", "%2e", "%2E", "%2e%2e", ";x", ";", "admin", "ADMIN",
                "api", "public", "internal", "manifest.json", "%61", "%25", "%41dmin", "a", "x"]),
            0..12,
        ),
        method in prop::sample::select(vec!["GET", "POST", "HEAD"]),
        user in prop::sample::select(vec!["", "alice", "bob", "carol"]),
    ) {
        let p = rules();
        let raw = format!("/{}", parts.concat());
        let decision = decide(&p, "app.example.com", &raw, method, None, user);
        if let Ok(normal) = canonical::path(&raw) {
            let encoded = encode(&normal);
            let twice = canonical::path(&encoded);
            prop_assert_eq!(twice.as_deref(), Ok(normal.as_ref()), "idempotent");
            let again = decide(&p, "app.example.com", &encode(&normal), method, None, user);
            prop_assert_eq!(decision, again, "raw {} normal {}", raw, normal);
        } else {
            prop_assert_eq!(decision, "400");
        }
    }
}

#[test]
fn an_unknown_request_fails_closed() {
    let p = rules();
    let unknown = Request {
        host: None,
        path: None,
        method: "GET".into(),
        client: None,
    };
    // The admin deny rule (host and path unknown) applies; no allow rule with a host does.
    let carol = who("carol");
    assert_eq!(
        p.evaluate(&unknown, carol.as_ref()),
        Decision::Deny { rule: Some(2) }
    );
    // A network deny rule matches a client of unknown address.
    let mut internal = rules();
    internal.rules.retain(|r| r.index == 6 || r.index == 5);
    let no_client = Request {
        host: Some("app.example.com".into()),
        path: Some("/internal/x".into()),
        method: "GET".into(),
        client: None,
    };
    assert_eq!(
        internal.evaluate(&no_client, carol.as_ref()),
        Decision::Deny { rule: Some(6) }
    );
}
