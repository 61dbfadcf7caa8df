//! `GET /`: the signed-in person's status: who they are, their groups, their devices'
//! certificates (with a warning 14 days before one expires), their live sessions and tokens,
//! and buttons to log out here or everywhere.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::answer;
use super::extract::RequestMeta;
use super::pages::{Form, Page, Section};
use super::{AppState, State};
use crate::ca::store::CaStore;
use crate::ca::CertStatus;
use crate::error::{AppError, Challenge};
use crate::identity;

/// Days ahead of expiry when the page starts warning.
pub const WARN_DAYS: i64 = 14;

pub async fn show(req: HttpRequest, state: State) -> HttpResponse {
    let mut meta = RequestMeta::from_request(&req, &state);
    meta.wants_html = true;
    match page(&req, &state) {
        Ok(p) => answer::html(StatusCode::OK, state.pages.render(&p)),
        Err(e) => state.reply(&meta, &e),
    }
}

fn page(req: &HttpRequest, state: &AppState) -> Result<Page, AppError> {
    let cfg = &state.config;
    let now = state.clock.now();
    let claims = state.session(req).ok_or_else(|| {
        let home = format!("{}/", cfg.public_base());
        AppError::Unauthenticated(Challenge {
            location: Some(state.auth_url(Some(&home))),
            redirect: true,
            refused: None,
            reason: "status page without a session".into(),
        })
    })?;
    let who = identity::from_claims(&claims, &cfg.identity)?;
    let groups = if who.groups.is_empty() {
        "none".to_string()
    } else {
        who.groups.join(", ")
    };
    let mut message = format!("Groups: {groups}.");
    if let Some(email) = &who.email {
        message.push_str(&format!(" Email: {email}."));
    }
    let devices = Section {
        heading: "Your devices".into(),
        items: devices(state, &who.user, claims.x5s.as_deref(), now),
    };
    let sessions = Section {
        heading: "Your sessions and tokens".into(),
        items: sessions(state, &who.user, &claims.jti, now),
    };
    Ok(Page {
        title: format!("Signed in as {}", who.name.as_deref().unwrap_or(&who.user)),
        message,
        sections: vec![devices, sessions],
        form: Some(Form {
            action: state.public("/logout"),
            fields: Vec::new(),
            buttons: vec![
                ("logout".into(), "1".into(), "Log out".into()),
                ("everywhere".into(), "1".into(), "Log out everywhere".into()),
            ],
        }),
        ..Page::default()
    })
}

/// The certificates the built-in CA issued to `user`, with a warning before one expires.
fn devices(state: &AppState, user: &str, this_serial: Option<&str>, now: i64) -> Vec<String> {
    let store = CaStore::new(&state.config.data_dir);
    // A list that cannot be read leaves every status unknown, never "valid".
    let revoked = store.revoked().ok();
    let mut items = Vec::new();
    for r in store
        .list()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.user == user)
    {
        let device = r.device.as_deref().unwrap_or("certificate");
        let date = day(r.not_after);
        let this = if this_serial.map(crate::cert::Serial::canonical).as_deref()
            == Some(r.serial.as_str())
        {
            " (this sign-in)"
        } else {
            ""
        };
        let revoked_here = revoked.as_ref().map(|set| set.contains(&r.serial));
        // A store too stale to trust says "revoked" when it knows, and nothing else.
        let revoked_in_store = Some(state.revocations.is_serial_revoked(r.serial.as_str()))
            .filter(|revoked| *revoked || state.stale().is_none());
        items.push(match CertStatus::of(&r, &[revoked_here, revoked_in_store], now) {
            CertStatus::Unknown => {
                format!("{device}{this}: status unknown (the revocation list cannot be read)")
            }
            CertStatus::Revoked => format!("{device}{this}: revoked"),
            CertStatus::Expired => format!("{device}{this}: expired on {date}"),
            CertStatus::Valid { days_left } if days_left <= WARN_DAYS => format!("{device}{this}: expires on {date}, in {days_left} days. Renew it soon: ask your administrator for a new certificate."),
            CertStatus::Valid { .. } => format!("{device}{this}: valid until {date}"),
        });
    }
    if items.is_empty() {
        items.push(
            "No certificates from certgate's own CA (yours may come from another authority)."
                .into(),
        );
    }
    items
}

/// Live sessions and bearer tokens this replica issued to `user` since it started.
fn sessions(state: &AppState, user: &str, this_jti: &str, now: i64) -> Vec<String> {
    let mut items: Vec<String> = state
        .sessions
        .of(user, now)
        .into_iter()
        .filter(|i| !state.revocations.is_jti_revoked(&i.jti))
        .filter(|i| !state.revocations.is_user_revoked(user, i.issued_ms))
        .map(|i| {
            let this = if i.jti == this_jti { " (this one)" } else { "" };
            let device = i.device.as_deref().unwrap_or("a device");
            let from = i.client.map(|c| format!(" from {c}")).unwrap_or_default();
            format!(
                "{kind}{this}: {device}{from}, since {start}, until {end}",
                kind = capitalise(i.kind),
                start = moment(i.issued_at),
                end = moment(i.expires_at),
            )
        })
        .collect();
    if items.is_empty() {
        items.push("This session (started before the server's last restart).".into());
    }
    items
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn day(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|t| t.date().to_string())
        .unwrap_or_default()
}

fn moment(t: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}
