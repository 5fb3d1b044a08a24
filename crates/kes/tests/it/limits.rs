//! HTTP limits against the real binary: header read timeout, per-route timeouts, header size,
//! connection limit, HTTP/2 stream and window limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::{Kes, Who, client, config, pki, send, tls_client_config};

async fn connect(kes: &Kes) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let pki = pki();
    let config = tls_client_config(
        Some((&pki.join("admin.crt"), &pki.join("admin.key"))),
        &pki.join("ca.crt"),
    );
    let connector = tokio_rustls::TlsConnector::from(config);
    let tcp = tokio::net::TcpStream::connect(kes.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

#[tokio::test]
async fn a_header_sent_a_byte_at_a_time_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), ""));
    let mut tls = connect(&kes).await;
    let head = b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let started = Instant::now();
    let mut cut = false;
    // At most 100 bytes at 200 ms each: 20 s; the server's header timeout is 5 s.
    for b in head.iter().take(100) {
        if tls.write_all(&[*b]).await.is_err() || tls.flush().await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(200), tls.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut = true;
                break;
            }
            Ok(Ok(n)) => {
                // A 408 reply before the close is fine too.
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                assert!(!text.contains(" 200 "), "{text}");
                cut = true;
                break;
            }
            Err(_) => {}
        }
    }
    let elapsed = started.elapsed();
    assert!(cut, "the server waited for the whole slow header");
    assert!(
        elapsed < Duration::from_secs(9),
        "cut off after {elapsed:?}"
    );
    assert!(
        elapsed >= Duration::from_secs(4),
        "cut off too early: {elapsed:?}"
    );
    // Other clients are served meanwhile and afterwards.
    assert_eq!(
        send(&client(Who::Admin), "GET", &kes.url("/v1/status"), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_route_timeout_answers_a_stalled_body() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "api:\n  /v1/key/encrypt/:\n    timeout: 1s\n";
    let kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), extra));
    send(
        &client(Who::Admin),
        "POST",
        &kes.url("/v1/key/create/k"),
        None,
    )
    .await;
    let mut tls = connect(&kes).await;
    let started = Instant::now();
    tls.write_all(b"POST /v1/key/encrypt/k HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"plaintext\":")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("request timeout exceeded"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), ""));
    let mut tls = connect(&kes).await;
    let big = "a".repeat(100 * 1024);
    let req = format!("GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {big}\r\n\r\n");
    let _ = tls.write_all(req.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text}"
    );
    // Over HTTP/2 too.
    let r = client(Who::Admin)
        .get(kes.url("/v1/status"))
        .header("x-big", &big)
        .send()
        .await;
    assert!(r.is_err() || r.unwrap().status() == 431);
    assert_eq!(
        send(&client(Who::Admin), "GET", &kes.url("/v1/status"), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn connections_above_the_limit_get_a_clean_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(
        dir.path(),
        &config(&dir.path().join("keys"), "limits:\n  max_connections: 3\n"),
    );
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tls = connect(&kes).await;
        tls.write_all(b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = tls.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(tls);
    }
    // The fourth connection is refused with a reply, not dropped silently.
    let pki = pki();
    let cfg = tls_client_config(
        Some((&pki.join("admin.crt"), &pki.join("admin.key"))),
        &pki.join("ca.crt"),
    );
    let r = crate::harness::raw(kes.addr, cfg.clone(), "GET", "/v1/status", None)
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.message()),
        (503, "too many open connections".into())
    );
    // Closing one makes room.
    drop(held.pop());
    let mut status = 0;
    for _ in 0..50 {
        status = crate::harness::raw(kes.addr, cfg.clone(), "GET", "/v1/status", None)
            .await
            .unwrap()
            .status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn http2_stream_and_window_limits() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), ""));
    send(
        &client(Who::Admin),
        "POST",
        &kes.url("/v1/key/create/k"),
        None,
    )
    .await;
    // An HTTP/2 connection made by hand to read the server's settings.
    let pki = pki();
    let mut cfg = (*tls_client_config(
        Some((&pki.join("admin.crt"), &pki.join("admin.key"))),
        &pki.join("ca.crt"),
    ))
    .clone();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(kes.addr).await.unwrap();
    let tls = connector
        .connect(
            rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (h2, mut conn) = h2::client::handshake(tls).await.unwrap();
    // A first request makes sure the server's SETTINGS arrived.
    let first = async {
        let mut h2 = h2.ready().await.unwrap();
        let req = http::Request::get(kes.url("/v1/status")).body(()).unwrap();
        let (res, _) = h2.send_request(req, true).unwrap();
        res.await.unwrap().status()
    };
    let status = tokio::select! {
        status = first => status,
        r = &mut conn => panic!("connection ended: {r:?}"),
    };
    assert_eq!(status, 200);
    assert_eq!(
        conn.max_concurrent_send_streams(),
        kes_server::server::MAX_CONCURRENT_STREAMS as usize
    );

    // 400 concurrent requests on one connection: the stream limit queues the excess, all finish.
    let c = client(Who::Admin);
    let mut tasks = Vec::new();
    for _ in 0..400 {
        let c = c.clone();
        let url = kes.url("/v1/key/generate/k");
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .body("{}")
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
            200
        );
    }
    // A body larger than the stream window (1 MiB) arrives through flow control, and the body
    // limit answers it.
    let big = format!("{{\"plaintext\":\"{}\"}}", "A".repeat(3 << 20));
    let r = send(
        &c,
        "POST",
        &kes.url("/v1/key/encrypt/k"),
        Some(big.into_bytes()),
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (400, "invalid request body".into())
    );
}

#[tokio::test]
async fn idle_keep_alive_connections_outlive_the_header_timeout() {
    let (_dir, kes) = crate::harness::start_default();
    let mut tls = connect(&kes).await;
    let request = b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for round in 0..2 {
        tls.write_all(request).await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(text.starts_with("HTTP/1.1 200"), "round {round}: {text}");
        if round == 0 {
            // Longer than the 5 s header timeout, shorter than the 90 s idle timeout: a pooled
            // connection must still be usable (the original keeps it for 90 s).
            tokio::time::sleep(Duration::from_secs(7)).await;
        }
    }
}
