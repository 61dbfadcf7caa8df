//! Pages a person reads: one template, filled per situation. No JavaScript.

use minijinja::Environment;
use serde::Serialize;

use crate::error::NoCert;

/// What one page says.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Page {
    pub title: String,
    pub message: String,
    pub hints: Vec<String>,
    /// Headed lists below the message (devices, sessions, per-platform help).
    pub sections: Vec<Section>,
    pub link: Option<Link>,
    /// Shown once, large (a one-time password).
    pub secret: Option<String>,
    pub form: Option<Form>,
    /// An SVG image certgate generated itself (a QR code); inserted as is.
    pub svg: Option<String>,
    /// A status code or error code shown small under the title, for reporting problems.
    pub code: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Section {
    pub heading: String,
    pub items: Vec<String>,
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

/// The most likely cause of [`NoCert`], in words for the person in front of the browser.
fn cause(why: NoCert) -> &'static str {
    match why {
        NoCert::NotSent => "Your browser was asked for a certificate and did not send one. Most likely no certificate for this site is installed on this device, or the certificate prompt was cancelled.",
        NoCert::NotForwarded => "The sign-in server never received a certificate: the proxy in front of it did not ask your browser for one, or did not pass it on. This is a setup problem the administrator has to fix.",
        NoCert::ProxyRejected => "The proxy in front of this site refused your certificate: it was probably issued by another authority, has expired, or was revoked.",
        NoCert::UntrustedPeer => "This sign-in was reached by an address that is not allowed to pass certificates on. This is a setup problem the administrator has to fix.",
    }
}

/// What the administrator should change, when the cause is theirs.
fn admin_hint(why: NoCert) -> Option<&'static str> {
    match why {
        NoCert::NotForwarded => Some("Administrator: the proxy must ask for the certificate (nginx `ssl_verify_client optional_no_ca`, Traefik `clientAuth`, Caddy `client_auth`) and forward it to /auth; `certgate proxy-config` prints a working configuration."),
        NoCert::UntrustedPeer => Some("Administrator: add the proxy's address to `proxy.trusted`, or send people to certgate's own mTLS address."),
        NoCert::NotSent | NoCert::ProxyRejected => None,
    }
}

impl Page {
    pub fn message(title: &str, message: &str, hint: &str) -> Self {
        Self {
            title: title.into(),
            message: message.into(),
            hints: vec![hint.into()],
            ..Self::default()
        }
    }

    /// The help page of `/auth` without a certificate: the likely cause first, then what to do
    /// on each kind of device.
    pub fn no_certificate(why: NoCert) -> Self {
        let mut hints = vec![cause(why).to_string()];
        hints.extend(admin_hint(why).map(String::from));
        hints.push("Other causes: a certificate from another authority, an expired one, or one that was revoked after a device was lost. Ask your administrator for a new certificate in those cases.".into());
        let section = |heading: &str, items: &[&str]| Section {
            heading: heading.into(),
            items: items.iter().map(|s| (*s).to_string()).collect(),
        };
        Self {
            title: "No client certificate".into(),
            message: "This site signs you in with a certificate installed on your device, and none arrived.".into(),
            hints,
            sections: vec![
                section("iPhone and iPad", &[
                    "Open the .p12 file (or the enrollment link) in Safari, then Settings > General > VPN & Device Management > the downloaded profile > Install, and enter the certificate's password.",
                    "Safari then offers the certificate by itself; close Safari completely (swipe it away) and open the site again.",
                ]),
                section("Android", &[
                    "Settings > Security > More security settings > Encryption & credentials > Install a certificate > VPN & app user certificate, then choose the .p12 file and enter its password.",
                    "Chrome asks which certificate to use on the next visit: choose it and tap Allow.",
                ]),
                section("Wear OS and other watches", &[
                    "Watches cannot present a certificate. Their apps reach the site through the phone's app, or with a bearer token: ask your administrator for one (POST /token).",
                ]),
                section("Desktop browsers", &[
                    "Chrome, Edge, Safari (macOS): double-click the .p12 file to add it to the system's certificate store (Keychain on macOS), then restart the browser.",
                    "Firefox: Settings > Privacy & Security > Certificates > View Certificates > Your Certificates > Import.",
                    "When the browser asks which certificate to use, pick the one for this site. If you cancelled that prompt, close every window of the browser and try again.",
                ]),
            ],
            code: Some(why.code().as_str().into()),
            ..Self::default()
        }
    }

    pub fn sign_in(location: &str) -> Self {
        Self {
            title: "Sign-in required".into(),
            message: "Continue to sign in with your certificate.".into(),
            link: Some(Link {
                href: location.into(),
                text: "Sign in".into(),
            }),
            ..Self::default()
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
            ..Self::default()
        }
    }

    pub fn signed_out(everywhere: bool) -> Self {
        Self::message(
            "Signed out",
            if everywhere {
                "Your sessions and bearer tokens on every device have ended."
            } else {
                "Your session has ended."
            },
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
        let mut page = Page::message("T", "<script>x</script>", "h");
        page.sections.push(Section {
            heading: "<b>".into(),
            items: vec!["<i>".into()],
        });
        let html = pages.render(&page);
        assert!(html.contains("&lt;b&gt;") && html.contains("&lt;i&gt;"));
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

#[cfg(test)]
mod no_cert_tests {
    use super::*;

    #[test]
    fn no_certificate_page_names_the_cause_first_and_every_platform() {
        let pages = Pages::new().unwrap();
        for why in [
            NoCert::NotSent,
            NoCert::NotForwarded,
            NoCert::ProxyRejected,
            NoCert::UntrustedPeer,
        ] {
            let page = Page::no_certificate(why);
            assert_eq!(page.hints[0], cause(why));
            let html = pages.render(&page);
            for platform in [
                "iPhone",
                "Android",
                "Wear OS",
                "Desktop",
                why.code().as_str(),
            ] {
                assert!(html.contains(platform), "{why:?}: {platform} missing");
            }
        }
    }
}
