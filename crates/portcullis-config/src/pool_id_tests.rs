//! `[pools.NAME] id` (Cognito's `{region}_{name}` shape by default) and a client's
//! `auth_flows`: defaults, validation, rendering.

use crate::model::AuthFlow;
use crate::{Config, load_str, render_redacted};

const BASE: &str = "[server]\nlisten = \"127.0.0.1:8443\"\nadmin_listen = \"127.0.0.1:9090\"\n";

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
fn pool_ids_default_to_the_management_region_and_the_name() {
    let config = load("[pools.main]\n[pools.other]\nid = \"eu-west-3_Other01\"\n");
    assert_eq!(config.pools["main"].id, "us-east-1_main");
    assert_eq!(config.pools["other"].id, "eu-west-3_Other01");
    let config = load("[management]\nregion = \"eu-central-1\"\n[pools.main]\n");
    assert_eq!(config.pools["main"].id, "eu-central-1_main");
    let rendered = render_redacted(&load("[pools.main]\n"));
    assert!(rendered.contains("id = \"us-east-1_main\""), "{rendered}");
}

#[test]
fn pool_ids_must_have_the_clients_shape_and_be_unique() {
    assert_eq!(
        errors(
            "[pools.a]\nid = \"no-underscore\"\n[pools.b]\nid = \"us-east-1_b-c\"\n[pools.c]\nid = \"us-east-1_a\"\n[pools.d]\nid = \"us-east-1_a\"\n"
        ),
        [
            "t.toml:5:6: pools.a.id: invalid user pool id \"no-underscore\": expected REGION_NAME like \"us-east-1_main\" (letters, digits, '-' and '_' before the last '_', letters and digits after it; at most 55 characters)",
            "t.toml:7:6: pools.b.id: invalid user pool id \"us-east-1_b-c\": expected REGION_NAME like \"us-east-1_main\" (letters, digits, '-' and '_' before the last '_', letters and digits after it; at most 55 characters)",
            "t.toml:11:6: pools.d.id: user pool id \"us-east-1_a\" is already used by pool \"c\"",
        ]
    );
    let long = format!("[pools.a]\nid = \"us-east-1_{}\"\n", "x".repeat(50));
    assert_eq!(errors(&long).len(), 1);
}

#[test]
fn auth_flows_default_to_srp_and_the_clients_grants() {
    let config = load(
        "[pools.main.clients.web]\npublic = true\n\
         [pools.main.clients.svc]\nsecret = \"svc-secret-0123456789abcdef\"\n\
         [pools.main.clients.conf]\nsecret = \"conf-secret-0123456789abcdef\"\ngrants = [\"password\"]\n",
    );
    let clients = &config.pools["main"].clients;
    assert_eq!(
        clients["web"].auth_flows,
        [
            AuthFlow::UserSrp,
            AuthFlow::UserPassword,
            AuthFlow::RefreshToken
        ]
    );
    assert_eq!(clients["svc"].auth_flows, [AuthFlow::UserSrp]);
    assert_eq!(
        clients["conf"].auth_flows,
        [AuthFlow::UserSrp, AuthFlow::UserPassword]
    );
}

#[test]
fn auth_flows_restrict_and_are_validated() {
    let config = load(
        "[pools.main.clients.web]\npublic = true\nauth_flows = [\"ALLOW_USER_SRP_AUTH\", \"REFRESH_TOKEN_AUTH\"]\n\
         [pools.main.clients.none]\npublic = true\nauth_flows = []\n",
    );
    let clients = &config.pools["main"].clients;
    assert_eq!(
        clients["web"].auth_flows,
        [AuthFlow::UserSrp, AuthFlow::RefreshToken]
    );
    assert!(clients["none"].auth_flows.is_empty());
    let rendered = render_redacted(&config);
    assert!(
        rendered.contains("auth_flows = [\"USER_SRP_AUTH\", \"REFRESH_TOKEN_AUTH\"]"),
        "{rendered}"
    );
    assert_eq!(
        errors(
            "[pools.main.clients.web]\npublic = true\ngrants = [\"password\"]\n\
             auth_flows = [\"CUSTOM_AUTH\", \"USER_SRP_AUTH\", \"USER_SRP_AUTH\", \"REFRESH_TOKEN_AUTH\"]\n"
        ),
        [
            "t.toml:7:15: pools.main.clients.web.auth_flows[0]: unknown auth flow \"CUSTOM_AUTH\"; expected one of USER_SRP_AUTH, USER_PASSWORD_AUTH, REFRESH_TOKEN_AUTH",
            "t.toml:7:47: pools.main.clients.web.auth_flows[2]: USER_SRP_AUTH is listed twice",
            "t.toml:7:64: pools.main.clients.web.auth_flows[3]: REFRESH_TOKEN_AUTH needs the refresh_token grant",
        ]
    );
}

#[test]
fn pool_mfa_defaults_to_off_and_takes_optional_or_on() {
    use crate::model::Mfa;
    let config = load(
        "[pools.a]\n[pools.b]\nmfa = \"optional\"\n[pools.c]\nmfa = \"on\"\n[pools.d]\nmfa = \"off\"\n",
    );
    assert_eq!(config.pools["a"].mfa, Mfa::Off);
    assert_eq!(config.pools["b"].mfa, Mfa::Optional);
    assert_eq!(config.pools["c"].mfa, Mfa::On);
    assert_eq!(config.pools["d"].mfa, Mfa::Off);
    let rendered = render_redacted(&config);
    for line in ["mfa = \"off\"", "mfa = \"optional\"", "mfa = \"on\""] {
        assert!(rendered.contains(line), "{line} in {rendered}");
    }
    // what is rendered loads back the same
    let again = load_str(&rendered, "r.toml", &|_| None).expect("rendered configuration loads");
    assert_eq!(again.pools["b"].mfa, Mfa::Optional);
    assert_eq!(again.pools["c"].mfa, Mfa::On);
}

#[test]
fn pool_mfa_refuses_other_values() {
    assert_eq!(
        errors("[pools.a]\nmfa = \"required\"\n[pools.b]\nmfa = true\n"),
        [
            "t.toml:5:7: pools.a.mfa: expected one of \"off\", \"optional\", \"on\", got \"required\"",
            "t.toml:7:7: pools.b.mfa: expected a string, found a boolean",
        ]
    );
}
