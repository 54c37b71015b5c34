//! `[cluster]`: the Redis URL, this node's name and the heartbeat.

use std::time::Duration;

use crate::model::Cluster;
use crate::syntax;
use crate::walk::{Ctx, Tbl};

/// Default `heartbeat`: a node not heard for three of them (9 s) is dead.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(3);
/// Longest `node_id`.
pub const MAX_NODE_ID_LEN: usize = 64;

pub(super) fn cluster(ctx: &mut Ctx<'_>, mut t: Tbl<'_>) -> Option<Cluster> {
    if !t.contains("redis") {
        t.missing(ctx, "redis");
    }
    let redis = t.string(ctx, "redis");
    let redis_path = t.path_of("redis");
    let node_id = t.string(ctx, "node_id");
    let node_path = t.path_of("node_id");
    let heartbeat = t
        .duration_in(
            ctx,
            "heartbeat",
            Duration::from_secs(1),
            Duration::from_secs(60),
        )
        .map_or(DEFAULT_HEARTBEAT, |d| d.v);
    t.finish(ctx);
    let redis = redis?;
    if !(redis.v.starts_with("redis://") || redis.v.starts_with("rediss://")) {
        ctx.error(
            redis.at,
            &redis_path,
            format!(
                "unsupported Redis URL {:?}: expected \"redis://HOST:PORT\" or \"rediss://HOST:PORT\"",
                syntax::redact_url(&redis.v)
            ),
        );
        return None;
    }
    if let Some(node) = &node_id
        && !valid_node_id(&node.v)
    {
        ctx.error(
            node.at,
            &node_path,
            format!(
                "invalid node_id {:?}: 1 to {MAX_NODE_ID_LEN} of A-Z a-z 0-9 . _ -",
                node.v
            ),
        );
        return None;
    }
    Some(Cluster {
        redis: redis.v,
        node_id: node_id.map(|n| n.v),
        heartbeat,
    })
}

/// A node name: 1–64 characters of `[A-Za-z0-9._-]` (it appears in Redis keys and metrics).
pub fn valid_node_id(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NODE_ID_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use crate::load_str;

    const SERVER: &str =
        "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n";

    fn env(name: &str) -> Option<String> {
        (name == "REDIS_URL").then(|| "redis://:hunter2@10.0.0.5:6380/0".to_owned())
    }

    fn errors(rest: &str) -> Vec<String> {
        match load_str(&format!("{SERVER}{rest}"), "test.toml", &env) {
            Ok(c) => panic!("expected errors, got {c:?}"),
            Err(d) => d.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn without_cluster_the_gateway_is_one_node() {
        let config = load_str(SERVER, "test.toml", &env).unwrap();
        assert!(config.cluster.is_none());
    }

    #[test]
    fn cluster_reads_redis_node_and_heartbeat() {
        let source = format!(
            "{SERVER}[cluster]\nredis = \"${{REDIS_URL}}\"\nnode_id = \"node-a\"\nheartbeat = \"1s\"\n"
        );
        let cluster = load_str(&source, "test.toml", &env)
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(cluster.redis, "redis://:hunter2@10.0.0.5:6380/0");
        assert_eq!(cluster.node_id.as_deref(), Some("node-a"));
        assert_eq!(cluster.heartbeat, Duration::from_secs(1));
        let shown = format!("{cluster:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn heartbeat_defaults_to_three_seconds() {
        let source = format!("{SERVER}[cluster]\nredis = \"redis://127.0.0.1:6379\"\n");
        let cluster = load_str(&source, "test.toml", &env)
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(cluster.heartbeat, Duration::from_secs(3));
        assert_eq!(cluster.node_id, None);
    }

    #[test]
    fn bad_cluster_values_are_reported_with_their_key() {
        assert_eq!(
            errors("[cluster]\nheartbeat = \"2s\"\n"),
            vec!["test.toml:4:1: cluster.redis: missing required key".to_owned()]
        );
        let e = errors("[cluster]\nredis = \"http://:pw@host:6379\"\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].contains("cluster.redis: unsupported Redis URL"),
            "{e:?}"
        );
        assert!(!e[0].contains(":pw@"), "{e:?}");
        let e = errors("[cluster]\nredis = \"redis://h\"\nnode_id = \"a b\"\n");
        assert!(e[0].contains("cluster.node_id: invalid node_id"), "{e:?}");
        let e = errors("[cluster]\nredis = \"redis://h\"\nheartbeat = \"100ms\"\n");
        assert!(e[0].contains("cluster.heartbeat"), "{e:?}");
        let e = errors("[cluster]\nredis = \"redis://h\"\nnodeid = \"x\"\n");
        assert!(e[0].contains("cluster.nodeid"), "{e:?}");
    }
}
