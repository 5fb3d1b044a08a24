//! The Azure Key Vault keystore against the in-repo fake (kes-fakes `azure`): the conformance
//! suite, the stored format, the version read (created first), soft-delete purges, paging,
//! the token flows (client secret, managed identity, workload identity, environment) and their
//! renewal, retries, outages, refused credentials, and the `keystore.azure.keyvault` section.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kes_config::{Backend, MapEnv, SecretString};
use kes_fakes::azure::{self, FakeImds, FakeKeyVault, Version};
use kes_keystore::retry::RetryPolicy;
use kes_keystore::testkit::ConformanceOptions;
use kes_keystore::{Error, KeyStore, StoreConfig};
use kes_keystore_azure::{AzureAuth, AzureConfig, AzureKeyStore, Options};
use kes_keystore_rest::Env;

fn secret_auth(secret: &str) -> AzureAuth {
    AzureAuth::ClientSecret {
        tenant_id: azure::TENANT_ID.to_owned(),
        client_id: azure::CLIENT_ID.to_owned(),
        client_secret: SecretString::new(secret.to_owned()),
    }
}

fn options(kv: &FakeKeyVault, env: Vec<(&str, String)>) -> Options {
    let mut vars = vec![("AZURE_AUTHORITY_HOST", kv.url())];
    vars.extend(env);
    Options {
        policy: RetryPolicy::new(
            3,
            Duration::from_millis(20),
            Duration::from_millis(50),
            Duration::from_secs(1),
        ),
        ca: Some(kes_fakes::ca_file()),
        env: Env::fixed(vars),
        settle: Duration::from_millis(25),
        purge_delay: Duration::from_millis(20),
    }
}

async fn fast_vault() -> FakeKeyVault {
    let kv = FakeKeyVault::start().await;
    kv.state().tick = Duration::from_millis(10);
    kv
}

async fn connect(kv: &FakeKeyVault) -> AzureKeyStore {
    let config = AzureConfig {
        endpoint: kv.url(),
        auth: secret_auth(azure::CLIENT_SECRET),
    };
    AzureKeyStore::connect_with(&config, options(kv, Vec::new()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let kv = fast_vault().await;
    let options = ConformanceOptions {
        // Key Vault secrets hold text, as the original stores the records.
        binary_values: false,
        many_keys: 120,
        // Key Vault names: letters, digits and '-' only.
        underscore_names: false,
        ..ConformanceOptions::default()
    };
    kes_keystore::testkit::run_conformance_with(connect(&kv).await, options).await;
    assert!(kv.state().list_requests >= 5, "the listing was paged");
}

#[tokio::test]
async fn values_are_stored_as_the_original_stores_them_and_the_first_version_is_read() {
    let kv = fast_vault().await;
    let store = connect(&kv).await;
    let record = "CiIKIBkV8wWJvPRb4mYkPpDAl6zV7hsD1ZtrzB8OprVrSSAjEAE=";
    store.create("my-key", record.as_bytes()).await.unwrap();
    assert_eq!(kv.state().secrets["my-key"][0].value, record);
    // Versions added by another client later: the one created first is read, whatever the
    // order of the version ids.
    {
        let mut state = kv.state();
        let created = state.secrets["my-key"][0].created;
        let v = state.secrets.get_mut("my-key").unwrap();
        v.push(Version {
            id: "0000".into(),
            value: "newer".into(),
            created: created + 5,
            enabled: true,
        });
        v.push(Version {
            id: "ffff".into(),
            value: "newest".into(),
            created: created + 9,
            enabled: true,
        });
    }
    assert_eq!(
        store.get("my-key").await.unwrap().as_slice(),
        record.as_bytes()
    );
    assert!(matches!(
        store.create("my-key", b"x").await,
        Err(Error::Exists)
    ));
    assert!(matches!(
        store.create("bin", &[0xff, 0xfe]).await,
        Err(Error::Other(_))
    ));
    // A disabled first version is an error, not another value.
    kv.state().secrets.get_mut("my-key").unwrap()[0].enabled = false;
    let err = store.get("my-key").await.unwrap_err().to_string();
    assert!(
        err.contains("azure: get 'my-key'")
            && err.contains("403 Forbidden: Forbidden (SecretDisabled)"),
        "{err}"
    );
    let log = kv.state().log.clone();
    for line in [
        "PUT /secrets/my-key",
        "GET /secrets/my-key/",
        "GET /secrets/my-key/versions",
    ] {
        assert!(log.iter().any(|l| l == line), "{line}: {log:?}");
    }
}

#[tokio::test]
async fn deleted_names_are_purged_and_can_be_created_again() {
    let kv = fast_vault().await;
    let store = connect(&kv).await;
    store.create("k", b"one").await.unwrap();
    // The deletion takes a while: the purge waits for it.
    kv.state().delete_delay = Duration::from_millis(100);
    store.delete("k").await.unwrap();
    assert_eq!(kv.state().purges, 1);
    assert!(matches!(store.delete("k").await, Err(Error::NotFound)));
    assert!(matches!(store.get("k").await, Err(Error::NotFound)));
    // A soft-deleted secret (deleted by someone else, not purged) blocks the name until purged.
    store.create("k", b"two").await.unwrap();
    kv.state().secrets.remove("k");
    kv.state().deleted.insert("k".into(), Instant::now());
    store.create("k", b"three").await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_slice(), b"three");
}

#[tokio::test]
async fn retries_throttling_and_lost_answers() {
    let kv = fast_vault().await;
    let store = connect(&kv).await;
    kv.state().throttle_next = 2;
    store.create("a", b"va").await.unwrap();
    kv.state().fail_next = 2;
    assert_eq!(store.get("a").await.unwrap().as_slice(), b"va");
    kv.state().fail_after_next = 1;
    store.delete("a").await.unwrap();
    assert!(matches!(store.get("a").await, Err(Error::NotFound)));
}

#[tokio::test]
async fn a_token_expiring_mid_run_is_renewed_without_a_failed_request() {
    let kv = fast_vault().await;
    kv.state().token_lifetime = Duration::from_secs(2);
    let store = connect(&kv).await;
    let logins = kv.state().logins;
    for i in 0..25 {
        store.create(&format!("k{i}"), b"v").await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(kv.state().logins >= logins + 2);
    assert_eq!(kv.state().expired_token_refusals, 0);
    kv.state().tokens.clear();
    store.get("k1").await.unwrap();
}

#[tokio::test]
async fn managed_workload_and_environment_credentials() {
    let kv = fast_vault().await;
    let imds = FakeImds::start(&kv).await;
    let config = |auth| AzureConfig {
        endpoint: kv.url(),
        auth,
    };
    let store = AzureKeyStore::connect_with(
        &config(AzureAuth::ManagedIdentity {
            client_id: Some("mi-1".into()),
        }),
        options(&kv, vec![("IMDS_ENDPOINT", imds.url())]),
    )
    .await
    .unwrap();
    store.create("mi", b"v").await.unwrap();
    let q = imds.requests.lock().unwrap()[0].clone();
    assert_eq!(
        q,
        "api-version=2018-02-01&resource=https://vault.azure.net&client_id=mi-1"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, azure::FEDERATED_TOKEN).unwrap();
    let workload = vec![
        ("AZURE_TENANT_ID", azure::TENANT_ID.to_owned()),
        ("AZURE_CLIENT_ID", azure::CLIENT_ID.to_owned()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
    ];
    let store = AzureKeyStore::connect_with(&config(AzureAuth::Default), options(&kv, workload))
        .await
        .unwrap();
    assert_eq!(store.list("").await.unwrap(), vec!["mi".to_owned()]);
    assert!(format!("{store:?}").contains("workload identity"));

    let environment = vec![
        ("AZURE_TENANT_ID", azure::TENANT_ID.to_owned()),
        ("AZURE_CLIENT_ID", azure::CLIENT_ID.to_owned()),
        ("AZURE_CLIENT_SECRET", azure::CLIENT_SECRET.to_owned()),
    ];
    let store = AzureKeyStore::connect_with(&config(AzureAuth::Default), options(&kv, environment))
        .await
        .unwrap();
    store.get("mi").await.unwrap();
    // Nothing in the environment: the managed identity.
    let store = AzureKeyStore::connect_with(
        &config(AzureAuth::Default),
        options(&kv, vec![("IMDS_ENDPOINT", imds.url())]),
    )
    .await
    .unwrap();
    store.get("mi").await.unwrap();
}

#[tokio::test]
async fn wrong_credentials_and_errors_are_clear_without_secrets() {
    let kv = fast_vault().await;
    let config = AzureConfig {
        endpoint: kv.url(),
        auth: secret_auth("wrong-secret-123"),
    };
    let err = AzureKeyStore::connect_with(&config, options(&kv, Vec::new()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("azure: connect: POST /{}/oauth2/v2.0/token at https://127.0.0.1:", azure::TENANT_ID))
            && err.ends_with(&format!(": 401 Unauthorized: invalid_client: AADSTS7000215: Invalid client secret provided. (client '{}' (credentials) was refused)", azure::CLIENT_ID)),
        "{err}"
    );
    assert!(!err.contains("wrong-secret-123"));
    let store = connect(&kv).await;
    let err = store
        .create("bad_name", b"v")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("azure: create 'bad_name': PUT /secrets/bad_name")
            && err.contains("400 Bad Request: BadParameter"),
        "{err}"
    );
    assert!(!err.contains("eyJ0eXAi"), "{err}");
}

#[tokio::test]
async fn an_outage_is_unreachable_until_it_is_back() {
    let mut kv = fast_vault().await;
    let store = connect(&kv).await;
    store.status().await.unwrap();
    kv.server.stop().await;
    assert!(matches!(store.status().await, Err(Error::Unreachable(_))));
    assert!(matches!(store.get("x").await, Err(Error::Unreachable(_))));
    kv.server.restart().await;
    store.status().await.unwrap();
    store.create("x", b"v").await.unwrap();
}

// --- the config section -------------------------------------------------------------------

const BACKENDS: &[Backend<Arc<dyn StoreConfig>>] = &[kes_keystore_azure::BACKEND];

fn parse(keystore: &str) -> Result<String, String> {
    let yaml = format!(
        "admin:\n  identity: disabled\ntls:\n  key: k.key\n  cert: k.crt\nkeystore:\n  azure:\n    keyvault:\n{keystore}"
    );
    kes_config::parse(&yaml, "kes.yml", &MapEnv::new(), BACKENDS)
        .map(|c| format!("{:?} / {}", c.keystore, c.keystore.describe()))
        .map_err(|e| e.to_string())
}

#[test]
fn sections() {
    assert_eq!(
        parse("      endpoint: https://v.vault.azure.net\n").unwrap(),
        "AzureConfig { endpoint: \"https://v.vault.azure.net\", auth: Default } / azure keystore 'https://v.vault.azure.net'"
    );
    let got = parse("      endpoint: https://v.vault.azure.net\n      credentials:\n        tenant_id: t\n        client_id: c\n        client_secret: s3cr3t\n").unwrap();
    assert!(
        got.contains("client_secret: SecretString([REDACTED])") && !got.contains("s3cr3t"),
        "{got}"
    );
    assert!(
        parse("      endpoint: e\n      managed_identity:\n        client_id: m\n")
            .unwrap()
            .contains("ManagedIdentity { client_id: Some(\"m\") }")
    );
    let err = parse("      credentials:\n        tenant_id: t\n").unwrap_err();
    assert!(
        err.contains("keystore.azure.keyvault.endpoint: no endpoint specified")
            && err.contains("credentials.client_id: no client ID specified")
            && err.contains("credentials.client_secret: no client secret specified"),
        "{err}"
    );
}
