//! Ed25519 signing keys in `data_dir/keys/`, one PKCS#8 PEM file each (`ed25519-<from>.pem`,
//! mode 0600), where `<from>` is when the key starts signing. Rotation is data (as kanidm
//! does it): a key whose time has not come is *next* (published in JWKS and accepted, so every
//! verifier knows it before the first token it signs); the newest key whose time has come is
//! *current* and signs; older ones are *previous* and still verify, until their successor has
//! signed for longer than the longest token lifetime: then they are *retired*.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rcgen::KeyPair;
use zeroize::Zeroizing;

/// A key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct KeyError {
    pub path: PathBuf,
    pub problem: String,
}

pub struct SigningKey {
    /// RFC 7638 JWK thumbprint; an opaque lookup key for verifiers.
    pub kid: String,
    pub created: i64,
    /// base64url of the raw 32-byte public key (JWK `x`).
    pub x: String,
    pub(super) encoding: EncodingKey,
    pub(super) decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, created {})", self.kid, self.created)
    }
}

impl SigningKey {
    fn from_pkcs8_pem(pem: &str, created: i64) -> Result<Self, String> {
        let pair = KeyPair::from_pem(pem).map_err(|e| format!("not a PKCS#8 PEM key: {e}"))?;
        if !pair.is_compatible(&rcgen::PKCS_ED25519) {
            return Err("not an Ed25519 key".into());
        }
        let pkcs8 = Zeroizing::new(pair.serialize_der());
        let x = URL_SAFE_NO_PAD.encode(pair.public_key_raw());
        let thumb_input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            thumb_input.as_bytes(),
        ));
        let decoding = DecodingKey::from_ed_components(&x).map_err(|e| e.to_string())?;
        Ok(Self {
            kid,
            created,
            x,
            encoding: EncodingKey::from_ed_der(&pkcs8),
            decoding,
        })
    }
}

/// All keys, newest first.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<SigningKey>,
}

impl KeySet {
    /// Loads `dir`, creating it and a first key when there is none.
    ///
    /// # Errors
    /// A [`KeyError`] naming the file that cannot be read, parsed or written.
    pub fn load_or_create(dir: &Path, now: i64) -> Result<Self, KeyError> {
        create_private_dir(dir).map_err(|e| KeyError {
            path: dir.to_path_buf(),
            problem: format!("cannot create: {e}"),
        })?;
        Self::read(dir, Some(now))
    }

    /// Loads the keys in `dir` without creating any (for tools that only verify).
    ///
    /// # Errors
    /// A [`KeyError`] when the directory cannot be read or holds no key.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        Self::read(dir, None)
    }

    fn read(dir: &Path, create_at: Option<i64>) -> Result<Self, KeyError> {
        let err = |path: &Path, problem: String| KeyError {
            path: path.to_path_buf(),
            problem,
        };
        let mut keys = Vec::new();
        let entries = fs::read_dir(dir).map_err(|e| err(dir, format!("cannot list: {e}")))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(created) = created_from_name(&path) else {
                continue;
            };
            let pem = Zeroizing::new(
                fs::read_to_string(&path).map_err(|e| err(&path, format!("cannot read: {e}")))?,
            );
            keys.push(SigningKey::from_pkcs8_pem(&pem, created).map_err(|p| err(&path, p))?);
        }
        if let (true, None) = (keys.is_empty(), create_at) {
            return Err(err(
                dir,
                "holds no signing key (certgate serve creates one)".into(),
            ));
        }
        if let (true, Some(now)) = (keys.is_empty(), create_at) {
            let pair = KeyPair::generate_for(&rcgen::PKCS_ED25519)
                .map_err(|e| err(dir, format!("cannot generate a key: {e}")))?;
            let pem = Zeroizing::new(pair.serialize_pem());
            let path = dir.join(format!("ed25519-{now}.pem"));
            write_private(&path, pem.as_bytes())
                .map_err(|e| err(&path, format!("cannot write: {e}")))?;
            keys.push(SigningKey::from_pkcs8_pem(&pem, now).map_err(|p| err(&path, p))?);
        }
        keys.sort_by_key(|k| std::cmp::Reverse(k.created));
        Ok(Self { keys })
    }

    /// The key that signs new tokens at `now`: the newest whose time has come (or, should
    /// every key be in the future, the oldest).
    pub fn current(&self, now: i64) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|k| k.created <= now)
            .or_else(|| self.keys.last())
    }

    /// A key that may verify at `now` (not retired).
    pub fn find(&self, kid: &str, now: i64, max_lifetime: i64) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|k| k.kid == kid)
            .filter(|k| self.state(k, now, max_lifetime) != KeyState::Retired)
    }

    /// Where `key` is in its life at `now`.
    pub fn state(&self, key: &SigningKey, now: i64, max_lifetime: i64) -> KeyState {
        lifecycle(
            key.created,
            self.keys.iter().map(|k| k.created),
            now,
            max_lifetime,
        )
    }

    /// Writes a new key that starts signing at `from` (publish it ahead of that).
    ///
    /// # Errors
    /// When the key cannot be generated or written.
    pub fn add(dir: &Path, from: i64) -> Result<PathBuf, KeyError> {
        let err = |path: &Path, problem: String| KeyError {
            path: path.to_path_buf(),
            problem,
        };
        create_private_dir(dir).map_err(|e| err(dir, format!("cannot create: {e}")))?;
        let pair = KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|e| err(dir, format!("cannot generate a key: {e}")))?;
        let pem = Zeroizing::new(pair.serialize_pem());
        let path = dir.join(format!("ed25519-{from}.pem"));
        write_private(&path, pem.as_bytes())
            .map_err(|e| err(&path, format!("cannot write: {e}")))?;
        Ok(path)
    }

    /// The kids, for noticing a change on disk.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    pub fn all(&self) -> &[SigningKey] {
        &self.keys
    }
}

/// Where a key that signs from `created` is in its life at `now`, among keys that sign from
/// `all` (its own time included): see the module docs. Shared by the session keys and the
/// OpenID Connect keys, which rotate alike.
pub fn lifecycle(
    created: i64,
    all: impl Iterator<Item = i64>,
    now: i64,
    max_lifetime: i64,
) -> KeyState {
    if created > now {
        return KeyState::Next;
    }
    // The successor: the oldest key after this one whose time has come.
    let successor = all.filter(|&c| c > created && c <= now).min();
    match successor {
        None => KeyState::Current,
        Some(from) if now.saturating_sub(from) > max_lifetime => KeyState::Retired,
        Some(_) => KeyState::Previous,
    }
}

/// See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Current,
    Previous,
    Retired,
}

/// The file a key was read from (for `certgate keys` to delete retired ones).
pub fn key_path(dir: &Path, key: &SigningKey) -> PathBuf {
    dir.join(format!("ed25519-{}.pem", key.created))
}

fn created_from_name(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("ed25519-")?
        .strip_suffix(".pem")?
        .parse()
        .ok()
}

/// Creates a directory readable only by its owner (keys live there).
/// An existing directory (the operator's own) keeps its mode.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes a new file with mode 0600 (never replacing an existing one).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
