//! `portcullis-load`: the client side of the Portcullis benchmarks (see `scripts/bench`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::{Args, Parser, Subcommand};

use portcullis_load::args::{parse_duration, parse_header};
use portcullis_load::connect::Target;
use portcullis_load::management::Credentials;
use portcullis_load::source::SourceIps;
use portcullis_load::sse::SseTarget;
use portcullis_load::{connect_rate, direct, fanout, identity, idle, post, push_user, roundtrip};

#[derive(Parser)]
#[command(
    name = "portcullis-load",
    about = "Load generator for Portcullis and its baselines (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// P1, P10: hold N idle connections and report the server's RSS growth per connection.
    /// A ws:// URL holds WebSocket connections; an http:// URL (an SSE API's events path, e.g.
    /// http://127.0.0.1:8080/bench/events) holds SSE streams.
    Idle {
        #[command(flatten)]
        ws: WsArgs,
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        /// Process whose RSS is read from /proc/PID/status (the server under test).
        #[arg(long)]
        server_pid: u32,
        /// Upgrade handshakes in flight while opening.
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// Wait after the last connection is up before reading RSS.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        settle: Duration,
        /// Keep the connections open this long after measuring.
        #[arg(long, default_value = "0s", value_parser = parse_duration)]
        hold: Duration,
        /// Give up opening connections after this long.
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        open_timeout: Duration,
    },
    /// P2: connect, upgrade, close, N times; report connects/s and connect latency.
    ConnectRate {
        #[command(flatten)]
        ws: WsArgs,
        #[arg(long, default_value_t = 10_000)]
        total: usize,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// Stop starting connections after this long.
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        max_time: Duration,
    },
    /// P3: send a message and wait for the reply frame, in a loop on each connection.
    Roundtrip {
        #[command(flatten)]
        ws: WsArgs,
        #[arg(long, default_value_t = 50)]
        connections: usize,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        warmup: Duration,
        #[arg(long, default_value = r#"{"action":"echo","data":"x"}"#)]
        message: String,
        /// Every reply must be exactly this text (counted as mismatches otherwise).
        #[arg(long)]
        expect: Option<String>,
    },
    /// P4: keep-alive, SigV4-signed `POST /@connections/{id}` from `concurrency` clients.
    Post {
        #[command(flatten)]
        management: ManagementArgs,
        /// Connection to post to; without it, one is opened on --url and learned via
        /// `GET /@connections`.
        #[arg(long)]
        connection_id: Option<String>,
        /// WebSocket URL of the receiving connection (it drains what is pushed).
        #[arg(long)]
        url: Option<String>,
        #[arg(long = "header", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        #[arg(long)]
        query: Option<String>,
        #[arg(long, default_value = "127.0.0.1")]
        source_ips: String,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        #[arg(long, default_value = r#"{"push":"x"}"#)]
        message: String,
        /// Requests per second of all clients together (a paced run, for latency below
        /// saturation); without it, back to back.
        #[arg(long)]
        rate: Option<f64>,
        /// A cluster's Redis (host:port on loopback): its counters (commands, PUBLISHes,
        /// bytes) before and after the POSTs go into the result.
        #[arg(long)]
        redis: Option<SocketAddr>,
    },
    /// P5: N WebSocket subscribers of one topic (signed `PUT @connections/{id}/topics/{topic}`)
    /// and publishers `POST`ing `@topics/{topic}`; deliveries/s counted by the receivers,
    /// publish-to-receive latency, order per publisher, skipped receivers from /metrics.
    Fanout {
        #[command(flatten)]
        ws: WsArgs,
        /// Another WebSocket URL (another node of a cluster, same path); the subscribers are
        /// dealt over --url and these in turn (repeatable).
        #[arg(long = "also-url")]
        also_urls: Vec<String>,
        #[command(flatten)]
        management: ManagementArgs,
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        #[arg(long, default_value = "bench")]
        topic: String,
        #[arg(long, default_value_t = 4)]
        publishers: usize,
        /// Publishes per second of all publishers together; 0: back to back.
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        /// Payload bytes (the stamp alone is ~38).
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        warmup: Duration,
        /// The admin listener's metrics, e.g. http://127.0.0.1:9090/metrics (repeatable: one
        /// per node of a cluster, summed).
        #[arg(long = "metrics-url")]
        metrics_urls: Vec<String>,
        /// Metric counting receivers skipped for a full queue (repeatable; labels summed).
        #[arg(
            long = "skipped-metric",
            default_value = "portcullis_push_skipped_total"
        )]
        skipped_metrics: Vec<String>,
        /// The gateway's process, for its CPU use over the measured window (repeatable: one
        /// per node of a cluster, summed).
        #[arg(long = "server-pid")]
        server_pids: Vec<u32>,
        /// Upgrade handshakes in flight while the subscribers connect.
        #[arg(long, default_value_t = 100)]
        handshakes: usize,
        /// Keep-alive clients subscribing the connections.
        #[arg(long, default_value_t = 16)]
        subscribe_concurrency: usize,
        /// A cluster's Redis (host:port on loopback): its counters (commands, PUBLISHes,
        /// bytes) over the publishing go into the result.
        #[arg(long)]
        redis: Option<SocketAddr>,
    },
    /// Push to a user: signed `POST @users/{principal}` from keep-alive clients while
    /// `--receivers` connections admitted as that principal (identity via --query/--header)
    /// drain; every answer must count all receivers.
    PushUser {
        #[command(flatten)]
        ws: WsArgs,
        #[command(flatten)]
        management: ManagementArgs,
        /// The principal the connections' identity maps to (e.g. the token's `sub`).
        #[arg(long)]
        principal: String,
        #[arg(long, default_value_t = 3)]
        receivers: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        #[arg(long, default_value = r#"{"push":"x"}"#)]
        message: String,
    },
    /// Call an HTTP endpoint directly with keep-alive requests (backend ceiling for P3/P7).
    Http {
        /// http:// URL on loopback, e.g. http://127.0.0.1:9000/
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "POST")]
        method: http::Method,
        #[arg(long, default_value = r#"{"action":"echo","data":"x"}"#)]
        body: String,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        /// Extra request header, e.g. 'Authorization: Bearer X' (repeatable).
        #[arg(long = "header", value_parser = parse_header)]
        headers: Vec<(String, String)>,
    },
    /// P6: `client_credentials` access tokens from the token endpoint (HTTP Basic), keep-alive
    /// clients; every answer must be a 200 with an access_token.
    Tokens {
        /// Token endpoint, e.g. http://127.0.0.1:8080/pools/bench/oauth2/token
        #[arg(long)]
        url: String,
        #[arg(long)]
        client_id: String,
        #[arg(long, env = "PORTCULLIS_BENCH_CLIENT_SECRET", hide_env_values = true)]
        client_secret: String,
        /// Scopes to ask for (space-separated); default: all the client may have.
        #[arg(long)]
        scope: Option<String>,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
    },
    /// Password sign-ins: Cognito `InitiateAuth` (USER_PASSWORD_AUTH) at POST / for an existing,
    /// confirmed user; every answer must be a 200 with AuthenticationResult.AccessToken.
    SignIns {
        /// Where the Cognito JSON API is served, e.g. http://127.0.0.1:8080/
        #[arg(long)]
        url: String,
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        username: String,
        #[arg(long, env = "PORTCULLIS_BENCH_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
    },
}

/// The management API and the credentials it is signed with.
#[derive(Args)]
struct ManagementArgs {
    /// Management endpoint with stage path, e.g. http://127.0.0.1:9090/prod
    #[arg(long)]
    management_url: String,
    #[arg(long, default_value = "AKIDLOCAL")]
    access_key_id: String,
    #[arg(long, env = "PORTCULLIS_BENCH_SECRET", hide_env_values = true)]
    secret_access_key: String,
    #[arg(long, default_value = portcullis_config::defaults::REGION)]
    region: String,
}

impl ManagementArgs {
    fn split(self) -> (String, Credentials) {
        (
            self.management_url,
            Credentials {
                access_key_id: self.access_key_id,
                secret_access_key: self.secret_access_key,
                region: self.region,
            },
        )
    }
}

/// Where the WebSocket connections go and from where.
#[derive(Args)]
struct WsArgs {
    /// ws:// URL on loopback, e.g. ws://127.0.0.1:8080/chat (or http:// for SSE where said)
    #[arg(long)]
    url: String,
    /// Local source addresses, e.g. 127.0.1.1-127.0.1.50 (use a fresh range per run).
    #[arg(long, default_value = "127.0.0.1")]
    source_ips: String,
    /// Extra upgrade header, e.g. 'Authorization: Bearer X' (repeatable).
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Query string appended to the URL, e.g. 'access_token=X'.
    #[arg(long)]
    query: Option<String>,
    /// Timeout for one TCP connect plus upgrade.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    connect_timeout: Duration,
}

impl WsArgs {
    fn resolve(&self) -> Result<(Target, SourceIps)> {
        let target = Target::new(
            &self.url,
            self.query.as_deref(),
            &self.headers,
            self.connect_timeout,
        )?;
        Ok((target, self.sources()?))
    }

    fn sources(&self) -> Result<SourceIps> {
        SourceIps::parse(&self.source_ips).map_err(|e| anyhow!("--source-ips: {e}"))
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Idle {
            ws,
            connections,
            server_pid,
            concurrency,
            settle,
            hold,
            open_timeout,
        } => {
            let (target, source_ips) = if ws.url.starts_with("http://") {
                let target = SseTarget::new(
                    &ws.url,
                    ws.query.as_deref(),
                    &ws.headers,
                    ws.connect_timeout,
                )?;
                (idle::IdleTarget::Sse(target), ws.sources()?)
            } else {
                let (target, source_ips) = ws.resolve()?;
                (idle::IdleTarget::WebSocket(target), source_ips)
            };
            idle::run(idle::IdleOptions {
                target,
                connections,
                source_ips,
                server_pid,
                concurrency,
                settle,
                hold,
                open_timeout,
            })
            .await
        }
        Command::ConnectRate {
            ws,
            total,
            concurrency,
            max_time,
        } => {
            let (target, source_ips) = ws.resolve()?;
            connect_rate::run(connect_rate::ConnectRateOptions {
                target,
                total,
                concurrency,
                source_ips,
                max_time,
            })
            .await
        }
        Command::Roundtrip {
            ws,
            connections,
            duration,
            warmup,
            message,
            expect,
        } => {
            let (target, source_ips) = ws.resolve()?;
            roundtrip::run(roundtrip::RoundtripOptions {
                target,
                connections,
                duration,
                warmup,
                message,
                expect,
                source_ips,
            })
            .await
        }
        Command::Post {
            management,
            connection_id,
            url,
            headers,
            query,
            source_ips,
            concurrency,
            duration,
            message,
            rate,
            redis,
        } => {
            if rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
                return Err(anyhow!(
                    "--rate must be a positive number of requests per second"
                ));
            }
            let (management_url, credentials) = management.split();
            let receiver = url
                .map(|u| Target::new(&u, query.as_deref(), &headers, Duration::from_secs(10)))
                .transpose()?;
            let source_ips =
                SourceIps::parse(&source_ips).map_err(|e| anyhow!("--source-ips: {e}"))?;
            post::run(post::PostOptions {
                management_url,
                connection_id,
                receiver,
                source_ips,
                credentials,
                concurrency,
                duration,
                message,
                rate,
                redis,
            })
            .await
        }
        Command::Fanout {
            ws,
            also_urls,
            management,
            connections,
            topic,
            publishers,
            rate,
            size,
            duration,
            warmup,
            metrics_urls,
            skipped_metrics,
            server_pids,
            handshakes,
            subscribe_concurrency,
            redis,
        } => {
            let (target, source_ips) = ws.resolve()?;
            let mut targets = vec![target];
            for url in &also_urls {
                targets.push(Target::new(
                    url,
                    ws.query.as_deref(),
                    &ws.headers,
                    ws.connect_timeout,
                )?);
            }
            let (management_url, credentials) = management.split();
            if !(rate.is_finite() && rate >= 0.0) {
                return Err(anyhow!(
                    "--rate must be a number of publishes per second, or 0"
                ));
            }
            fanout::run(fanout::FanoutOptions {
                targets,
                management_url,
                credentials,
                metrics_urls,
                skipped_metrics,
                server_pids,
                connections,
                topic,
                publishers,
                rate,
                size,
                duration,
                warmup,
                source_ips,
                handshakes,
                subscribe_concurrency,
                redis,
            })
            .await
        }
        Command::PushUser {
            ws,
            management,
            principal,
            receivers,
            concurrency,
            duration,
            message,
        } => {
            let (target, source_ips) = ws.resolve()?;
            let (management_url, credentials) = management.split();
            push_user::run(push_user::PushUserOptions {
                target,
                management_url,
                credentials,
                principal,
                receivers,
                source_ips,
                concurrency,
                duration,
                message,
            })
            .await
        }
        Command::Http {
            url,
            method,
            body,
            concurrency,
            duration,
            headers,
        } => {
            direct::run(direct::DirectOptions {
                url,
                method,
                body,
                concurrency,
                duration,
                headers,
            })
            .await
        }
        Command::Tokens {
            url,
            client_id,
            client_secret,
            scope,
            concurrency,
            duration,
        } => {
            identity::tokens(identity::TokensOptions {
                url,
                client_id,
                client_secret,
                scope,
                concurrency,
                duration,
            })
            .await
        }
        Command::SignIns {
            url,
            client_id,
            username,
            password,
            concurrency,
            duration,
        } => {
            identity::sign_ins(identity::SignInOptions {
                url,
                client_id,
                username,
                password,
                concurrency,
                duration,
            })
            .await
        }
    }
}
