//! `sse` of a `[websocket.NAME]`: `true`, `false`, or a table of `path`, `heartbeat`, `replay`
//! and `replay_bytes`.

use std::time::Duration;

use super::check_path;
use crate::model::Sse;
use crate::raw::RawValue;
use crate::walk::{Ctx, Sp, Tbl};

/// Longest `heartbeat`: a day (proxies drop far quieter streams long before).
const MAX_HEARTBEAT: Duration = Duration::from_secs(86_400);

/// Reads `sse` of the API table `t` (served at `api_path`); `None` when absent, `false` or
/// invalid (the problem reported). The path is returned with its position for the uniqueness
/// checks across APIs.
pub(super) fn sse(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>, api_path: &str) -> Option<(Sse, Sp<String>)> {
    let key = t.path_of("sse");
    let node = t.node("sse")?;
    let defaults = Sse::defaults_for(api_path);
    match &node.value {
        RawValue::Table(_) => {}
        RawValue::Boolean(_) | RawValue::String(_) => {
            let enabled = t.bool(ctx, "sse")?;
            return enabled.v.then(|| {
                let at = enabled.at;
                let path = defaults.path.clone();
                (defaults, Sp { v: path, at })
            });
        }
        other => {
            ctx.error(
                node.at,
                &key,
                format!(
                    "expected true, false or a table like {{ path = \"/chat/events\" }}, found {}",
                    other.type_name()
                ),
            );
            return None;
        }
    }
    let mut s = ctx.table(node, &key)?;
    let path = match s.string(ctx, "path") {
        Some(path) => {
            if let Err(message) = check_path(&path.v) {
                ctx.error(path.at, &s.path_of("path"), message);
            }
            path
        }
        None => Sp {
            v: defaults.path.clone(),
            at: s.at,
        },
    };
    let heartbeat = s
        .duration_in(ctx, "heartbeat", Duration::from_secs(1), MAX_HEARTBEAT)
        .map_or(defaults.heartbeat, |d| d.v);
    let max_replay = i64::try_from(Sse::MAX_REPLAY).unwrap_or(i64::MAX);
    let replay = s
        .int(ctx, "replay", 0, max_replay)
        .and_then(|r| usize::try_from(r.v).ok())
        .unwrap_or(defaults.replay);
    let replay_bytes = s
        .size(ctx, "replay_bytes", Sse::MIN_REPLAY_BYTES)
        .map_or(defaults.replay_bytes, |b| b.v);
    s.finish(ctx);
    let sse = Sse {
        path: path.v.clone(),
        heartbeat,
        replay,
        replay_bytes,
    };
    Some((sse, path))
}

#[cfg(test)]
mod tests {
    use crate::{Config, Sse, load_str, render_redacted};
    use std::time::Duration;

    const SERVER: &str =
        "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n";

    fn load(rest: &str) -> Result<Config, Vec<String>> {
        load_str(&format!("{SERVER}{rest}"), "test.toml", &|name| {
            (name == "SSE_ON").then(|| "true".to_owned())
        })
        .map_err(|d| d.0.iter().map(ToString::to_string).collect())
    }

    fn sse_of(rest: &str, api: &str) -> Option<Sse> {
        load(rest).unwrap().websocket[api].sse.clone()
    }

    #[test]
    fn off_unless_asked_for_and_true_takes_every_default() {
        assert_eq!(sse_of("[websocket.chat]\n", "chat"), None);
        assert_eq!(sse_of("[websocket.chat]\nsse = false\n", "chat"), None);
        let on = sse_of("[websocket.chat]\nsse = true\n", "chat").unwrap();
        assert_eq!(
            on,
            Sse {
                path: "/chat/events".into(),
                heartbeat: Duration::from_secs(15),
                replay: 1000,
                replay_bytes: 16 << 20,
            }
        );
        // From the environment, and for an API served at the root.
        let root = sse_of("[websocket.r]\npath = \"/\"\nsse = \"${SSE_ON}\"\n", "r").unwrap();
        assert_eq!(root.path, "/events");
    }

    #[test]
    fn a_table_sets_each_key_and_defaults_the_others() {
        let sse = sse_of(
            "[websocket.chat]\nsse = { path = \"/stream\", heartbeat = \"1s\", replay = 0 }\n",
            "chat",
        )
        .unwrap();
        assert_eq!(sse.path, "/stream");
        assert_eq!(sse.heartbeat, Duration::from_secs(1));
        assert_eq!(sse.replay, 0);
        assert_eq!(sse.replay_bytes, 16 << 20);
        let sse = sse_of(
            "[websocket.chat]\npath = \"/c/\"\n[websocket.chat.sse]\nreplay = 100000\nreplay_bytes = 1048576\n",
            "chat",
        )
        .unwrap();
        assert_eq!(sse.path, "/c/events");
        assert_eq!((sse.replay, sse.replay_bytes), (100_000, 1 << 20));
    }

    #[test]
    fn bad_values_are_reported_with_their_key() {
        let errors = load(
            r#"[websocket.a]
sse = { path = "events", heartbeat = "500ms", replay = 100001, replay_bytes = 1000, retry = 1 }
[websocket.b]
sse = 1
[websocket.c]
sse = { path = "/c" }
"#,
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "test.toml:5:16: websocket.a.sse.path: invalid path \"events\": must start with \"/\"",
                "test.toml:5:38: websocket.a.sse.heartbeat: must be between 1s and 1d, got 500ms",
                "test.toml:5:56: websocket.a.sse.replay: must be between 0 and 100000, got 100001",
                "test.toml:5:79: websocket.a.sse.replay_bytes: must be at least 1048576, got 1000",
                "test.toml:5:85: websocket.a.sse.retry: unknown key \"retry\"; expected one of: path, heartbeat, replay, replay_bytes",
                "test.toml:7:7: websocket.b.sse: expected true, false or a table like { path = \"/chat/events\" }, found an integer",
                "test.toml:9:16: websocket.c.sse.path: path \"/c\" is already used by the WebSocket API itself",
            ]
        );
    }

    #[test]
    fn the_path_collides_with_no_other_api_or_stream() {
        let errors = load(
            r#"[websocket.a]
sse = true
[websocket.b]
path = "/a/events"
[websocket.c]
sse = { path = "/api" }
[websocket.d]
sse = { path = "/pools/main/events" }
[websocket.e]
path = "/a"
sse = true
[http.h]
base_path = "/api"
[static.s]
dir = "."
path = "/a/events"
"#,
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "test.toml:5:7: websocket.a.sse.path: path \"/a/events\" is already used by websocket API \"b\"",
                "test.toml:9:16: websocket.c.sse.path: path \"/api\" is already used by http API \"h\"",
                "test.toml:11:16: websocket.d.sse.path: /pools is reserved for the identity provider",
                "test.toml:13:8: websocket.e.path: path \"/a\" is already used by websocket API \"a\"",
                "test.toml:14:7: websocket.e.sse.path: path \"/a/events\" is already used by websocket API \"b\"",
                "test.toml:19:8: static.s.path: path \"/a/events\" is already used by websocket API \"a\"",
            ]
        );
    }

    #[test]
    fn rendered_and_loaded_again_it_is_the_same() {
        let config = load(
            "[websocket.chat]\nsse = { heartbeat = \"2m\", replay = 5, replay_bytes = 2097152 }\n",
        )
        .unwrap();
        let rendered = render_redacted(&config);
        assert!(
            rendered.lines().any(|l| l
                == "sse = { path = \"/chat/events\", heartbeat = \"2m\", replay = 5, replay_bytes = 2097152 }"),
            "{rendered}"
        );
        let reloaded = load_str(&rendered, "rendered.toml", &|_| None).unwrap();
        assert_eq!(reloaded.websocket["chat"].sse, config.websocket["chat"].sse);
    }
}
