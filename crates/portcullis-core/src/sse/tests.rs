use super::*;

fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    write(&mut out);
    String::from_utf8(out).unwrap()
}

/// What an EventSource dispatches for a stream (HTML §9.2.6, the parts the gateway uses):
/// (event type, data, last event id) per event.
fn dispatched(stream: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let (mut kind, mut data, mut last_id) = (String::new(), String::new(), String::new());
    for line in stream.split('\n') {
        if line.is_empty() {
            if !data.is_empty() {
                data.pop();
                let name = if kind.is_empty() { "message" } else { &kind };
                out.push((name.to_owned(), data.clone(), last_id.clone()));
            }
            kind.clear();
            data.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => kind = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" => last_id = value.to_owned(),
            _ => {}
        }
    }
    out
}

#[test]
fn ids_read_back_as_written() {
    for id in [
        EventId::logged(0, 0),
        EventId::logged(0xdead_beef, 42),
        EventId::live(7, u64::MAX, 3),
    ] {
        assert_eq!(EventId::parse(&id.to_string()), Some(id), "{id}");
    }
    assert_eq!(EventId::logged(0xab, 5).to_string(), "000000ab-5");
    assert_eq!(EventId::live(0xab, 5, 2).to_string(), "000000ab-5.2");
}

#[test]
fn ids_the_gateway_did_not_write_are_refused() {
    for text in [
        "",
        "5",
        "000000ab",
        "000000ab-",
        "000000ab-x",
        "000000ab--5",
        "000000ab-+5",
        "000000ab- 5",
        "000000ab-5.",
        "000000ab-5.1.1",
        "00000ab-5",
        "0000000ab-5",
        "zzzzzzzz-5",
        "000000ab-99999999999999999999",
        &format!("000000ab-{}", "1".repeat(70)),
    ] {
        assert_eq!(EventId::parse(text), None, "{text:?}");
    }
}

#[test]
fn resuming_needs_an_id_of_this_log_within_what_it_still_holds() {
    let generation = 0xab;
    let fresh = resume(None, generation, 3, 10);
    assert_eq!(
        fresh,
        Resume {
            reset: false,
            after: 10
        }
    );
    for (last, want) in [
        (
            "000000ab-3",
            Resume {
                reset: false,
                after: 3,
            },
        ),
        (
            "000000ab-7",
            Resume {
                reset: false,
                after: 7,
            },
        ),
        (
            " 000000ab-7.4 ",
            Resume {
                reset: false,
                after: 7,
            },
        ),
        (
            "000000ab-10",
            Resume {
                reset: false,
                after: 10,
            },
        ),
        // Older than what the log still holds.
        (
            "000000ab-2",
            Resume {
                reset: true,
                after: 3,
            },
        ),
        // Of another log (a restart), from the future, or not an id at all.
        (
            "000000ac-7",
            Resume {
                reset: true,
                after: 3,
            },
        ),
        (
            "000000ab-11",
            Resume {
                reset: true,
                after: 3,
            },
        ),
        (
            "garbage",
            Resume {
                reset: true,
                after: 3,
            },
        ),
        (
            "",
            Resume {
                reset: true,
                after: 3,
            },
        ),
    ] {
        assert_eq!(resume(Some(last), generation, 3, 10), want, "{last:?}");
    }
}

#[test]
fn every_line_break_starts_a_data_line_and_the_client_gets_the_text_back() {
    let id = EventId::logged(1, 9);
    for (payload, lines, back) in [
        ("hello", vec!["hello"], "hello"),
        ("a\nb", vec!["a", "b"], "a\nb"),
        (
            "a\r\nb\rc\n\nd",
            vec!["a", "b", "c", "", "d"],
            "a\nb\nc\n\nd",
        ),
        ("end\n", vec!["end", ""], "end\n"),
        ("\r\n", vec!["", ""], "\n"),
        (" lead", vec![" lead"], " lead"),
        ("data: x", vec!["data: x"], "data: x"),
    ] {
        let stream = written(|out| text(out, id, payload));
        let mut want = "id: 00000001-9\n".to_owned();
        for line in &lines {
            want.push_str(&format!("data: {line}\n"));
        }
        want.push('\n');
        assert_eq!(stream, want, "{payload:?}");
        assert_eq!(
            dispatched(&stream),
            [(
                "message".to_owned(),
                back.to_owned(),
                "00000001-9".to_owned()
            )],
            "{payload:?}"
        );
    }
}

#[test]
fn the_other_events_as_a_client_reads_them() {
    let stream = written(|out| {
        connected(out, EventId::live(1, 4, 0), "Yq3jQfP1oAMCJzA=");
        reset(out);
        binary(out, EventId::logged(1, 5), &[0, 1, 254, 255]);
        heartbeat(out);
        close(out, 1008, "Token revoked");
    });
    assert_eq!(
        stream,
        "id: 00000001-4.0\nevent: connected\ndata: {\"connectionId\":\"Yq3jQfP1oAMCJzA=\"}\n\n\
         event: reset\ndata: {}\n\n\
         id: 00000001-5\nevent: binary\ndata: AAH+/w==\n\n\
         : ping\n\n\
         event: close\ndata: {\"code\":1008,\"reason\":\"Token revoked\"}\n\n"
    );
    let events: Vec<(String, String)> = dispatched(&stream)
        .into_iter()
        .map(|(kind, data, _)| (kind, data))
        .collect();
    assert_eq!(
        events,
        [
            (
                "connected".into(),
                "{\"connectionId\":\"Yq3jQfP1oAMCJzA=\"}".into()
            ),
            ("reset".into(), "{}".into()),
            ("binary".into(), "AAH+/w==".into()),
            (
                "close".into(),
                "{\"code\":1008,\"reason\":\"Token revoked\"}".into()
            ),
        ]
    );
}

#[test]
fn the_stream_headers_come_first_and_connect_cannot_replace_them() {
    let connect = vec![
        ("Set-Cookie".to_owned(), "seen=1".to_owned()),
        ("Content-Type".to_owned(), "text/html".to_owned()),
        ("Cache-Control".to_owned(), "max-age=60".to_owned()),
        ("Access-Control-Allow-Origin".to_owned(), "*".to_owned()),
        ("bad name".to_owned(), "x".to_owned()),
        ("x-ok".to_owned(), "line\nbreak".to_owned()),
    ];
    let names = |headers: Vec<(String, String)>| -> Vec<String> {
        headers
            .into_iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect()
    };
    assert_eq!(
        names(response_headers(None, &connect)),
        [
            "content-type: text/event-stream",
            "cache-control: no-cache",
            "x-accel-buffering: no",
            "set-cookie: seen=1",
        ]
    );
    assert_eq!(
        names(response_headers(Some("https://app.example"), &[]))[3..],
        [
            "access-control-allow-origin: https://app.example",
            "access-control-allow-credentials: true",
            "vary: origin",
        ]
    );
}
