//! OAuth 2.0 request parameters as the endpoints read them, before any of them means anything:
//! a query string or an `application/x-www-form-urlencoded` body, and HTTP Basic client
//! credentials. Pure functions on bytes (a fuzz target calls them): never a panic, a bounded
//! answer, and every refusal names the parameter.

use std::collections::HashMap;
use std::fmt;

/// The largest form body the token, introspection and revocation endpoints read: real
/// requests are a few hundred bytes (a code, a verifier, a redirect URI).
pub const MAX_BODY: usize = 16 * 1024;

/// Why parameters cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// A parameter given twice (OAuth 2.0 §3.1, §3.2): which one counts would be a guess.
    Duplicate(String),
    /// More bytes than [`MAX_BODY`].
    TooLarge { limit: usize },
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate(name) => write!(
                f,
                "the parameter {name} is given twice (send each parameter once)"
            ),
            Self::TooLarge { limit } => write!(
                f,
                "the parameters are larger than {limit} bytes (send only the ones the endpoint takes)"
            ),
        }
    }
}

impl std::error::Error for ParamError {}

/// Form or query parameters by name. A parameter given twice is refused; an empty value counts
/// as absent (and is not a duplicate); repeats inside one value (`scope=openid openid`) are the
/// endpoint's business. Bytes that are not UTF-8 are read as U+FFFD.
///
/// # Errors
/// A duplicated parameter, or more than [`MAX_BODY`] bytes.
pub fn parse(raw: &[u8]) -> Result<HashMap<String, String>, ParamError> {
    if raw.len() > MAX_BODY {
        return Err(ParamError::TooLarge { limit: MAX_BODY });
    }
    let mut out = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw) {
        if value.is_empty() {
            continue;
        }
        if out.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(ParamError::Duplicate(name.into_owned()));
        }
    }
    Ok(out)
}

/// The client id and secret of an `Authorization: Basic …` value (the part after `Basic `):
/// base64 of `id:secret`, each form-urlencoded first (RFC 6749 §2.3.1).
///
/// # Errors
/// A sentence saying what is wrong with the credentials.
pub fn basic_credentials(b64: &str) -> Result<(String, String), &'static str> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or("the Basic credentials are not base64 of client_id:client_secret")?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or("the Basic credentials are not client_id:client_secret")?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok((unescape(id), unescape(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_given_twice_is_refused_but_repeats_inside_a_value_are_not() {
        assert_eq!(
            parse(b"a=1&b=2&a=3"),
            Err(ParamError::Duplicate("a".into()))
        );
        let p = parse(b"scope=openid+profile+openid&empty=&empty=&data=None").unwrap();
        assert_eq!(p["scope"], "openid profile openid");
        assert_eq!(p["data"], "None");
        assert!(!p.contains_key("empty"));
    }

    #[test]
    fn more_than_the_limit_is_refused_naming_it() {
        let big = vec![b'a'; MAX_BODY + 1];
        let e = parse(&big).unwrap_err();
        assert_eq!(e, ParamError::TooLarge { limit: MAX_BODY });
        assert!(e.to_string().contains("16384"), "{e}");
        assert!(parse(&big[..MAX_BODY]).is_ok());
    }

    #[test]
    fn bytes_that_are_not_utf8_are_read_not_refused() {
        let p = parse(b"x=%FF%FE&y=\xff").unwrap();
        assert_eq!(p["x"], "\u{fffd}\u{fffd}");
    }

    #[test]
    fn basic_credentials_are_unescaped_after_decoding() {
        use base64::Engine;
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            basic_credentials(&enc("my%20app:s%3Acret")),
            Ok(("my app".into(), "s:cret".into()))
        );
        assert!(basic_credentials(&enc("no-colon")).is_err());
        assert!(basic_credentials("!!not base64!!").is_err());
        assert!(
            basic_credentials(&base64::engine::general_purpose::STANDARD.encode([0xff, b':']))
                .is_err()
        );
    }
}
