//! The CipherTrust / KeySecure keystore against the in-repo fake CipherTrust Manager
//! (kes-fakes `gemalto`): the conformance suite, the stored format, skip/limit paging, JWT
//! renewal, outages and refused refresh tokens, and the `keystore.gemalto.keysecure` section.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::sync::Arc;
use std::time::Duration;

use kes_config::{Backend, MapEnv, SecretString};
use kes_fakes::gemalto::{DOMAIN, FakeCipherTrust, REFRESH_TOKEN};
use kes_keystore::retry::RetryPolicy;
use kes_keystore::testkit::ConformanceOptions;
use kes_keystore::{Error, KeyStore, StoreConfig};
use kes_keystore_gemalto::{GemaltoConfig, GemaltoKeyStore};

fn config(ct: &FakeCipherTrust, token: &str, domain: &str) -> GemaltoConfig {
    GemaltoConfig {
        endpoint: ct.url(),
        refresh_token: SecretString::new(token.to_owned()),
        domain: domain.to_owned(),
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

async fn connect(ct: &FakeCipherTrust) -> GemaltoKeyStore {
    GemaltoKeyStore::connect_with(&config(ct, REFRESH_TOKEN, DOMAIN), quick())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let ct = FakeCipherTrust::start().await;
    let options = ConformanceOptions {
        // Secrets hold text material, as the original's records are.
        binary_values: false,
        ..ConformanceOptions::default()
    };
    kes_keystore::testkit::run_conformance_with(connect(&ct).await, options).await;
    assert!(ct.state().list_requests >= 10);
}

#[tokio::test]
async fn values_are_stored_as_the_original_stores_them() {
    let ct = FakeCipherTrust::start().await;
    let store = connect(&ct).await;
    let record = b"CiIKIBkV8wWJvPRb4mYkPpDAl6zV7hsD1ZtrzB8OprVrSSAjEAE=";
    store.create("my-key", record).await.unwrap();
    let (data_type, material, _) = ct.state().secrets["my-key"].clone();
    assert_eq!(
        (data_type.as_str(), material.as_bytes()),
        ("seed", &record[..])
    );
    // A secret the original wrote is read unchanged.
    ct.state().secrets.insert(
        "from-go".into(),
        ("seed".into(), "written-by-go-kes".into(), 0),
    );
    assert_eq!(
        store.get("from-go").await.unwrap().as_slice(),
        b"written-by-go-kes"
    );
    store.delete("from-go").await.unwrap();
    assert!(matches!(
        store.delete("from-go").await,
        Err(Error::NotFound)
    ));
    assert!(matches!(store.get("from-go").await, Err(Error::NotFound)));
    let log = ct.state().log.clone();
    for line in [
        "POST /api/v1/vault/secrets",
        "POST /api/v1/vault/secrets/from-go/export?type=name",
        "DELETE /api/v1/vault/secrets/from-go?type=name",
    ] {
        assert!(log.contains(&line.to_owned()), "{line}: {log:?}");
    }
    let err = store
        .create("bin", &[0xff, 0xfe])
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "gemalto: create 'bin': the value is not text (secrets hold UTF-8 material)"
    );
}

#[tokio::test]
async fn listing_pages_with_skip_and_limit_and_ends() {
    let ct = FakeCipherTrust::start().await;
    let store = connect(&ct).await;
    let mut want = Vec::new();
    for i in 0..505 {
        let name = format!("key-{i:04}");
        store.create(&name, b"x").await.unwrap();
        want.push(name);
    }
    store.create("other", b"x").await.unwrap();
    ct.state().list_requests = 0;
    assert_eq!(store.list("key-").await.unwrap(), want);
    assert_eq!(ct.state().list_requests, 3, "506 secrets in pages of 200");
    assert_eq!(store.list("").await.unwrap().len(), 506);
    let log = ct.state().log.clone();
    assert!(log.contains(&"GET /api/v1/vault/secrets?limit=200&skip=400".to_owned()));
}

#[tokio::test]
async fn a_jwt_expiring_mid_run_is_renewed_without_a_failed_request() {
    let ct = FakeCipherTrust::start().await;
    ct.state().token_lifetime = Duration::from_secs(2);
    let store = connect(&ct).await;
    for i in 0..16 {
        store.create(&format!("k{i}"), b"v").await.unwrap();
        assert_eq!(store.get(&format!("k{i}")).await.unwrap().as_slice(), b"v");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let state = ct.state();
    assert!(state.logins >= 3, "renewed: {} tokens", state.logins);
    assert_eq!(state.expired_token_refusals, 0);
}

#[tokio::test]
async fn a_refused_jwt_is_replaced() {
    let ct = FakeCipherTrust::start().await;
    let store = connect(&ct).await;
    ct.state().tokens.clear();
    store.create("k", b"v").await.unwrap();
    assert_eq!(ct.state().logins, 2);
}

#[tokio::test]
async fn transient_failures_are_retried_and_an_outage_is_unreachable_until_it_is_back() {
    let mut ct = FakeCipherTrust::start().await;
    let store = connect(&ct).await;
    ct.state().fail_next = 2;
    store.create("k", b"v").await.unwrap();
    store.status().await.unwrap();
    ct.server.stop().await;
    match store.status().await {
        Err(Error::Unreachable(err)) => {
            let err = err.to_string();
            assert!(
                err.starts_with("gemalto: status: GET / at https://127.0.0.1:"),
                "{err}"
            );
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert!(matches!(store.get("k").await, Err(Error::Unreachable(_))));
    ct.server.restart().await;
    store.status().await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_slice(), b"v");
}

#[tokio::test]
async fn wrong_credentials_are_a_clear_error_without_the_token() {
    let ct = FakeCipherTrust::start().await;
    for (token, domain) in [("not-the-token", DOMAIN), (REFRESH_TOKEN, "other-domain")] {
        let err = GemaltoKeyStore::connect_with(&config(&ct, token, domain), quick())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("gemalto: connect: POST /api/v1/auth/tokens at https://127.0.0.1:"),
            "{err}"
        );
        assert!(
            err.ends_with(": 401 Unauthorized: NCERRInvalidCredentials: Invalid refresh token (code 6) (the refresh token (credentials.token) or its domain was refused)"),
            "{err}"
        );
        assert!(!err.contains(token));
    }
}

#[tokio::test]
async fn errors_name_the_key_and_the_vendor_text_never_the_jwt() {
    let ct = FakeCipherTrust::start().await;
    let store = connect(&ct).await;
    store.create("k", b"secret-record").await.unwrap();
    assert!(matches!(store.create("k", b"x").await, Err(Error::Exists)));
    let jwt = ct.state().tokens.keys().next().unwrap().clone();
    ct.state().fail_next = 100;
    let err = store.get("k").await.unwrap_err().to_string();
    assert!(
        !err.contains(&jwt) && !err.contains("secret-record"),
        "{err}"
    );
    assert!(
        err.starts_with(
            "keystore is unreachable: gemalto: get 'k': POST /api/v1/vault/secrets/k/export at "
        ),
        "{err}"
    );
    assert!(
        err.ends_with(": 503 Service Unavailable: service unavailable (code 1)"),
        "{err}"
    );
    let debug = format!("{store:?}");
    assert!(
        !debug.contains(REFRESH_TOKEN) && !debug.contains(&jwt),
        "{debug}"
    );
}

// --- the config section -------------------------------------------------------------------

const BACKENDS: &[Backend<Arc<dyn StoreConfig>>] = &[kes_keystore_gemalto::BACKEND];

fn parse(keystore: &str) -> Result<String, String> {
    let yaml = format!(
        "admin:\n  identity: disabled\ntls:\n  key: k.key\n  cert: k.crt\nkeystore:\n  gemalto:\n    keysecure:\n{keystore}"
    );
    let env = MapEnv::new().with("CT_TOKEN", "tok");
    kes_config::parse(&yaml, "kes.yml", &env, BACKENDS)
        .map(|c| format!("{:?} / {}", c.keystore, c.keystore.describe()))
        .map_err(|e| e.to_string())
}

#[test]
fn a_valid_section() {
    let got = parse(
        "      endpoint: https://ct.example\n      credentials:\n        token: ${CT_TOKEN}\n        domain: kes\n        retry: 15s\n      tls:\n        ca: /etc/ca.pem\n",
    )
    .unwrap();
    assert_eq!(
        got,
        "GemaltoConfig { endpoint: \"https://ct.example\", refresh_token: SecretString([REDACTED]), domain: \"kes\", ca: Some(\"/etc/ca.pem\") } / gemalto keystore 'https://ct.example' domain 'kes'"
    );
}

#[test]
fn invalid_sections_are_reported_where_they_are() {
    assert_eq!(
        parse("      tls: {ca: c}\n").unwrap_err(),
        "kes.yml:8:5: keystore.gemalto.keysecure.endpoint: no endpoint specified\n\
         kes.yml:8:5: keystore.gemalto.keysecure.credentials.token: no refresh token specified"
    );
    assert_eq!(
        parse("      endpoint: https://ct\n      credentials: {token: t, retry: 5}\n").unwrap_err(),
        "kes.yml:10:38: keystore.gemalto.keysecure.credentials.retry: expected a duration with a unit (e.g. '30s', '5m', '1h'), found the integer 5"
    );
    assert_eq!(
        parse("      endpoint: https://ct\n      credentials: {token: t, user: u}\n").unwrap_err(),
        "kes.yml:10:31: keystore.gemalto.keysecure.credentials: unknown key 'user'"
    );
}
