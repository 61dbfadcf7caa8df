//! Certificate serial parsing (`cert::serial::Serial`): never a panic; what parses displays as
//! canonical lower-case hex (even length) that parses back to the same serial, is what
//! `Serial::canonical` gives for the same text, and is the serial of a certificate whose DER
//! carries it (sign byte and all).
#![no_main]

use certgate::cert::serial::Serial;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(serial) = Serial::parse(raw) else {
        return;
    };
    let shown = serial.to_string();
    assert!(
        !shown.is_empty() && shown.len() % 2 == 0,
        "{raw:?} -> {shown:?}"
    );
    assert!(
        shown
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{raw:?} -> {shown:?}"
    );
    let again = Serial::parse(&shown).expect("the canonical form parses");
    assert!(again == serial, "{raw:?} -> {shown:?} parsed differently");
    assert_eq!(again.to_string(), shown);
    assert_eq!(Serial::canonical(raw), shown, "{raw:?}");
    assert!(Serial::from_der(&serial.der_content()) == serial, "{raw:?}");
});
