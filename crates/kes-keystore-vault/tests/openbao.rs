//! The Vault key store against a real OpenBao server (Vault's API-compatible fork).
//!
//! Each test starts its own `bao` on a free loopback port (see `support/bao.rs`); without
//! `bao` installed the tests print a reason and pass, unless `CI` is set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

#[path = "support/bao.rs"]
mod bao;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bao::{Admin as _, Bao};
use kes_config::SecretString;
use kes_keystore::testkit::{ConformanceOptions, run_conformance_with};
use kes_keystore::{Error, KeyStore};
use kes_keystore_vault::{ConnectOptions, RetryPolicy, VaultKeyStore};
use kes_keystore_vault::{VaultAppRole, VaultConfig, VaultKvVersion, VaultTls, VaultTransit};
use serde_json::json;

fn config(endpoints: Vec<String>, engine: &str, version: VaultKvVersion) -> VaultConfig {
    VaultConfig {
        endpoints,
        engine: engine.into(),
        version,
        namespace: None,
        prefix: String::new(),
        transit: None,
        approle: None,
        kubernetes: None,
        tls: VaultTls::default(),
        status_ping: Duration::from_secs(15),
    }
}

fn approle(id: &str, secret: &str) -> Option<VaultAppRole> {
    Some(VaultAppRole {
        engine: "approle".into(),
        namespace: None,
        id: id.into(),
        secret: SecretString::new(secret.into()),
    })
}

fn token(t: &str) -> ConnectOptions {
    ConnectOptions::new().token(SecretString::new(t.into()))
}

fn quick() -> RetryPolicy {
    RetryPolicy::new(
        2,
        Duration::from_millis(50),
        Duration::from_millis(100),
        Duration::from_secs(2),
    )
}

fn pki() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/pki")
}

/// The conformance suite for K/V v1 and v2, with and without transit, logged in with the
/// root token and with AppRole: eight stores side by side on one server, each under its own
/// prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_kv_v1_v2_transit_token_approle() {
    let Some(bao) = Bao::dev().await else { return };
    bao.mount_kv("kv1", 1).await;
    bao.mount_kv("kv2", 2).await;
    bao.mount_transit("transit", "kes").await;
    let (role_id, secret_id) = bao
        .approle(
            "kes",
            &[
                "kv1/*",
                "kv2/*",
                "transit/encrypt/kes",
                "transit/decrypt/kes",
            ],
            "1h",
            "24h",
        )
        .await;

    let started = Instant::now();
    let mut suites = tokio::task::JoinSet::new();
    for version in [VaultKvVersion::V1, VaultKvVersion::V2] {
        for transit in [false, true] {
            for use_approle in [false, true] {
                let engine = if version == VaultKvVersion::V1 {
                    "kv1"
                } else {
                    "kv2"
                };
                let mut cfg = config(vec![bao.url.clone()], engine, version);
                cfg.prefix = format!(
                    "suite/{}-{}",
                    if transit { "transit" } else { "plain" },
                    if use_approle { "approle" } else { "token" }
                );
                if transit {
                    cfg.transit = Some(VaultTransit {
                        engine: "transit".into(),
                        key: "kes".into(),
                    });
                }
                let options = if use_approle {
                    cfg.approle = approle(&role_id, &secret_id);
                    ConnectOptions::new()
                } else {
                    token(&bao.token)
                };
                let label = format!("{version:?} {}", cfg.prefix);
                let store = VaultKeyStore::connect_with(&cfg, options).await.unwrap();
                let opts = ConformanceOptions {
                    binary_values: false,
                    // More than the original's 1,024-entry list page on one store; fewer
                    // elsewhere to keep the run short on two cores.
                    many_keys: if version == VaultKvVersion::V2 && !transit && !use_approle {
                        1_100
                    } else {
                        150
                    },
                    ..ConformanceOptions::default()
                };
                suites.spawn(async move {
                    let t = Instant::now();
                    run_conformance_with(store, opts).await;
                    (label, t.elapsed())
                });
            }
        }
    }
    while let Some(done) = suites.join_next().await {
        let (label, took) = done.unwrap();
        eprintln!("conformance {label}: {took:.1?}");
    }
    eprintln!("all conformance suites: {:.1?}", started.elapsed());

    // Stored values really are transit ciphertexts where transit is on, plain records elsewhere.
    let store = {
        let mut cfg = config(vec![bao.url.clone()], "kv2", VaultKvVersion::V2);
        cfg.prefix = "check".into();
        cfg.transit = Some(VaultTransit {
            engine: "transit".into(),
            key: "kes".into(),
        });
        VaultKeyStore::connect_with(&cfg, token(&bao.token))
            .await
            .unwrap()
    };
    store
        .create("wrapped", b"{\"bytes\":\"abc\"}")
        .await
        .unwrap();
    let raw = bao
        .ok("GET", "/v1/kv2/data/check/wrapped?version=1", None)
        .await;
    let stored = raw["data"]["data"]["wrapped"].as_str().unwrap();
    assert!(stored.starts_with("vault:v1:"), "{stored}");
    assert_eq!(
        store.get("wrapped").await.unwrap().as_slice(),
        b"{\"bytes\":\"abc\"}"
    );

    // A store without transit refuses a wrapped value instead of returning ciphertext.
    let plain = {
        let mut cfg = config(vec![bao.url.clone()], "kv2", VaultKvVersion::V2);
        cfg.prefix = "check".into();
        VaultKeyStore::connect_with(&cfg, token(&bao.token))
            .await
            .unwrap()
    };
    let err = plain.get("wrapped").await.unwrap_err().to_string();
    assert!(err.contains("no transit key is configured"), "{err}");
    store.delete("wrapped").await.unwrap();

    // v2 delete removes every version: the metadata is gone.
    let (status, _) = bao.api("GET", "/v1/kv2/metadata/check/wrapped", None).await;
    assert_eq!(status, 404);
}

/// K/V and transit in a namespace; AppRole in the same namespace, in another one, and in the
/// root namespace (`/`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces() {
    let Some(bao) = Bao::dev().await else { return };
    bao.ok("POST", "/v1/sys/namespaces/tenant", Some(json!({})))
        .await;
    bao.ok("POST", "/v1/sys/namespaces/logins", Some(json!({})))
        .await;
    let ns = |ns: &str, method: &str, path: &str, body: serde_json::Value| {
        let url = format!("{}{path}", bao.url);
        let (token, ns, method) = (bao.token.clone(), ns.to_owned(), method.to_owned());
        async move {
            let res = reqwest::Client::new()
                .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
                .header("X-Vault-Token", token)
                .header("X-Vault-Namespace", ns)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            assert!(status < 300, "{method}: {status} {body}");
            body
        }
    };
    ns(
        "tenant",
        "POST",
        "/v1/sys/mounts/kv",
        json!({"type": "kv", "options": {"version": "2"}}),
    )
    .await;
    ns(
        "tenant",
        "POST",
        "/v1/sys/mounts/transit",
        json!({"type": "transit"}),
    )
    .await;
    ns("tenant", "POST", "/v1/transit/keys/kes", json!({})).await;
    // AppRole roles in three places, each with a policy on the tenant's K/V and transit key.
    // Policies do not cross namespaces: the policy written in `logins` names paths of
    // `logins`, so a token from there gets a clean 403 in `tenant`.
    let mut roles = Vec::new();
    for (place, prefix) in [("tenant", ""), ("logins", ""), ("", "tenant/")] {
        let policy = format!(
            "path \"{prefix}kv/*\" {{ capabilities = [\"create\",\"read\",\"update\",\"delete\",\"list\"] }}\npath \"{prefix}transit/*\" {{ capabilities = [\"update\"] }}\n"
        );
        ns(
            place,
            "POST",
            "/v1/sys/auth/approle",
            json!({"type": "approle"}),
        )
        .await;
        ns(
            place,
            "PUT",
            "/v1/sys/policies/acl/kes",
            json!({"policy": policy}),
        )
        .await;
        ns(
            place,
            "POST",
            "/v1/auth/approle/role/kes",
            json!({"token_policies": ["kes"]}),
        )
        .await;
        let id = ns(
            place,
            "GET",
            "/v1/auth/approle/role/kes/role-id",
            json!(null),
        )
        .await;
        let secret = ns(
            place,
            "POST",
            "/v1/auth/approle/role/kes/secret-id",
            json!({}),
        )
        .await;
        roles.push((
            place,
            id["data"]["role_id"].as_str().unwrap().to_owned(),
            secret["data"]["secret_id"].as_str().unwrap().to_owned(),
        ));
    }

    for (place, id, secret) in &roles {
        let mut cfg = config(vec![bao.url.clone()], "kv", VaultKvVersion::V2);
        cfg.namespace = Some("tenant".into());
        cfg.prefix = format!("login-{}", if place.is_empty() { "root" } else { place });
        cfg.transit = Some(VaultTransit {
            engine: "transit".into(),
            key: "kes".into(),
        });
        cfg.approle = approle(id, secret);
        cfg.approle.as_mut().unwrap().namespace = match *place {
            "tenant" => None, // unset: the store's namespace
            "" => Some("/".into()),
            other => Some(other.into()),
        };
        let store = VaultKeyStore::connect_with(&cfg, ConnectOptions::new().retry(quick()))
            .await
            .unwrap_or_else(|e| panic!("login in '{place}': {e}"));
        let result = store.create("k1", b"record").await;
        if *place == "logins" {
            // Logged in fine (the login used namespace `logins`), but that token has no
            // rights in `tenant`.
            let err = result.unwrap_err().to_string();
            assert!(err.contains("403"), "{err}");
            continue;
        }
        result.unwrap_or_else(|e| panic!("create with a login in '{place}': {e}"));
        assert_eq!(store.get("k1").await.unwrap().as_slice(), b"record");
        assert_eq!(store.list("").await.unwrap(), ["k1"]);
        store.delete("k1").await.unwrap();
    }
    // The secrets really are in the tenant namespace, not in the root one.
    let mut cfg = config(vec![bao.url.clone()], "kv", VaultKvVersion::V2);
    cfg.namespace = Some("tenant".into());
    let store = VaultKeyStore::connect_with(&cfg, token(&bao.token))
        .await
        .unwrap();
    store.create("where", b"x").await.unwrap();
    let listed = ns("tenant", "GET", "/v1/kv/metadata?list=true", json!(null)).await;
    assert!(
        listed["data"]["keys"]
            .as_array()
            .unwrap()
            .contains(&json!("where")),
        "{listed}"
    );
    let (status, _) = bao.api("GET", "/v1/kv/metadata/where", None).await;
    assert_ne!(status, 200, "the key leaked into the root namespace");
}

/// Errors name the Vault path and the status, never the token or the value.
#[tokio::test]
async fn errors_name_path_and_status_but_never_the_token() {
    let Some(bao) = Bao::dev().await else { return };
    bao.mount_kv("kv2", 2).await;
    // A token that may list but not read or write.
    bao.ok(
        "PUT",
        "/v1/sys/policies/acl/lister",
        Some(json!({"policy": "path \"kv2/metadata\" { capabilities = [\"list\"] }"})),
    )
    .await;
    let created = bao
        .ok(
            "POST",
            "/v1/auth/token/create",
            Some(json!({"policies": ["lister"], "ttl": "1h"})),
        )
        .await;
    let weak = created["auth"]["client_token"].as_str().unwrap().to_owned();
    let cfg = config(vec![bao.url.clone()], "kv2", VaultKvVersion::V2);
    let store = VaultKeyStore::connect_with(&cfg, token(&weak))
        .await
        .unwrap();

    assert_eq!(store.list("").await.unwrap(), Vec::<String>::new());
    let err = store.get("my-key").await.unwrap_err();
    assert!(matches!(err, Error::Other(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("GET /v1/kv2/data/my-key"), "{text}");
    assert!(text.contains(&bao.url), "{text}");
    assert!(text.contains("403 Forbidden: permission denied"), "{text}");
    assert!(!text.contains(&weak), "{text}");

    let err = store
        .create("my-key", b"secret-record-value")
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("PUT /v1/kv2/data/my-key"), "{text}");
    assert!(
        !text.contains(&weak) && !text.contains("secret-record-value"),
        "{text}"
    );

    // A token Vault does not know fails at connect, naming the lookup and the status.
    let bogus = "s.NotARealTokenButSecret";
    let err = VaultKeyStore::connect_with(&cfg, token(bogus).retry(quick()))
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("GET /v1/auth/token/lookup-self"), "{text}");
    assert!(text.contains("403"), "{text}");
    assert!(!text.contains(bogus), "{text}");

    // So does a wrong AppRole secret, without printing it.
    let (role_id, _) = bao.approle("kes", &["kv2/*"], "1h", "1h").await;
    let mut cfg = cfg.clone();
    cfg.approle = approle(&role_id, "wrong-secret-id-1234");
    let err = VaultKeyStore::connect_with(&cfg, ConnectOptions::new().retry(quick()))
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("POST /v1/auth/approle/login"), "{text}");
    assert!(text.contains("400") || text.contains("403"), "{text}");
    assert!(!text.contains("wrong-secret-id-1234"), "{text}");
}

/// Several endpoints: a dead one is skipped; with all of them dead the store reports itself
/// unreachable, and recovers without being reconnected.
#[tokio::test]
async fn failover_and_unreachable() {
    let Some(bao) = Bao::dev().await else { return };
    bao.mount_kv("kv", 2).await;
    let dead = format!("http://127.0.0.1:{}", bao::free_port());
    let cfg = config(
        vec![dead.clone(), bao.url.clone()],
        "kv",
        VaultKvVersion::V2,
    );
    let store = VaultKeyStore::connect_with(&cfg, token(&bao.token).retry(quick()))
        .await
        .unwrap();
    store.status().await.unwrap();
    store.create("k", b"v").await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_slice(), b"v");

    let cfg = config(vec![dead.clone()], "kv", VaultKvVersion::V2);
    let err = VaultKeyStore::connect_with(&cfg, token(&bao.token).retry(quick()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
    assert!(err.to_string().contains(&dead), "{err}");
}

/// A sealed Vault: status says unreachable, key operations fail fast as "sealed", and all
/// works again once it is unsealed; a stopped and restarted Vault is recovered from too.
#[tokio::test]
async fn sealed_stopped_and_back() {
    let Some(mut bao) = Bao::persistent().await else {
        return;
    };
    bao.mount_kv("kv", 2).await;
    let mut cfg = config(vec![bao.url.clone()], "kv", VaultKvVersion::V2);
    cfg.status_ping = Duration::from_millis(200);
    let store = VaultKeyStore::connect_with(&cfg, token(&bao.token).retry(quick()))
        .await
        .unwrap();
    store.create("k", b"v").await.unwrap();

    bao.ok("PUT", "/v1/sys/seal", None).await;
    let err = store.status().await.unwrap_err();
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "keystore is unreachable: vault: key store is sealed"
    );
    let started = Instant::now();
    let err = store.get("k").await.unwrap_err();
    assert!(err.to_string().contains("key store is sealed"), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "sealed: no retries"
    );

    bao.unseal().await;
    wait_until(Duration::from_secs(10), || async {
        store.status().await.is_ok()
    })
    .await;
    assert_eq!(store.get("k").await.unwrap().as_slice(), b"v");

    bao.stop();
    let err = store.status().await.unwrap_err();
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
    let err = store.get("k").await.unwrap_err();
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
    bao.restart();
    bao.unseal().await;
    wait_until(Duration::from_secs(10), || async {
        store.get("k").await.is_ok()
    })
    .await;
    store.status().await.unwrap();
}

/// AppRole tokens that live two seconds (at most five): the store renews them, logs in again
/// when the max TTL is near, and keeps working across several lifetimes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_approle_tokens() {
    let Some(bao) = Bao::dev().await else { return };
    bao.mount_kv("kv", 2).await;
    let (role_id, secret_id) = bao.approle("kes", &["kv/*"], "2s", "5s").await;
    let mut cfg = config(vec![bao.url.clone()], "kv", VaultKvVersion::V2);
    cfg.approle = approle(&role_id, &secret_id);
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&events);
    let options = ConnectOptions::new().log(move |line| sink.lock().unwrap().push(line.to_owned()));
    let store = VaultKeyStore::connect_with(&cfg, options).await.unwrap();

    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(12) {
        let name = format!("k{n}");
        store
            .create(&name, b"v")
            .await
            .unwrap_or_else(|e| panic!("after {:.1?}: {e}", started.elapsed()));
        store.get(&name).await.unwrap();
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(n > 50, "only {n} rounds");
    // No token lives longer than 5 s, so working for 12 s took at least two new logins.
    let events = events.lock().unwrap();
    assert!(events.is_empty(), "renewal trouble: {events:?}");
}

/// A token that Vault revoked behind the store's back: the next refused call makes the store
/// check its token and log in again, without waiting for the renewal schedule.
#[tokio::test]
async fn a_revoked_token_is_replaced() {
    let Some(bao) = Bao::dev().await else { return };
    bao.mount_kv("kv", 2).await;
    let (role_id, secret_id) = bao.approle("kes", &["kv/*"], "1h", "24h").await;
    let mut cfg = config(vec![bao.url.clone()], "kv", VaultKvVersion::V2);
    cfg.approle = approle(&role_id, &secret_id);
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&events);
    let options = ConnectOptions::new().log(move |line| sink.lock().unwrap().push(line.to_owned()));
    let store = VaultKeyStore::connect_with(&cfg, options).await.unwrap();
    store.create("before", b"v").await.unwrap();

    // Revoke every token AppRole handed out.
    bao.ok(
        "PUT",
        "/v1/sys/leases/revoke-prefix/auth/approle/login",
        None,
    )
    .await;
    let err = store.get("before").await.unwrap_err().to_string();
    assert!(err.contains("403"), "{err}");
    wait_until(Duration::from_secs(10), || async {
        store.get("before").await.is_ok()
    })
    .await;
    let events = events.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.contains("no longer accepts the token")),
        "{events:?}"
    );
}

/// mTLS to Vault with the `tls` section: CA, client certificate and key.
#[tokio::test]
async fn mutual_tls() {
    let pki = pki();
    if !pki.join("ca.crt").is_file() {
        panic!("test PKI missing at {}", pki.display());
    }
    let tls = bao::Tls {
        ca: pki.join("ca.crt"),
        cert: pki.join("server.crt"),
        key: pki.join("server.key"),
        client_cert: pki.join("app.crt"),
        client_key: pki.join("app.key"),
    };
    let Some(bao) = Bao::persistent_with(Some(&tls)).await else {
        return;
    };
    bao.mount_kv("kv", 1).await;
    let mut cfg = config(vec![bao.url.clone()], "kv", VaultKvVersion::V1);
    cfg.tls = VaultTls {
        key: Some(pki.join("app.key")),
        cert: Some(pki.join("app.crt")),
        ca: Some(pki.join("ca.crt")),
    };
    let store = VaultKeyStore::connect_with(&cfg, token(&bao.token))
        .await
        .unwrap();
    store.create("over-tls", b"v").await.unwrap();
    assert_eq!(store.get("over-tls").await.unwrap().as_slice(), b"v");
    store.status().await.unwrap();

    // Without a client certificate the server refuses the handshake.
    cfg.tls.key = None;
    cfg.tls.cert = None;
    let err = VaultKeyStore::connect_with(&cfg, token(&bao.token).retry(quick()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
    // Without the CA the server certificate is not trusted.
    cfg.tls = VaultTls {
        key: Some(pki.join("app.key")),
        cert: Some(pki.join("app.crt")),
        ca: None,
    };
    let err = VaultKeyStore::connect_with(&cfg, token(&bao.token).retry(quick()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
}

/// A create whose answer was lost (the connection died after Vault carried it out) is retried;
/// the retry finds the secret, recognises its own value and reports success, not "exists".
#[tokio::test]
async fn a_create_whose_answer_was_lost_succeeds() {
    let Some(bao) = Bao::dev().await else { return };
    bao.mount_kv("kv", 2).await;
    let upstream = bao.url.trim_start_matches("http://").to_owned();
    let (proxy, dropped) = lossy_proxy(upstream, b"PUT /v1/kv/data/lost-answer ").await;
    let cfg = config(vec![proxy], "kv", VaultKvVersion::V2);
    let store = VaultKeyStore::connect_with(&cfg, token(&bao.token).retry(quick()))
        .await
        .unwrap();

    store.create("lost-answer", b"my-record").await.unwrap();
    assert_eq!(
        dropped.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no answer was dropped"
    );
    assert_eq!(
        store.get("lost-answer").await.unwrap().as_slice(),
        b"my-record"
    );
    // Another create of the name is refused as usual.
    assert!(matches!(
        store.create("lost-answer", b"other").await,
        Err(Error::Exists)
    ));
    let meta = bao.ok("GET", "/v1/kv/metadata/lost-answer", None).await;
    assert_eq!(meta["data"]["current_version"], 1, "{meta}");
}

/// A TCP proxy to `upstream` that, the first time a client sends `marker`, forwards the
/// request but closes the client connection instead of relaying the answer.
async fn lossy_proxy(
    upstream: String,
    marker: &'static [u8],
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dropped = Arc::new(AtomicUsize::new(0));
    let armed = Arc::new(AtomicBool::new(true));
    let counter = Arc::clone(&dropped);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (mut client_rx, mut client_tx) = client.into_split();
            let (mut server_rx, mut server_tx) = server.into_split();
            let drop_next = Arc::new(AtomicBool::new(false));
            let (armed, drop_flag) = (Arc::clone(&armed), Arc::clone(&drop_next));
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = client_rx.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let chunk = &buf[..n];
                    if chunk.windows(marker.len()).any(|w| w == marker)
                        && armed.swap(false, Ordering::SeqCst)
                    {
                        drop_flag.store(true, Ordering::SeqCst);
                    }
                    if server_tx.write_all(chunk).await.is_err() {
                        break;
                    }
                }
            });
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = server_rx.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if drop_next.load(Ordering::SeqCst) {
                        // The write reached Vault; its answer never reaches the client.
                        counter.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    if client_tx.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = client_tx.shutdown().await;
            });
        }
    });
    (url, dropped)
}

async fn wait_until<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
