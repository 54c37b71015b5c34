//! `[pools.NAME.triggers]`: webhooks and functions, timeouts, validation, rendering.

use std::time::Duration;

use crate::model::{Trigger, TriggerTarget};
use crate::{Config, load_str, render_redacted};

const BASE: &str = "[server]\nlisten = \"127.0.0.1:8443\"\nadmin_listen = \"127.0.0.1:9090\"\n";
const FUNCTION: &str =
    "[functions.claims]\nruntime = \"python3.11\"\nhandler = \"app.handler\"\ncode = \"fn\"\n";

fn load(rest: &str) -> Config {
    load_str(&format!("{BASE}{rest}"), "t.toml", &|_| None).expect("valid configuration")
}

fn errors(rest: &str) -> Vec<String> {
    match load_str(&format!("{BASE}{rest}"), "t.toml", &|_| None) {
        Ok(_) => panic!("expected errors"),
        Err(diagnostics) => diagnostics.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_pool_has_no_triggers_by_default() {
    let config = load("[pools.main]\n");
    assert!(config.pools["main"].triggers.is_empty());
    assert!(!render_redacted(&config).contains("triggers"));
}

#[test]
fn triggers_call_webhooks_or_declared_functions() {
    let config = load(&format!(
        "{FUNCTION}[pools.main.triggers]\n\
         pre_sign_up = {{ url = \"https://hooks:pw@hooks.example/pre-sign-up\" }}\n\
         post_confirmation = {{ url = \"http://127.0.0.1:9400/post\", timeout = \"250ms\" }}\n\
         pre_token_generation = {{ function = \"claims\", timeout = \"2s\" }}\n"
    ));
    let triggers = &config.pools["main"].triggers;
    assert_eq!(
        triggers.pre_sign_up,
        Some(Trigger {
            target: TriggerTarget::Url("https://hooks:pw@hooks.example/pre-sign-up".into()),
            timeout: Duration::from_secs(5),
        })
    );
    assert_eq!(
        triggers.post_confirmation.as_ref().map(|t| t.timeout),
        Some(Duration::from_millis(250))
    );
    assert_eq!(triggers.pre_authentication, None);
    assert_eq!(
        triggers.pre_token_generation,
        Some(Trigger {
            target: TriggerTarget::Function("claims".into()),
            timeout: Duration::from_secs(2),
        })
    );

    let rendered = render_redacted(&config);
    for line in [
        "[pools.main.triggers]",
        "pre_sign_up = { url = \"https://hooks:<redacted>@hooks.example/pre-sign-up\", timeout = \"5s\" }",
        "post_confirmation = { url = \"http://127.0.0.1:9400/post\", timeout = \"250ms\" }",
        "pre_token_generation = { function = \"claims\", timeout = \"2s\" }",
    ] {
        assert!(
            rendered.lines().any(|l| l == line),
            "missing line {line:?} in:\n{rendered}"
        );
    }
    assert!(!rendered.contains("pw@"));
    let reloaded = load_str(&rendered, "rendered.toml", &|_| None)
        .unwrap_or_else(|e| panic!("{e}\n{rendered}"));
    assert_eq!(render_redacted(&reloaded), rendered);
}

#[test]
fn bad_triggers_are_reported_with_their_paths() {
    assert_eq!(
        errors(
            "[pools.main.triggers]\n\
             pre_sign_up = { url = \"ftp://hooks.example\" }\n\
             post_confirmation = { function = \"nope\" }\n\
             pre_authentication = { url = \"http://a.example\", function = \"x\" }\n\
             pre_token_generation = { timeout = \"1m\" }\n\
             custom_message = { url = \"http://a.example\" }\n"
        ),
        [
            "t.toml:5:23: pools.main.triggers.pre_sign_up.url: invalid URL \"ftp://hooks.example\": expected an http:// or https:// URL",
            "t.toml:6:34: pools.main.triggers.post_confirmation.function: no function named \"nope\" (declare it in a [functions.nope] table)",
            "t.toml:7:61: pools.main.triggers.pre_authentication.function: a trigger calls either a url or a function, not both",
            "t.toml:7:61: pools.main.triggers.pre_authentication.function: no function named \"x\" (declare it in a [functions.x] table)",
            "t.toml:8:24: pools.main.triggers.pre_token_generation: a trigger needs a url = \"http(s)://...\" or a function = \"NAME\"",
            "t.toml:8:36: pools.main.triggers.pre_token_generation.timeout: must be between 50ms and 30s, got 1m",
            "t.toml:9:1: pools.main.triggers.custom_message: unknown key \"custom_message\"; expected one of: pre_sign_up, post_confirmation, pre_authentication, pre_token_generation",
        ]
    );
}
