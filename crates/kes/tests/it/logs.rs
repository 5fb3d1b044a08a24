//! Audit and error logs: every request audited, streamed to followers, never blocking.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::harness::{Kes, Who, admin_identity, app_identity, client, config, send, send_json};

/// Reads NDJSON lines from a streaming reply until `n` lines arrived or `timeout` passed.
async fn read_lines(res: &mut reqwest::Response, n: usize, timeout: Duration) -> Vec<Value> {
    let mut buf = Vec::new();
    let mut lines = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while lines.len() < n {
        let chunk = match tokio::time::timeout_at(deadline, res.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            _ => break,
        };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            lines.push(serde_json::from_slice(&line).unwrap());
        }
    }
    lines
}

#[tokio::test]
async fn audit_followers_get_one_event_per_request_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), ""));
    let follower = client(Who::Admin);
    let mut stream = follower.get(kes.url("/v1/log/audit")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "application/x-ndjson");

    let app = client(Who::App);
    let admin = client(Who::Admin);
    let mut want = Vec::new();
    for i in 0..5 {
        let path = format!("/v1/key/create/app-{i}");
        assert_eq!(send(&app, "POST", &kes.url(&path), None).await.status, 200);
        want.push((path, app_identity(), 200));
        let path = format!("/v1/key/generate/app-{i}");
        assert_eq!(
            send(&app, "POST", &kes.url(&path), Some(b"{}".to_vec()))
                .await
                .status,
            200
        );
        want.push((path, app_identity(), 200));
        let path = format!("/v1/key/delete/app-{i}");
        assert_eq!(
            send(&app, "DELETE", &kes.url(&path), None).await.status,
            403
        );
        want.push((path, app_identity(), 403));
        let path = format!("/v1/key/describe/missing-{i}");
        assert_eq!(send(&admin, "GET", &kes.url(&path), None).await.status, 404);
        want.push((path, admin_identity(), 404));
    }
    let events = read_lines(&mut stream, want.len(), Duration::from_secs(10)).await;
    assert_eq!(events.len(), want.len());
    for (event, (path, identity, code)) in events.iter().zip(&want) {
        assert_eq!(event["request"]["path"], *path);
        assert_eq!(event["request"]["identity"], *identity);
        assert_eq!(event["request"]["ip"], "127.0.0.1");
        assert_eq!(event["response"]["code"], *code);
        assert!(event["response"]["time"].is_number());
        assert!(event["time"].is_string());
    }
}

#[tokio::test]
async fn error_followers_get_error_events() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(
        dir.path(),
        &config(&dir.path().join("keys"), "log:\n  error: debug\n"),
    );
    let mut stream = client(Who::Admin)
        .get(kes.url("/v1/log/error"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let other = client(Who::Other);
    for i in 0..3 {
        assert_eq!(
            send(
                &other,
                "GET",
                &kes.url(&format!("/v1/key/describe/k{i}")),
                None
            )
            .await
            .status,
            403
        );
    }
    let events = read_lines(&mut stream, 3, Duration::from_secs(10)).await;
    assert_eq!(events.len(), 3);
    for (i, e) in events.iter().enumerate() {
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("req.path=/v1/key/describe/k{i}")),
            "{msg}"
        );
        assert!(msg.contains("not authorized"), "{msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_follower_never_blocks_requests_and_learns_what_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), ""));
    let admin = client(Who::Admin);
    send(&admin, "POST", &kes.url("/v1/key/create/k"), None).await;

    // A follower that subscribes and then never reads. Its HTTP/2 flow-control window is the
    // protocol minimum, so the server cannot park more than 64 KiB of events in the client's
    // buffers: the rest must be dropped for it (and counted), not queued without bound.
    let stalled_client = crate::harness::alpn_client_builder(Who::Admin)
        .http2_prior_knowledge()
        .http2_initial_stream_window_size(65_535)
        .http2_initial_connection_window_size(65_535)
        .build()
        .unwrap();
    let mut stalled = stalled_client
        .get(kes.url("/v1/log/audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(stalled.status(), 200);

    // 10,000 requests from 16 concurrent workers, all of which must complete.
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for w in 0..16 {
        let url = kes.url("/v1/key/generate/k");
        workers.push(tokio::spawn(async move {
            let c = client(Who::Admin);
            let mut ok = 0;
            for _ in 0..(10_000 / 16 + usize::from(w < 10_000 % 16)) {
                let r = c.post(&url).body("{}").send().await.unwrap();
                assert_eq!(r.status(), 200);
                ok += 1;
            }
            ok
        }));
    }
    let mut total = 0;
    for w in workers {
        total += tokio::time::timeout(Duration::from_secs(300), w)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(total, 10_000);
    eprintln!(
        "10,000 requests with a stalled follower: {:?}",
        started.elapsed()
    );

    // The follower now reads: it learns how many events it lost.
    let mut dropped = 0u64;
    let mut seen = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut buf = Vec::new();
    while dropped == 0 {
        let chunk = match tokio::time::timeout_at(deadline, stalled.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            other => panic!("no drop report (saw {seen} events): {other:?}"),
        };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let v: Value = serde_json::from_slice(&line).unwrap();
            if let Some(n) = v.get("dropped") {
                dropped += n.as_u64().unwrap();
            } else {
                seen += 1;
            }
        }
    }
    assert!(dropped > 0);
    assert!(
        seen + dropped <= 10_001 + 1,
        "seen {seen} dropped {dropped}"
    );
}

#[tokio::test]
async fn audit_log_on_stdout_and_no_secrets_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(
        dir.path(),
        &config(
            &dir.path().join("keys"),
            "log:\n  audit: on\n  error: debug\n",
        ),
    );
    let admin = client(Who::Admin);
    let key = [0x5au8; 32];
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/import/secret-key"),
        &json!({"key": B64.encode(key), "cipher": "AES256"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let plaintext = b"the plaintext that must never be logged";
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/encrypt/secret-key"),
        &json!({"plaintext": B64.encode(plaintext)}),
    )
    .await;
    let ct = r.json()["ciphertext"].as_str().unwrap().to_owned();
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/generate/secret-key"),
        &json!({}),
    )
    .await;
    let dek = r.json()["plaintext"].as_str().unwrap().to_owned();
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/decrypt/secret-key"),
        &json!({"ciphertext": ct}),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/decrypt/secret-key"),
        &json!({"ciphertext": "AAAA"}),
    )
    .await;
    assert_eq!(r.status, 400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stdout = kes.stdout();
    let events: Vec<Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let paths: Vec<&str> = events
        .iter()
        .map(|e| e["request"]["path"].as_str().unwrap())
        .collect();
    for p in [
        "/v1/key/import/secret-key",
        "/v1/key/encrypt/secret-key",
        "/v1/key/generate/secret-key",
        "/v1/key/decrypt/secret-key",
    ] {
        assert!(paths.contains(&p), "{p} not audited: {stdout}");
    }
    let all = format!("{stdout}{}", kes.stderr());
    for secret in [
        B64.encode(key),
        B64.encode(plaintext),
        dek.clone(),
        ct.clone(),
        hex(&key),
    ] {
        assert!(!all.contains(&secret), "secret found in output");
    }
    assert!(!all.contains("the plaintext"));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
