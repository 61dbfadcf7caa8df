//! Signing keys shared through Redis, so that replicas on several hosts need only the same
//! Redis and one secret (`store.key_encryption_file`), not copies of `data_dir/keys` and
//! `data_dir/oidc-keys`.
//!
//! The key files stay the source each certgate signs and verifies from; Redis carries them
//! between hosts: the hash `certgate:keys` holds every key file (`keys/<name>.pem`,
//! `oidc-keys/<name>.pem`) sealed with AES-256-GCM (a fresh nonce each, the file's name as
//! associated data, so a sealed key cannot be passed off under another name), and
//! `certgate:keys:version` counts its changes. A server publishes its keys when Redis has none
//! (the first replica), otherwise takes Redis's; then it looks at the version a few times a
//! second and writes what changed into its directories, where its key reload picks it up.
//! `certgate keys rotate --config` takes Redis's keys, rotates, and publishes the result: every
//! replica follows within a second, and the next key is in every JWKS before it signs (the
//! rotation's `--publish-ahead`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::Engine as _;

const HASH: &str = "certgate:keys";
const VERSION: &str = "certgate:keys:version";
/// The directories of `data_dir` whose key files are shared.
pub const DIRS: [&str; 2] = ["keys", "oidc-keys"];

/// Adds each of `ARGV` (field, value pairs) that Redis does not have: the first replica's keys,
/// or a key one replica made that the others lack (a new algorithm, `[oidc]` turned on). The
/// version after it (moved when anything was added).
const PUBLISH_MISSING: &str = r"
local added = 0
for i = 1, #ARGV, 2 do
  added = added + redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
if added > 0 then return redis.call('INCR', KEYS[2]) end
return tonumber(redis.call('GET', KEYS[2]) or '0')
";

/// Replaces the shared keys with `ARGV[2..]` (field, value pairs) if the version is still
/// `ARGV[1]` (the one the rotation started from); -1 otherwise.
const PUBLISH: &str = r"
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[1]) then return -1 end
redis.call('DEL', KEYS[1])
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
return redis.call('INCR', KEYS[2])
";

pub struct KeyShare {
    client: redis::Client,
    key: LessSafeKey,
    data_dir: PathBuf,
    /// The version last taken in (-1: none yet).
    seen: AtomicI64,
}

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyShare")
    }
}

/// The 32-byte key in `store.key_encryption_file` (base64, e.g. `openssl rand -base64 32`).
///
/// # Errors
/// What is wrong with the file, for `check-config` to name with the key.
pub fn read_secret(path: &Path) -> Result<[u8; 32], String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| format!("{} is not base64", path.display()))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{} holds {} bytes, not 32", path.display(), b.len()))
}

/// Whether `field` names a shared key file: `keys/NAME.pem` or `oidc-keys/NAME.pem`, NAME of
/// lower-case letters, digits, `.`, `_` and `-` (never a path elsewhere).
fn shared_name(field: &str) -> bool {
    let Some((dir, name)) = field.split_once('/') else {
        return false;
    };
    DIRS.contains(&dir)
        && name.len() > 4
        && name.ends_with(".pem")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl KeyShare {
    /// # Errors
    /// When the URL or the secret is unusable (both checked at config time already).
    pub fn new(url: &str, secret: &[u8; 32], data_dir: &Path) -> Result<Self, String> {
        let key = UnboundKey::new(&AES_256_GCM, secret).map_err(|e| e.to_string())?;
        Ok(Self {
            client: redis::Client::open(url).map_err(|e| format!("store.redis_url: {e}"))?,
            key: LessSafeKey::new(key),
            data_dir: data_dir.to_path_buf(),
            seen: AtomicI64::new(-1),
        })
    }

    fn connect(&self) -> Result<redis::Connection, String> {
        let timeout = std::time::Duration::from_secs(2);
        let con = self
            .client
            .get_connection_with_timeout(timeout)
            .map_err(|e| format!("redis: {e}"))?;
        con.set_read_timeout(Some(timeout))
            .and_then(|()| con.set_write_timeout(Some(timeout)))
            .map_err(|e| format!("redis: {e}"))?;
        Ok(con)
    }

    fn seal(&self, field: &str, pem: &[u8]) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| "no randomness".to_string())?;
        let mut sealed = pem.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(field.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| format!("cannot seal {field}"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    fn open(&self, field: &str, sealed: &str) -> Result<Vec<u8>, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| format!("{HASH} {field} is not base64"))?;
        let (nonce, rest) = bytes
            .split_at_checked(NONCE_LEN)
            .ok_or_else(|| format!("{HASH} {field} is too short"))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce".to_string())?;
        let mut rest = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(field.as_bytes()), &mut rest)
            .map_err(|_| {
                format!("{HASH} {field} does not open with store.key_encryption_file: every replica needs the same secret")
            })?;
        Ok(plain.to_vec())
    }

    /// The key files in `data_dir`, by field name.
    fn local(&self) -> Result<BTreeMap<String, Vec<u8>>, String> {
        let mut out = BTreeMap::new();
        for dir in DIRS {
            let path = self.data_dir.join(dir);
            let Ok(entries) = std::fs::read_dir(&path) else {
                continue;
            };
            for entry in entries.flatten() {
                let field = format!("{dir}/{}", entry.file_name().to_string_lossy());
                if shared_name(&field) {
                    let pem = std::fs::read(entry.path())
                        .map_err(|e| format!("{}: {e}", entry.path().display()))?;
                    out.insert(field, pem);
                }
            }
        }
        Ok(out)
    }

    fn sealed_local(&self) -> Result<Vec<String>, String> {
        let mut args = Vec::new();
        for (field, pem) in self.local()? {
            let sealed = self.seal(&field, &pem)?;
            args.push(field);
            args.push(sealed);
        }
        Ok(args)
    }

    /// Adds this directory's keys that Redis lacks (all of them when it has none); others
    /// take them at their next pull. The caller pulls afterwards, to take what another
    /// replica added at the same time.
    ///
    /// # Errors
    /// When Redis cannot be reached or a key file read.
    pub fn publish_missing(&self) -> Result<(), String> {
        let args = self.sealed_local()?;
        let mut con = self.connect()?;
        let script = redis::Script::new(PUBLISH_MISSING);
        let mut invocation = script.key(HASH);
        invocation.key(VERSION);
        for a in &args {
            invocation.arg(a);
        }
        invocation
            .invoke::<i64>(&mut con)
            .map(drop)
            .map_err(|e| format!("redis: {e}"))
    }

    /// Replaces the shared keys with this directory's (after a rotation), unless another
    /// publish came between this one's pull and now.
    ///
    /// # Errors
    /// When Redis cannot be reached, a key file read, or the keys changed meanwhile.
    pub fn publish(&self) -> Result<(), String> {
        let args = self.sealed_local()?;
        let mut con = self.connect()?;
        let script = redis::Script::new(PUBLISH);
        let mut invocation = script.key(HASH);
        invocation.key(VERSION);
        invocation.arg(self.seen.load(Ordering::Relaxed).max(0));
        for a in &args {
            invocation.arg(a);
        }
        let version: i64 = invocation
            .invoke(&mut con)
            .map_err(|e| format!("redis: {e}"))?;
        if version < 0 {
            return Err("the shared keys changed while this command ran (another rotation?): nothing was published; run it again".into());
        }
        self.seen.store(version, Ordering::Relaxed);
        Ok(())
    }

    /// Takes Redis's keys into `data_dir` when their version moved since the last time:
    /// writes what is new or changed (0600, by rename), removes key files Redis no longer
    /// has. `true` when the version moved (the caller reloads its keys: on the host that
    /// rotated, the files changed before Redis did).
    ///
    /// # Errors
    /// When Redis cannot be read, a key does not open with the secret (nothing is written
    /// then), or a file cannot be written.
    pub fn pull(&self) -> Result<bool, String> {
        let mut con = self.connect()?;
        let version: Option<i64> = redis::cmd("GET")
            .arg(VERSION)
            .query(&mut con)
            .map_err(|e| format!("redis: {e}"))?;
        let version = version.unwrap_or(0);
        if version == self.seen.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let sealed: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(HASH)
            .query(&mut con)
            .map_err(|e| format!("redis: {e}"))?;
        let mut shared = BTreeMap::new();
        for (field, value) in &sealed {
            if !shared_name(field) {
                return Err(format!("{HASH} has `{field}`, which names no key file"));
            }
            shared.insert(field.clone(), self.open(field, value)?);
        }
        let local = self.local()?;
        if shared.is_empty() && !local.is_empty() {
            // Redis lost its keys (flushed, restored without them): give it this replica's
            // rather than let the next replica to start make new ones for everybody.
            tracing::warn!("Redis holds no signing keys: publishing this replica's");
            self.publish_missing()?;
            return Ok(true);
        }
        let mut changed = false;
        // An empty hash (nothing published yet) removes nothing.
        if !shared.is_empty() {
            for field in local.keys().filter(|f| !shared.contains_key(*f)) {
                let path = self.data_dir.join(field);
                std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                changed = true;
            }
        }
        for (field, pem) in &shared {
            if local.get(field) != Some(pem) {
                self.write(field, pem)?;
                changed = true;
            }
        }
        let first = self.seen.swap(version, Ordering::Relaxed) < 0;
        Ok(changed || !first)
    }

    fn write(&self, field: &str, pem: &[u8]) -> Result<(), String> {
        let path = self.data_dir.join(field);
        let dir = path.parent().unwrap_or(&self.data_dir);
        crate::jwt::keys::create_private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let tmp = dir.join(format!(".{}.sharing", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        crate::jwt::keys::write_private(&tmp, pem)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_key_files_in_the_two_directories_are_shared() {
        for ok in [
            "keys/ed25519-1796528986.pem",
            "oidc-keys/rs256-1796528986.pem",
        ] {
            assert!(shared_name(ok), "{ok}");
        }
        for bad in [
            "keys/../certgate.db",
            "keys/.hidden.pem",
            "other/a.pem",
            "keys/a.txt",
            "keys/A.pem",
            "keys/sub/a.pem",
            "keys/.pem",
            "/etc/passwd",
        ] {
            assert!(!shared_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_sealed_key_opens_only_under_its_own_name_and_with_the_same_secret() {
        let dir = tempfile::tempdir().unwrap();
        let share = KeyShare::new("redis://127.0.0.1:1/", &[7; 32], dir.path()).unwrap();
        let sealed = share.seal("keys/a.pem", b"PEM").unwrap();
        assert_eq!(share.open("keys/a.pem", &sealed).unwrap(), b"PEM");
        assert!(share.open("keys/b.pem", &sealed).is_err(), "another name");
        let other = KeyShare::new("redis://127.0.0.1:1/", &[8; 32], dir.path()).unwrap();
        assert!(other.open("keys/a.pem", &sealed).is_err(), "another secret");
        assert_ne!(
            sealed,
            share.seal("keys/a.pem", b"PEM").unwrap(),
            "a fresh nonce"
        );
    }

    #[test]
    fn the_secret_is_32_bytes_of_base64() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(
            &path,
            format!(
                "{}\n",
                base64::engine::general_purpose::STANDARD.encode([1u8; 32])
            ),
        )
        .unwrap();
        assert_eq!(read_secret(&path).unwrap(), [1u8; 32]);
        std::fs::write(&path, "c2hvcnQ=").unwrap();
        assert!(read_secret(&path).unwrap_err().contains("5 bytes, not 32"));
        std::fs::write(&path, "not base64!").unwrap();
        assert!(read_secret(&path).is_err());
    }
}
