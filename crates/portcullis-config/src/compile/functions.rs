//! `[functions.NAME]`: the runtime, handler, code directory and limits of a Lambda handler.

use std::time::Duration;

use crate::model::{Function, Runtime};
use crate::walk::{Ctx, Sp, Tbl};

/// Default `timeout`, as on AWS.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default `memory` in MB, as on AWS.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Default `concurrency`. AWS has no per-function default below the account limit; four
/// child processes keep a small machine responsive.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Most execution environments of one function.
pub const MAX_CONCURRENCY: i64 = 256;
/// Reserved by the runtime: an `environment` entry may not override these.
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
];

pub(super) fn function(ctx: &mut Ctx<'_>, name: &Sp<String>, mut t: Tbl<'_>) -> Option<Function> {
    let runtime = t.req_string(ctx, "runtime").and_then(|r| match parse_runtime(&r.v) {
        Some(runtime) => Some(runtime),
        None => {
            ctx.error(
                r.at,
                &t.path_of("runtime"),
                format!(
                    "unsupported runtime {:?}: expected \"python3.N\" (e.g. \"python3.11\"), \"nodejsN.x\" (e.g. \"nodejs20.x\") or \"provided\"",
                    r.v
                ),
            );
            None
        }
    });
    let handler = t.string(ctx, "handler");
    let handler_path = t.path_of("handler");
    let command = t.strings(ctx, "command");
    let command_path = t.path_of("command");
    let code = t.req_string(ctx, "code");
    let timeout = t
        .duration_in(
            ctx,
            "timeout",
            Duration::from_secs(1),
            Duration::from_secs(900),
        )
        .map_or(DEFAULT_TIMEOUT, |d| d.v);
    let memory_mb = t
        .int(ctx, "memory", 128, 10240)
        .and_then(|m| u32::try_from(m.v).ok())
        .unwrap_or(DEFAULT_MEMORY_MB);
    let concurrency = t
        .int(ctx, "concurrency", 1, MAX_CONCURRENCY)
        .and_then(|c| usize::try_from(c.v).ok())
        .unwrap_or(DEFAULT_CONCURRENCY);
    let env_path = t.path_of("environment");
    let environment = t.string_map(ctx, "environment");
    let mut env_ok = true;
    for (key, _) in &environment {
        let path = crate::walk::join(&env_path, &key.v);
        if !valid_env_name(&key.v) {
            ctx.error(
                key.at,
                &path,
                "expected a variable name of A-Z a-z 0-9 _ not starting with a digit",
            );
            env_ok = false;
        } else if RESERVED_ENV.contains(&key.v.as_str()) {
            ctx.error(key.at, &path, "reserved: set by the runtime");
            env_ok = false;
        }
    }
    let at = t.at;
    t.finish(ctx);

    let runtime = runtime?;
    let handler = match (&runtime, handler) {
        (Runtime::Provided, None) => String::new(),
        (Runtime::Provided, Some(h)) => h.v,
        (_, None) => {
            ctx.error(
                at,
                &handler_path,
                format!("missing required key (\"{}\")", example_handler(&runtime)),
            );
            return None;
        }
        (_, Some(h)) if !valid_handler(&h.v) => {
            ctx.error(
                h.at,
                &handler_path,
                format!(
                    "invalid handler {:?}: expected {:?}",
                    h.v,
                    example_handler(&runtime)
                ),
            );
            return None;
        }
        (_, Some(h)) => h.v,
    };
    let command = match (&runtime, command) {
        (Runtime::Provided, Some(c)) if !c.is_empty() => c.into_iter().map(|s| s.v).collect(),
        (Runtime::Provided, _) => {
            ctx.error(at, &command_path, "required for runtime \"provided\": the program and its arguments, e.g. [\"./bootstrap\"]");
            return None;
        }
        (_, Some(c)) => {
            let at = c.first().map_or(at, |s| s.at);
            ctx.error(at, &command_path, "only for runtime \"provided\"");
            return None;
        }
        (_, None) => Vec::new(),
    };
    if !env_ok {
        return None;
    }
    Some(Function {
        name: name.v.clone(),
        runtime,
        handler,
        code: std::path::PathBuf::from(code?.v),
        timeout,
        memory_mb,
        concurrency,
        environment: environment.into_iter().map(|(k, v)| (k.v, v)).collect(),
        command,
    })
}

fn example_handler(runtime: &Runtime) -> &'static str {
    match runtime {
        Runtime::Node(_) => "index.handler",
        _ => "app.lambda_handler",
    }
}

/// `python3.N` or `nodejsN.x` (N digits), or `provided` (also `provided.al2023` and friends).
fn parse_runtime(text: &str) -> Option<Runtime> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(minor) = text.strip_prefix("python3.") {
        return digits(minor).then(|| Runtime::Python(text.to_owned()));
    }
    if let Some(major) = text
        .strip_prefix("nodejs")
        .and_then(|r| r.strip_suffix(".x"))
    {
        return digits(major).then(|| Runtime::Node(text.to_owned()));
    }
    (text == "provided" || text.starts_with("provided.")).then_some(Runtime::Provided)
}

/// `a.b`, `dir/file.export`, `pkg.module.func`: a last dot with something on each side.
fn valid_handler(handler: &str) -> bool {
    match handler.rsplit_once('.') {
        Some((module, func)) => {
            !module.is_empty()
                && !func.is_empty()
                && !module.starts_with('/')
                && !module.split('/').any(|s| s == "..")
                && handler
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-/$".contains(&b))
        }
        None => false,
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use crate::load_str;
    use crate::model::Runtime;

    const SERVER: &str =
        "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n";

    fn env(_: &str) -> Option<String> {
        None
    }

    fn errors(rest: &str) -> Vec<String> {
        match load_str(&format!("{SERVER}{rest}"), "test.toml", &env) {
            Ok(c) => panic!("expected errors, got {c:?}"),
            Err(d) => d.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_python_function_reads_every_key() {
        let source = format!(
            "{SERVER}[functions.chat]\nruntime = \"python3.11\"\nhandler = \"app.lambda_handler\"\ncode = \"fn/chat\"\ntimeout = \"30s\"\nmemory = 256\nconcurrency = 2\nenvironment = {{ TABLE = \"chat\", MODE = \"x\" }}\n"
        );
        let config = load_str(&source, "test.toml", &env).unwrap();
        let f = &config.functions["chat"];
        assert_eq!(f.runtime, Runtime::Python("python3.11".to_owned()));
        assert_eq!(f.handler, "app.lambda_handler");
        assert_eq!(f.code, std::path::PathBuf::from("fn/chat"));
        assert_eq!(f.timeout, Duration::from_secs(30));
        assert_eq!(f.memory_mb, 256);
        assert_eq!(f.concurrency, 2);
        assert_eq!(
            f.environment,
            vec![
                ("TABLE".to_owned(), "chat".to_owned()),
                ("MODE".to_owned(), "x".to_owned())
            ]
        );
        let shown = crate::render::render(&config);
        assert!(shown.contains("[functions.chat]"), "{shown}");
        assert!(!shown.contains("\"chat\", MODE"), "{shown}");
    }

    #[test]
    fn defaults_are_those_of_aws_and_four_environments() {
        let source = format!(
            "{SERVER}[functions.f]\nruntime = \"nodejs20.x\"\nhandler = \"index.handler\"\ncode = \"f\"\n[functions.p]\nruntime = \"provided\"\ncode = \"p\"\ncommand = [\"./bootstrap\", \"-v\"]\n"
        );
        let config = load_str(&source, "test.toml", &env).unwrap();
        let f = &config.functions["f"];
        assert_eq!(f.runtime, Runtime::Node("nodejs20.x".to_owned()));
        assert_eq!(f.timeout, Duration::from_secs(3));
        assert_eq!(f.memory_mb, 128);
        assert_eq!(f.concurrency, 4);
        let p = &config.functions["p"];
        assert_eq!(p.runtime, Runtime::Provided);
        assert_eq!(p.command, vec!["./bootstrap".to_owned(), "-v".to_owned()]);
        let again = load_str(&crate::render::render(&config), "again.toml", &env).unwrap();
        assert_eq!(again.functions, config.functions);
    }

    #[test]
    fn bad_function_values_are_reported_with_their_key() {
        let e = errors("[functions.f]\nruntime = \"ruby3.2\"\nhandler = \"a.b\"\ncode = \"f\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("test.toml:5:11: functions.f.runtime: unsupported runtime"),
            "{e:?}"
        );
        let e = errors("[functions.f]\nruntime = \"python3.11\"\ncode = \"f\"\n");
        assert!(
            e[0].contains("functions.f.handler: missing required key"),
            "{e:?}"
        );
        let e =
            errors("[functions.f]\nruntime = \"python3.11\"\nhandler = \"app\"\ncode = \"f\"\n");
        assert!(
            e[0].contains("functions.f.handler: invalid handler"),
            "{e:?}"
        );
        let e = errors("[functions.f]\nruntime = \"provided\"\ncode = \"f\"\n");
        assert!(e[0].contains("functions.f.command: required"), "{e:?}");
        let e = errors(
            "[functions.f]\nruntime = \"python3.11\"\nhandler = \"a.b\"\ncode = \"f\"\ncommand = [\"x\"]\n",
        );
        assert!(
            e[0].contains("functions.f.command: only for runtime \"provided\""),
            "{e:?}"
        );
        let e = errors(
            "[functions.f]\nruntime = \"python3.11\"\nhandler = \"a.b\"\ncode = \"f\"\ntimeout = \"901s\"\nmemory = 64\nconcurrency = 0\n",
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("functions.f.timeout"), "{e:?}");
        assert!(
            e[1].contains("functions.f.memory: must be between 128 and 10240"),
            "{e:?}"
        );
        assert!(e[2].contains("functions.f.concurrency"), "{e:?}");
        let e = errors(
            "[functions.f]\nruntime = \"python3.11\"\nhandler = \"a.b\"\nenvironment = { _HANDLER = \"x\", N = 1 }\n",
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e.iter()
                .any(|m| m.contains("functions.f.code: missing required key")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("functions.f.environment.N: expected a string")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("functions.f.environment._HANDLER: reserved")),
            "{e:?}"
        );
        let e = errors(
            "[functions.f]\nruntime = \"python3.11\"\nhandler = \"a.b\"\ncode = \"f\"\nmemroy = 256\n",
        );
        assert!(e[0].contains("functions.f.memroy"), "{e:?}");
    }
}
