use crate::model::Authorization;
use crate::{Config, load_str, render_redacted};

const HEAD: &str = "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n\n\
    [integrations.b]\ntype = \"http\"\nurl = \"http://127.0.0.1:9000/\"\n\n\
    [authorizers.users]\ntype = \"request\"\nurl = \"http://127.0.0.1:9001/\"\nidentity_source = [\"$request.header.Authorization\"]\n\n";

const POOLS: &str = "[pools.main]\n\n[identity_pools.app]\nuser_pools = [\"main\"]\n\
    roles = { authenticated = \"member\" }\n\n\
    [roles.member]\npolicy = '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"execute-api:Invoke\",\"Resource\":\"*\"}]}'\n\n";

fn load(rest: &str, pools: bool) -> Result<Config, Vec<String>> {
    let source = format!("{HEAD}{}{rest}", if pools { POOLS } else { "" });
    load_str(&source, "test.toml", &|_| None)
        .map_err(|d| d.0.iter().map(ToString::to_string).collect())
}

fn errors(rest: &str, pools: bool) -> String {
    match load(rest, pools) {
        Ok(_) => panic!("expected errors for\n{rest}"),
        Err(e) => e.join("\n"),
    }
}

#[test]
fn websocket_and_http_routes_take_aws_iam() {
    let config = load(
        "[websocket.chat]\nauthorization = \"AWS_IAM\"\n\n\
         [http.shop]\nauthorization = \"AWS_IAM\"\n[http.shop.routes]\n\
         \"GET /a\" = { integration = \"b\" }\n\
         \"GET /b\" = { integration = \"b\", authorization = \"NONE\" }\n\
         \"GET /c\" = { integration = \"b\", authorizer = \"users\" }\n\
         \"GET /d\" = { integration = \"b\", authorizer = \"none\" }\n\n\
         [http.other]\nbase_path = \"/o\"\nauthorizer = \"users\"\n[http.other.routes]\n\
         \"GET /e\" = { integration = \"b\", authorization = \"AWS_IAM\" }\n\
         \"GET /f\" = { integration = \"b\" }\n",
        true,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        config.websocket["chat"].authorization,
        Authorization::AwsIam
    );
    let shop = &config.http["shop"].routes;
    assert_eq!(shop["GET /a"].authorization, Authorization::AwsIam);
    assert_eq!(shop["GET /a"].authorizer, None);
    assert_eq!(shop["GET /b"].authorization, Authorization::None);
    assert_eq!(shop["GET /c"].authorization, Authorization::None);
    assert_eq!(shop["GET /c"].authorizer.as_deref(), Some("users"));
    assert_eq!(shop["GET /d"].authorization, Authorization::None);
    let other = &config.http["other"].routes;
    assert_eq!(other["GET /e"].authorization, Authorization::AwsIam);
    assert_eq!(other["GET /e"].authorizer, None);
    assert_eq!(other["GET /f"].authorizer.as_deref(), Some("users"));

    // The rendered configuration loads back to the same effective settings.
    let rendered = render_redacted(&config);
    let again = load_str(&rendered, "rendered.toml", &|_| None)
        .unwrap_or_else(|d| panic!("{d}\n---\n{rendered}"));
    assert_eq!(render_redacted(&again), rendered);
}

#[test]
fn aws_iam_is_exclusive_with_an_authorizer() {
    let e = errors(
        "[websocket.chat]\nauthorizer = \"users\"\nauthorization = \"AWS_IAM\"\n",
        true,
    );
    assert!(e.contains("websocket.chat.authorization"), "{e}");
    assert!(e.contains("exclusive"), "{e}");
    let e = errors(
        "[http.shop]\n[http.shop.routes]\n\
         \"GET /a\" = { integration = \"b\", authorizer = \"users\", authorization = \"AWS_IAM\" }\n",
        true,
    );
    assert!(e.contains("exclusive"), "{e}");
    let e = errors(
        "[http.shop]\nauthorizer = \"users\"\nauthorization = \"AWS_IAM\"\n",
        true,
    );
    assert!(e.contains("http.shop.authorization"), "{e}");
}

#[test]
fn aws_iam_needs_an_identity_pool_and_a_known_value() {
    let e = errors("[websocket.chat]\nauthorization = \"AWS_IAM\"\n", false);
    assert!(e.contains("[identity_pools.NAME]"), "{e}");
    let e = errors("[websocket.chat]\nauthorization = \"aws_iam\"\n", true);
    assert!(e.contains("expected \"NONE\" or \"AWS_IAM\""), "{e}");
    // Scopes and groups belong to authorizers; an IAM route has the role's policy.
    let e = errors(
        "[websocket.chat]\nauthorization = \"AWS_IAM\"\n[websocket.chat.routes]\n\
         admin = { integration = \"b\", groups = [\"admins\"] }\n",
        true,
    );
    assert!(e.contains("need the API to have an authorizer"), "{e}");
}
