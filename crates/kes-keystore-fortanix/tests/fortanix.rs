//! The Fortanix DSM keystore against the in-repo fake DSM (kes-fakes `fortanix`, written from
//! Fortanix's OpenAPI document): the conformance suite, the stored format, paging, session
//! renewal, outages and refused credentials, and the `keystore.fortanix.sdkms` config section.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kes_config::{Backend, MapEnv, SecretString};
use kes_fakes::fortanix::{API_KEY, FakeDsm, GROUP};
use kes_keystore::retry::RetryPolicy;
use kes_keystore::{Error, KeyStore, StoreConfig};
use kes_keystore_fortanix::{FortanixConfig, FortanixKeyStore};

fn config(dsm: &FakeDsm, key: &str, group: Option<&str>) -> FortanixConfig {
    FortanixConfig {
        endpoint: dsm.url(),
        group_id: group.map(str::to_owned),
        api_key: SecretString::new(key.to_owned()),
        ca: Some(kes_fakes::ca_file()),
    }
}

fn quick() -> RetryPolicy {
    RetryPolicy::new(
        3,
        Duration::from_millis(20),
        Duration::from_millis(50),
        Duration::from_secs(1),
    )
}

async fn connect(dsm: &FakeDsm) -> FortanixKeyStore {
    FortanixKeyStore::connect_with(&config(dsm, API_KEY, Some(GROUP)), quick())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let dsm = FakeDsm::start().await;
    kes_keystore::testkit::run_conformance(connect(&dsm).await).await;
    // 2,000 keys in pages of 100: the listing moved on page by page and ended.
    assert!(dsm.state().list_requests >= 20);
}

#[tokio::test]
async fn values_are_stored_as_the_original_stores_them() {
    let dsm = FakeDsm::start().await;
    let store = connect(&dsm).await;
    let record = br#"{"bytes":"AAEC","algorithm":"AES256-GCM_SHA256"}"#;
    store.create("my-key", record).await.unwrap();
    {
        let state = dsm.state();
        let o = &state.objects["my-key"];
        assert_eq!(o.obj_type, "OPAQUE");
        assert_eq!(o.value, B64.encode(record));
        assert_eq!(o.key_ops, ["EXPORT", "APPMANAGEABLE"]);
        assert_eq!(o.group_id, GROUP);
        assert!(o.enabled);
    }
    let log = dsm.state().log.clone();
    assert!(log.contains(&"PUT /crypto/v1/keys".to_owned()), "{log:?}");

    // An object the original wrote (same shape) is read unchanged.
    let original = kes_fakes::fortanix::Sobject {
        kid: "11111111-2222-4333-8444-555555555555".into(),
        group_id: GROUP.into(),
        value: B64.encode(b"written-by-go-kes"),
        enabled: true,
        key_ops: vec!["EXPORT".into(), "APPMANAGEABLE".into()],
        obj_type: "OPAQUE".into(),
    };
    dsm.state().objects.insert("from-go".into(), original);
    assert_eq!(
        store.get("from-go").await.unwrap().as_slice(),
        b"written-by-go-kes"
    );
    // Delete looks up the kid, then deletes by kid.
    store.delete("from-go").await.unwrap();
    assert!(
        dsm.state()
            .log
            .contains(&"DELETE /crypto/v1/keys/11111111-2222-4333-8444-555555555555".to_owned())
    );
    assert!(matches!(
        store.delete("from-go").await,
        Err(Error::NotFound)
    ));

    // A disabled object is an error, not a value.
    dsm.state().objects.get_mut("my-key").unwrap().enabled = false;
    let err = store.get("my-key").await.unwrap_err().to_string();
    assert_eq!(
        err,
        "fortanix: get 'my-key': the security object is disabled"
    );
}

#[tokio::test]
async fn without_group_id_no_group_is_sent() {
    let dsm = FakeDsm::start().await;
    let store = FortanixKeyStore::connect_with(&config(&dsm, API_KEY, None), quick())
        .await
        .unwrap();
    store.create("k", b"v").await.unwrap();
    assert_eq!(
        dsm.state().objects["k"].group_id,
        GROUP,
        "the default group"
    );
    // A group the app is not in is refused by DSM, and the error says so.
    let store = FortanixKeyStore::connect_with(
        &config(&dsm, API_KEY, Some("99999999-0000-4000-8000-000000000000")),
        quick(),
    )
    .await
    .unwrap();
    let err = store.create("k2", b"v").await.unwrap_err().to_string();
    assert!(
        err.starts_with("fortanix: create 'k2': PUT /crypto/v1/keys at https://127.0.0.1:")
            && err.ends_with(": 403 Forbidden: the app is not a member of this group"),
        "{err}"
    );
}

#[tokio::test]
async fn listing_pages_through_many_keys_and_ends() {
    let dsm = FakeDsm::start().await;
    let store = connect(&dsm).await;
    let mut want = Vec::new();
    for i in 0..345 {
        let name = format!("key-{i:04}");
        store.create(&name, b"x").await.unwrap();
        want.push(name);
    }
    for i in 0..7 {
        store.create(&format!("other-{i}"), b"x").await.unwrap();
    }
    dsm.state().list_requests = 0;
    let got = store.list("key-").await.unwrap();
    assert_eq!(got, want);
    let pages = dsm.state().list_requests;
    assert!((4..=5).contains(&pages), "{pages} pages for 345 keys");
    let all = store.list("").await.unwrap();
    assert_eq!(all.len(), 352);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    assert_eq!(store.list("nothing-").await.unwrap(), Vec::<String>::new());
    let log = dsm.state().log.clone();
    assert!(
        log.iter()
            .any(|l| l == "GET /crypto/v1/keys?sort=name:asc&limit=100&start=key-0099"),
        "the cursor moves on: {:?}",
        &log[log.len().saturating_sub(6)..]
    );
}

#[tokio::test]
async fn a_session_expiring_mid_run_is_renewed_without_a_failed_request() {
    let dsm = FakeDsm::start().await;
    dsm.state().token_lifetime = Duration::from_secs(2);
    let store = connect(&dsm).await;
    for i in 0..16 {
        store.create(&format!("k{i}"), b"v").await.unwrap();
        assert_eq!(store.get(&format!("k{i}")).await.unwrap().as_slice(), b"v");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let state = dsm.state();
    assert!(state.logins >= 3, "renewed: {} logins", state.logins);
    assert_eq!(
        state.expired_token_refusals, 0,
        "never sent an expired token"
    );
}

#[tokio::test]
async fn a_revoked_session_is_replaced() {
    let dsm = FakeDsm::start().await;
    let store = connect(&dsm).await;
    dsm.state().tokens.clear();
    store.create("k", b"v").await.unwrap();
    assert_eq!(dsm.state().logins, 2);
}

#[tokio::test]
async fn transient_failures_are_retried_and_an_outage_is_unreachable_until_dsm_is_back() {
    let mut dsm = FakeDsm::start().await;
    let store = connect(&dsm).await;
    dsm.state().fail_next = 2;
    store.create("k", b"v").await.unwrap();
    store.status().await.unwrap();

    dsm.server.stop().await;
    match store.status().await {
        Err(Error::Unreachable(err)) => {
            let err = err.to_string();
            assert!(
                err.starts_with("fortanix: status: GET /sys/v1/health at https://127.0.0.1:"),
                "{err}"
            );
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert!(matches!(store.get("k").await, Err(Error::Unreachable(_))));
    dsm.server.restart().await;
    store.status().await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_slice(), b"v");
}

#[tokio::test]
async fn wrong_credentials_are_a_clear_error_without_the_key() {
    let dsm = FakeDsm::start().await;
    let err = FortanixKeyStore::connect_with(&config(&dsm, "d3Jvbmc6a2V5", None), quick())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("fortanix: connect: POST /sys/v1/session/auth at https://127.0.0.1:"),
        "{err}"
    );
    assert!(
        err.ends_with(
            ": 401 Unauthorized: invalid API key (the API key (credentials.key) was refused)"
        ),
        "{err}"
    );
    assert!(!err.contains("d3Jvbmc6a2V5"));
    // Nothing listens: unreachable.
    let mut down = FakeDsm::start().await;
    let cfg = config(&down, API_KEY, None);
    down.server.stop().await;
    match FortanixKeyStore::connect_with(&cfg, quick()).await {
        Err(err) => assert!(err.is_unreachable(), "{err}"),
        Ok(_) => panic!("connected to nothing"),
    }
}

#[tokio::test]
async fn errors_never_show_the_session_token_or_the_value() {
    let dsm = FakeDsm::start().await;
    let store = connect(&dsm).await;
    store.create("k", b"secret-record").await.unwrap();
    let err = store.create("k", b"secret-record").await.unwrap_err();
    assert!(matches!(err, Error::Exists));
    let token = dsm.state().tokens.keys().next().unwrap().clone();
    dsm.state().fail_next = 100;
    let err = store.get("k").await.unwrap_err().to_string();
    assert!(
        !err.contains(&token) && !err.contains("secret-record"),
        "{err}"
    );
    assert!(
        err.contains("fortanix: get 'k': POST /crypto/v1/keys/export"),
        "{err}"
    );
    assert!(
        err.ends_with("503 Service Unavailable: service unavailable"),
        "{err}"
    );
    let debug = format!("{store:?}");
    assert!(
        !debug.contains(API_KEY) && !debug.contains(&token),
        "{debug}"
    );
}

#[tokio::test]
async fn close_ends_the_session() {
    let dsm = FakeDsm::start().await;
    let store = connect(&dsm).await;
    store.close().await.unwrap();
    assert!(dsm.state().tokens.is_empty());
    assert!(
        dsm.state()
            .log
            .contains(&"POST /sys/v1/session/terminate".to_owned())
    );
    let err = store.get("k").await.unwrap_err().to_string();
    assert_eq!(err, "fortanix: get 'k': the keystore is closed");
}

// --- the config section -------------------------------------------------------------------

const BACKENDS: &[Backend<Arc<dyn StoreConfig>>] = &[kes_keystore_fortanix::BACKEND];

fn parse(keystore: &str) -> Result<String, String> {
    let yaml = format!(
        "admin:\n  identity: disabled\ntls:\n  key: k.key\n  cert: k.crt\nkeystore:\n  fortanix:\n    sdkms:\n{keystore}"
    );
    let env = MapEnv::new().with("FORTANIX_API_KEY", "a2V5");
    kes_config::parse(&yaml, "kes.yml", &env, BACKENDS)
        .map(|c| format!("{:?} / {}", c.keystore, c.keystore.describe()))
        .map_err(|e| e.to_string())
}

#[test]
fn a_valid_section() {
    let got = parse(
        "      endpoint: https://sdkms.fortanix.com\n      group_id: ' 0a1b '\n      credentials:\n        key: ${FORTANIX_API_KEY}\n      tls:\n        ca: /etc/ca.pem\n",
    )
    .unwrap();
    assert_eq!(
        got,
        "FortanixConfig { endpoint: \"https://sdkms.fortanix.com\", group_id: Some(\"0a1b\"), api_key: SecretString([REDACTED]), ca: Some(\"/etc/ca.pem\") } / fortanix keystore 'https://sdkms.fortanix.com' group '0a1b'"
    );
    let got = parse("      endpoint: https://dsm\n      credentials: {key: k}\n").unwrap();
    assert!(got.ends_with("/ fortanix keystore 'https://dsm'"), "{got}");
}

#[test]
fn invalid_sections_are_reported_where_they_are() {
    assert_eq!(
        parse("      group_id: g\n").unwrap_err(),
        "kes.yml:8:5: keystore.fortanix.sdkms.endpoint: no endpoint specified\n\
         kes.yml:8:5: keystore.fortanix.sdkms.credentials.key: no API key specified"
    );
    assert_eq!(
        parse("      endpoint: https://dsm\n      credentials:\n        key: ''\n").unwrap_err(),
        "kes.yml:11:14: keystore.fortanix.sdkms.credentials.key: no API key specified"
    );
    assert_eq!(
        parse("      endpoint: https://dsm\n      credentials: {key: k, id: x}\n      tls: {ca: c, cert: x}\n").unwrap_err(),
        "kes.yml:10:29: keystore.fortanix.sdkms.credentials: unknown key 'id'\n\
         kes.yml:11:20: keystore.fortanix.sdkms.tls: unknown key 'cert'"
    );
    assert_eq!(
        parse("      endpoint: https://dsm\n      credentials: {key: '${NOPE}'}\n").unwrap_err(),
        "kes.yml:10:26: keystore.fortanix.sdkms.credentials.key: referenced environment variable 'NOPE' not found"
    );
}
