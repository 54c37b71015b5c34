//! `jwt` issuers with a shared secret (`secret` / `secret_file`, HMAC `algorithms`).

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn env(name: &str) -> Option<String> {
    match name {
        "JWT_SECRET" => Some(SECRET.to_owned()),
        "SHORT_SECRET" => Some("short".to_owned()),
        _ => None,
    }
}

fn source(issuers: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n\
         [authorizers.shared_secret]\ntype = \"jwt\"\n\
         identity_source = [\"route.request.querystring.access_token\"]\n\
         issuers = [{issuers}]\nprincipal_claim = \"userId\"\n"
    )
}

fn errors(issuers: &str) -> Vec<String> {
    match load_str(&source(issuers), "t.toml", &env) {
        Ok(_) => panic!("expected errors for {issuers}"),
        Err(d) => d.0.iter().map(ToString::to_string).collect(),
    }
}

fn issuer(issuers: &str) -> JwtIssuer {
    let config = load_str(&source(issuers), "t.toml", &env).unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    match config.authorizers.get("shared_secret") {
        Some(Authorizer::Jwt(jwt)) => jwt.issuers[0].clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_contract_example_loads_with_its_secret_from_the_environment() {
    let i = issuer(r#"{ issuer = "my-app", secret = "${JWT_SECRET}", algorithms = ["HS256"] }"#);
    assert_eq!(i.issuer, "my-app");
    assert_eq!(i.algorithms, [JwsAlgorithm::HS256]);
    assert_eq!(i.secret, Some(HmacSecret::Value(Secret::new(SECRET))));
    assert!(!format!("{i:?}").contains(SECRET));
    let config = load_str(
        &source(r#"{ issuer = "my-app", secret = "${JWT_SECRET}", algorithms = ["HS256", "HS512"], audience = ["chat"] }"#),
        "t.toml",
        &env,
    )
    .unwrap();
    let rendered = render_redacted(&config);
    assert!(!rendered.contains(SECRET), "{rendered}");
    assert!(rendered.contains("HS512"), "{rendered}");
    // A file instead of a value.
    let i = issuer(
        r#"{ issuer = "my-app", secret_file = "/run/secrets/jwt", algorithms = ["HS384"] }"#,
    );
    assert_eq!(i.secret, Some(HmacSecret::File("/run/secrets/jwt".into())));
}

#[test]
fn mistakes_are_reported_with_their_key_paths() {
    let p = "authorizers.shared_secret.issuers";
    let cases: [(&str, &str); 9] = [
        (
            r#"{ issuer = "my-app", secret = "${SHORT_SECRET}", algorithms = ["HS256"] }"#,
            "secret: must be at least 32 bytes, got 5",
        ),
        (
            r#"{ issuer = "my-app", secret = "${JWT_SECRET}" }"#,
            "algorithms: required for a shared-secret issuer",
        ),
        (
            r#"{ issuer = "my-app", secret = "${JWT_SECRET}", algorithms = ["RS256"] }"#,
            "algorithms: \"RS256\" is not an HMAC algorithm",
        ),
        (
            r#"{ issuer = "my-app", secret = "${JWT_SECRET}", algorithms = ["none"] }"#,
            "algorithms: unknown algorithm \"none\"",
        ),
        (
            r#"{ issuer = "https://idp.example", algorithms = ["HS256"] }"#,
            "algorithms: \"HS256\" needs a shared secret",
        ),
        (
            r#"{ issuer = "my-app", secret = "${JWT_SECRET}", secret_file = "f", algorithms = ["HS256"] }"#,
            "secret_file: set either secret or secret_file, not both",
        ),
        (
            r#"{ issuer = "my-app", secret = "${JWT_SECRET}", jwks_uri = "https://x.example/jwks.json", algorithms = ["HS256"] }"#,
            "jwks_uri: a shared-secret issuer has no JWKS",
        ),
        (
            r#"{ issuer = "my-app", secret = "", algorithms = ["HS256"] }"#,
            "secret: must not be empty",
        ),
        (
            r#"{ issuer = "my-app", secret = "${JWT_SECRET}", algorithms = ["HS256"] }, { issuer = "my-app", secret = "${JWT_SECRET}", algorithms = ["HS256"] }"#,
            "[1].issuer: issuer \"my-app\" is listed twice",
        ),
    ];
    for (issuers, want) in cases {
        let got = errors(issuers);
        assert!(
            got.iter().any(|e| e.contains(p) && e.contains(want)),
            "{issuers}: {got:?} lacks {want:?}"
        );
        assert!(!got.concat().contains(SECRET), "{got:?}");
    }
    // Without a secret, an issuer is still a URL (its keys are discovered there).
    assert!(
        errors(r#"{ issuer = "my-app" }"#)
            .concat()
            .contains(&format!("{p}[0].issuer"))
    );
}

#[test]
fn a_built_in_pool_never_takes_a_secret() {
    let source = format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n\
         public_url = \"http://localhost:8080\"\n\
         [pools.main]\n\
         [authorizers.a]\ntype = \"jwt\"\nidentity_source = [\"$request.header.Authorization\"]\n\
         issuers = [{{ issuer = \"http://localhost:8080/pools/main\", secret = \"{SECRET}\", algorithms = [\"HS256\"] }}]\n"
    );
    let got: Vec<String> = match load_str(&source, "t.toml", &env) {
        Ok(_) => panic!("a pool issuer with a secret loaded"),
        Err(d) => d.0.iter().map(ToString::to_string).collect(),
    };
    assert!(
        got.iter()
            .any(|e| e.contains("authorizers.a.issuers[0].secret") && e.contains("built-in pool")),
        "{got:?}"
    );
}

#[test]
fn secret_files_are_read_and_measured_by_check() {
    let dir = std::env::temp_dir().join(format!("portcullis-secret-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("long"), format!("{SECRET}\n")).unwrap();
    std::fs::write(dir.join("short"), "short\n").unwrap();
    let write = |name: &str| {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(
            &file,
            source(&format!(
                r#"{{ issuer = "my-app", secret_file = "{name}", algorithms = ["HS256"] }}"#
            )),
        )
        .unwrap();
        file
    };
    let config = load_file(&write("long")).unwrap();
    let Some(Authorizer::Jwt(jwt)) = config.authorizers.get("shared_secret") else {
        panic!()
    };
    let secret = jwt.issuers[0].secret.as_ref().unwrap();
    assert_eq!(secret, &HmacSecret::File(dir.join("long")));
    assert_eq!(secret.load().unwrap().expose(), SECRET);
    let short = load_file(&write("short")).unwrap_err().to_string();
    assert!(
        short.contains("issuers[0].secret_file") && short.contains("at least 32 bytes"),
        "{short}"
    );
    assert!(!short.contains("short\n"));
    let missing = load_file(&write("missing")).unwrap_err().to_string();
    assert!(missing.contains("cannot read"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}
