//! `[headers]`: the names of the identity headers an allowed check carries to the app.

use actix_web::http::header::HeaderName;
use serde::Deserialize;

use crate::settings::Checker;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawHeaders {
    pub user: Option<String>,
    pub groups: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HeaderNames {
    pub user: HeaderName,
    pub groups: HeaderName,
    pub email: HeaderName,
    pub name: HeaderName,
}

impl HeaderNames {
    /// Parsed once here, so a check never parses a header name again.
    pub fn from_raw(c: &mut Checker, raw: RawHeaders) -> Self {
        let names = Self {
            user: header_name(c, "headers.user", raw.user, "remote-user"),
            groups: header_name(c, "headers.groups", raw.groups, "remote-groups"),
            email: header_name(c, "headers.email", raw.email, "remote-email"),
            name: header_name(c, "headers.name", raw.name, "remote-name"),
        };
        distinct(c, &names);
        names
    }
}

/// Each identity header needs a name of its own, and none of the headers an answer already
/// carries or HTTP reserves for the connection: one would overwrite another, a proxy would read
/// a user name where it expects something else, or HTTP/2 would refuse the answer.
fn distinct(c: &mut Checker, h: &HeaderNames) {
    const TAKEN: [&str; 15] = [
        "cache-control",
        "connection",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "content-type",
        "date",
        "host",
        "location",
        "set-cookie",
        "transfer-encoding",
        "www-authenticate",
    ];
    let named = [
        ("headers.user", &h.user),
        ("headers.groups", &h.groups),
        ("headers.email", &h.email),
        ("headers.name", &h.name),
    ];
    for (i, (key, name)) in named.iter().enumerate() {
        if TAKEN.contains(&name.as_str()) {
            c.fail(
                key,
                format!("`{name}` is a header certgate's answers or HTTP itself already use"),
                "e.g. \"Remote-User\"",
            );
        }
        if let Some((other, _)) = named[i + 1..].iter().find(|(_, n)| n == name) {
            c.fail(
                &format!("{key}, {other}"),
                format!("both name the header `{name}`"),
                "give each identity header its own name",
            );
        }
    }
}

fn header_name(
    c: &mut Checker,
    key: &str,
    raw: Option<String>,
    default: &'static str,
) -> HeaderName {
    let Some(name) = raw else {
        return HeaderName::from_static(default);
    };
    HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|_| {
        c.fail(
            key,
            format!("`{name}` is not a valid header name"),
            "e.g. \"Remote-User\"",
        );
        HeaderName::from_static(default)
    })
}
