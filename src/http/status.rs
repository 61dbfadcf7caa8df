//! `GET /`: the signed-in person's status: who they are, their devices' certificates (with a
//! warning 14 days before one expires), and a way to log out.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::extract::RequestMeta;
use super::pages::{Form, Page};
use super::AppState;
use crate::ca::store::{revoked_serials, CaStore};
use crate::error::{self, AppError, Challenge};
use crate::identity;

/// Days ahead of expiry when the page starts warning.
pub const WARN_DAYS: i64 = 14;

pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut meta = RequestMeta::from_request(&req, &state);
    meta.wants_html = true;
    match page(&req, &state) {
        Ok(p) => error::html(StatusCode::OK, state.pages.render(&p)),
        Err(e) => state.reply(&meta, &e),
    }
}

fn page(req: &HttpRequest, state: &AppState) -> Result<Page, AppError> {
    let cfg = &state.config;
    let now = state.clock.now();
    let claims = state.session(req).ok_or_else(|| {
        let home = format!("{}/", cfg.public_url.as_str().trim_end_matches('/'));
        AppError::Unauthenticated(Challenge {
            location: Some(state.auth_url(Some(&home))),
            redirect: true,
            bearer_error: None,
            reason: "status page without a session".into(),
        })
    })?;
    let who = identity::from_claims(&claims, &cfg.identity)?;
    let store = CaStore::new(&cfg.data_dir);
    let revoked = revoked_serials(&store.revoked_path()).unwrap_or_default();
    let mut hints = Vec::new();
    for r in store
        .list()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.user == who.user)
    {
        let device = r.device.as_deref().unwrap_or("certificate");
        let date = time::OffsetDateTime::from_unix_timestamp(r.not_after)
            .map(|t| t.date().to_string())
            .unwrap_or_default();
        let days = (r.not_after - now) / 86_400;
        let this = if claims.x5s.as_deref() == Some(r.serial.as_str()) {
            " (this sign-in)"
        } else {
            ""
        };
        hints.push(if revoked.contains(&r.serial) {
            format!("{device}{this}: revoked")
        } else if r.not_after <= now {
            format!("{device}{this}: expired on {date}")
        } else if days <= WARN_DAYS {
            format!("{device}{this}: expires on {date}, in {days} days. Renew it soon: ask your administrator for a new certificate.")
        } else {
            format!("{device}{this}: valid until {date}")
        });
    }
    let groups = if who.groups.is_empty() {
        "no groups".to_string()
    } else {
        who.groups.join(", ")
    };
    Ok(Page {
        title: format!("Signed in as {}", who.user),
        message: format!("Groups: {groups}. Your devices:"),
        hints,
        link: None,
        secret: None,
        svg: None,
        form: Some(Form {
            action: state.public("/logout"),
            fields: Vec::new(),
            buttons: vec![("logout".into(), "1".into(), "Log out".into())],
        }),
    })
}
