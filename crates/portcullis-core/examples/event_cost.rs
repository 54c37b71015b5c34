//! The cost of building one integration event and parsing its result, for counting
//! instructions and allocations under valgrind (wall time is too noisy on a shared machine):
//!
//! ```text
//! cargo build --release -p portcullis-core --example event_cost
//! valgrind --tool=callgrind target/release/examples/event_cost http 1000
//! valgrind --tool=dhat target/release/examples/event_cost ws 1000
//! ```
//!
//! `http`: an HTTP API request through an `http` integration (payload 2.0): the request's
//! headers and query as the gateway collects them, the event (with the gateway's forwarding
//! headers), and a structured result with headers, a cookie and a JSON body. `ws`: a WebSocket
//! MESSAGE event and its result, read as the session reads it. Run with N and with 0 and
//! subtract: the difference over N is the cost of one event and result, without the process's
//! start-up (`scripts/event-cost` does).

use std::borrow::Cow;
use std::hint::black_box;

use portcullis_core::event::{EventType, WsEventContext, message_event, parse_proxy_result_ref};
use portcullis_core::http_event::{Forwarding, HttpEventInput, http_event, parse_http_result};

const HEADERS: &[(&str, &str)] = &[
    ("host", "api.example.com"),
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    ("accept", "application/json"),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-language", "en-GB,en;q=0.5"),
    ("content-type", "application/json"),
    ("content-length", "96"),
    (
        "cookie",
        "theme=dark; portcullis_access=eyJhbGciOi; lang=en",
    ),
    ("x-request-id", "7f3c2a1e-90b4-4c55-8f0e-2d1b6a9e3c47"),
    ("x-forwarded-for", "198.51.100.23"),
];

const BODY: &[u8] =
    br#"{"order":{"id":"o-1842","lines":[{"sku":"A-17","qty":2},{"sku":"B-4","qty":1}]},"note":"ring"}"#;

const HTTP_RESULT: &[u8] = br#"{"statusCode":201,"headers":{"content-type":"application/json","x-request-id":"7f3c2a1e-90b4-4c55-8f0e-2d1b6a9e3c47","cache-control":"no-store"},"cookies":["cart=o-1842; Path=/; HttpOnly"],"body":"{\"id\":\"o-1842\",\"status\":\"created\",\"total\":{\"amount\":4250,\"currency\":\"EUR\"}}","isBase64Encoded":false}"#;

const WS_MESSAGE: &str = r#"{"action":"sendmessage","room":"general","text":"hello, everyone: the build is green again"}"#;

const WS_RESULT: &[u8] =
    br#"{"statusCode":200,"body":"{\"type\":\"ack\",\"room\":\"general\",\"id\":\"m-99120\"}"}"#;

fn http_once() {
    // As the gateway borrows a request's headers and decoded query for an `http` integration.
    let headers: Vec<(&str, &str)> = black_box(HEADERS).to_vec();
    let query = vec![
        (Cow::Borrowed("expand"), Cow::Borrowed("lines")),
        (Cow::Borrowed("limit"), Cow::Borrowed("10")),
    ];
    let params = vec![("id".to_owned(), "o-1842".to_owned())];
    let event = http_event(&HttpEventInput {
        route_key: "POST /orders/{id}",
        raw_path: "/orders/o-1842",
        raw_query_string: "expand=lines&limit=10",
        headers: &headers,
        forwarding: Some(Forwarding {
            hop: "127.0.0.1",
            port: 8080,
            scheme: "http",
        }),
        query: &query,
        path_parameters: &params,
        account_id: "111122223333",
        api_id: "h4t8w2k9mz",
        authorizer: None,
        domain_name: "api.example.com",
        method: "POST",
        protocol: "HTTP/1.1",
        source_ip: "198.51.100.23",
        request_id: "Yq5aB1cDoAMEbcd=",
        stage: "$default",
        time_epoch_ms: 1_740_996_131_004,
        body: BODY,
    });
    black_box(event);
    let result = parse_http_result(black_box(HTTP_RESULT));
    black_box(result.map(|r| r.status).unwrap_or(0));
}

fn ws_once() {
    let ctx = WsEventContext {
        route_key: "sendmessage",
        event_type: EventType::Message,
        connection_id: "Yq3jQfP1oAMCJzA=",
        connected_at_ms: 1_740_993_242_118,
        request_id: "Yq3jQhTboAMFa1w=",
        message_id: Some("Yq3jQhTboAMFa2x="),
        request_time_ms: 1_740_993_242_120,
        stage: "prod",
        api_id: "k3v9q2m7xa",
        domain_name: "ws.example.com",
        source_ip: "198.51.100.23",
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)"),
        authorizer: None,
        disconnect_status_code: None,
        disconnect_reason: None,
        connection_type: None,
        caller: None,
    };
    let event = message_event(&ctx, black_box(WS_MESSAGE), false);
    black_box(event);
    let result = parse_proxy_result_ref(black_box(WS_RESULT));
    black_box(result.map(|r| r.body.map_or(0, |b| b.len())).unwrap_or(0));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let once: fn() = match path.as_str() {
        "http" => http_once,
        "ws" => ws_once,
        _ => {
            eprintln!("usage: event_cost http|ws [N]");
            std::process::exit(2);
        }
    };
    for _ in 0..n {
        once();
    }
}
