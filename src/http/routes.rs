//! Every route certgate serves, and who may call it, in one table ([`ROUTES`]). Routes are
//! registered from this table only, so none can exist without a [`Class`]:
//!
//! - [`Class::Public`]: anyone; the answer depends on what the request carries (a
//!   certificate, a session, a token, a one-time link's secret) or is public anyway (JWKS, CRL,
//!   health).
//! - [`Class::Admin`]: members of `admin.groups`, with a session bound to their certificate
//!   or (API) their certificate alone. A gate refuses everyone else before the handler runs,
//!   and the handler checks again (origin, which credential its form takes).
//! - [`Class::Operator`]: monitoring that names users and devices or shows internals. Served
//!   only on `listen.metrics`, never on `listen.http` or `listen.mtls`, the listeners a proxy
//!   forwards to: there they do not exist (404).
//!
//! `/verify` is also answered ahead of the router by [`super::Front`], on the public
//! listeners only; its entry here keeps the table complete and serves escaped spellings.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::{from_fn, Next};
use actix_web::{guard, web, HttpResponse};

use super::extract::RequestMeta;
use super::{admin, auth, enroll, logout, oidc, ops, status, token, verify, Live};

/// Who may call a route; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Public,
    Admin,
    Operator,
}

/// One row of the table.
pub struct Route {
    /// `None`: any method.
    pub method: Option<Method>,
    /// actix-web's pattern: `{name}` is one path segment.
    pub path: &'static str,
    pub class: Class,
    handler: fn(actix_web::Route) -> actix_web::Route,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = self.method.as_ref().map_or("any", Method::as_str);
        write!(f, "{method} {} ({:?})", self.path, self.class)
    }
}

const fn row(
    method: Option<Method>,
    path: &'static str,
    class: Class,
    handler: fn(actix_web::Route) -> actix_web::Route,
) -> Route {
    Route {
        method,
        path,
        class,
        handler,
    }
}

const GET: Option<Method> = Some(Method::GET);
const POST: Option<Method> = Some(Method::POST);

/// Every route, in matching order.
pub static ROUTES: &[Route] = &[
    row(GET, "/auth", Class::Public, |r| r.to(auth::handle)),
    row(None, "/verify", Class::Public, |r| r.to(verify::handle)),
    row(POST, "/token", Class::Public, |r| r.to(token::handle)),
    row(POST, "/logout", Class::Public, |r| r.to(logout::handle)),
    row(GET, "/.well-known/jwks.json", Class::Public, |r| {
        r.to(super::jwks)
    }),
    // The signed-in person's own status; without a session, a redirect to /auth.
    row(GET, "/", Class::Public, |r| r.to(status::show)),
    row(GET, "/healthz", Class::Public, |r| r.to(ops::healthz)),
    row(GET, "/readyz", Class::Public, |r| r.to(ops::readyz)),
    row(GET, "/ca/crl.pem", Class::Public, |r| r.to(super::crl)),
    // The OpenID Connect provider (`[oidc]`; without it, 404). Who may sign in to which app is
    // the client's `users`/`groups`, checked by the handlers.
    row(
        GET,
        "/.well-known/openid-configuration",
        Class::Public,
        |r| r.to(oidc::discovery),
    ),
    row(
        GET,
        "/.well-known/oauth-authorization-server",
        Class::Public,
        |r| r.to(oidc::discovery),
    ),
    row(GET, "/oidc/jwks", Class::Public, |r| r.to(oidc::jwks)),
    row(GET, "/oidc/authorize", Class::Public, |r| {
        r.to(oidc::authorize::handle)
    }),
    row(POST, "/oidc/token", Class::Public, |r| {
        r.to(oidc::token::handle)
    }),
    // Clients authenticate (as at /oidc/token): RFC 7662 introspection, RFC 7009 revocation.
    row(POST, "/oidc/introspect", Class::Public, |r| {
        r.to(oidc::introspect::handle)
    }),
    row(POST, "/oidc/revoke", Class::Public, |r| {
        r.to(oidc::revoke::handle)
    }),
    row(GET, "/oidc/userinfo", Class::Public, |r| {
        r.to(oidc::userinfo::handle)
    }),
    row(POST, "/oidc/userinfo", Class::Public, |r| {
        r.to(oidc::userinfo::handle)
    }),
    // RP-initiated logout: an app sends the browser here (a link, or a form it posts).
    row(GET, "/oidc/logout", Class::Public, |r| {
        r.to(oidc::logout::get)
    }),
    row(POST, "/oidc/logout", Class::Public, |r| {
        r.to(oidc::logout::post)
    }),
    // RFC 8628: a device asks; a person with a certificate approves on the page.
    row(POST, "/oidc/device", Class::Public, |r| {
        r.to(oidc::device::authorization)
    }),
    row(GET, "/oidc/device/verify", Class::Public, |r| {
        r.to(oidc::device::page)
    }),
    row(POST, "/oidc/device/verify", Class::Public, |r| {
        r.to(oidc::device::decide)
    }),
    // A one-time link; its secret is the credential.
    row(GET, "/enroll/download/{id}", Class::Public, |r| {
        r.to(enroll::download)
    }),
    row(GET, "/enroll/{secret}", Class::Public, |r| {
        r.to(enroll::show)
    }),
    row(POST, "/enroll/{secret}", Class::Public, |r| {
        r.to(enroll::redeem)
    }),
    row(GET, "/admin/enroll", Class::Admin, |r| r.to(admin::show)),
    row(POST, "/admin/enroll", Class::Admin, |r| r.to(admin::create)),
    row(GET, "/admin/revoke", Class::Admin, |r| {
        r.to(admin::show_revoke)
    }),
    row(POST, "/admin/revoke", Class::Admin, |r| r.to(admin::revoke)),
    // Lock a user out, or let them back in (`action=disable|enable`).
    row(POST, "/admin/user", Class::Admin, |r| r.to(admin::user)),
    // Names every user and device (certificate expiry) and counts every decision.
    row(GET, "/metrics", Class::Operator, |r| r.to(ops::metrics)),
    // Why this replica is not ready: store errors, file paths.
    row(GET, "/readyz/details", Class::Operator, |r| {
        r.to(ops::readyz_details)
    }),
];

/// The routes of `listen.http` and `listen.mtls`: public and admin ones. Operator-only routes
/// are not registered here, so they answer 404 like any unknown path.
pub fn public(cfg: &mut web::ServiceConfig) {
    for route in ROUTES {
        match route.class {
            Class::Public => {
                cfg.service(resource(route));
            }
            Class::Admin => {
                cfg.service(resource(route).wrap(from_fn(admin_gate)));
            }
            Class::Operator => {}
        }
    }
    cfg.default_service(web::to(super::not_found));
}

/// The routes of `listen.metrics`: operator-only ones, nothing else.
pub fn operator(cfg: &mut web::ServiceConfig) {
    for route in ROUTES.iter().filter(|r| r.class == Class::Operator) {
        cfg.service(resource(route));
    }
    cfg.default_service(web::to(super::not_found));
}

/// The method guard sits on the resource (as `ServiceConfig::route` does), so a request
/// with another method falls through to the next row with the same path.
fn resource(route: &Route) -> actix_web::Resource {
    let resource = web::resource(route.path);
    let resource = match &route.method {
        Some(method) => resource.guard(guard::Method(method.clone())),
        None => resource,
    };
    resource.route((route.handler)(web::route()))
}

/// [`Class::Admin`]: nobody but an admin reaches the handler.
async fn admin_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let refused = match req.app_data::<web::Data<Live>>() {
        Some(live) => {
            let state = live.current();
            admin::gate(req.request(), &state).err().map(|e| {
                // Pages for people (every GET, and forms a browser posts); JSON for API clients.
                let mut meta = RequestMeta::from_request(req.request(), &state);
                meta.wants_html = req.method() == Method::GET
                    || req
                        .headers()
                        .get(header::ACCEPT)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|a| a.contains("text/html"));
                state.reply(&meta, &e)
            })
        }
        None => Some(HttpResponse::InternalServerError().finish()),
    };
    match refused {
        Some(answer) => Ok(req.into_response(answer)),
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths_and_only_they_are_admin_routes() {
        for route in ROUTES {
            assert_eq!(
                route.path.starts_with("/admin/"),
                route.class == Class::Admin,
                "{route:?}"
            );
        }
    }

    #[test]
    fn metrics_and_readiness_details_are_operator_only() {
        let operator: Vec<&str> = ROUTES
            .iter()
            .filter(|r| r.class == Class::Operator)
            .map(|r| r.path)
            .collect();
        assert_eq!(operator, ["/metrics", "/readyz/details"]);
    }

    #[test]
    fn every_method_and_path_is_in_the_table_once() {
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(seen.insert((route.method.clone(), route.path)), "{route:?}");
        }
    }
}
