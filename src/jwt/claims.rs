//! What a token says: its kind (`typ`), its claims as signed, and the subject a caller asks
//! [`super::Tokens`] to mint for.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    Bearer,
}

impl TokenKind {
    pub fn typ(self) -> &'static str {
        match self {
            Self::Session => "certgate-session+jwt",
            Self::Bearer => "at+jwt",
        }
    }
}

/// RFC 8705 confirmation: the certificate the token was minted from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

/// `aud`: certgate itself, then any app origins (`https://host`) a bearer token is limited to.
/// A single audience is written as a string, several as an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(pub Vec<String>);

impl Serialize for Audience {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(a) => Self(vec![a]),
            OneOrMany::Many(v) => Self(v),
        })
    }
}

impl Audience {
    /// The app hosts the token is limited to (empty: any host the rules allow).
    pub fn app_hosts(&self, issuer: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|a| *a != issuer)
            .filter_map(|a| {
                a.strip_prefix("https://")
                    .or_else(|| a.strip_prefix("http://"))
            })
            .map(str::to_string)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Serial (hex) of the certificate the token was minted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5s: Option<String>,
    /// The CA of the client CA bundle that certificate chains to (base64url SHA-256 of its
    /// subject and key): a user bound to another CA is refused with this token too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5ca: Option<String>,
    /// `iat` to the millisecond, so a revocation and a sign-in in the same second are ordered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat_ms: Option<i64>,
}

impl Claims {
    /// When the token was issued, in ms: `iat_ms` when it agrees with `iat`, else the start of
    /// the `iat` second (a cut-off anywhere in that second then covers it: fail closed).
    pub fn issued_ms(&self) -> i64 {
        self.iat_ms
            .filter(|ms| ms.div_euclid(1000) == self.iat)
            .unwrap_or_else(|| self.iat.saturating_mul(1000))
    }
}

/// What a token says about its holder; `iss`, `aud`, times and `jti` are filled in by [`super::Tokens::mint`].
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub user: String,
    pub groups: Vec<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub scope: Option<String>,
    pub cert_thumbprint: Option<String>,
    pub cert_serial: Option<String>,
    /// See [`Claims::x5ca`].
    pub cert_ca: Option<String>,
    /// App hosts a bearer token is limited to (added to `aud` as `https://host`).
    pub app_hosts: Vec<String>,
}

#[cfg(test)]
impl Claims {
    pub fn for_test(sub: &str, jti: &str) -> Self {
        Self {
            iss: "https://certgate.test".into(),
            sub: sub.into(),
            aud: Audience(vec!["https://certgate.test".into()]),
            exp: 2,
            nbf: 0,
            iat: 1,
            jti: jti.into(),
            groups: vec![],
            email: None,
            name: None,
            scope: None,
            cnf: None,
            x5s: None,
            x5ca: None,
            iat_ms: None,
        }
    }
}
