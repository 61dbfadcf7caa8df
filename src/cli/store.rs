//! The revocation store a command reads or writes: Redis when the configuration says so, else
//! the database in the data directory. One opener, so `revoke`, `user`, `ca revoke`, `ca crl` and
//! `ca list` always reach the store the running certgate follows.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::db::Db;
use crate::revocation::{RedisStore, Revocations, StoreBackend, Table};

/// The store's current state, loaded whole, and who follows it (for messages: "every certgate
/// sharing this Redis").
///
/// # Errors
/// Why it cannot be read: a data directory that does not exist, a certgate on Redis named
/// without its configuration, Redis away, a database that cannot be read.
pub(super) fn open(
    dir: &Path,
    config: Option<&Config>,
    now: i64,
) -> Result<(Revocations, String), String> {
    if let Some(StoreBackend::Redis(url)) = config.map(|c| &c.store.backend) {
        let view = RedisStore::new(url)
            .and_then(|store| Revocations::loaded_from_redis(Arc::new(store), now))?;
        return Ok((
            view,
            "every certgate sharing this Redis (store.redis_url)".into(),
        ));
    }
    if !dir.is_dir() {
        return Err(format!("{}: no such data directory (give --config or --data-dir: the one certgate serves from)", dir.display()));
    }
    if Table::redis_marker(dir).exists() {
        return Err(format!("the certgate serving from {} keeps revocations in Redis (store.backend = \"redis\"), not in this directory: give --config with its config file", dir.display()));
    }
    let db = Db::open(dir).map_err(|e| e.to_string())?;
    let view = Revocations::open(Table::new(Arc::new(db)), now)?;
    Ok((
        view,
        format!("every certgate serving from {}", dir.display()),
    ))
}
