//! The provider's state in Redis (`store.backend = "redis"`), shared by replicas on any host.
//!
//! Every operation that decides something (a code redeemed once, a refresh token rotated once,
//! a grant ended once with one logout token queued, a delivery claimed by one replica) is one
//! Lua script, which Redis runs atomically: the same guarantees as the database's
//! transactions. Keys (all under `certgate:oidc:`):
//! - `grant:<id>` hash: `made` (the [`NewGrant`] as JSON), `revoked`, `tokens_issued`; it
//!   expires when nothing can use it any more: its code, its last token, its device request,
//!   or, for an app told of logouts, the refresh-token lifetime after sign-in.
//! - `grants` and `live` sorted sets of grant ids by that expiry (`live`: not revoked), for the
//!   sweep that ends grants whose user or certificate was revoked.
//! - `code:<sha256>`, `token:<sha256>`, `device:<sha256>`, `user-code:<code>`: expire with
//!   what they hold (a code a minute later, so that its replay is still recognised).
//! - `deliveries` sorted set of logout-token ids by when they are due (a claim moves one a
//!   lease ahead), `delivery:<id>` hashes, `delivery-seq`.
//!
//! Not for Redis Cluster: the scripts touch keys they find on the way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::backchannel::Delivery;
use super::device::{Poll, Request};
use super::grants::{Grant, Kind, NewGrant, Redeemed, Refreshed, Token};
use super::store::StoreError;

const TIMEOUT: Duration = Duration::from_secs(2);
/// Connections kept open; a request waits for one when all are busy.
const POOL: usize = 4;
/// How long a used or expired code is remembered, so that its replay still revokes its grant.
const CODE_GRACE: i64 = 60;

/// Shared by every script: key names, ending a grant (and queueing its logout token), and
/// keeping a grant until a time.
const PRELUDE: &str = r"
local P = 'certgate:oidc:'
local function grant_key(id) return P .. 'grant:' .. id end
local function keep(id, until_s)
  local cur = tonumber(redis.call('ZSCORE', P .. 'grants', id)) or 0
  if until_s > cur then
    redis.call('ZADD', P .. 'grants', until_s, id)
    if redis.call('ZSCORE', P .. 'live', id) then redis.call('ZADD', P .. 'live', until_s, id) end
    redis.call('EXPIREAT', grant_key(id), until_s)
  end
end
local function revoke(id, now_ms, notify_json)
  local g = grant_key(id)
  local f = redis.call('HMGET', g, 'made', 'revoked')
  if not f[1] or f[2] ~= '0' then return 0 end
  redis.call('HSET', g, 'revoked', '1')
  redis.call('ZREM', P .. 'live', id)
  local made = cjson.decode(f[1])
  for _, c in ipairs(cjson.decode(notify_json)) do
    if c == made.client_id then
      local n = redis.call('INCR', P .. 'delivery-seq')
      local d = P .. 'delivery:' .. n
      redis.call('HSET', d, 'client_id', made.client_id, 'grant_id', id, 'sub', made.user,
        'attempts', '0', 'created_ms', now_ms)
      if type(made.sid) == 'string' then redis.call('HSET', d, 'sid', made.sid) end
      redis.call('ZADD', P .. 'deliveries', now_ms, n)
      break
    end
  end
  return 1
end
local function add_grant(id, made, until_s)
  redis.call('HSET', grant_key(id), 'made', made, 'revoked', '0', 'tokens_issued', '0')
  redis.call('ZADD', P .. 'live', until_s, id)
  keep(id, until_s)
end
";

/// ARGV: id, made, code hash, redirect_uri, challenge ('' for none), code expiry, kept until.
const CREATE: &str = r"
add_grant(ARGV[1], ARGV[2], tonumber(ARGV[7]))
local c = P .. 'code:' .. ARGV[3]
redis.call('HSET', c, 'grant_id', ARGV[1], 'redirect_uri', ARGV[4], 'expires', ARGV[6], 'used', '0')
if ARGV[5] ~= '' then redis.call('HSET', c, 'challenge', ARGV[5]) end
redis.call('EXPIREAT', c, ARGV[7])
return 1
";

/// ARGV: code hash, now, now (ms), notified clients (JSON).
const REDEEM: &str = r"
local c = P .. 'code:' .. ARGV[1]
local f = redis.call('HMGET', c, 'grant_id', 'redirect_uri', 'challenge', 'expires', 'used')
if not f[1] then return {'unknown'} end
if f[5] ~= '0' then revoke(f[1], ARGV[3], ARGV[4]) return {'replayed'} end
redis.call('HSET', c, 'used', '1')
if tonumber(f[4]) <= tonumber(ARGV[2]) then return {'expired'} end
local g = redis.call('HMGET', grant_key(f[1]), 'made', 'revoked')
if not g[1] then return {'unknown'} end
return {'fresh', f[1], g[1], g[2], f[2], f[3]}
";

/// ARGV: grant id, now, access hash, access expiry, refresh hash ('' for none), refresh
/// expiry, bound thumbprint ('' for none), notified clients (JSON), keep (s).
const ADD_TOKENS: &str = r"
local id = ARGV[1]
local made = redis.call('HGET', grant_key(id), 'made')
if not made then return 0 end
local function token(hash, kind, exp)
  local t = P .. 'token:' .. hash
  redis.call('HSET', t, 'grant_id', id, 'kind', kind, 'expires', exp, 'issued', ARGV[2],
    'used', '0', 'revoked', '0')
  if ARGV[7] ~= '' then redis.call('HSET', t, 'x5t', ARGV[7]) end
  redis.call('EXPIREAT', t, exp)
  keep(id, tonumber(exp))
end
token(ARGV[3], 'access', ARGV[4])
if ARGV[5] ~= '' then token(ARGV[5], 'refresh', ARGV[6]) end
redis.call('HSET', grant_key(id), 'tokens_issued', '1')
local m = cjson.decode(made)
for _, c in ipairs(cjson.decode(ARGV[8])) do
  if c == m.client_id then keep(id, math.floor(m.created_ms / 1000) + tonumber(ARGV[9])) end
end
return 1
";

/// ARGV: refresh token hash, now, now (ms), notified clients (JSON).
const REFRESH: &str = r"
local t = P .. 'token:' .. ARGV[1]
local f = redis.call('HMGET', t, 'grant_id', 'kind', 'expires', 'used')
if not f[1] or f[2] ~= 'refresh' then return {'unknown'} end
if f[4] ~= '0' then revoke(f[1], ARGV[3], ARGV[4]) return {'reused'} end
redis.call('HSET', t, 'used', '1')
if tonumber(f[3]) <= tonumber(ARGV[2]) then return {'expired'} end
local g = redis.call('HMGET', grant_key(f[1]), 'made', 'revoked')
if not g[1] then return {'unknown'} end
return {'fresh', f[1], g[1], g[2]}
";

/// ARGV: token hash.
const TOKEN: &str = r"
local f = redis.call('HMGET', P .. 'token:' .. ARGV[1], 'grant_id', 'kind', 'expires', 'issued',
  'used', 'revoked', 'x5t')
if not f[1] then return {} end
local g = redis.call('HMGET', grant_key(f[1]), 'made', 'revoked')
if not g[1] then return {} end
return {f[1], f[2], f[3], f[4], f[5], f[6], f[7], g[1], g[2]}
";

/// ARGV: token hash.
const REVOKE_TOKEN: &str = r"
local t = P .. 'token:' .. ARGV[1]
if redis.call('EXISTS', t) == 1 then redis.call('HSET', t, 'revoked', '1') end
return 1
";

/// ARGV: grant id, now (ms), notified clients (JSON).
const REVOKE: &str = r"
return revoke(ARGV[1], ARGV[2], ARGV[3])
";

/// Every live grant: id and `made`, alternating.
const LIVE: &str = r"
local out = {}
for _, id in ipairs(redis.call('ZRANGE', P .. 'live', 0, -1)) do
  local g = redis.call('HMGET', grant_key(id), 'made', 'revoked')
  if g[1] and g[2] == '0' then
    table.insert(out, id)
    table.insert(out, g[1])
  end
end
return out
";

/// ARGV: now.
const PRUNE: &str = r"
redis.call('ZREMRANGEBYSCORE', P .. 'live', '-inf', ARGV[1])
return redis.call('ZREMRANGEBYSCORE', P .. 'grants', '-inf', ARGV[1])
";

/// ARGV: device hash, user code, client id, scopes, expiry, interval.
const DEVICE_CREATE: &str = r"
if not redis.call('SET', P .. 'user-code:' .. ARGV[2], ARGV[1], 'NX', 'EXAT', ARGV[5]) then
  return 0
end
local d = P .. 'device:' .. ARGV[1]
redis.call('HSET', d, 'user_code', ARGV[2], 'client_id', ARGV[3], 'scopes', ARGV[4],
  'expires', ARGV[5], 'poll_interval', ARGV[6], 'last_poll', '0', 'status', 'pending')
redis.call('EXPIREAT', d, ARGV[5])
return 1
";

/// ARGV: user code, now.
const DEVICE_PENDING: &str = r"
local h = redis.call('GET', P .. 'user-code:' .. ARGV[1])
if not h then return {} end
local f = redis.call('HMGET', P .. 'device:' .. h, 'client_id', 'scopes', 'status', 'expires')
if not f[1] or f[3] ~= 'pending' or tonumber(f[4]) <= tonumber(ARGV[2]) then return {} end
return {f[1], f[2]}
";

/// ARGV: user code, now, grant id ('' to deny), made.
const DEVICE_DECIDE: &str = r"
local h = redis.call('GET', P .. 'user-code:' .. ARGV[1])
if not h then return 0 end
local d = P .. 'device:' .. h
local f = redis.call('HMGET', d, 'status', 'expires')
if f[1] ~= 'pending' or tonumber(f[2]) <= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  redis.call('HSET', d, 'status', 'denied')
  return 1
end
add_grant(ARGV[3], ARGV[4], tonumber(f[2]))
redis.call('HSET', d, 'status', 'approved', 'grant_id', ARGV[3])
return 1
";

/// ARGV: device hash, client id, now.
const DEVICE_POLL: &str = r"
local d = P .. 'device:' .. ARGV[1]
local f = redis.call('HMGET', d, 'client_id', 'expires', 'poll_interval', 'last_poll', 'status',
  'grant_id')
if not f[1] or f[1] ~= ARGV[2] then return {'unknown'} end
local now = tonumber(ARGV[3])
if tonumber(f[2]) <= now then return {'expired'} end
if f[5] == 'pending' and now < tonumber(f[4]) + tonumber(f[3]) then
  redis.call('HSET', d, 'poll_interval', tonumber(f[3]) + 5, 'last_poll', ARGV[3])
  return {'slow_down'}
end
redis.call('HSET', d, 'last_poll', ARGV[3])
if f[5] == 'approved' and f[6] then
  redis.call('HSET', d, 'status', 'spent')
  local g = redis.call('HMGET', grant_key(f[6]), 'made', 'revoked')
  if not g[1] then return {'spent'} end
  return {'approved', f[6], g[1], g[2]}
end
if f[5] == 'denied' or f[5] == 'spent' then return {f[5]} end
return {'pending'}
";

/// ARGV: now (ms), limit, lease (ms).
const CLAIM: &str = r"
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'deliveries', '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])) do
  local f = redis.call('HMGET', P .. 'delivery:' .. id, 'client_id', 'grant_id', 'sub', 'sid',
    'attempts', 'created_ms')
  if f[1] then
    redis.call('ZADD', P .. 'deliveries', tonumber(ARGV[1]) + tonumber(ARGV[3]), id)
    table.insert(out, {id, f[1], f[2], f[3], f[4], f[5], f[6]})
  else
    redis.call('ZREM', P .. 'deliveries', id)
  end
end
return out
";

/// ARGV: delivery id, attempts, due (ms), error.
const FAILED: &str = r"
local d = P .. 'delivery:' .. ARGV[1]
if redis.call('EXISTS', d) == 0 then return 0 end
redis.call('HSET', d, 'attempts', ARGV[2], 'last_error', ARGV[4])
redis.call('ZADD', P .. 'deliveries', ARGV[3], ARGV[1])
return 1
";

struct Scripts {
    create: ::redis::Script,
    redeem: ::redis::Script,
    add_tokens: ::redis::Script,
    refresh: ::redis::Script,
    token: ::redis::Script,
    revoke_token: ::redis::Script,
    revoke: ::redis::Script,
    live: ::redis::Script,
    prune: ::redis::Script,
    device_create: ::redis::Script,
    device_pending: ::redis::Script,
    device_decide: ::redis::Script,
    device_poll: ::redis::Script,
    claim: ::redis::Script,
    failed: ::redis::Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| ::redis::Script::new(&format!("{PRELUDE}\n{body}"));
        Self {
            create: s(CREATE),
            redeem: s(REDEEM),
            add_tokens: s(ADD_TOKENS),
            refresh: s(REFRESH),
            token: s(TOKEN),
            revoke_token: s(REVOKE_TOKEN),
            revoke: s(REVOKE),
            live: s(LIVE),
            prune: s(PRUNE),
            device_create: s(DEVICE_CREATE),
            device_pending: s(DEVICE_PENDING),
            device_decide: s(DEVICE_DECIDE),
            device_poll: s(DEVICE_POLL),
            claim: s(CLAIM),
            failed: s(FAILED),
        }
    }
}

/// The connection to Redis the provider's state goes through.
pub struct Shared {
    client: ::redis::Client,
    pool: Vec<Mutex<Option<::redis::Connection>>>,
    next: AtomicUsize,
    scripts: Scripts,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("oidc::redis::Shared")
    }
}

type Fields = Vec<Option<String>>;

fn bad(what: &str) -> StoreError {
    StoreError::Redis(format!("unexpected answer from Redis: {what}"))
}

fn field(fields: &Fields, i: usize) -> Option<String> {
    fields.get(i).cloned().flatten()
}

fn number(fields: &Fields, i: usize, what: &str) -> Result<i64, StoreError> {
    field(fields, i)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad(what))
}

/// A grant from its id, `made` (JSON) and `revoked` ("0"/"1").
fn grant(
    id: Option<String>,
    made: Option<String>,
    revoked: Option<String>,
) -> Result<Grant, StoreError> {
    let id = id.ok_or_else(|| bad("a grant without an id"))?;
    let made: NewGrant = serde_json::from_str(made.as_deref().unwrap_or_default())
        .map_err(|e| bad(&format!("grant {id}: {e}")))?;
    Ok(Grant {
        id,
        made,
        revoked: revoked.as_deref() != Some("0"),
    })
}

fn json(new: &NewGrant) -> Result<String, StoreError> {
    serde_json::to_string(new).map_err(|e| StoreError::Redis(e.to_string()))
}

impl Shared {
    /// # Errors
    /// When the URL is not a Redis URL (checked at config time already). Connections are
    /// made when first needed.
    pub fn new(url: &str) -> Result<Self, String> {
        Ok(Self {
            client: ::redis::Client::open(url).map_err(|e| format!("store.redis_url: {e}"))?,
            pool: (0..POOL).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            scripts: Scripts::new(),
        })
    }

    /// Runs `f` on a pooled connection, made anew when the last one broke. A command that
    /// failed on a connection found broken (Redis restarted since it was made) is sent once
    /// more on a new one. Should the first have run after all, the second finds its work done
    /// and refuses: a redeemed code counts as replayed, a rotated refresh token as reused, so
    /// a retry can deny a person but never let anyone in twice.
    fn with<T>(
        &self,
        mut f: impl FnMut(&mut ::redis::Connection) -> ::redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % POOL;
        let Some(cell) = self.pool.get(slot) else {
            return Err(StoreError::Redis("no connection slot".into()));
        };
        let mut held = cell.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tries = 0;
        loop {
            tries += 1;
            let con = match held.as_mut() {
                Some(con) if ::redis::ConnectionLike::is_open(con) => con,
                _ => held.insert(self.connect()?),
            };
            match f(con) {
                Ok(value) => return Ok(value),
                Err(e) => {
                    let broken = e.is_io_error() || e.is_connection_dropped();
                    if broken || e.is_timeout() {
                        *held = None;
                    }
                    if !broken || e.is_timeout() || tries > 1 {
                        return Err(StoreError::Redis(e.to_string()));
                    }
                }
            }
        }
    }

    fn connect(&self) -> Result<::redis::Connection, StoreError> {
        self.client
            .get_connection_with_timeout(TIMEOUT)
            .and_then(|c| {
                c.set_read_timeout(Some(TIMEOUT))?;
                c.set_write_timeout(Some(TIMEOUT))?;
                Ok(c)
            })
            .map_err(|e| StoreError::Redis(e.to_string()))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &self,
        id: &str,
        new: &NewGrant,
        code_hash: &str,
        redirect_uri: &str,
        challenge: Option<&str>,
        code_expires: i64,
    ) -> Result<(), StoreError> {
        let made = json(new)?;
        self.with(|c| {
            self.scripts
                .create
                .arg(id)
                .arg(&made)
                .arg(code_hash)
                .arg(redirect_uri)
                .arg(challenge.unwrap_or_default())
                .arg(code_expires)
                .arg(code_expires.saturating_add(CODE_GRACE))
                .invoke::<i64>(c)
        })
        .map(drop)
    }

    pub fn redeem(&self, code_hash: &str, now: i64, notify: &str) -> Result<Redeemed, StoreError> {
        let f: Fields = self.with(|c| {
            self.scripts
                .redeem
                .arg(code_hash)
                .arg(now)
                .arg(now.saturating_mul(1000))
                .arg(notify)
                .invoke(c)
        })?;
        Ok(match field(&f, 0).as_deref() {
            Some("fresh") => Redeemed::Fresh {
                grant: Box::new(grant(field(&f, 1), field(&f, 2), field(&f, 3))?),
                redirect_uri: field(&f, 4).ok_or_else(|| bad("a code without redirect_uri"))?,
                challenge: field(&f, 5),
            },
            Some("replayed") => Redeemed::Replayed,
            Some("expired") => Redeemed::Expired,
            Some("unknown") => Redeemed::Unknown,
            other => return Err(bad(&format!("redeem: {other:?}"))),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn add_tokens(
        &self,
        grant_id: &str,
        now: i64,
        access: (&str, i64),
        refresh: Option<(&str, i64)>,
        bound: Option<&str>,
        notify: &str,
        keep_s: i64,
    ) -> Result<(), StoreError> {
        let (refresh_hash, refresh_expires) = refresh.unwrap_or(("", 0));
        self.with(|c| {
            self.scripts
                .add_tokens
                .arg(grant_id)
                .arg(now)
                .arg(access.0)
                .arg(access.1)
                .arg(refresh_hash)
                .arg(refresh_expires)
                .arg(bound.unwrap_or_default())
                .arg(notify)
                .arg(keep_s)
                .invoke::<i64>(c)
        })
        .map(drop)
    }

    pub fn refresh(&self, hash: &str, now: i64, notify: &str) -> Result<Refreshed, StoreError> {
        let f: Fields = self.with(|c| {
            self.scripts
                .refresh
                .arg(hash)
                .arg(now)
                .arg(now.saturating_mul(1000))
                .arg(notify)
                .invoke(c)
        })?;
        Ok(match field(&f, 0).as_deref() {
            Some("fresh") => Refreshed::Fresh(grant(field(&f, 1), field(&f, 2), field(&f, 3))?),
            Some("reused") => Refreshed::Reused,
            Some("expired") => Refreshed::Expired,
            Some("unknown") => Refreshed::Unknown,
            other => return Err(bad(&format!("refresh: {other:?}"))),
        })
    }

    pub fn token(&self, hash: &str) -> Result<Option<Token>, StoreError> {
        let f: Fields = self.with(|c| self.scripts.token.arg(hash).invoke(c))?;
        if f.is_empty() {
            return Ok(None);
        }
        let issued = field(&f, 3).and_then(|v| v.parse().ok());
        Ok(Some(Token {
            kind: if field(&f, 1).as_deref() == Some("refresh") {
                Kind::Refresh
            } else {
                Kind::Access
            },
            expires: number(&f, 2, "a token without expiry")?,
            issued,
            used: field(&f, 4).as_deref() != Some("0"),
            revoked: field(&f, 5).as_deref() != Some("0"),
            x5t: field(&f, 6),
            grant: grant(field(&f, 0), field(&f, 7), field(&f, 8))?,
        }))
    }

    pub fn revoke_token(&self, hash: &str) -> Result<(), StoreError> {
        self.with(|c| self.scripts.revoke_token.arg(hash).invoke::<i64>(c))
            .map(drop)
    }

    pub fn revoke(&self, grant_id: &str, now_ms: i64, notify: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            self.scripts
                .revoke
                .arg(grant_id)
                .arg(now_ms)
                .arg(notify)
                .invoke::<i64>(c)
        })
        .map(|n| n == 1)
    }

    pub fn live(&self) -> Result<Vec<Grant>, StoreError> {
        let f: Fields = self.with(|c| self.scripts.live.invoke(c))?;
        f.chunks(2)
            .map(|pair| {
                grant(
                    pair.first().cloned().flatten(),
                    pair.get(1).cloned().flatten(),
                    Some("0".into()),
                )
            })
            .collect()
    }

    pub fn prune(&self, now: i64) -> Result<usize, StoreError> {
        self.with(|c| self.scripts.prune.arg(now).invoke::<usize>(c))
    }

    pub fn device_create(
        &self,
        device_hash: &str,
        user_code: &str,
        request: &Request,
        expires: i64,
        interval: i64,
    ) -> Result<(), StoreError> {
        let made: i64 = self.with(|c| {
            self.scripts
                .device_create
                .arg(device_hash)
                .arg(user_code)
                .arg(&request.client_id)
                .arg(&request.scopes)
                .arg(expires)
                .arg(interval)
                .invoke(c)
        })?;
        if made == 1 {
            Ok(())
        } else {
            Err(StoreError::Redis(format!(
                "the user code {user_code} is taken"
            )))
        }
    }

    pub fn device_pending(&self, user_code: &str, now: i64) -> Result<Option<Request>, StoreError> {
        let f: Fields = self.with(|c| {
            self.scripts
                .device_pending
                .arg(user_code)
                .arg(now)
                .invoke(c)
        })?;
        Ok(match (field(&f, 0), field(&f, 1)) {
            (Some(client_id), Some(scopes)) => Some(Request { client_id, scopes }),
            _ => None,
        })
    }

    pub fn device_decide(
        &self,
        user_code: &str,
        approve: Option<(&str, &NewGrant)>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (id, made) = match approve {
            Some((id, new)) => (id, json(new)?),
            None => ("", String::new()),
        };
        self.with(|c| {
            self.scripts
                .device_decide
                .arg(user_code)
                .arg(now)
                .arg(id)
                .arg(&made)
                .invoke::<i64>(c)
        })
        .map(|n| n == 1)
    }

    pub fn device_poll(
        &self,
        device_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Poll, StoreError> {
        let f: Fields = self.with(|c| {
            self.scripts
                .device_poll
                .arg(device_hash)
                .arg(client_id)
                .arg(now)
                .invoke(c)
        })?;
        Ok(match field(&f, 0).as_deref() {
            Some("approved") => {
                Poll::Approved(Box::new(grant(field(&f, 1), field(&f, 2), field(&f, 3))?))
            }
            Some("slow_down") => Poll::SlowDown,
            Some("denied") => Poll::Denied,
            Some("spent") => Poll::Spent,
            Some("pending") => Poll::Pending,
            Some("expired") => Poll::Expired,
            Some("unknown") => Poll::Unknown,
            other => return Err(bad(&format!("poll: {other:?}"))),
        })
    }

    pub fn any_due(&self, now_ms: i64) -> Result<bool, StoreError> {
        let due: Vec<String> = self.with(|c| {
            ::redis::cmd("ZRANGEBYSCORE")
                .arg("certgate:oidc:deliveries")
                .arg("-inf")
                .arg(now_ms)
                .arg("LIMIT")
                .arg(0)
                .arg(1)
                .query(c)
        })?;
        Ok(!due.is_empty())
    }

    pub fn claim(
        &self,
        now_ms: i64,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows: Vec<Fields> = self.with(|c| {
            self.scripts
                .claim
                .arg(now_ms)
                .arg(limit)
                .arg(lease_ms)
                .invoke(c)
        })?;
        rows.iter()
            .map(|f| {
                Ok(Delivery {
                    id: number(f, 0, "a delivery id")?,
                    client_id: field(f, 1).ok_or_else(|| bad("a delivery without client"))?,
                    grant_id: field(f, 2).ok_or_else(|| bad("a delivery without grant"))?,
                    sub: field(f, 3).ok_or_else(|| bad("a delivery without sub"))?,
                    sid: field(f, 4),
                    attempts: number(f, 5, "a delivery's attempts")?,
                    created_ms: number(f, 6, "a delivery's time")?,
                })
            })
            .collect()
    }

    pub fn done(&self, id: i64) -> Result<(), StoreError> {
        self.with(|c| {
            ::redis::pipe()
                .atomic()
                .del(format!("certgate:oidc:delivery:{id}"))
                .zrem("certgate:oidc:deliveries", id)
                .query::<()>(c)
        })
    }

    pub fn failed(&self, id: i64, attempts: i64, due_ms: i64, why: &str) -> Result<(), StoreError> {
        self.with(|c| {
            self.scripts
                .failed
                .arg(id)
                .arg(attempts)
                .arg(due_ms)
                .arg(why)
                .invoke::<i64>(c)
        })
        .map(drop)
    }

    pub fn pending(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            ::redis::cmd("ZCARD")
                .arg("certgate:oidc:deliveries")
                .query(c)
        })
    }
}
