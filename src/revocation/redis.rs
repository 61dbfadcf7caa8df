//! The shared store: a Redis stream (`certgate:revocations`), one entry per revocation, behind
//! a compacted snapshot (`certgate:revocations:snapshot`: the id of the last stream entry it
//! covers, then the entries that can still decide something, one JSON a line). Together they
//! are both the durable copy and the bus: a replica reads the snapshot and the stream after it
//! in one atomic script when it connects, then blocks on `XREAD` for what comes next, so
//! nothing can fall between loading and following (as it can with a separate pub/sub channel).
//! Every answer from Redis, even "nothing new", proves the view current; a lost connection is
//! retried by itself, and the view is read whole again on every reconnect and every minute (a
//! Redis restored from an older copy cannot hide entries).
//!
//! Redis stays bounded by the live revocations, not by history: after each whole read, one
//! replica at a time (a lock in Redis) rewrites the snapshot with [`entry::compact`] (expired
//! token ids and superseded cut-offs dropped) and trims the stream up to it, keeping the last
//! [`KEEP_MS`] of entries. A follower never reads on from a position older than a minute (its
//! whole read every minute, and on every reconnect), so a trim cannot slip past it: a replica
//! that was away reads the snapshot again.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::Commands;

use super::{entry, Entry, Revocations};
use crate::clock::Clock;

const KEY: &str = "certgate:revocations";
const SNAPSHOT: &str = "certgate:revocations:snapshot";
/// Held (with an expiry) by the replica compacting.
const COMPACTING: &str = "certgate:revocations:compacting";
/// Stream entries this young stay after a compaction, beside the snapshot.
pub const KEEP_MS: i64 = 5 * 60_000;
/// The connection name of a certgate that reads the snapshot.
const CLIENT_NAME: &str = "certgate-snapshot-1";
/// The field of the stream entry a compaction adds: a certgate from before the snapshot cannot
/// read it (it has no `e`), so such a replica, started later, stops at it and answers 503
/// rather than follow a stream whose past it cannot see. This version skips it.
const MARK: &str = "snapshot";

/// The snapshot and the stream after it, read at one instant.
const READ_ALL: &str = r"
local snap = redis.call('GET', KEYS[2])
local upto = '0-0'
if snap then upto = string.match(snap, '^[^\n]*') end
return {snap or false, redis.call('XRANGE', KEYS[1], '(' .. upto, '+')}
";

/// Writes a new snapshot and trims the stream, unless another compaction wrote one since this
/// one read (ARGV: the snapshot's `upto` as read, the new snapshot, the trim's MINID, the lock
/// token). The number of stream entries trimmed, or -1.
const WRITE_SNAPSHOT: &str = r"
local snap = redis.call('GET', KEYS[2])
local cur = ''
if snap then cur = string.match(snap, '^[^\n]*') end
local trimmed = -1
if cur == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  trimmed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3])
end
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
return trimmed
";
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
        let mut con = con;
        // Tells a compacting replica that this one reads the snapshot (see `compact`).
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(CLIENT_NAME)
            .query::<()>(&mut con)
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

    /// One connection's life: read everything (and compact, when no other replica does),
    /// then follow until something fails.
    fn follow_once(&self, view: &Revocations, clock: &dyn Clock) -> Result<(), String> {
        let mut con = self.connect()?;
        loop {
            let (mut last, entries) = read_all(&mut con)?;
            view.apply_synced(&entries, clock.now());
            match compact(&mut con, clock) {
                Ok(Some(c)) => tracing::info!(
                    kept = c.kept,
                    trimmed = c.trimmed,
                    "revocations in Redis compacted"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot compact the revocations in Redis"),
            }
            let loaded = Instant::now();
            while loaded.elapsed() < RESYNC {
                let batch = read(&mut con, &last, Some(BLOCK_MS))?;
                let mut entries = Vec::new();
                for (id, e) in batch {
                    last = id;
                    entries.extend(e);
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

/// The whole state at one instant: the snapshot's `upto` as stored (`None`: no snapshot), the
/// id of the last entry read (to follow from) and the entries.
fn read_state(con: &mut redis::Connection) -> Result<(Option<String>, String, Vec<Entry>), String> {
    let (snap, range): (Option<String>, redis::streams::StreamRangeReply) =
        redis::Script::new(READ_ALL)
            .key(KEY)
            .key(SNAPSHOT)
            .invoke(con)
            .map_err(|e| format!("redis: {e}"))?;
    let mut entries = Vec::new();
    let mut upto = None;
    if let Some(snap) = &snap {
        let mut lines = snap.lines();
        upto = lines.next().map(str::to_string);
        for (n, line) in lines.enumerate() {
            let e = serde_json::from_str::<Entry>(line).map_err(|e| {
                format!("{SNAPSHOT} line {} is not a revocation this certgate can read ({e}): if a newer certgate wrote it, upgrade every replica", n + 2)
            })?;
            entries.push(e);
        }
    }
    let mut last = upto.clone().unwrap_or_else(|| "0-0".into());
    for id in &range.ids {
        entries.extend(parse(id)?);
        last.clone_from(&id.id);
    }
    Ok((upto, last, entries))
}

/// The whole state: the id to follow from and the entries.
fn read_all(con: &mut redis::Connection) -> Result<(String, Vec<Entry>), String> {
    read_state(con).map(|(_, last, entries)| (last, entries))
}

/// What one compaction did.
#[derive(Debug, Clone, Copy)]
pub struct Compacted {
    /// Entries in the new snapshot.
    pub kept: usize,
    /// Stream entries removed.
    pub trimmed: i64,
}

/// Rewrites the snapshot with what can still decide something and trims the stream behind
/// it (keeping [`KEEP_MS`] of it); `None` when another replica is at it.
///
/// # Errors
/// When Redis cannot be read or written, or holds an entry this certgate cannot read.
pub fn compact(
    con: &mut redis::Connection,
    clock: &dyn Clock,
) -> Result<Option<Compacted>, String> {
    let token = format!("{}-{}", std::process::id(), clock.now_ms());
    let locked: Option<String> = redis::cmd("SET")
        .arg(COMPACTING)
        .arg(&token)
        .arg("NX")
        .arg("PX")
        .arg(30_000)
        .query(con)
        .map_err(|e| format!("redis: {e}"))?;
    if locked.is_none() {
        return Ok(None);
    }
    // A certgate from before the snapshot reads the stream alone: trimming it would hide
    // revocations from that replica at its next whole read. Wait until it is upgraded.
    let clients: String = redis::cmd("CLIENT").arg("LIST").query(con).map_err(|e| {
        format!("redis: CLIENT LIST (needed to see that no older certgate follows the stream): {e}")
    })?;
    if let Some(old) = clients.lines().find(|l| reads_stream_alone(l)) {
        let addr = old
            .split(' ')
            .find_map(|f| f.strip_prefix("addr="))
            .unwrap_or("unknown");
        let _: Result<(), _> = redis::cmd("DEL").arg(COMPACTING).query(con);
        return Err(format!(
            "a client at {addr} reads {KEY} without the snapshot (a certgate older than this one?): not compacting until every replica is upgraded"
        ));
    }
    let (upto, last, entries) = read_state(con)?;
    // Redis's clock, not this replica's: the stream's ids are its milliseconds.
    let (secs, micros): (i64, i64) = redis::cmd("TIME")
        .query(con)
        .map_err(|e| format!("redis: {e}"))?;
    let redis_ms = secs.saturating_mul(1000).saturating_add(micros / 1000);
    // A token id is kept a minute past its token's end, for clocks that disagree.
    let kept = entry::compact(&entries, clock.now().min(secs).saturating_sub(60));
    let mut body = format!("{last}\n");
    for e in &kept {
        body.push_str(&serde_json::to_string(e).map_err(|e| e.to_string())?);
        body.push('\n');
    }
    // Up to and including the snapshot's last entry, but never the last KEEP_MS of the stream.
    let keep_from = redis_ms.saturating_sub(KEEP_MS);
    let minid = match stream_id(&last) {
        Some((ms, seq)) if ms < keep_from => format!("{ms}-{}", seq.saturating_add(1)),
        _ => format!("{keep_from}-0"),
    };
    let trimmed: i64 = redis::Script::new(WRITE_SNAPSHOT)
        .key(KEY)
        .key(SNAPSHOT)
        .key(COMPACTING)
        .arg(upto.unwrap_or_default())
        .arg(&body)
        .arg(&minid)
        .arg(&token)
        .invoke(con)
        .map_err(|e| format!("redis: {e}"))?;
    if trimmed > 0 {
        redis::cmd("XADD")
            .arg(KEY)
            .arg("*")
            .arg(MARK)
            .arg(&last)
            .query::<String>(con)
            .map_err(|e| format!("redis: {e}"))?;
    }
    Ok((trimmed >= 0).then_some(Compacted {
        kept: kept.len(),
        trimmed,
    }))
}

/// Whether a `CLIENT LIST` line is a client that reads the stream but not as a certgate that
/// knows the snapshot.
fn reads_stream_alone(line: &str) -> bool {
    let field = |name: &str| {
        line.split(' ')
            .find_map(|f| f.strip_prefix(name).and_then(|f| f.strip_prefix('=')))
            .unwrap_or_default()
    };
    matches!(field("cmd"), "xread" | "xrange" | "xrevrange") && field("name") != CLIENT_NAME
}

/// A stream id's milliseconds and sequence number (`ms-seq`).
fn stream_id(id: &str) -> Option<(i64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// One stream entry as a revocation. An entry this certgate cannot read fails the read, as a
/// malformed database row does: skipping it could skip a revocation (one written by a newer
/// certgate, say), so the view goes stale and checks answer 503 until it is dealt with.
fn parse(id: &redis::streams::StreamId) -> Result<Option<Entry>, String> {
    if id.map.contains_key(MARK) && !id.map.contains_key(FIELD) {
        return Ok(None);
    }
    id.map
        .get(FIELD)
        .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
        .ok_or_else(|| format!("no field `{FIELD}`"))
        .and_then(|json| serde_json::from_str::<Entry>(&json).map_err(|e| e.to_string()))
        .map_err(|e| {
            format!(
                "{KEY} entry {} is not a revocation this certgate can read ({e}): if a newer certgate wrote it, upgrade every replica",
                id.id
            )
        })
        .map(Some)
}

/// One `XREAD` after `after`: (id, entry) pairs (see [`parse`]).
fn read(
    con: &mut redis::Connection,
    after: &str,
    block_ms: Option<usize>,
) -> Result<Vec<(String, Option<Entry>)>, String> {
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
            let entry = parse(&id)?;
            out.push((id.id, entry));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_client_reading_the_stream_without_our_name_stops_compaction() {
        let ours = "id=3 addr=127.0.0.1:5 laddr=127.0.0.1:6379 fd=8 name=certgate-snapshot-1 age=2 idle=0 flags=b db=0 cmd=xread user=default";
        let old = "id=4 addr=127.0.0.1:6 laddr=127.0.0.1:6379 fd=9 name= age=2 idle=0 flags=b db=0 cmd=xread user=default";
        let cli = "id=5 addr=127.0.0.1:7 laddr=127.0.0.1:6379 fd=10 name= age=0 idle=0 flags=N db=0 cmd=client|list user=default";
        assert!(!super::reads_stream_alone(ours));
        assert!(super::reads_stream_alone(old));
        assert!(!super::reads_stream_alone(cli));
        assert_eq!(
            super::stream_id("1600000000000-7"),
            Some((1_600_000_000_000, 7))
        );
        assert_eq!(super::stream_id("x"), None);
    }
}
