//! Pages a person reads: one template, filled per situation. No JavaScript.

use minijinja::Environment;
use serde::Serialize;

/// What one page says.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub title: String,
    pub message: String,
    pub hints: Vec<String>,
    pub link: Option<Link>,
    /// Shown once, large (a one-time password).
    pub secret: Option<String>,
    pub form: Option<Form>,
    /// An SVG image certgate generated itself (a QR code); inserted as is.
    pub svg: Option<String>,
}

/// A POST form of buttons (no JavaScript needed).
#[derive(Debug, Clone, Serialize)]
pub struct Form {
    pub action: String,
    /// Text inputs: (name, label, value).
    pub fields: Vec<(String, String, String)>,
    /// (name, value, label)
    pub buttons: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub href: String,
    pub text: String,
}

impl Page {
    pub fn message(title: &str, message: &str, hint: &str) -> Self {
        Self {
            title: title.into(),
            message: message.into(),
            hints: vec![hint.into()],
            link: None,
            secret: None,
            form: None,
            svg: None,
        }
    }

    pub fn no_certificate() -> Self {
        Self {
            title: "No client certificate".into(),
            message: "This sign-in needs a client certificate, and your browser did not send one.".into(),
            hints: vec![
                "If your browser asked you to choose a certificate, choose the one your administrator gave you.".into(),
                "If it did not ask, the certificate is probably not installed on this device: import the .p12 file (iOS: open it and install the profile; Android: Settings > Security > Install certificate > VPN & app user certificate; desktop: the browser's certificate settings), then close and reopen the browser.".into(),
                "If you cancelled the prompt, close all windows of the browser and try again.".into(),
            ],
            link: None,
            secret: None,
            form: None,
            svg: None,
        }
    }

    pub fn sign_in(location: &str) -> Self {
        Self {
            title: "Sign-in required".into(),
            message: "Continue to sign in with your certificate.".into(),
            hints: Vec::new(),
            link: Some(Link {
                href: location.into(),
                text: "Sign in".into(),
            }),
            secret: None,
            form: None,
            svg: None,
        }
    }

    pub fn signed_in(user: &str, groups: &[String]) -> Self {
        let groups = if groups.is_empty() {
            "no groups".to_string()
        } else {
            groups.join(", ")
        };
        Self {
            title: "Signed in".into(),
            message: format!("You are signed in as {user} ({groups})."),
            hints: vec!["You can close this page and go back to the app.".into()],
            link: None,
            secret: None,
            form: None,
            svg: None,
        }
    }

    pub fn signed_out() -> Self {
        Self::message(
            "Signed out",
            "Your session has ended.",
            "Sign in again with your certificate whenever you like.",
        )
    }
}

/// Compiled templates.
pub struct Pages {
    env: Environment<'static>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pages")
    }
}

const PAGE: &str = include_str!("../../templates/page.html");
const STYLE: &str = include_str!("../../static/style.css");

impl Pages {
    /// # Errors
    /// When the embedded template does not compile (a build defect, caught by tests).
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.set_keep_trailing_newline(true);
        env.add_template("page.html", PAGE)?;
        env.add_global("style", STYLE);
        Ok(Self { env })
    }

    /// Renders a page; falls back to plain escaped text if rendering fails.
    pub fn render(&self, page: &Page) -> String {
        self.env
            .get_template("page.html")
            .and_then(|t| t.render(minijinja::context! { page => page }))
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "page template failed");
                format!(
                    "<!doctype html><title>certgate</title><p>{}</p>",
                    escape(&page.message)
                )
            })
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        let pages = Pages::new().unwrap();
        let html = pages.render(&Page::message("T", "<script>x</script>", "h"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>x"));
    }

    #[test]
    fn sign_in_page_links_to_the_location() {
        let pages = Pages::new().unwrap();
        let html = pages.render(&Page::sign_in("https://auth.example.test/auth?rd=x"));
        // minijinja escapes '/' as an entity; browsers read it back as '/'.
        let html = html.replace("&#x2f;", "/");
        assert!(
            html.contains("href=\"https://auth.example.test/auth?rd=x\""),
            "{html}"
        );
    }
}
