//! What a request tells us: peer, listener, original URL and method (from trusted proxies
//! only), whether a person is asking, and the credentials it carries.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use actix_web::dev::RequestHead;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::HttpRequest;

use crate::cert::forwarded::CertHeaderFormat;
use crate::error::{AppError, Denial};
use crate::http::AppState;
use crate::tls::Connection;

/// What the checks read from a request: actix-web's `HttpRequest` on most routes, the bare
/// `actix_http::Request` on the `/verify` fast path (`http::front`).
pub trait Incoming {
    fn head(&self) -> &RequestHead;
    /// Set at accept time by [`crate::tls::capture_connection`].
    fn connection(&self) -> Option<&Connection>;

    fn headers(&self) -> &HeaderMap {
        &self.head().headers
    }
    fn peer_addr(&self) -> Option<SocketAddr> {
        self.head().peer_addr
    }
    fn method(&self) -> &Method {
        &self.head().method
    }
    fn query_string(&self) -> &str {
        self.head().uri.query().unwrap_or_default()
    }
}

impl Incoming for HttpRequest {
    fn head(&self) -> &RequestHead {
        HttpRequest::head(self)
    }
    fn connection(&self) -> Option<&Connection> {
        self.conn_data()
    }
}

impl Incoming for actix_http::Request {
    fn head(&self) -> &RequestHead {
        actix_http::Request::head(self)
    }
    fn connection(&self) -> Option<&Connection> {
        self.conn_data()
    }
}

/// The request as the proxy saw it. Borrows from the request: `/verify` reads one per check.
#[derive(Debug, Clone)]
pub struct RequestMeta<'a> {
    pub peer: Option<IpAddr>,
    pub trusted_peer: bool,
    pub original_url: Option<Cow<'a, str>>,
    pub method: Method,
    pub wants_html: bool,
    /// The end client's address: the peer, or what a trusted proxy said it was.
    pub client: Option<IpAddr>,
}

impl<'a> RequestMeta<'a> {
    pub fn from_request(req: &'a dyn Incoming, state: &AppState) -> Self {
        let peer = req.peer_addr().map(|a| a.ip());
        // On the mTLS listener the peer is the end client itself, never a proxy.
        let on_mtls = matches!(req.connection(), Some(Connection::Mtls { .. }));
        let trusted_peer = !on_mtls && peer.is_some_and(|p| state.config.proxy.is_trusted(p));
        let headers = req.headers();
        let original_url = if trusted_peer {
            original_url(headers, state.config.proxy.cert_header)
        } else {
            None
        };
        let method = trusted_peer
            .then(|| {
                first(headers, &[X_FORWARDED_METHOD, X_ORIGINAL_METHOD])
                    .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            })
            .flatten()
            .unwrap_or_else(|| req.method().clone());
        let accepts_html = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        let wants_html = accepts_html && (method == Method::GET || method == Method::HEAD);
        Self {
            peer,
            trusted_peer,
            original_url,
            method,
            wants_html,
            client: client_addr(peer, trusted_peer, headers),
        }
    }
}

/// Header names parsed at compile time: a lookup by `&str` parses the name on every request.
mod names {
    use actix_web::http::header::HeaderName;
    pub const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
    pub const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
    pub const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
    pub const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
    pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
    pub const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
    pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
    pub const X_SSL_CLIENT_VERIFY: HeaderName = HeaderName::from_static("x-ssl-client-verify");
    pub const X_CERTGATE_AUTHORIZATION: HeaderName =
        HeaderName::from_static("x-certgate-authorization");
}
use names::*;

mod cert;

pub use cert::{chain_verified, presented_chain, seen, verified_cert, why_no_cert};

fn first<'a>(headers: &'a HeaderMap, names: &[HeaderName]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| headers.get(n).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// DESIGN.md §3 order: `X-Original-URL`; `X-Forwarded-Proto/Host/Uri`; `X-Original-URI` + `Host`.
/// Traefik and Caddy copy every client header into the auth request and set only the
/// `X-Forwarded-*` ones themselves, so behind them a client's `X-Original-*` is never read.
fn original_url(h: &HeaderMap, proxy: CertHeaderFormat) -> Option<Cow<'_, str>> {
    let nginx_style = !matches!(proxy, CertHeaderFormat::Traefik | CertHeaderFormat::Caddy);
    if nginx_style {
        if let Some(url) = first(h, &[X_ORIGINAL_URL]) {
            return Some(Cow::Borrowed(url));
        }
    }
    let proto = first(h, &[X_FORWARDED_PROTO]);
    if let (Some(host), Some(uri)) = (first(h, &[X_FORWARDED_HOST]), first(h, &[X_FORWARDED_URI])) {
        return Some(format!("{}://{host}{uri}", proto.unwrap_or("https")).into());
    }
    if let (true, Some(uri), Some(host)) = (
        nginx_style,
        first(h, &[X_ORIGINAL_URI]),
        first(h, &[header::HOST]),
    ) {
        return Some(format!("{}://{host}{uri}", proto.unwrap_or("https")).into());
    }
    None
}

/// The client's address for network rules: from a trusted proxy, the last `X-Forwarded-For`
/// entry (the address that proxy saw); from anyone else, the peer itself: a header sent by an
/// untrusted peer never satisfies a network rule. A last entry that is not an address leaves
/// the client unknown, which no allow rule matches.
pub fn client_addr(
    peer: Option<IpAddr>,
    trusted_peer: bool,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    if !trusted_peer {
        return peer;
    }
    match headers
        .get_all(X_FORWARDED_FOR)
        .filter_map(last_entry)
        .last()
    {
        Some(entry) => std::str::from_utf8(entry).ok()?.parse().ok(),
        None => peer,
    }
}

/// The last non-empty entry of one `X-Forwarded-For` header.
fn last_entry(value: &HeaderValue) -> Option<&[u8]> {
    value
        .as_bytes()
        .rsplit(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .find(|entry| !entry.is_empty())
}

/// The token from `Authorization: Bearer …`, if any.
pub fn bearer(req: &dyn Incoming) -> Option<&str> {
    bearer_token(text(req.headers().get(header::AUTHORIZATION)?)?)
}

/// The token from `X-Certgate-Authorization: Bearer …`: certgate's own header, for apps that
/// keep `Authorization` for their own tokens (the printed proxy configs strip it before the
/// app). Everything in it is meant for certgate, so a value that is no bearer token comes back
/// as the empty token, which fails verification: refused, never skipped for another credential.
pub fn certgate_bearer(req: &dyn Incoming) -> Option<&str> {
    let value = req.headers().get(X_CERTGATE_AUTHORIZATION)?;
    Some(text(value).and_then(bearer_token).unwrap_or(""))
}

/// A header value as ASCII text, for a token: `HeaderValue::to_str` checks a ~700-byte token
/// a byte at a time (about 3% of a check's CPU on the bearer path); these checks go a word at
/// a time. Control characters pass here and fail the token's own checks (base64url).
fn text(value: &HeaderValue) -> Option<&str> {
    std::str::from_utf8(value.as_bytes())
        .ok()
        .filter(|t| t.is_ascii())
}

/// `token` from `Bearer token` (the scheme in any case).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// How many values of the session cookie that were not verified before a request may have
/// checked. A browser sends one per domain and path it holds the name for: certgate's own
/// (host-only or `cookie_domain`), one left from before `cookie_domain` or `public_url`'s
/// path changed, and one an app on a parent domain set. Further unknown values are skipped
/// before any signature work, so forged values cannot multiply what a check costs; values
/// verified before (certgate's own, cached from sign-in) are always found.
pub const MAX_SESSION_COOKIE_CHECKS: usize = 4;

/// Every value of our session cookie. The header holds a whole token (~700 bytes) and is read
/// once per check: it is split with `memchr` and only our cookie's value is checked for UTF-8
/// (`to_str` or a `char` split walk it byte by byte, which cost more than the cached check
/// itself).
pub fn session_cookies<'a>(
    req: &'a dyn Incoming,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    req.headers()
        .get_all(header::COOKIE)
        .flat_map(|v| pairs(v.as_bytes()))
        .filter_map(move |pair| cookie_value(pair, name.as_bytes()))
}

/// The session cookie's values verified in turn, at most [`MAX_SESSION_COOKIE_CHECKS`] of them
/// with a signature check (see [`crate::jwt::Tokens::verify_each`]).
pub fn session_tokens<'a>(
    req: &'a dyn Incoming,
    state: &'a AppState,
    now: i64,
) -> impl Iterator<Item = Result<std::sync::Arc<crate::jwt::Claims>, crate::jwt::JwtError>> + 'a {
    state.tokens.verify_each(
        session_cookies(req, &state.config.session.cookie_name),
        crate::jwt::TokenKind::Session,
        now,
        MAX_SESSION_COOKIE_CHECKS,
    )
}

/// The `;`-separated parts of a `Cookie` header.
fn pairs(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b';', header)
        .chain(std::iter::once(header.len()))
        .map(move |end| {
            let pair = header.get(start..end).unwrap_or_default();
            start = end + 1;
            pair
        })
}

/// The value of `name=value` (spaces around the pair and quotes around the value dropped), if
/// the pair is our cookie.
fn cookie_value<'a>(pair: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let pair = pair.trim_ascii();
    let value = pair.strip_prefix(name)?.strip_prefix(b"=")?;
    let value = value.strip_prefix(b"\"").unwrap_or(value);
    let value = value.strip_suffix(b"\"").unwrap_or(value);
    std::str::from_utf8(value).ok()
}

/// Browsers tell us where a POST comes from; a cross-site one (logout, admin forms) must have
/// no effect.
pub fn same_site_post(req: &dyn Incoming, state: &AppState) -> Result<(), AppError> {
    let h = req.headers();
    if h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return Err(AppError::Forbidden(Denial::CrossSite));
    }
    if let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = url::Url::parse(origin)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        let own = state
            .config
            .public_url
            .host_str()
            .map(str::to_ascii_lowercase);
        let allowed = host.as_deref().is_some_and(|h| {
            Some(h) == own.as_deref()
                || crate::policy::host_allowed(h, &state.config.session.allowed_redirect_hosts)
        });
        if !allowed {
            return Err(AppError::Forbidden(Denial::CrossSite));
        }
    }
    Ok(())
}

/// A form-encoded body (`application/x-www-form-urlencoded`), read once.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of field `name`, as sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests;
