//! `kes server`: --dev, config errors, declarative keys, SIGHUP reload, SIGTERM shutdown.

use std::time::Duration;

use crate::harness::{Kes, Who, client, config, kes_bin, pki, send};

#[tokio::test]
async fn dev_mode_prints_a_working_admin_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start_dev(dir.path());
    let stderr = kes.stderr();
    let line = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("export KES_API_KEY="))
        .unwrap_or_else(|| panic!("no API key in banner: {stderr}"));
    let key = kes_crypto::ApiKey::parse(line).unwrap();
    assert!(stderr.contains(&key.identity()));
    let cert = key.client_certificate().unwrap();
    let mut pem = cert.cert_pem.clone().into_bytes();
    pem.extend_from_slice(cert.key_pem.as_bytes());
    let http = reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_danger_accept_invalid_certs(true)
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = send(&http, "POST", &kes.url("/v1/key/create/dev-key"), None).await;
    assert_eq!(r.status, 200);
    let r = send(
        &http,
        "POST",
        &kes.url("/v1/key/generate/dev-key"),
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(&http, "GET", &kes.url("/v1/identity/self/describe"), None).await;
    assert_eq!(r.json()["admin"], true);
    // Another API key is not the admin.
    let other = kes_crypto::ApiKey::generate()
        .unwrap()
        .client_certificate()
        .unwrap();
    let mut pem = other.cert_pem.clone().into_bytes();
    pem.extend_from_slice(other.key_pem.as_bytes());
    let http = reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_danger_accept_invalid_certs(true)
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = send(&http, "POST", &kes.url("/v1/key/create/x"), None).await;
    assert_eq!(r.status, 403);
}

#[test]
fn config_errors_are_reported_with_locations_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yml");
    std::fs::write(&path, "admin:\n  identity: x\ntls:\n  key: k\n  cert: c\n  auht: on\nkeystore:\n  fs:\n    path: ks\n").unwrap();
    let out = std::process::Command::new(kes_bin())
        .args(["server", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yml:6:3"), "{stderr}");
    assert!(stderr.contains("auht"), "{stderr}");

    let out = std::process::Command::new(kes_bin())
        .args(["server", "--dev", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = std::process::Command::new(kes_bin())
        .args(["server"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn declared_keys_are_created_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("keys");
    let kes = Kes::start(
        dir.path(),
        &config(&ks, "keys:\n- name: boot-key\n- name: other-key\n"),
    );
    let r = send(
        &client(Who::Admin),
        "GET",
        &kes.url("/v1/key/describe/boot-key"),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["created_by"], crate::harness::admin_identity());
    let before = std::fs::read(ks.join("boot-key")).unwrap();
    drop(kes);
    // Restart: existing keys are kept as they are.
    let _kes = Kes::start(dir.path(), &config(&ks, "keys:\n- name: boot-key\n"));
    assert_eq!(std::fs::read(ks.join("boot-key")).unwrap(), before);
}

#[tokio::test]
async fn sighup_reloads_policies_and_keeps_connections() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("keys");
    let kes = Kes::start(dir.path(), &config(&ks, ""));
    let other = client(Who::Other);
    let r = send(&other, "GET", &kes.url("/v1/status"), None).await;
    assert_eq!(r.status, 403);
    let other_id = crate::harness::identity_of(&pki().join("other.crt"));
    let extra =
        format!("  ops:\n    allow:\n    - /v1/status\n    identities:\n    - {other_id}\n");
    let cfg = config(&ks, "").replace("keystore:\n", &format!("{extra}keystore:\n"));
    std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
    kes.signal("HUP");
    let mut status = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The same client (and connection pool) keeps working across the reload.
        status = send(&other, "GET", &kes.url("/v1/status"), None)
            .await
            .status;
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200, "{}", kes.stderr());
    // A broken config is refused and the running one stays.
    std::fs::write(dir.path().join("config.yml"), "admin: [").unwrap();
    kes.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        send(&other, "GET", &kes.url("/v1/status"), None)
            .await
            .status,
        200
    );
    assert!(
        kes.stderr().contains("failed to reload"),
        "{}",
        kes.stderr()
    );
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), ""));
    kes.signal("TERM");
    let status = kes
        .wait_exit(Duration::from_secs(10))
        .expect("server did not exit");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn sighup_reloads_the_tls_certificate_and_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("keys");
    let cfg = config(&ks, "");
    let kes = Kes::start(dir.path(), &cfg);
    assert_eq!(
        send(&client(Who::Admin), "GET", &kes.url("/v1/key/list/*"), None)
            .await
            .status,
        200
    );

    // A new self-signed server certificate for 127.0.0.1, and the app as the new admin.
    let key = kes_crypto::ApiKey::generate().unwrap();
    let cert = kes_crypto::generate_identity_certificate(
        &key,
        Some("localhost"),
        &["127.0.0.1".parse().unwrap()],
        &["localhost".to_owned()],
        Duration::from_secs(3600),
    )
    .unwrap();
    std::fs::write(dir.path().join("new.crt"), &cert.cert_pem).unwrap();
    std::fs::write(dir.path().join("new.key"), cert.key_pem.as_bytes()).unwrap();
    let admin_id = crate::harness::admin_identity();
    let app_id = crate::harness::app_identity();
    let new_cfg = cfg
        .replace(
            &pki().join("server.crt").display().to_string(),
            &dir.path().join("new.crt").display().to_string(),
        )
        .replace(
            &pki().join("server.key").display().to_string(),
            &dir.path().join("new.key").display().to_string(),
        )
        .replace(&format!("    - {app_id}\n"), "")
        .replace(
            &format!("identity: {admin_id}"),
            &format!("identity: {app_id}"),
        );
    std::fs::write(dir.path().join("config.yml"), new_cfg).unwrap();
    kes.signal("HUP");
    for _ in 0..50 {
        if kes.stderr().contains("configuration reloaded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        kes.stderr().contains("configuration reloaded"),
        "{}",
        kes.stderr()
    );

    // New connections get the new certificate: a client trusting only the old CA fails...
    assert!(
        client(Who::Admin)
            .get(kes.url("/version"))
            .send()
            .await
            .is_err()
    );
    // ...and one trusting the new certificate works, with the new admin.
    let trusting = |who: &str| {
        let mut pem = std::fs::read(pki().join(format!("{who}.crt"))).unwrap();
        pem.extend(std::fs::read(pki().join(format!("{who}.key"))).unwrap());
        reqwest::Client::builder()
            .tls_backend_rustls()
            .tls_certs_only([reqwest::Certificate::from_pem(cert.cert_pem.as_bytes()).unwrap()])
            .identity(reqwest::Identity::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    };
    let r = send(&trusting("app"), "GET", &kes.url("/v1/key/list/*"), None).await;
    assert_eq!(r.status, 200);
    let r = send(&trusting("admin"), "GET", &kes.url("/v1/key/list/*"), None).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn memory_is_locked_and_core_dumps_are_off() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("keys");
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let started = Kes::try_start(dir.path(), &config(&ks, "mlock: required\n"), &[]);
    if !root {
        // Without the privilege, `required` refuses to start with a reason.
        let err = started
            .err()
            .expect("mlock: required started without privilege");
        assert!(err.contains("failed to lock memory"), "{err}");
        eprintln!("skipped the locked-memory checks: not root");
        return;
    }
    let kes = started.unwrap();
    assert!(
        kes.stderr().contains("MLock       enabled"),
        "{}",
        kes.stderr()
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", kes.pid())).unwrap();
    let locked_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(locked_kb > 0, "{status}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", kes.pid())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    drop(kes);
    // `mlock: off` runs without locking.
    let kes = Kes::start(dir.path(), &config(&ks, "mlock: off\n"));
    assert!(
        kes.stderr().contains("MLock       disabled"),
        "{}",
        kes.stderr()
    );
}
