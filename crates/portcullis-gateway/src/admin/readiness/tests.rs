use super::*;

#[test]
fn a_node_without_dependencies_is_ready() {
    let (status, body) = answer(false, &Report::default());
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({ "status": "ready" }));
}

#[test]
fn draining_wins_over_healthy_dependencies() {
    let report = Report {
        store: Some(Probe::Ok),
        redis: Some(Probe::Ok),
    };
    let (status, body) = answer(true, &report);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, serde_json::json!({ "status": "draining" }));
}

#[test]
fn a_failed_dependency_is_named() {
    let report = Report {
        store: Some(Probe::Ok),
        redis: Some(Probe::Timeout),
    };
    let (status, body) = answer(false, &report);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["failed"], serde_json::json!(["redis"]));
    assert_eq!(body["dependencies"]["store"], "ok");
    assert_eq!(body["dependencies"]["redis"], "timeout");
}

#[test]
fn only_configured_dependencies_are_listed() {
    let report = Report {
        store: Some(Probe::Error),
        redis: None,
    };
    let (_, body) = answer(false, &report);
    assert_eq!(body["failed"], serde_json::json!(["store"]));
    assert!(body["dependencies"].get("redis").is_none());
}
