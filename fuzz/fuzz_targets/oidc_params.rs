//! OAuth request parameters (`oidc::params`), as `/oidc/authorize`, `/oidc/token`,
//! `/oidc/introspect` and `/oidc/revoke` read them: never a panic; what parses holds each
//! parameter with a value exactly once, as the form gave it, and nothing past `MAX_BODY`;
//! a refused duplicate really is given twice. Basic credentials that decode encode back.
#![no_main]

use std::collections::HashMap;

use base64::Engine;
use certgate::oidc::params::{basic_credentials, parse, ParamError, MAX_BODY};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(data)
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    match parse(data) {
        Ok(params) => {
            assert!(data.len() <= MAX_BODY);
            assert_eq!(params.len(), pairs.len(), "{data:?}");
            let expected: HashMap<String, String> = pairs.into_iter().collect();
            assert_eq!(params, expected);
            assert!(params.values().all(|v| !v.is_empty()));
        }
        Err(ParamError::TooLarge { limit }) => assert!(data.len() > limit),
        Err(ParamError::Duplicate(name)) => {
            assert!(
                pairs.iter().filter(|(k, _)| *k == name).count() >= 2,
                "{name:?}"
            );
        }
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((id, secret)) = basic_credentials(text) {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let again = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(&id),
            enc(&secret)
        ));
        assert_eq!(
            basic_credentials(&again),
            Ok((id, secret)),
            "{text:?} does not round-trip"
        );
    }
});
