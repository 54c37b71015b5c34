//! Pure rules of an execution environment: the command line, the environment variables a
//! handler sees on AWS, the identifiers and the CloudWatch-style report lines. No I/O.

use std::path::Path;
use std::time::Duration;

use portcullis_config::{Function, Runtime};

/// Where the shipped bootstraps were written.
pub(crate) struct Bootstraps<'a> {
    pub(crate) python: &'a Path,
    pub(crate) node: &'a Path,
}

/// The program and its arguments for `function`.
pub(crate) fn command(function: &Function, bootstraps: &Bootstraps<'_>) -> Vec<String> {
    match &function.runtime {
        Runtime::Python(_) => vec![
            "python3".to_owned(),
            "-u".to_owned(),
            bootstraps.python.display().to_string(),
        ],
        Runtime::Node(_) => vec!["node".to_owned(), bootstraps.node.display().to_string()],
        Runtime::Provided => function.command.clone(),
    }
}

/// Names and values of the account the functions pretend to run in.
#[derive(Debug, Clone)]
pub struct Identity {
    pub region: String,
    pub account_id: String,
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
pub(crate) fn function_arn(identity: &Identity, name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:function:{name}",
        identity.region, identity.account_id
    )
}

/// The variables of one environment's process, in the order they are set (a later one
/// replaces an earlier one of the same name): the runtime's own first, then `extra` (filled
/// by the gateway: the callback proxy and its credential), then the function's `environment`,
/// so that a function configured with its own credentials or proxy keeps them.
/// `inherited` are the variables kept from Portcullis's own environment.
pub(crate) fn variables(
    function: &Function,
    identity: &Identity,
    runtime_api: &str,
    log_stream: &str,
    inherited: &[(String, String)],
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = inherited.to_vec();
    let own = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            function.memory_mb.to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", function.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream.to_owned()),
        ("AWS_REGION", identity.region.clone()),
        ("AWS_DEFAULT_REGION", identity.region.clone()),
        ("AWS_EXECUTION_ENV", execution_env(&function.runtime)),
        ("_HANDLER", function.handler.clone()),
        ("LAMBDA_TASK_ROOT", function.code.display().to_string()),
        ("LAMBDA_RUNTIME_DIR", function.code.display().to_string()),
        ("TZ", ":UTC".to_owned()),
    ];
    vars.extend(own.into_iter().map(|(k, v)| (k.to_owned(), v)));
    vars.extend(extra.iter().cloned());
    vars.extend(function.environment.iter().cloned());
    vars
}

fn execution_env(runtime: &Runtime) -> String {
    match runtime {
        Runtime::Python(v) | Runtime::Node(v) => format!("AWS_Lambda_{v}"),
        Runtime::Provided => "AWS_Lambda_provided".to_owned(),
    }
}

/// Variables of Portcullis's environment that a child keeps: enough to find interpreters and
/// a home directory, nothing that could hold a secret of the gateway.
pub(crate) const INHERITED: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL"];

/// `2026/12/03/[$LATEST]` followed by 32 hex digits, as on AWS.
pub(crate) fn log_stream_name(date: &str, random: u128) -> String {
    format!("{date}/[$LATEST]{random:032x}")
}

/// A request id in the UUID form AWS uses (version 4 bits set).
pub(crate) fn request_id(random: u128) -> String {
    let v = (random & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// An X-Ray trace header: `Root=1-EPOCHHEX-24HEX;Parent=16HEX;Sampled=0`.
pub(crate) fn trace_id(epoch_secs: u64, random: u128) -> String {
    let root = random >> 32;
    let parent = random as u64;
    format!(
        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
        epoch_secs as u32,
        root & ((1u128 << 96) - 1),
        parent
    )
}

/// `START RequestId: ID Version: $LATEST`.
pub(crate) fn start_line(request_id: &str) -> String {
    format!("START RequestId: {request_id} Version: $LATEST")
}

/// `END RequestId: ID`.
pub(crate) fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}")
}

/// `REPORT RequestId: ... Duration: 12.34 ms Billed Duration: 13 ms Memory Size: 128 MB Max
/// Memory Used: 20 MB`; `init` adds `Init Duration` for the call that started the environment.
pub(crate) fn report_line(
    request_id: &str,
    duration: Duration,
    memory_mb: u32,
    max_memory_mb: Option<u64>,
    init: Option<Duration>,
) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    let billed = duration.as_nanos().div_ceil(1_000_000).max(1);
    let used = max_memory_mb.map_or_else(|| "-".to_owned(), |m| m.to_string());
    let mut line = format!(
        "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {used} MB"
    );
    if let Some(init) = init {
        line.push_str(&format!(
            "\tInit Duration: {:.2} ms",
            init.as_secs_f64() * 1000.0
        ));
    }
    line
}

/// The peak resident set size in MB from the text of `/proc/PID/status` (`VmHWM:  20480 kB`).
pub(crate) fn peak_rss_mb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb.div_ceil(1024))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn function(runtime: Runtime) -> Function {
        Function {
            name: "chat".to_owned(),
            runtime,
            handler: "app.handler".to_owned(),
            code: PathBuf::from("/srv/chat"),
            timeout: Duration::from_secs(3),
            memory_mb: 256,
            concurrency: 4,
            environment: vec![("TABLE".to_owned(), "chat".to_owned())],
            command: vec!["./bootstrap".to_owned()],
        }
    }

    #[test]
    fn commands_per_runtime() {
        let b = Bootstraps {
            python: Path::new("/tmp/b/python.py"),
            node: Path::new("/tmp/b/node.mjs"),
        };
        assert_eq!(
            command(&function(Runtime::Python("python3.11".into())), &b),
            vec!["python3", "-u", "/tmp/b/python.py"]
        );
        assert_eq!(
            command(&function(Runtime::Node("nodejs20.x".into())), &b),
            vec!["node", "/tmp/b/node.mjs"]
        );
        assert_eq!(
            command(&function(Runtime::Provided), &b),
            vec!["./bootstrap"]
        );
    }

    #[test]
    fn variables_are_those_of_aws_then_the_gateway_then_the_function() {
        let identity = Identity {
            region: "eu-west-1".into(),
            account_id: "123456789012".into(),
        };
        let vars = variables(
            &function(Runtime::Python("python3.11".into())),
            &identity,
            "127.0.0.1:9001",
            "stream",
            &[("PATH".into(), "/usr/bin".into())],
            &[
                ("AWS_ACCESS_KEY_ID".into(), "AKIA".into()),
                ("TABLE".into(), "from-gateway".into()),
            ],
        );
        let get = |k: &str| {
            vars.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:9001"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_VERSION"), Some("$LATEST"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("256"));
        assert_eq!(get("AWS_LAMBDA_LOG_GROUP_NAME"), Some("/aws/lambda/chat"));
        assert_eq!(get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(get("LAMBDA_TASK_ROOT"), Some("/srv/chat"));
        assert_eq!(get("TZ"), Some(":UTC"));
        assert_eq!(get("TABLE"), Some("chat"));
        assert_eq!(get("AWS_ACCESS_KEY_ID"), Some("AKIA"));
        assert_eq!(get("PATH"), Some("/usr/bin"));
        assert_eq!(
            function_arn(&identity, "chat"),
            "arn:aws:lambda:eu-west-1:123456789012:function:chat"
        );
    }

    #[test]
    fn identifiers_have_the_aws_shapes() {
        let id = request_id(u128::MAX);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(request_id(0), "00000000-0000-4000-8000-000000000000");
        let t = trace_id(0x5f00_0000, 1);
        assert!(t.starts_with("Root=1-5f000000-"), "{t}");
        assert!(t.ends_with(";Parent=0000000000000001;Sampled=0"), "{t}");
        assert_eq!(
            log_stream_name("2026/12/03", 255),
            "2026/12/03/[$LATEST]000000000000000000000000000000ff"
        );
    }

    #[test]
    fn report_lines_look_like_cloudwatch() {
        let line = report_line(
            "id",
            Duration::from_micros(12_345),
            128,
            Some(20),
            Some(Duration::from_millis(100)),
        );
        assert_eq!(
            line,
            "REPORT RequestId: id\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tInit Duration: 100.00 ms"
        );
        assert_eq!(start_line("id"), "START RequestId: id Version: $LATEST");
        assert_eq!(end_line("id"), "END RequestId: id");
        assert_eq!(
            peak_rss_mb("Name:\tpython3\nVmHWM:\t   20481 kB\nVmRSS:\t 1 kB\n"),
            Some(21)
        );
        assert_eq!(peak_rss_mb("Name: x\n"), None);
    }
}
