//! The shared store: a Redis stream (`certgate:revocations`), one entry per revocation. It is
//! both the durable copy and the bus: a replica reads it whole when it connects, then blocks on
//! `XREAD` for what comes next, so nothing can fall between loading and following (as it can
//! with a separate pub/sub channel). Every answer from Redis, even "nothing new", proves the
//! view current; a lost connection is retried by itself, and the view is read whole again on
//! every reconnect and every minute (a Redis restored from an older copy cannot hide entries).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::Commands;

use super::{Entry, Revocations};
use crate::clock::Clock;

const KEY: &str = "certgate:revocations";
const FIELD: &str = "e";
/// How long one blocking read waits for news; also how often the view is proven current.
const BLOCK_MS: usize = 300;
const TIMEOUT: Duration = Duration::from_secs(2);
const RESYNC: Duration = Duration::from_secs(60);

pub struct RedisStore {
    client: redis::Client,
    /// For appends, reconnected on demand.
    writer: Mutex<Option<redis::Connection>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

impl RedisStore {
    /// # Errors
    /// When the URL is not a Redis URL (checked at config time already).
    pub fn new(url: &str) -> Result<Self, String> {
        Ok(Self {
            client: redis::Client::open(url).map_err(|e| format!("store.redis_url: {e}"))?,
            writer: Mutex::new(None),
        })
    }

    fn connect(&self) -> Result<redis::Connection, String> {
        let con = self
            .client
            .get_connection_with_timeout(TIMEOUT)
            .map_err(|e| format!("redis: {e}"))?;
        con.set_read_timeout(Some(TIMEOUT + Duration::from_millis(BLOCK_MS as u64)))
            .and_then(|()| con.set_write_timeout(Some(TIMEOUT)))
            .map_err(|e| format!("redis: {e}"))?;
        Ok(con)
    }

    /// Adds one entry to the stream (one retry on a fresh connection).
    ///
    /// # Errors
    /// When Redis cannot be reached: the caller must not pretend the revocation is shared.
    pub fn append(&self, entry: &Entry) -> Result<(), String> {
        let json = serde_json::to_string(entry).map_err(|e| e.to_string())?;
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut last = String::new();
        for _ in 0..2 {
            if writer.is_none() {
                match self.connect() {
                    Ok(c) => *writer = Some(c),
                    Err(e) => {
                        last = e;
                        continue;
                    }
                }
            }
            if let Some(con) = writer.as_mut() {
                let added: redis::RedisResult<String> = redis::cmd("XADD")
                    .arg(KEY)
                    .arg("*")
                    .arg(FIELD)
                    .arg(&json)
                    .query(con);
                match added {
                    Ok(_) => return Ok(()),
                    Err(e) => {
                        last = format!("redis: {e}");
                        *writer = None;
                    }
                }
            }
        }
        Err(last)
    }

    /// Follows the stream on a thread of its own for as long as the process lives.
    pub fn follow(self: &Arc<Self>, view: Arc<Revocations>, clock: Arc<dyn Clock>) {
        let me = Arc::clone(self);
        let followed = Arc::clone(&view);
        let spawned = std::thread::Builder::new()
            .name("certgate-redis".into())
            .spawn(move || loop {
                if let Err(why) = me.follow_once(&followed, clock.as_ref()) {
                    followed.trouble(why);
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        if let Err(e) = spawned {
            view.trouble(format!("cannot start the Redis follower: {e}"));
        }
    }

    /// One connection's life: read everything, then follow until something fails.
    fn follow_once(&self, view: &Revocations, clock: &dyn Clock) -> Result<(), String> {
        let mut con = self.connect()?;
        loop {
            let (mut last, entries) = read_all(&mut con)?;
            view.apply_synced(&entries, clock.now());
            let loaded = Instant::now();
            while loaded.elapsed() < RESYNC {
                let batch = read(&mut con, &last, Some(BLOCK_MS))?;
                let mut entries = Vec::new();
                for (id, e) in batch {
                    last = id;
                    entries.push(e);
                }
                view.apply_synced(&entries, clock.now());
            }
        }
    }
}

/// Every entry in the stream (for a tool that does not follow it).
///
/// # Errors
/// When Redis cannot be read.
pub fn load(store: &RedisStore) -> Result<Vec<Entry>, String> {
    read_all(&mut store.connect()?).map(|(_, entries)| entries)
}

/// The whole stream: the id of its last entry and the entries.
fn read_all(con: &mut redis::Connection) -> Result<(String, Vec<Entry>), String> {
    let mut last = "0".to_string();
    let mut entries = Vec::new();
    loop {
        let batch = read(con, &last, None)?;
        if batch.is_empty() {
            return Ok((last, entries));
        }
        for (id, e) in batch {
            last = id;
            entries.push(e);
        }
    }
}

/// One `XREAD` after `after`: (id, entry) pairs. An entry this certgate cannot read fails the
/// read, as a malformed database row does: skipping it could skip a revocation (one written by
/// a newer certgate, say), so the view goes stale and checks answer 503 until it is dealt with.
fn read(
    con: &mut redis::Connection,
    after: &str,
    block_ms: Option<usize>,
) -> Result<Vec<(String, Entry)>, String> {
    let mut options = StreamReadOptions::default().count(10_000);
    if let Some(ms) = block_ms {
        options = options.block(ms);
    }
    let reply: Option<StreamReadReply> = con
        .xread_options(&[KEY], &[after], &options)
        .map_err(|e| format!("redis: {e}"))?;
    let mut out = Vec::new();
    for key in reply.map(|r| r.keys).unwrap_or_default() {
        for id in key.ids {
            let entry = id
                .map
                .get(FIELD)
                .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                .ok_or_else(|| format!("no field `{FIELD}`"))
                .and_then(|json| serde_json::from_str::<Entry>(&json).map_err(|e| e.to_string()))
                .map_err(|e| {
                    format!(
                        "{KEY} entry {} is not a revocation this certgate can read ({e}): if a newer certgate wrote it, upgrade every replica",
                        id.id
                    )
                })?;
            out.push((id.id, entry));
        }
    }
    Ok(out)
}
