//! Locking a user out and letting them back in: `POST /admin/user` (`action=disable|enable`)
//! and the revoke page's buttons. The entry goes to the revocation store like any revocation.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{bad, carry_out, form_post, revoke_admin, revoke_form};
use crate::error::{AppError, BadInput};
use crate::http::answer;
use crate::http::extract::{self, RequestMeta};
use crate::http::{AppState, State};
use crate::revocation::Entry;

/// `POST /admin/user` with `user` and `action=disable|enable` (form-encoded): locks the user
/// out, or lets them back in, everywhere within a second. A page for a browser,
/// `{"user": name, "locked": bool}` for an API client.
pub async fn user(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let meta = form_post(&req, &state);
    let asked = revoke_admin(&req, &state).and_then(|who| {
        let form = extract::Form::parse(&body);
        let entry = requested(&form, state.clock.now_ms()).unwrap_or_else(|| {
            Err(bad(
                "action",
                "missing: `disable` (lock the user out) or `enable` (let them back in)".into(),
            ))
        })?;
        Ok((who, entry))
    });
    carry_out(&state, &meta, asked).await
}

/// A lock-out the form asks for, with `user`: `action=disable|enable` (`/admin/user`) or the
/// revoke page's `lock` and `unlock` buttons. `None` when it asks for none.
pub(super) fn requested(form: &extract::Form, now_ms: i64) -> Option<Result<Entry, AppError>> {
    let given = |name: &str| form.get(name).map(str::trim).filter(|v| !v.is_empty());
    let lock = match (given("action"), given("lock"), given("unlock")) {
        (None, None, None) => return None,
        (Some("disable"), None, None) | (None, Some(_), None) => true,
        (Some("enable"), None, None) | (None, None, Some(_)) => false,
        (Some(other), None, None) => {
            return Some(Err(bad(
                "action",
                format!(
                    "`{other}`: say `disable` (lock the user out) or `enable` (let them back in)"
                ),
            )))
        }
        _ => {
            return Some(Err(AppError::BadRequest(BadInput::Revocation(
                "lock the user out or let them back in, not both".into(),
            ))))
        }
    };
    Some(lock_entry(
        given("user"),
        ["serial", "device", "jti"]
            .iter()
            .any(|f| given(f).is_some()),
        lock,
        now_ms,
    ))
}

fn lock_entry(user: Option<&str>, more: bool, lock: bool, now_ms: i64) -> Result<Entry, AppError> {
    let user =
        user.ok_or_else(|| bad("user", "missing: whom to lock out or let back in".into()))?;
    crate::ca::store::check_name(user, 256).map_err(|e| bad("user", e))?;
    if more {
        return Err(AppError::BadRequest(BadInput::Revocation(
            "a lock-out takes the user field only".into(),
        )));
    }
    let id = user.to_string();
    Ok(if lock {
        Entry::Lock { id, at_ms: now_ms }
    } else {
        Entry::Unlock { id, at_ms: now_ms }
    })
}

/// The answer to a lock-out or a lift: a page or `{"user": name, "locked": bool}`.
pub(super) fn answer(
    state: &AppState,
    meta: &RequestMeta,
    user: &str,
    locked: bool,
) -> HttpResponse {
    let mut note = String::new();
    if let Some(listed) = state.config.identity.users.get(user) {
        if listed.disabled && !locked {
            note = " The configuration file disables this user ([[users]] disabled = true): they stay disabled until that line goes.".into();
        }
    }
    if meta.wants_html {
        let said = if locked {
            format!("Locked out {user}: their certificates, sessions and tokens are refused everywhere within a second.{note}")
        } else {
            format!("Let {user} back in: their certificates sign in again within a second.{note}")
        };
        return answer::html(
            StatusCode::OK,
            state.pages.render(&revoke_form(state, &said)),
        );
    }
    let mut body = serde_json::json!({"user": user, "locked": locked});
    if !note.is_empty() {
        body["note"] = serde_json::Value::String(note.trim().to_string());
    }
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(body: &str) -> Option<Result<Entry, String>> {
        requested(&extract::Form::parse(body.as_bytes()), 7).map(|r| r.map_err(|e| e.to_string()))
    }

    #[test]
    fn a_lock_out_is_asked_for_by_action_or_button_with_the_user_alone() {
        let lock = Entry::Lock {
            id: "bob".into(),
            at_ms: 7,
        };
        let unlock = Entry::Unlock {
            id: "bob".into(),
            at_ms: 7,
        };
        assert_eq!(asked("user=bob&action=disable"), Some(Ok(lock.clone())));
        assert_eq!(asked("user=bob&lock=1&serial="), Some(Ok(lock)));
        assert_eq!(asked("user=bob&action=enable"), Some(Ok(unlock.clone())));
        assert_eq!(asked("user=+bob+&unlock=1"), Some(Ok(unlock)));
        assert_eq!(
            asked("user=bob&revoke=1"),
            None,
            "a revocation, not a lock-out"
        );
        for (body, says) in [
            ("user=bob&action=off", "action"),
            ("user=bob&lock=1&unlock=1", "not both"),
            ("lock=1", "user: missing"),
            ("user=bob&lock=1&serial=0a", "user field only"),
            ("user=a,b&lock=1", "user:"),
        ] {
            let Some(Err(e)) = asked(body) else {
                panic!("{body}: accepted");
            };
            assert!(e.contains(says), "{body}: {e}");
        }
    }
}
