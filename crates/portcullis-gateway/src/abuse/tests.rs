use super::*;
use http_body_util::BodyExt;

fn server(extra: &str) -> Server {
    let source =
        format!("[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{extra}\n");
    portcullis_config::load_str(&source, "test.toml", &|_| None)
        .unwrap()
        .server
}

fn limits(extra: &str) -> Limits {
    let server = server(extra);
    Limits::new(&server, &Counts::new(&server), Arc::new(Metrics::new()))
}

fn peer(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 40000)
}

fn request(forwarded_for: &[&str]) -> Request<Body> {
    let mut builder = Request::builder().uri("/chat");
    for value in forwarded_for {
        builder = builder.header("x-forwarded-for", *value);
    }
    builder.body(Body::empty()).unwrap()
}

async fn refusal(result: Result<Admitted, Response<Body>>) -> (u16, String, Option<String>) {
    let Err(response) = result else {
        panic!("admitted")
    };
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap(), retry)
}

#[test]
fn the_client_is_the_peer_unless_a_trusted_proxy_names_another() {
    let open = limits("");
    let mut req = request(&["198.51.100.1"]);
    assert_eq!(
        open.identify(&mut req, peer("10.0.0.2")),
        "10.0.0.2".parse::<IpAddr>().unwrap()
    );
    assert_eq!(client_ip(&req, peer("10.0.0.2")).to_string(), "10.0.0.2");

    let behind = limits("trusted_proxies = [\"10.0.0.0/8\"]");
    let mut req = request(&["6.6.6.6, 198.51.100.1", "10.0.0.9"]);
    behind.identify(&mut req, peer("10.0.0.2"));
    assert_eq!(
        client_ip(&req, peer("10.0.0.2")).to_string(),
        "198.51.100.1"
    );
    let mut spoofed = request(&["198.51.100.1"]);
    behind.identify(&mut spoofed, peer("203.0.113.5"));
    assert_eq!(
        client_ip(&spoofed, peer("203.0.113.5")).to_string(),
        "203.0.113.5"
    );
    // Without identify: the peer.
    assert_eq!(
        client_ip(&request(&[]), peer("::ffff:192.0.2.1")).to_string(),
        "192.0.2.1"
    );
}

#[tokio::test]
async fn over_the_connect_rate_is_429_and_counted() {
    let limits = limits("connect_rate_per_ip = 2");
    let client: IpAddr = "192.0.2.1".parse().unwrap();
    let first = limits.admit(peer("192.0.2.1"), client);
    let second = limits.admit(peer("192.0.2.1"), client);
    assert!(first.is_ok() && second.is_ok());
    let (status, body, retry) = refusal(limits.admit(peer("192.0.2.1"), client)).await;
    assert_eq!(
        (status, body.as_str()),
        (429, r#"{"message":"Too Many Requests"}"#)
    );
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(limits.metrics.render().contains(
        "portcullis_connections_refused_total{listener=\"public\",reason=\"connect_rate\"} 1"
    ));
}

#[tokio::test]
async fn beyond_max_connections_is_503_until_one_ends() {
    let limits = limits("max_connections = 2\nconnect_rate_per_ip = 0");
    let a = limits.admit(peer("192.0.2.1"), "192.0.2.1".parse().unwrap());
    let b = limits.admit(peer("192.0.2.2"), "192.0.2.2".parse().unwrap());
    assert!(a.is_ok() && b.is_ok());
    let (status, body, _) =
        refusal(limits.admit(peer("192.0.2.3"), "192.0.2.3".parse().unwrap())).await;
    assert_eq!(
        (status, body.as_str()),
        (503, r#"{"message":"Service Unavailable"}"#)
    );
    drop(a);
    assert!(
        limits
            .admit(peer("192.0.2.3"), "192.0.2.3".parse().unwrap())
            .is_ok()
    );
    assert!(limits.metrics.render().contains(
        "portcullis_connections_refused_total{listener=\"public\",reason=\"max_connections\"} 1"
    ));
}

#[tokio::test]
async fn sessions_through_a_trusted_proxy_are_capped_per_client() {
    let limits = limits(
        "max_connections_per_ip = 2\nconnect_rate_per_ip = 0\ntrusted_proxies = [\"10.0.0.0/8\"]",
    );
    let proxy = peer("10.0.0.2");
    let alice: IpAddr = "198.51.100.1".parse().unwrap();
    let bob: IpAddr = "198.51.100.2".parse().unwrap();
    let held = [limits.admit(proxy, alice), limits.admit(proxy, alice)];
    assert!(held.iter().all(Result::is_ok));
    let (status, _, _) = refusal(limits.admit(proxy, alice)).await;
    assert_eq!(status, 503);
    assert!(
        limits.admit(proxy, bob).is_ok(),
        "another client of the same proxy"
    );
    drop(held);
    assert!(limits.admit(proxy, alice).is_ok());
}

#[tokio::test]
async fn a_stream_holds_its_places_until_its_body_is_dropped() {
    let limits = limits("max_connections = 1\nconnect_rate_per_ip = 0");
    let client: IpAddr = "192.0.2.1".parse().unwrap();
    let admitted = limits.admit(peer("192.0.2.1"), client).unwrap();
    let response = hold_while_streaming(Response::new(Body::from("data: x\n\n")), admitted);
    assert!(
        limits.admit(peer("192.0.2.1"), client).is_err(),
        "the stream is open"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"data: x\n\n");
    assert!(
        limits.admit(peer("192.0.2.1"), client).is_ok(),
        "the stream ended"
    );

    let admitted = limits.admit(peer("192.0.2.1"), client).unwrap();
    let refused =
        hold_while_streaming(reply::message(StatusCode::FORBIDDEN, "Forbidden"), admitted);
    assert!(
        limits.admit(peer("192.0.2.1"), client).is_ok(),
        "a refusal holds nothing"
    );
    drop(refused);
}

#[test]
fn the_socket_budget_is_looser_than_the_session_limit() {
    assert_eq!(socket_budget(2), 1026);
    assert_eq!(socket_budget(100_000), 125_000);
    assert_eq!(
        socket_budget(usize::MAX),
        tokio::sync::Semaphore::MAX_PERMITS
    );
}
