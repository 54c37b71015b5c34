use portcullis_config::Config;

use super::{Changes, Counts};

const SERVER: &str = "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:8081\"\n\n";

fn config(body: &str) -> Config {
    let text = format!("{SERVER}{body}");
    match portcullis_config::load_str(&text, "test.toml", &|_| None) {
        Ok(c) => c,
        Err(d) => panic!("invalid test config:\n{d}\n---\n{text}"),
    }
}

const BACKEND: &str =
    "[integrations.backend]\ntype = \"http\"\nurl = \"http://127.0.0.1:9000/\"\n\n";

fn ws(name: &str, path: &str) -> String {
    format!(
        "[websocket.{name}]\npath = \"{path}\"\n[websocket.{name}.routes]\n\"$default\" = {{ integration = \"backend\" }}\n\n"
    )
}

fn http(name: &str, base: &str, target: &str) -> String {
    format!(
        "[http.{name}]\nbase_path = \"{base}\"\n[http.{name}.routes]\n\"GET /{target}\" = {{ integration = \"backend\" }}\n\n"
    )
}

#[test]
fn the_same_file_changes_nothing() {
    let text = format!("{BACKEND}{}{}", ws("chat", "/ws"), http("api", "/api", "a"));
    let changes = Changes::between(&config(&text), &config(&text));
    assert_eq!(changes, Changes::default());
    assert_eq!(
        changes.to_string(),
        "websocket +0 -0 ~0, http +0 -0 ~0, static +0 -0 ~0, integrations +0 -0 ~0, \
         authorizers +0 -0 ~0, pools +0 -0 ~0"
    );
}

#[test]
fn apis_added_removed_and_changed_are_counted_and_removed_websocket_apis_named() {
    let old = config(&format!(
        "{BACKEND}{}{}{}",
        ws("chat", "/ws"),
        ws("gone", "/gone"),
        http("api", "/api", "a")
    ));
    let new = config(&format!(
        "{BACKEND}{}{}{}{}",
        ws("chat", "/chat"),
        ws("fresh", "/fresh"),
        http("api", "/api", "a"),
        http("more", "/more", "b")
    ));
    let changes = Changes::between(&old, &new);
    assert_eq!(
        changes.websocket,
        Counts {
            added: 1,
            removed: 1,
            changed: 1
        }
    );
    assert_eq!(
        changes.http,
        Counts {
            added: 1,
            removed: 0,
            changed: 0
        }
    );
    assert_eq!(changes.removed_websocket, vec!["gone".to_owned()]);
    assert!(changes.needs_restart.is_empty());
    assert!(!changes.identity);
    assert!(
        changes
            .to_string()
            .starts_with("websocket +1 -1 ~1, http +1 -0 ~0,"),
        "{changes}"
    );
}

#[test]
fn listener_addresses_and_limits_need_a_restart() {
    let old = config(&format!("{BACKEND}{}", ws("chat", "/ws")));
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:9090\"\nadmin_listen = \"127.0.0.1:8081\"\nmax_connections = 10\n\n{BACKEND}{}",
        ws("chat", "/ws")
    );
    let new = match portcullis_config::load_str(&text, "test.toml", &|_| None) {
        Ok(c) => c,
        Err(d) => panic!("{d}"),
    };
    let changes = Changes::between(&old, &new);
    assert_eq!(
        changes.needs_restart,
        vec!["server.listen", "server.max_connections"]
    );
    assert_eq!(changes.websocket, Counts::default());
}

#[test]
fn an_integration_change_is_counted_there_and_not_as_an_api_change() {
    let old = config(&format!("{BACKEND}{}", ws("chat", "/ws")));
    let other = BACKEND.replace("9000", "9001");
    let new = config(&format!("{other}{}", ws("chat", "/ws")));
    let changes = Changes::between(&old, &new);
    assert_eq!(changes.integrations.changed, 1);
    assert_eq!(changes.websocket, Counts::default());
    assert!(changes.removed_websocket.is_empty());
}
