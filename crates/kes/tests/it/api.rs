//! The HTTP API of spec §2: routes, methods, bodies, errors.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;

use crate::harness::{Who, client, send, send_json, start_default, status};

#[tokio::test]
async fn key_lifecycle_generate_decrypt_encrypt_hmac() {
    let (_dir, kes) = start_default();
    let admin = client(Who::Admin);

    let r = send(&admin, "POST", &kes.url("/v1/key/create/my-key"), None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.headers["content-length"], "0");

    let r = send(&admin, "PUT", &kes.url("/v1/key/create/my-key"), None).await;
    assert_eq!((r.status, r.message()), (400, "key already exists".into()));

    let ctx = B64.encode(b"bucket/object");
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/generate/my-key"),
        &json!({"context": ctx}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/json");
    let v = r.json();
    let dek = B64.decode(v["plaintext"].as_str().unwrap()).unwrap();
    let ct = v["ciphertext"].as_str().unwrap().to_owned();
    assert_eq!(dek.len(), 32);
    assert_eq!(B64.decode(&ct).unwrap().len(), 76);

    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/decrypt/my-key"),
        &json!({"ciphertext": ct, "context": ctx}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        B64.decode(r.json()["plaintext"].as_str().unwrap()).unwrap(),
        dek
    );

    // Wrong context: the one decrypt error.
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/decrypt/my-key"),
        &json!({"ciphertext": ct, "context": B64.encode(b"other")}),
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (400, "decryption failed: ciphertext is not authentic".into())
    );

    // Encrypt with case-insensitive field names and the ignored `version` field.
    let r = send_json(
        &admin,
        "PUT",
        &kes.url("/v1/key/encrypt/my-key"),
        &json!({"PLAINTEXT": B64.encode(b"hello"), "version": "v1"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let ct = r.json()["ciphertext"].as_str().unwrap().to_owned();
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/decrypt/my-key"),
        &json!({"ciphertext": ct}),
    )
    .await;
    assert_eq!(
        B64.decode(r.json()["plaintext"].as_str().unwrap()).unwrap(),
        b"hello"
    );

    let r = send_json(
        &admin,
        "PUT",
        &kes.url("/v1/key/hmac/my-key"),
        &json!({"message": "aGk="}),
    )
    .await;
    assert_eq!(r.status, 200);
    let sum = B64.decode(r.json()["hmac"].as_str().unwrap()).unwrap();
    assert_eq!(sum.len(), 32);
    let again = send_json(
        &admin,
        "PUT",
        &kes.url("/v1/key/hmac/my-key"),
        &json!({"message": "aGk="}),
    )
    .await;
    assert_eq!(again.json()["hmac"], r.json()["hmac"]);

    let r = send(&admin, "GET", &kes.url("/v1/key/describe/my-key"), None).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["name"], "my-key");
    assert_eq!(v["algorithm"], "AES256");
    assert_eq!(v["created_by"], crate::harness::admin_identity());

    let r = send(&admin, "DELETE", &kes.url("/v1/key/delete/my-key"), None).await;
    assert_eq!(r.status, 200);
    let r = send(&admin, "GET", &kes.url("/v1/key/describe/my-key"), None).await;
    assert_eq!((r.status, r.message()), (404, "key does not exist".into()));
    let r = send(&admin, "DELETE", &kes.url("/v1/key/delete/my-key"), None).await;
    assert_eq!((r.status, r.message()), (404, "key does not exist".into()));
}

#[tokio::test]
async fn import_errors_and_algorithms() {
    let (_dir, kes) = start_default();
    let admin = client(Who::Admin);
    let key = B64.encode([7u8; 32]);
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/import/imp"),
        &json!({"key": key, "cipher": "ChaCha20"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(&admin, "GET", &kes.url("/v1/key/describe/imp"), None).await;
    assert_eq!(r.json()["algorithm"], "ChaCha20");
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/import/imp2"),
        &json!({"key": key, "cipher": "DES"}),
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (406, "algorithm 'DES' is not supported".into())
    );
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/import/imp2"),
        &json!({"key": key}),
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (406, "algorithm '' is not supported".into())
    );
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/import/imp2"),
        &json!({"key": B64.encode([1u8; 16]), "cipher": "AES256"}),
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (406, "invalid key size for 'AES256'".into())
    );
    let r = send(
        &admin,
        "POST",
        &kes.url("/v1/key/import/imp2"),
        Some(b"{not json".to_vec()),
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (400, "invalid import key request body".into())
    );
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/import/imp"),
        &json!({"key": key, "cipher": "AES256"}),
    )
    .await;
    assert_eq!((r.status, r.message()), (400, "key already exists".into()));
}

#[tokio::test]
async fn bodies_methods_paths_and_limits() {
    let (_dir, kes) = start_default();
    let admin = client(Who::Admin);
    send(&admin, "POST", &kes.url("/v1/key/create/k1"), None).await;

    // Wrong method: 405 with the Accept header.
    let r = send(&admin, "GET", &kes.url("/v1/key/encrypt/k1"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (405, "received method 'GET' expected 'PUT'".into())
    );
    assert_eq!(r.headers["accept"], "PUT");
    let r = send(&admin, "POST", &kes.url("/v1/key/delete/k1"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (405, "received method 'POST' expected 'DELETE'".into())
    );
    let r = send(&admin, "HEAD", &kes.url("/v1/status"), None).await;
    assert_eq!(r.status, 405);

    // Bad bodies.
    for body in [
        &b"{"[..],
        b"{\"plaintext\":\"AAA\"}",
        b"{\"plaintext\":5}",
        b"[]",
    ] {
        let r = send(
            &admin,
            "POST",
            &kes.url("/v1/key/encrypt/k1"),
            Some(body.to_vec()),
        )
        .await;
        assert_eq!(
            (r.status, r.message()),
            (400, "invalid request body".into()),
            "{body:?}"
        );
    }
    // One JSON value is read, trailing bytes ignored (Go's json.Decoder).
    let r = send(
        &admin,
        "POST",
        &kes.url("/v1/key/encrypt/k1"),
        Some(b"{\"plaintext\":\"aGk=\"} trailing".to_vec()),
    )
    .await;
    assert_eq!(r.status, 200);

    // Body limit: 1,000,000 bytes.
    let big = format!("{{\"plaintext\":\"{}\"}}", "A".repeat(1_000_000));
    let r = send(
        &admin,
        "POST",
        &kes.url("/v1/key/encrypt/k1"),
        Some(big.into_bytes()),
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (400, "invalid request body".into())
    );
    let pt = B64.encode(vec![0u8; 700_000]);
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/encrypt/k1"),
        &json!({"plaintext": pt}),
    )
    .await;
    assert_eq!(r.status, 200);

    // Unknown paths: Go's plain-text 404.
    for path in [
        "/v1/nonexistent",
        "/v1/status/",
        "/",
        "/v1/key/frobnicate/x",
    ] {
        let r = send(&admin, "GET", &kes.url(path), None).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body, b"404 page not found\n");
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
    }

    // Names.
    let r = send(&admin, "POST", &kes.url("/v1/key/create/a*b"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (
            400,
            "key name 'a*b' is empty, too long or contains invalid characters".into()
        )
    );
    let r = send(&admin, "POST", &kes.url("/v1/key/create/a%2Fb"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (
            400,
            "key name 'a/b' is empty, too long or contains invalid characters".into()
        )
    );
    let r = send(&admin, "POST", &kes.url("/v1/key/create/"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (
            400,
            "key name '' is empty, too long or contains invalid characters".into()
        )
    );
    let r = send(
        &admin,
        "POST",
        &kes.url(&format!("/v1/key/create/{}", "x".repeat(81))),
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    let r = send(
        &admin,
        "POST",
        &kes.url(&format!("/v1/key/create/{}", "x".repeat(80))),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn listings_are_complete_and_prefix_patterns_work() {
    let (_dir, kes) = start_default();
    let admin = client(Who::Admin);
    let mut want = Vec::new();
    for i in 0..1100 {
        let name = format!("k-{i:04}");
        let r = send(
            &admin,
            "POST",
            &kes.url(&format!("/v1/key/create/{name}")),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
        want.push(name);
    }
    send(&admin, "POST", &kes.url("/v1/key/create/other"), None).await;
    // No 1,024 cut.
    let r = send(&admin, "GET", &kes.url("/v1/key/list/k-*"), None).await;
    assert_eq!(r.status, 200);
    let names: Vec<String> = serde_json::from_value(r.json()["names"].clone()).unwrap();
    assert_eq!(names, want);
    assert!(r.json().get("continue_at").is_none());
    // A bare prefix, the list path without slash, and `*`.
    let r = send(&admin, "GET", &kes.url("/v1/key/list/k-10"), None).await;
    assert_eq!(r.json()["names"].as_array().unwrap().len(), 100);
    let r = send(&admin, "GET", &kes.url("/v1/key/list"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["names"].as_array().unwrap().len(), 1101);
    let r = send(&admin, "GET", &kes.url("/v1/key/list/*"), None).await;
    assert_eq!(r.json()["names"].as_array().unwrap().len(), 1101);
    let r = send(&admin, "GET", &kes.url("/v1/key/list/nomatch*"), None).await;
    assert_eq!(r.json()["names"], json!([]));
    let r = send(&admin, "GET", &kes.url("/v1/key/list/a*b"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (
            400,
            "listing pattern 'a*b' is empty, too long or is invalid".into()
        )
    );
}

#[tokio::test]
async fn policies_identities_status_api_version() {
    let (_dir, kes) = start_default();
    let admin = client(Who::Admin);
    let app_id = crate::harness::app_identity();
    let admin_id = crate::harness::admin_identity();

    let r = send(&admin, "GET", &kes.url("/v1/policy/list/*"), None).await;
    assert_eq!(r.json(), json!({"names": ["app"], "continue_at": ""}));
    let r = send(&admin, "GET", &kes.url("/v1/policy/list"), None).await;
    assert_eq!(r.json()["names"], json!(["app"]));
    let r = send(&admin, "GET", &kes.url("/v1/policy/read/app"), None).await;
    let v = r.json();
    assert_eq!(v["name"], "app");
    assert_eq!(v["allow"]["/v1/key/create/app-*"], json!({}));
    assert_eq!(v["deny"], json!({"/v1/key/generate/app-denied*": {}}));
    assert_eq!(v["created_by"], admin_id);
    let r = send(&admin, "GET", &kes.url("/v1/policy/describe/app"), None).await;
    assert_eq!(r.json()["name"], "app");
    let r = send(&admin, "GET", &kes.url("/v1/policy/describe/nope"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (404, "policy does not exist".into())
    );

    let r = send(
        &admin,
        "GET",
        &kes.url(&format!("/v1/identity/describe/{app_id}")),
        None,
    )
    .await;
    assert_eq!(r.json()["policy"], "app");
    assert_eq!(r.json()["created_by"], admin_id);
    let r = send(
        &admin,
        "GET",
        &kes.url(&format!("/v1/identity/describe/{admin_id}")),
        None,
    )
    .await;
    assert_eq!(r.json()["admin"], true);
    let r = send(
        &admin,
        "GET",
        &kes.url(&format!("/v1/identity/describe/{}", "e".repeat(64))),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (404, "identity does not exist".into())
    );
    // What cannot be an identity is refused (the original answered 404, or for an upper-case
    // form of the admin's identity, admin: false with a policy lookup).
    for bad in [
        "unknown".to_owned(),
        admin_id.to_uppercase(),
        admin_id[..63].to_owned(),
    ] {
        let r = send(
            &admin,
            "GET",
            &kes.url(&format!("/v1/identity/describe/{bad}")),
            None,
        )
        .await;
        assert_eq!(
            (r.status, r.message()),
            (
                400,
                format!(
                    "identity '{bad}' is invalid: an identity is 64 lower-case hexadecimal characters"
                )
            )
        );
    }
    let r = send(&admin, "GET", &kes.url("/v1/identity/list/*"), None).await;
    let mut want = vec![app_id.clone(), admin_id.clone()];
    want.sort();
    assert_eq!(r.json(), json!({"identities": want, "continue_at": ""}));

    let r = send(&admin, "GET", &kes.url("/v1/identity/self/describe"), None).await;
    assert_eq!(r.json()["identity"], admin_id);
    assert_eq!(r.json()["admin"], true);
    // Fixed: a non-admin learns its own policy (the original answered 404).
    let r = send(
        &client(Who::App),
        "GET",
        &kes.url("/v1/identity/self/describe"),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["identity"], app_id);
    assert_eq!(r.json()["policy"], "app");
    assert_eq!(r.json()["allow"]["/v1/status"], json!({}));
    // An identity in no policy is not known.
    let r = send(
        &client(Who::Other),
        "GET",
        &kes.url("/v1/identity/self/describe"),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (404, "identity does not exist".into())
    );

    let r = send(&admin, "GET", &kes.url("/v1/status"), None).await;
    let v = r.json();
    assert_eq!(v["os"], std::env::consts::OS);
    assert!(v["keystore_latency"].as_u64().unwrap() >= 1);
    assert!(v.get("keystore_unreachable").is_none());
    assert!(v["num_cpu"].as_u64().unwrap() >= 1);
    let r = send(&admin, "GET", &kes.url("/v1/ready"), None).await;
    assert_eq!(r.status, 200);
    let r = send(&admin, "GET", &kes.url("/version"), None).await;
    assert!(r.json()["version"].is_string());
    let r = send(&admin, "GET", &kes.url("/v1/api"), None).await;
    let routes = r.json();
    let create = routes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/v1/key/create/")
        .unwrap();
    assert_eq!(
        create,
        &json!({"method": "PUT", "path": "/v1/key/create/", "max_body": 0, "timeout": 15})
    );
    // The original's 22 routes, the 6 runtime policy and identity routes, the 2 version routes.
    assert_eq!(routes.as_array().unwrap().len(), 30);
    for path in ["/v1/key/rotate/", "/v1/key/version/delete/"] {
        assert!(
            routes.as_array().unwrap().iter().any(|r| r["path"] == path),
            "{path} missing"
        );
    }
    let r = send(&admin, "GET", &kes.url("/v1/metrics"), None).await;
    assert_eq!(r.status, 200);
    assert!(
        String::from_utf8(r.body)
            .unwrap()
            .contains("kes_http_request_success{code=\"200\"}")
    );
}

#[tokio::test]
async fn policy_allow_deny_and_unknown_identities() {
    let (_dir, kes) = start_default();
    let app = client(Who::App);
    let admin = client(Who::Admin);
    let r = send(&app, "POST", &kes.url("/v1/key/create/app-1"), None).await;
    assert_eq!(r.status, 200);
    let r = send(
        &app,
        "POST",
        &kes.url("/v1/key/generate/app-1"),
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(r.status, 200);
    let forbidden = |r: &crate::harness::Reply| {
        assert_eq!(
            (r.status, r.message()),
            (403, "not authorized: insufficient permissions".into())
        );
    };
    send(&admin, "POST", &kes.url("/v1/key/create/app-denied"), None).await;
    forbidden(&send(&app, "POST", &kes.url("/v1/key/generate/app-denied"), None).await);
    forbidden(&send(&app, "POST", &kes.url("/v1/key/create/other"), None).await);
    forbidden(&send(&app, "DELETE", &kes.url("/v1/key/delete/app-1"), None).await);
    forbidden(&send(&app, "GET", &kes.url("/v1/key/list/*"), None).await);
    // Authorization comes before name validation.
    forbidden(&send(&app, "POST", &kes.url("/v1/key/create/bad*name"), None).await);
    let r = send(&app, "GET", &kes.url("/v1/status"), None).await;
    assert_eq!(r.status, 200);
    // An identity in no policy.
    let other = client(Who::Other);
    forbidden(&send(&other, "GET", &kes.url("/v1/status"), None).await);
    // /version needs no identity check.
    let r = send(&other, "GET", &kes.url("/version"), None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn status_and_ready_report_an_unreachable_keystore() {
    let (dir, kes) = start_default();
    let admin = client(Who::Admin);
    assert_eq!(status(&admin, "GET", &kes.url("/v1/ready")).await, 200);
    // The keystore directory disappears.
    std::fs::rename(dir.path().join("keys"), dir.path().join("gone")).unwrap();
    let r = send(&admin, "GET", &kes.url("/v1/status"), None).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    // Both flags: the Go SDK refuses "unreachable" without "unavailable".
    assert_eq!(v["keystore_unreachable"], true);
    assert_eq!(v["keystore_unavailable"], true);
    assert!(v.get("keystore_latency").is_none());
    let r = send(&admin, "GET", &kes.url("/v1/ready"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (504, "key store is not reachable".into())
    );
    // It comes back without a restart.
    std::fs::rename(dir.path().join("gone"), dir.path().join("keys")).unwrap();
    assert_eq!(status(&admin, "GET", &kes.url("/v1/ready")).await, 200);
}

#[tokio::test]
async fn http1_http2_tls12_and_tls13() {
    let (_dir, kes) = start_default();
    // reqwest negotiates HTTP/2 through ALPN.
    let res = crate::harness::alpn_client_builder(Who::Admin)
        .build()
        .unwrap()
        .get(kes.url("/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let res = crate::harness::client_builder(Who::Admin)
        .http1_only()
        .build()
        .unwrap()
        .get(kes.url("/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    assert_eq!(res.status(), 200);
    // TLS 1.2 and TLS 1.3 clients.
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let pki = crate::harness::pki();
        let config = crate::harness::tls_client_config_versions(
            Some((&pki.join("admin.crt"), &pki.join("admin.key"))),
            &pki.join("ca.crt"),
            &[version],
        );
        let r = crate::harness::raw(kes.addr, config, "GET", "/v1/status", None)
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{version:?}");
    }
}
