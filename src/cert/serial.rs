//! Certificate serial numbers, as numbers.
//!
//! A certificate's serial is a DER INTEGER: its content has a leading `00` sign byte whenever
//! the first byte of the number is 0x80 or more, so about half of the serials an external CA
//! picks at random show as `9A00…` in `openssl x509 -serial` and as `009a…` in the DER.
//! Comparing spellings would let a revoked certificate in, so every serial certgate keeps,
//! compares, logs or displays is one [`Serial`]: the unsigned integer in one canonical
//! spelling, lower-case hex of its bytes without leading zero bytes (`00` for zero).

use std::borrow::Cow;
use std::fmt;

/// The most bytes of a serial given as text. RFC 5280 allows 20 octets; this is only a bound
/// on input, far above any serial a CA writes, so no stored revocation is ever refused for
/// its length.
pub const MAX_BYTES: usize = 256;

/// A certificate serial number in its one canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Box<str>);

/// Why some text is not a serial number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    #[error("is empty")]
    Empty,
    #[error("`{0}` is not a hexadecimal serial number")]
    NotHex(String),
    #[error("is longer than {MAX_BYTES} bytes")]
    TooLong,
}

impl SerialError {
    /// The forms an operator may copy, for error messages.
    pub const FORMS: &'static str = "hex as `openssl x509 -noout -serial` or `certgate ca list` print it (9A00…AB), colon-separated as browsers show it (00:9a:…:ab), or 0x-prefixed";
}

impl Serial {
    /// The serial of a certificate, from the content bytes of its DER INTEGER (x509-parser's
    /// `raw_serial`), read as an unsigned number.
    pub fn from_der(raw: &[u8]) -> Self {
        let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
        if start == raw.len() {
            return Self("00".into());
        }
        Self(hex::encode(&raw[start..]).into())
    }

    /// A serial as operators copy it: hex in any case, with or without the DER sign byte or
    /// other leading zeros, bytes separated by `:` or spaces, `0x`-prefixed.
    ///
    /// # Errors
    /// [`SerialError`] naming what is wrong; [`SerialError::FORMS`] says what is expected.
    pub fn parse(text: &str) -> Result<Self, SerialError> {
        let trimmed = text.trim();
        let body = trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
            .unwrap_or(trimmed);
        let digits: Vec<u8> = body.bytes().filter(|b| !matches!(b, b':' | b' ')).collect();
        if digits.is_empty() {
            return Err(SerialError::Empty);
        }
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            let shown: String = trimmed.chars().take(80).collect();
            return Err(SerialError::NotHex(shown));
        }
        let significant = digits
            .iter()
            .position(|&b| b != b'0')
            .map_or(&[][..], |i| &digits[i..]);
        if significant.len() > 2 * MAX_BYTES {
            return Err(SerialError::TooLong);
        }
        let mut canonical = String::with_capacity(significant.len() + 2);
        if significant.is_empty() {
            canonical.push_str("00");
        } else if significant.len() % 2 == 1 {
            canonical.push('0');
        }
        canonical.extend(
            significant
                .iter()
                .map(|b| char::from(b.to_ascii_lowercase())),
        );
        Ok(Self(canonical.into()))
    }

    /// A stored or claimed serial (a token's `x5s`, an entry written by an older certgate that
    /// kept the DER sign byte) in the canonical spelling: borrowed when it already is (every
    /// serial this certgate writes), so a check copies nothing. Text that is no serial comes
    /// back as it was: it can never equal a canonical serial, so it matches no certificate.
    pub fn canonical(text: &str) -> Cow<'_, str> {
        if is_canonical(text) {
            return Cow::Borrowed(text);
        }
        match Self::parse(text) {
            Ok(serial) => Cow::Owned(serial.0.into()),
            Err(_) => Cow::Borrowed(text),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number's bytes, big-endian, without leading zeros.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Canonical text is lower-case hex of even length, so this cannot fail.
        hex::decode(self.0.as_bytes()).unwrap_or_default()
    }

    /// The DER INTEGER content bytes a certificate or CRL entry with this (positive) serial
    /// carries: with the `00` sign byte when the first byte has its top bit set.
    pub fn der_content(&self) -> Vec<u8> {
        let bytes = self.to_bytes();
        match bytes.first() {
            Some(&b) if b >= 0x80 => [&[0][..], &bytes].concat(),
            _ => bytes,
        }
    }
}

/// Lower-case hex of even length without a leading zero byte (or exactly `00`).
fn is_canonical(text: &str) -> bool {
    let b = text.as_bytes();
    !b.is_empty()
        && b.len() % 2 == 0
        && b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        && (b.len() == 2 || !b.starts_with(b"00"))
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Sets of serials are looked up by the canonical text a token carries, without a copy (the
/// derived `Hash` and `Eq` are those of the text, as `Borrow` requires).
impl std::borrow::Borrow<str> for Serial {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Serial {
    type Err = SerialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Serial {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Any spelling [`Serial::parse`] takes, so records written before serials were numbers read
/// as the same serial.
impl<'de> serde::Deserialize<'de> for Serial {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <Cow<'de, str>>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_operators_copy_is_the_same_serial() {
        let der = Serial::from_der(&[0x00, 0x9a, 0x00, 0xab]);
        assert_eq!(der.as_str(), "9a00ab");
        for spelling in [
            "9A00AB",
            "9a00ab",
            "009A00AB",
            "00:9a:00:ab",
            "00:9A:00:AB",
            "9a:00:ab",
            "0x9A00AB",
            "0x009a00ab",
            "  00 9A 00 AB ",
            "0000009a00ab",
        ] {
            assert_eq!(Serial::parse(spelling), Ok(der.clone()), "{spelling}");
            assert_eq!(Serial::canonical(spelling), "9a00ab", "{spelling}");
        }
        assert_eq!(der.der_content(), [0x00, 0x9a, 0x00, 0xab]);
        assert_eq!(der.to_bytes(), [0x9a, 0x00, 0xab]);
    }

    #[test]
    fn small_and_odd_length_serials_are_whole_bytes() {
        assert_eq!(Serial::parse("1").map(|s| s.to_string()), Ok("01".into()));
        assert_eq!(Serial::parse("0x0").map(|s| s.to_string()), Ok("00".into()));
        assert_eq!(Serial::parse("00").map(|s| s.to_string()), Ok("00".into()));
        assert_eq!(
            Serial::parse("abc").map(|s| s.to_string()),
            Ok("0abc".into())
        );
        assert_eq!(Serial::from_der(&[]).as_str(), "00");
        assert_eq!(Serial::from_der(&[0, 0]).as_str(), "00");
        assert_eq!(Serial::from_der(&[0x01]).as_str(), "01");
        assert_eq!(Serial::from_der(&[0x7f, 0xff]).der_content(), [0x7f, 0xff]);
    }

    #[test]
    fn text_that_is_not_a_serial_is_refused_with_the_reason() {
        assert_eq!(Serial::parse(""), Err(SerialError::Empty));
        assert_eq!(Serial::parse("0x"), Err(SerialError::Empty));
        assert_eq!(Serial::parse("::"), Err(SerialError::Empty));
        assert!(matches!(Serial::parse("xyz"), Err(SerialError::NotHex(_))));
        assert!(matches!(Serial::parse("12g4"), Err(SerialError::NotHex(_))));
        assert!(matches!(Serial::parse("-1"), Err(SerialError::NotHex(_))));
        assert!(matches!(
            Serial::parse("12\u{e9}"),
            Err(SerialError::NotHex(_))
        ));
        assert_eq!(
            Serial::parse(&"ab".repeat(MAX_BYTES + 1)),
            Err(SerialError::TooLong)
        );
        assert!(Serial::parse(&format!("0000{}", "ab".repeat(MAX_BYTES))).is_ok());
    }

    #[test]
    fn canonical_borrows_what_is_canonical_and_keeps_what_is_no_serial() {
        assert!(matches!(Serial::canonical("9a00ab"), Cow::Borrowed(_)));
        assert!(matches!(Serial::canonical("00"), Cow::Borrowed(_)));
        assert!(matches!(Serial::canonical("009a00ab"), Cow::Owned(_)));
        assert_eq!(Serial::canonical("not a serial"), "not a serial");
    }

    #[test]
    fn old_records_with_the_sign_byte_deserialize_to_the_number() {
        let s: Serial = serde_json::from_str("\"009a00ab\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.as_str(), "9a00ab");
        assert_eq!(
            serde_json::to_string(&s).ok().as_deref(),
            Some("\"9a00ab\"")
        );
        assert!(serde_json::from_str::<Serial>("\"nope\"").is_err());
    }
}
