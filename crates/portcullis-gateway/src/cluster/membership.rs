//! Membership: the heartbeat that keeps this node in `portcullis:nodes`, the view of which
//! nodes are live, and the reaping of dead nodes' connections.
//!
//! Time is Redis's (`TIME` inside the scripts), so nodes on machines whose clocks differ agree
//! on who is late. A node declares others dead only after it has itself been connected for 3
//! heartbeats: after an outage of Redis every live node has stamped itself again by then.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use portcullis_core::id::{ConnectionId, NodeId};
use redis::aio::ConnectionManager;
use redis::{RedisResult, Script};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Cluster, LostConnection, keys, now_ms, wire};

/// Heartbeats without a word after which a node is dead.
pub const MISSED: u32 = 3;
/// Records claimed per `HSCAN` round while reaping.
const REAP_BATCH: usize = 200;
/// `$disconnect`s sent at once while reaping.
const REAP_CONCURRENCY: usize = 64;

/// Stamp this node, keep its name alive, and read everyone's last stamp. Returns Redis's time
/// (ms) then `member, score` pairs.
const HEARTBEAT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
table.insert(all, 1, tostring(now))
return all
";

/// Move a node not heard since the cutoff from the members to the dead (once: only the
/// first caller gets 1).
const DECLARE_DEAD: &str = r"
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
";

/// An `HSCAN` page: the next cursor and `(connection id, record)` pairs.
type Scanned = (u64, Vec<(String, Vec<u8>)>);

/// The set of nodes declared dead whose records are still being reaped.
pub const DEAD: &str = "portcullis:dead";

/// Pick a free random tag for this node and hold its name key (`SET NX`).
pub(super) async fn claim_tag(
    commands: &ConnectionManager,
    name: &str,
    heartbeat: Duration,
) -> RedisResult<NodeId> {
    let mut conn = commands.clone();
    let ttl = ttl_ms(heartbeat);
    loop {
        let tag = NodeId(rand::random::<u32>()).masked();
        if tag.0 == 0 {
            continue;
        }
        let claimed: Option<String> = redis::cmd("SET")
            .arg(keys::node_name(tag))
            .arg(if name.is_empty() { "unnamed" } else { name })
            .arg("NX")
            .arg("PX")
            .arg(ttl)
            .query_async(&mut conn)
            .await?;
        let dead: bool = redis::cmd("SISMEMBER")
            .arg(DEAD)
            .arg(tag.0)
            .query_async(&mut conn)
            .await?;
        if claimed.is_some() && !dead {
            return Ok(tag);
        }
    }
}

/// How long a node's name key lives without a heartbeat.
fn ttl_ms(heartbeat: Duration) -> u64 {
    u64::try_from(heartbeat.as_millis())
        .unwrap_or(u64::MAX / 20)
        .saturating_mul(10)
}

/// Heartbeat every `heartbeat` until `shutdown`; reap the dead.
pub(super) async fn run(cluster: Arc<Cluster>, lost: LostConnection, shutdown: CancellationToken) {
    let heartbeat = Script::new(HEARTBEAT);
    let declare = Script::new(DECLARE_DEAD);
    let reaping = Arc::new(Semaphore::new(1));
    let late_ms = i64::try_from(cluster.heartbeat.as_millis())
        .unwrap_or(i64::MAX / 4)
        .saturating_mul(i64::from(MISSED));
    let mut ticker = tokio::time::interval(cluster.heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let mut conn = cluster.commands.clone();
        let beat: RedisResult<Vec<String>> = heartbeat
            .key(keys::NODES)
            .key(keys::node_name(cluster.node))
            .arg(cluster.node.0)
            .arg(&cluster.name)
            .arg(ttl_ms(cluster.heartbeat))
            .invoke_async(&mut conn)
            .await;
        // The subscriber connection is idle between messages: a PING makes it notice a
        // broken connection and reconnect.
        let mut sub = cluster.subscriber.clone();
        let ping: RedisResult<()> = redis::cmd("PING").query_async(&mut sub).await;
        let reply = match (beat, ping) {
            (Ok(reply), Ok(())) => reply,
            (Err(e), _) | (_, Err(e)) => {
                if cluster.up.swap(false, Ordering::SeqCst) {
                    warn!(error = %e, "Redis unreachable: this node serves its own connections; calls that need another node answer 503 until it is back");
                }
                cluster.up_since_ms.store(0, Ordering::SeqCst);
                cluster.metrics.cluster.redis_up.set(0);
                continue;
            }
        };
        if !cluster.up.swap(true, Ordering::SeqCst) {
            info!("Redis reachable again: resubscribing and re-announcing this node's connections");
            cluster.up_since_ms.store(now_ms(), Ordering::SeqCst);
            cluster.resubscribe.store(true, Ordering::SeqCst);
            cluster.interests.wake.notify_one();
            cluster.announcer.reannounce();
            cluster.metrics.cluster.redis_up.set(1);
        }
        let Some((now, members)) = parse(&reply) else {
            continue;
        };
        let cutoff = now - late_ms;
        let mut live = HashSet::from([cluster.node]);
        let mut late = Vec::new();
        for (node, stamp) in members {
            if stamp >= cutoff {
                live.insert(node);
            } else if node != cluster.node {
                late.push(node);
            }
        }
        cluster.metrics.cluster.nodes.set(live.len() as i64);
        *cluster.live.write().unwrap_or_else(|p| p.into_inner()) = live;

        // Only a node that has been connected for 3 heartbeats judges the others.
        let since = cluster.up_since_ms.load(Ordering::SeqCst);
        if since == 0 || now_ms() - since < late_ms {
            continue;
        }
        for node in late {
            let declared: RedisResult<i64> = declare
                .key(keys::NODES)
                .key(DEAD)
                .arg(node.0)
                .arg(cutoff)
                .invoke_async(&mut conn)
                .await;
            if let Ok(1) = declared {
                warn!(lost = %node, "a node was not heard for {MISSED} heartbeats: its connections get their $disconnect from the survivors");
                cluster.metrics.cluster.nodes_lost.inc();
            }
        }
        // Reap in the background, one round at a time.
        if let Ok(permit) = reaping.clone().try_acquire_owned() {
            let cluster = cluster.clone();
            let lost = lost.clone();
            tokio::spawn(async move {
                reap(&cluster, &lost).await;
                drop(permit);
            });
        }
    }
}

/// Redis's time and each member's last stamp.
fn parse(reply: &[String]) -> Option<(i64, Vec<(NodeId, i64)>)> {
    let (now, rest) = reply.split_first()?;
    let now = now.parse().ok()?;
    let members = rest
        .chunks_exact(2)
        .filter_map(|pair| {
            let node = pair[0].parse::<u32>().ok()?;
            let stamp = pair[1].parse::<f64>().ok()? as i64;
            Some((NodeId(node).masked(), stamp))
        })
        .collect();
    Some((now, members))
}

/// Claim and report the connections of every dead node (several survivors may run this at
/// once: each record is claimed by exactly one of them).
async fn reap(cluster: &Cluster, lost: &LostConnection) {
    let mut conn = cluster.commands.clone();
    let dead: Vec<u32> = match redis::cmd("SMEMBERS")
        .arg(DEAD)
        .query_async(&mut conn)
        .await
    {
        Ok(dead) => dead,
        Err(_) => return,
    };
    let sending = Arc::new(Semaphore::new(REAP_CONCURRENCY));
    for tag in dead {
        let node = NodeId(tag).masked();
        if node == cluster.node {
            // Declared dead while cut off from Redis: survivors reported the connections it
            // had announced; its records are written again by the re-announce.
            warn!(
                "this node was declared dead while it could not reach Redis; its connections' backends may see a $disconnect for connections that are still open"
            );
            let _: RedisResult<()> = redis::cmd("SREM")
                .arg(DEAD)
                .arg(tag)
                .query_async(&mut conn)
                .await;
            cluster.announcer.reannounce();
            continue;
        }
        let key = keys::conns(node);
        let mut cursor: u64 = 0;
        loop {
            let scanned: RedisResult<Scanned> = redis::cmd("HSCAN")
                .arg(&key)
                .arg(cursor)
                .arg("COUNT")
                .arg(REAP_BATCH)
                .query_async(&mut conn)
                .await;
            let Ok((next, records)) = scanned else {
                return;
            };
            for (field, value) in records {
                let claimed: RedisResult<i64> = redis::cmd("HDEL")
                    .arg(&key)
                    .arg(&field)
                    .query_async(&mut conn)
                    .await;
                if !matches!(claimed, Ok(1)) {
                    continue;
                }
                let (Some(id), Ok(record)) = (
                    ConnectionId::parse(&field),
                    serde_json::from_slice::<wire::Record>(&value),
                ) else {
                    continue;
                };
                let Ok(permit) = sending.clone().acquire_owned().await else {
                    return;
                };
                let lost = lost.clone();
                let delivered = cluster.metrics.cluster.disconnects_delivered.clone();
                tokio::spawn(async move {
                    lost(id, record).await;
                    delivered.inc();
                    drop(permit);
                });
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let remaining: RedisResult<i64> = redis::cmd("HLEN").arg(&key).query_async(&mut conn).await;
        if let Ok(0) = remaining {
            let _: RedisResult<()> = redis::pipe()
                .cmd("SREM")
                .arg(DEAD)
                .arg(tag)
                .ignore()
                .cmd("DEL")
                .arg(keys::node_name(node))
                .ignore()
                .query_async(&mut conn)
                .await;
            info!(lost = %node, "every connection of the lost node has been reported");
        }
    }
}
