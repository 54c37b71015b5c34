//! The replay log of an API in Redis (`[cluster]`), shared by every node: a stream that
//! reconnects to another node resumes there with the same event ids.
//!
//! Keys ([`keys::Replay`]): the API's generation and sequence, one Redis stream per principal
//! (entry id `{seq}-0`, trimmed to `sse.replay` entries), the latest push trimmed from it, and
//! the marks of the sequence over time that bound what expired logs held (the rules are
//! `portcullis_core::sse::replay::shared`). A push is one script, a snapshot another: each
//! reads and writes at once, so numbering, logging and trimming never interleave.
//!
//! A generation is created by whichever script finds none (a new cluster, or a Redis that came
//! back empty), and its sequence starts at Redis's clock in microseconds: numbers never go
//! back, so a stream opened before Redis came back never takes a new push for one it has
//! already replayed (its ids, of the old generation, are reset on resume).

use std::sync::Arc;

use bytes::Bytes;
use portcullis_config::Sse;
use portcullis_core::sse::replay::Snapshot;
use portcullis_core::sse::replay::shared::{self as rules, RETENTION_MS, SLICE_MS, Stored, Wanted};
use redis::{Script, Value};
use tracing::warn;

use crate::cluster::Cluster;
use crate::cluster::keys;
use crate::outbound::{Data, Outbound, Utf8Bytes};
use crate::registry::Unavailable;

/// Creates the generation if there is none; `gen` the log's generation, `now` Redis's ms.
/// KEYS: generation, seq. ARGV[1]: a new generation.
const GENERATION: &str = r"
local t = redis.call('TIME')
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SET', KEYS[2], t[1] .. string.format('%06d', tonumber(t[2])))
end
local gen = redis.call('GET', KEYS[1])
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// KEYS: generation, seq, log, trimmed, marks.
/// ARGV: new generation, replay, retention ms, slice ms, field (`t`/`b`), payload.
/// Returns {generation, seq}.
const LOG: &str = r"
local seq = redis.call('INCR', KEYS[2])
local sid = string.format('%d', seq)
local retention = ARGV[3]
local max = tonumber(ARGV[2])
if max == 0 then
  redis.call('SET', KEYS[4], sid, 'PX', retention)
else
  local n = redis.call('XLEN', KEYS[3])
  if n >= max then
    local old = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', n - max + 1)
    local id = old[#old][1]
    redis.call('SET', KEYS[4], string.sub(id, 1, string.find(id, '-', 1, true) - 1), 'PX', retention)
  else
    redis.call('PEXPIRE', KEYS[4], retention)
  end
  redis.call('XADD', KEYS[3], 'MAXLEN', max, sid .. '-0', ARGV[5], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], retention)
end
local span = tonumber(ARGV[4])
local slice = math.floor(now / span)
redis.call('HSETNX', KEYS[5], string.format('%d', slice), string.format('%d', seq - 1))
local keep = math.ceil(tonumber(retention) / span) + 1
if redis.call('HLEN', KEYS[5]) > keep + 1 then
  for _, field in ipairs(redis.call('HKEYS', KEYS[5])) do
    if tonumber(field) < slice - keep then
      redis.call('HDEL', KEYS[5], field)
    end
  end
end
redis.call('PEXPIRE', KEYS[5], 2 * tonumber(retention))
return {gen, sid}
";

/// KEYS: generation, seq, log, trimmed, marks.
/// ARGV: new generation, what to read (`none`, `all`, `after`), the client's generation and seq.
/// Returns {generation, seq, trimmed or '', now ms, marks (flat), entries}.
const SNAPSHOT: &str = r"
local current = redis.call('GET', KEYS[2])
local trimmed = redis.call('GET', KEYS[4]) or ''
local marks = redis.call('HGETALL', KEYS[5])
local entries = {}
local from = nil
if ARGV[2] == 'all' then
  from = '-'
elseif ARGV[2] == 'after' then
  if ARGV[3] == gen and tonumber(ARGV[4]) <= tonumber(current) then
    from = '(' .. ARGV[4] .. '-0'
  else
    from = '-'
  end
end
if from then
  entries = redis.call('XRANGE', KEYS[3], from, '+')
end
return {gen, current, trimmed, string.format('%d', now), marks, entries}
";

/// An API's replay log in Redis.
pub struct SharedReplay {
    keys: keys::Replay,
    replay: usize,
    cluster: Arc<Cluster>,
    log: Script,
    snapshot: Script,
}

impl SharedReplay {
    pub fn new(api: &str, sse: &Sse, cluster: Arc<Cluster>) -> Self {
        SharedReplay {
            keys: keys::Replay::new(api),
            replay: sse.replay,
            cluster,
            log: Script::new(&format!("{GENERATION}{LOG}")),
            snapshot: Script::new(&format!("{GENERATION}{SNAPSHOT}")),
        }
    }

    /// The five keys of both scripts, for `principal`.
    fn invocation<'a>(&self, script: &'a Script, principal: &str) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.keys.generation())
            .key(self.keys.seq())
            .key(self.keys.log(principal))
            .key(self.keys.trimmed(principal))
            .key(self.keys.marks())
            .arg(rand::random::<u32>().to_string());
        invocation
    }

    pub async fn log(
        &self,
        principal: &str,
        message: &Outbound,
    ) -> Result<Option<Outbound>, Unavailable> {
        let Some(data) = super::loggable(message) else {
            return Ok(None);
        };
        if !self.cluster.redis_up() {
            self.cluster.metrics().cluster.unavailable("replay_log");
            return Err(Unavailable);
        }
        let (field, payload): (&str, &[u8]) = match &data {
            Data::Text(text) => ("t", text.as_bytes()),
            Data::Binary(bytes) => ("b", bytes),
        };
        let mut invocation = self.invocation(&self.log, principal);
        invocation
            .arg(self.replay)
            .arg(RETENTION_MS)
            .arg(SLICE_MS)
            .arg(field)
            .arg(payload);
        let mut conn = self.cluster.commands();
        let answer: Result<(String, String), _> = invocation.invoke_async(&mut conn).await;
        match answer {
            Ok((_, seq)) => match seq.parse() {
                Ok(seq) => Ok(Some(Outbound::Logged { seq, data })),
                Err(_) => {
                    warn!(seq, "replay log: unexpected sequence number from Redis");
                    Err(Unavailable)
                }
            },
            Err(e) => {
                warn!(error = %e, "replay log: Redis did not log the push");
                self.cluster.metrics().cluster.unavailable("replay_log");
                Err(Unavailable)
            }
        }
    }

    pub async fn snapshot(
        &self,
        principal: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Snapshot<Data> {
        match self.read(principal, last_event_id).await {
            Some(stored) => rules::snapshot(stored, principal.is_some(), last_event_id),
            None => {
                self.cluster
                    .metrics()
                    .cluster
                    .unavailable("replay_snapshot");
                // Nothing known: a resuming client is told it may have missed something, and
                // every logged push that arrives live is written (none was replayed).
                Snapshot {
                    generation: rand::random(),
                    reset: last_event_id.is_some(),
                    from: 0,
                    events: Vec::new(),
                    position: 0,
                }
            }
        }
    }

    /// What Redis holds for a new stream; `None` when it cannot be read.
    async fn read(
        &self,
        principal: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Option<Stored<Data>> {
        if !self.cluster.redis_up() {
            return None;
        }
        let wanted = match principal {
            Some(_) => rules::wanted(last_event_id),
            None => Wanted::Nothing,
        };
        let mut invocation = self.invocation(&self.snapshot, principal.unwrap_or_default());
        match wanted {
            Wanted::Nothing => invocation.arg("none").arg("").arg(""),
            Wanted::All => invocation.arg("all").arg("").arg(""),
            Wanted::After { generation, seq } => invocation
                .arg("after")
                .arg(generation.to_string())
                .arg(seq.to_string()),
        };
        let mut conn = self.cluster.commands();
        let answer: Result<Value, _> = invocation.invoke_async(&mut conn).await;
        match answer.map(stored) {
            Ok(Some(stored)) => Some(stored),
            Ok(None) => {
                warn!("replay log: unexpected snapshot from Redis");
                None
            }
            Err(e) => {
                warn!(error = %e, "replay log: Redis could not be read");
                None
            }
        }
    }
}

/// The snapshot script's answer.
fn stored(value: Value) -> Option<Stored<Data>> {
    let Value::Array(parts) = value else {
        return None;
    };
    let [generation, current, trimmed, now, marks, entries] = <[Value; 6]>::try_from(parts).ok()?;
    let trimmed = text(&trimmed)?;
    Some(Stored {
        generation: text(&generation)?.parse().ok()?,
        current: text(&current)?.parse().ok()?,
        trimmed: if trimmed.is_empty() {
            None
        } else {
            Some(trimmed.parse().ok()?)
        },
        now_ms: text(&now)?.parse().ok()?,
        marks: marks_of(marks)?,
        events: entries_of(entries)?,
    })
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    String::from_utf8(bytes(value.clone())?).ok()
}

fn list(value: Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        Value::Nil => Some(Vec::new()),
        Value::Map(pairs) => Some(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        _ => None,
    }
}

/// `HGETALL marks`: slice → sequence number.
fn marks_of(value: Value) -> Option<Vec<(u64, u64)>> {
    let flat = list(value)?;
    flat.chunks(2)
        .map(|pair| match pair {
            [slice, seq] => Some((text(slice)?.parse().ok()?, text(seq)?.parse().ok()?)),
            _ => None,
        })
        .collect()
}

/// `XRANGE`: `[[id, [field, payload]], ...]` → `(seq, data)`.
fn entries_of(value: Value) -> Option<Vec<(u64, Data)>> {
    list(value)?
        .into_iter()
        .map(|entry| {
            let [id, fields] = <[Value; 2]>::try_from(list(entry)?).ok()?;
            let id = text(&id)?;
            let seq = id.split_once('-')?.0.parse().ok()?;
            let [field, payload] = <[Value; 2]>::try_from(list(fields)?).ok()?;
            let payload = Bytes::from(bytes(payload)?);
            let data = match text(&field)?.as_str() {
                "t" => Data::Text(Utf8Bytes::try_from(payload).ok()?),
                "b" => Data::Binary(payload),
                _ => return None,
            };
            Some((seq, data))
        })
        .collect()
}
