//! `rd` validation on arbitrary strings: never a panic, and whatever it accepts is an https
//! URL to exactly the allowed host (or a subdomain of the wildcard), without userinfo.
#![no_main]

use certgate::http::redirect::validate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let allowed = vec![
        "app.example.com".to_string(),
        "*.apps.example.com".to_string(),
    ];
    if let Some(url) = validate(raw, &allowed, false) {
        assert_eq!(url.scheme(), "https");
        assert!(url.username().is_empty() && url.password().is_none());
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        assert!(
            host == "app.example.com" || host.ends_with(".apps.example.com"),
            "{raw:?} -> {host}"
        );
    }
});
