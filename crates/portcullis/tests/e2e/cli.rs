//! Admin subcommands (`pools`, `users`, `groups`, `clients`, `keys`): the real binary against a
//! SQLite store in a temporary directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const CLIENT_SECRET: &str = "reporting-secret-value-0123";

struct Env {
    _dir: tempfile::TempDir,
    config: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("portcullis.toml");
    let db = dir.path().join("p.db");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
public_url = "http://localhost:8080"

[store]
url = "sqlite://{}"

[pools.main]
groups = ["admins", "members"]
password_policy = {{ min_length = 8, require_digits = true }}

[pools.main.resource_servers.premium-content]
scopes = ["read"]

[pools.main.clients.web]
public = true
callback_urls = ["http://localhost:8080/app/"]
allowed_scopes = ["openid", "email"]

[pools.main.clients.reporting-service]
secret = "{CLIENT_SECRET}"
grants = ["client_credentials"]
allowed_scopes = ["premium-content/read"]
"#,
            db.display()
        ),
    )
    .expect("write config");
    Env { _dir: dir, config }
}

pub(crate) struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Waits, off the async runtime, for a process a test started (e.g. `portcullis serve`) to
/// exit.
pub(crate) async fn exited(mut child: std::process::Child) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait")
}

/// `portcullis COMMAND... --config FILE REST...` with `stdin` (or none), run to its end.
pub(crate) fn portcullis(
    command: &[&str],
    config: &Path,
    rest: &[&str],
    stdin: Option<&[u8]>,
) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(command)
        .arg("--config")
        .arg(config)
        .args(rest)
        .env_remove("PORTCULLIS_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn portcullis");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    Out {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `portcullis GROUP VERB --config FILE REST...` (`args` starts with GROUP VERB).
fn run_with(config: &Path, args: &[&str], stdin: Option<&str>) -> Out {
    let (group, rest) = args.split_at(2);
    portcullis(group, config, rest, stdin.map(str::as_bytes))
}

/// `portcullis GROUP VERB --config FILE REST...`, expecting `code`.
#[track_caller]
fn run(config: &Path, args: &[&str], code: i32) -> Out {
    let out = run_with(config, args, None);
    assert_eq!(
        out.code, code,
        "portcullis {args:?}: stdout {:?} stderr {:?}",
        out.stdout, out.stderr
    );
    out
}

fn json(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout).expect("JSON output")
}

#[test]
fn cli_user_lifecycle() {
    let e = env();
    let c = e.config.as_path();

    // create: prints the sub only
    let created = run(
        c,
        &[
            "users",
            "create",
            "--pool",
            "main",
            "alice",
            "--attribute",
            "email=alice@example.com",
        ],
        0,
    );
    let sub = created.stdout.trim().to_owned();
    assert_eq!(sub.len(), 36, "{sub:?}");
    assert_eq!(created.stdout, format!("{sub}\n"));
    let dup = run(c, &["users", "create", "--pool", "main", "alice"], 1);
    assert_eq!(
        dup.stderr.trim(),
        r#"users create: user "alice" already exists in pool "main""#
    );

    // list and show
    let list = run(c, &["users", "list", "--pool", "main"], 0);
    assert_eq!(list.stdout, format!("alice\tUNCONFIRMED\tenabled\t{sub}\n"));
    let show = run(c, &["users", "show", "--pool", "main", "alice"], 0);
    for line in [
        "username: alice",
        &format!("sub: {sub}"),
        "status: UNCONFIRMED",
        "enabled: true",
        "password_set: false",
        "groups: ",
        "attribute.email: alice@example.com",
    ] {
        assert!(
            show.stdout.lines().any(|l| l.trim_end() == line.trim_end()),
            "{line:?} in {}",
            show.stdout
        );
    }

    // set-password: from stdin and from the command line; never echoed, never the hash
    let password = "Stdin-passw0rd";
    let out = run_with(
        c,
        &[
            "users",
            "set-password",
            "--pool",
            "main",
            "alice",
            "--password-stdin",
            "--temporary",
        ],
        Some(&format!("{password}\n")),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let cli_password = "Cli-passw0rd";
    let out = run(
        c,
        &[
            "users",
            "set-password",
            "--pool",
            "main",
            "alice",
            "--password",
            cli_password,
        ],
        0,
    );
    let weak = run(
        c,
        &[
            "users",
            "set-password",
            "--pool",
            "main",
            "alice",
            "--password",
            "weakpass",
        ],
        1,
    );
    assert!(
        weak.stderr
            .starts_with("users set-password: Password did not conform"),
        "{}",
        weak.stderr
    );
    let show = run(
        c,
        &["users", "show", "--pool", "main", "alice", "--json"],
        0,
    );
    for o in [&out, &weak, &show] {
        for secret in [password, cli_password, "weakpass", "$argon2"] {
            assert!(
                !o.stdout.contains(secret) && !o.stderr.contains(secret),
                "{secret} leaked"
            );
        }
    }
    let v = json(&show);
    assert_eq!(v["status"], "CONFIRMED");
    assert_eq!(v["password_set"], true);
    assert!(v.get("password_hash").is_none());

    // confirm: a new user without password goes UNCONFIRMED -> CONFIRMED
    run(c, &["users", "create", "--pool", "main", "bob"], 0);
    run(c, &["users", "confirm", "--pool", "main", "bob"], 0);
    assert_eq!(
        json(&run(
            c,
            &["users", "show", "--pool", "main", "bob", "--json"],
            0
        ))["status"],
        "CONFIRMED"
    );
    let missing = run(c, &["users", "confirm", "--pool", "main", "carol"], 1);
    assert_eq!(
        missing.stderr.trim(),
        r#"users confirm: no user "carol" in pool "main""#
    );

    // groups
    run(
        c,
        &["users", "add-to-group", "--pool", "main", "alice", "admins"],
        0,
    );
    run(
        c,
        &[
            "users",
            "add-to-group",
            "--pool",
            "main",
            "alice",
            "members",
        ],
        0,
    );
    let bad = run(
        c,
        &["users", "add-to-group", "--pool", "main", "alice", "owners"],
        1,
    );
    assert_eq!(
        bad.stderr.trim(),
        r#"users add-to-group: no group "owners" in pool "main""#
    );
    let show = run(c, &["users", "show", "--pool", "main", "alice"], 0);
    assert!(
        show.stdout.contains("\ngroups: admins,members\n"),
        "{}",
        show.stdout
    );
    run(
        c,
        &[
            "users",
            "remove-from-group",
            "--pool",
            "main",
            "alice",
            "members",
        ],
        0,
    );
    let v = json(&run(
        c,
        &["users", "show", "--pool", "main", "alice", "--json"],
        0,
    ));
    assert_eq!(v["groups"], serde_json::json!(["admins"]));
    let groups = run(c, &["groups", "list", "--pool", "main"], 0);
    assert_eq!(groups.stdout, "admins\nmembers\n");

    // disable, enable, sign-out
    run(c, &["users", "disable", "--pool", "main", "alice"], 0);
    let show = run(c, &["users", "show", "--pool", "main", "alice"], 0);
    assert!(
        show.stdout.contains("\nenabled: false\n"),
        "{}",
        show.stdout
    );
    let list = run(c, &["users", "list", "--pool", "main"], 0);
    assert!(
        list.stdout
            .contains(&format!("alice\tCONFIRMED\tdisabled\t{sub}\n")),
        "{}",
        list.stdout
    );
    run(c, &["users", "enable", "--pool", "main", "alice"], 0);
    run(c, &["users", "sign-out", "--pool", "main", "alice"], 0);
    assert_eq!(
        json(&run(
            c,
            &["users", "show", "--pool", "main", "alice", "--json"],
            0
        ))["enabled"],
        true
    );

    // delete; then show fails with exit 1 and one clear line
    run(c, &["users", "delete", "--pool", "main", "alice"], 0);
    let gone = run(c, &["users", "show", "--pool", "main", "alice"], 1);
    assert_eq!(
        gone.stderr,
        "users show: no user \"alice\" in pool \"main\"\n"
    );
    assert!(gone.stdout.is_empty());
    run(c, &["users", "delete", "--pool", "main", "alice"], 1);
    let list = json(&run(c, &["users", "list", "--pool", "main", "--json"], 0));
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["username"], "bob");

    // an unknown pool is the operator's error
    let out = run(c, &["users", "list", "--pool", "nope"], 1);
    assert!(
        out.stderr.starts_with(r#"users list: no pool "nope" in "#),
        "{}",
        out.stderr
    );
}

#[test]
fn cli_create_with_passwords() {
    let e = env();
    let c = e.config.as_path();
    let tmp = "Temp-passw0rd";
    let out = run(
        c,
        &[
            "users",
            "create",
            "--pool",
            "main",
            "dave",
            "--temporary-password",
            tmp,
        ],
        0,
    );
    assert!(!out.stdout.contains(tmp) && !out.stderr.contains(tmp));
    let v = json(&run(
        c,
        &["users", "show", "--pool", "main", "dave", "--json"],
        0,
    ));
    assert_eq!(v["status"], "FORCE_CHANGE_PASSWORD");
    assert_eq!(v["sub"].as_str(), Some(out.stdout.trim()));

    let out = run_with(
        c,
        &[
            "users",
            "create",
            "--pool",
            "main",
            "erin",
            "--password-stdin",
            "--json",
        ],
        Some("Erin-passw0rd\n"),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = json(&out);
    assert_eq!(v["status"], "CONFIRMED");
    assert!(!out.stdout.contains("Erin-passw0rd"));

    run(
        c,
        &["users", "create", "--pool", "main", "fred", "--confirmed"],
        0,
    );
    let v = json(&run(
        c,
        &["users", "show", "--pool", "main", "fred", "--json"],
        0,
    ));
    assert_eq!(
        (v["status"].as_str(), v["password_set"].as_bool()),
        (Some("CONFIRMED"), Some(false))
    );

    // an empty stdin is refused before anything is created
    let out = run_with(
        c,
        &[
            "users",
            "create",
            "--pool",
            "main",
            "gail",
            "--password-stdin",
        ],
        Some(""),
    );
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "users create: no password on stdin\n")
    );
    run(c, &["users", "show", "--pool", "main", "gail"], 1);
}

#[test]
fn cli_keys_rotate_prints_a_new_kid_each_time() {
    let e = env();
    let c = e.config.as_path();
    let kid = |out: &Out| {
        let kid = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("kid: "))
            .expect("kid line")
            .to_owned();
        assert!(!kid.is_empty());
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("signs_from: ") && l.ends_with('Z')),
            "{}",
            out.stdout
        );
        kid
    };
    let first = kid(&run(c, &["keys", "rotate", "--pool", "main"], 0));
    let second = kid(&run(c, &["keys", "rotate", "--pool", "main"], 0));
    assert_ne!(first, second);
    let v = json(&run(c, &["keys", "rotate", "--pool", "main", "--json"], 0));
    let third = v["kid"].as_str().expect("kid").to_owned();
    assert!(third != first && third != second);
    assert!(v["signs_from_unix"].as_i64().is_some());
    run(c, &["keys", "rotate", "--pool", "other"], 1);
}

/// Whether the database files hold the DER of the rsaEncryption OID, which starts every
/// plain PKCS#8 RSA key.
fn plain_keys_in(db: &Path) -> bool {
    const RSA_OID: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    ["", "-wal"].iter().any(|suffix| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::fs::read(name)
            .unwrap_or_default()
            .windows(RSA_OID.len())
            .any(|w| w == RSA_OID)
    })
}

#[test]
fn cli_keys_rotate_works_on_a_store_sealed_with_a_key_encryption_key() {
    let e = env();
    let c = e.config.as_path();
    let dir = c.parent().expect("config dir");
    let db = dir.join("p.db");
    let first = run(c, &["keys", "rotate", "--pool", "main", "--json"], 0);
    assert!(
        plain_keys_in(&db),
        "without a key-encryption key, keys are stored as they are"
    );

    // the file names the key relative to itself
    let text = std::fs::read_to_string(c).expect("read config");
    let text = text.replacen(
        "\n[pools.main]",
        "key_encryption_key_file = \"kek\"\n\n[pools.main]",
        1,
    );
    std::fs::write(c, text).expect("write config");
    let kek = dir.join("kek");
    std::fs::write(&kek, "kek-0123456789abcdef0123456789abcdef\n").expect("write kek");
    let second = run(c, &["keys", "rotate", "--pool", "main", "--json"], 0);
    assert_ne!(json(&first)["kid"], json(&second)["kid"]);
    assert!(
        !plain_keys_in(&db),
        "the keys were sealed on the first start with the key"
    );
    run(c, &["users", "create", "--pool", "main", "kim"], 0);

    std::fs::write(&kek, "kek-fedcba9876543210fedcba9876543210\n").expect("write kek");
    let out = run(c, &["keys", "rotate", "--pool", "main"], 2);
    assert!(
        out.stderr
            .contains("cannot be decrypted with the configured [store] key-encryption key"),
        "{}",
        out.stderr
    );
    std::fs::write(&kek, "short\n").expect("write kek");
    let out = run(c, &["users", "show", "--pool", "main", "kim"], 2);
    assert!(out.stderr.contains("at least 32"), "{}", out.stderr);
}

#[test]
fn cli_lists_pools_and_clients_without_secrets() {
    let e = env();
    let c = e.config.as_path();
    let pools = run(c, &["pools", "list"], 0);
    assert_eq!(pools.stdout, "main\thttp://localhost:8080/pools/main\n");

    for args in [
        &["clients", "list"][..],
        &["clients", "list", "--pool", "main"][..],
        &["clients", "list", "--json"][..],
    ] {
        let out = run(c, args, 0);
        assert!(out.stdout.contains("reporting-service"), "{}", out.stdout);
        assert!(out.stdout.contains("web"), "{}", out.stdout);
        assert!(!out.stdout.contains(CLIENT_SECRET) && !out.stderr.contains(CLIENT_SECRET));
    }
    let out = run(c, &["clients", "list"], 0);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("reporting-service\tmain\tconfidential\t")),
        "{}",
        out.stdout
    );
    let v = json(&run(c, &["clients", "list", "--json"], 0));
    let web = v
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["client_id"] == "web")
        .expect("web client");
    assert_eq!(
        (web["public"].as_bool(), web["has_secret"].as_bool()),
        (Some(true), Some(false))
    );
    run(c, &["clients", "list", "--pool", "nope"], 1);
}

#[test]
fn cli_config_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nlisen = 1\n",
    )
    .expect("write");
    let out = run(&bad, &["users", "list", "--pool", "main"], 2);
    assert!(
        out.stderr.contains("bad.toml:4:1: server.lisen"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("bad.toml: 1 error(s)"),
        "{}",
        out.stderr
    );
    let out = run(&dir.path().join("missing.toml"), &["pools", "list"], 2);
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);
}
