//! The GCP Secret Manager keystore against the in-repo fake (kes-fakes `gcp`): the conformance
//! suite, the stored format, the completion of half-created secrets, paging, the token flows
//! (service-account JWT, key file, gcloud user, metadata server) and their renewal, retries,
//! outages, refused credentials, and the `keystore.gcp.secretmanager` section.

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
use kes_fakes::gcp::{self, FakeMetadata, FakeSecretManager, Secret};
use kes_keystore::retry::RetryPolicy;
use kes_keystore::testkit::ConformanceOptions;
use kes_keystore::{Error, KeyStore, StoreConfig};
use kes_keystore_gcp::{GcpConfig, GcpKeyStore, Options, ServiceAccount};
use kes_keystore_rest::Env;

fn account(sm: &FakeSecretManager) -> ServiceAccount {
    ServiceAccount {
        client_email: gcp::CLIENT_EMAIL.to_owned(),
        client_id: gcp::CLIENT_ID.to_owned(),
        private_key_id: gcp::KEY_ID.to_owned(),
        private_key: SecretString::new(gcp::private_key_pem()),
        token_uri: sm.token_uri(),
    }
}

fn config(sm: &FakeSecretManager, credentials: Option<ServiceAccount>) -> GcpConfig {
    GcpConfig {
        project_id: gcp::PROJECT.to_owned(),
        endpoint: sm.url(),
        scopes: Vec::new(),
        credentials,
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

fn options(env: Env) -> Options {
    Options {
        policy: quick(),
        ca: Some(kes_fakes::ca_file()),
        env,
    }
}

async fn connect(sm: &FakeSecretManager) -> GcpKeyStore {
    GcpKeyStore::connect_with(
        &config(sm, Some(account(sm))),
        options(Env::fixed::<&str, &str>([])),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let sm = FakeSecretManager::start().await;
    sm.state().page_limit = 300;
    let options = ConformanceOptions {
        binary_values: true,
        ..ConformanceOptions::default()
    };
    kes_keystore::testkit::run_conformance_with(connect(&sm).await, options).await;
    assert!(sm.state().list_requests >= 8, "the listing was paged");
}

#[tokio::test]
async fn values_are_stored_as_the_original_stores_them() {
    let sm = FakeSecretManager::start().await;
    let store = connect(&sm).await;
    let record = b"CiIKIBkV8wWJvPRb4mYkPpDAl6zV7hsD1ZtrzB8OprVrSSAjEAE=";
    store.create("my-key", record).await.unwrap();
    // One secret, its version 1 holds the record (the original's AddSecretVersion data).
    assert_eq!(sm.state().secrets["my-key"].versions, vec![record.to_vec()]);
    // A secret the original wrote is read unchanged.
    sm.state().secrets.insert(
        "from-go".into(),
        Secret {
            versions: vec![b"written-by-go-kes".to_vec()],
            created: 0,
        },
    );
    assert_eq!(
        store.get("from-go").await.unwrap().as_slice(),
        b"written-by-go-kes"
    );
    assert_eq!(
        store.list("").await.unwrap(),
        vec!["from-go".to_owned(), "my-key".to_owned()]
    );
    store.delete("from-go").await.unwrap();
    assert!(matches!(
        store.delete("from-go").await,
        Err(Error::NotFound)
    ));
    assert!(matches!(store.get("from-go").await, Err(Error::NotFound)));
    let log = sm.state().log.clone();
    let p = format!("/v1/projects/{}/secrets", gcp::PROJECT);
    for line in [
        "POST /token".to_owned(),
        format!("POST {p}"),
        format!("POST {p}/my-key:addVersion"),
        format!("GET {p}/from-go/versions/1:access"),
        format!("DELETE {p}/from-go"),
        format!("GET {p}"),
    ] {
        assert!(log.contains(&line), "{line}: {log:?}");
    }
    // The assertion is what golang.org/x/oauth2/jwt sends.
    let claims = sm.state().assertions[0].clone();
    assert_eq!(claims["iss"], gcp::CLIENT_EMAIL);
    assert_eq!(claims["aud"], sm.token_uri());
    assert_eq!(claims["scope"], gcp::SCOPE);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );
}

#[tokio::test]
async fn a_secret_without_a_version_is_completed_by_create() {
    let sm = FakeSecretManager::start().await;
    let store = connect(&sm).await;
    // What the original leaves after a crash between CreateSecret and AddSecretVersion.
    sm.state().secrets.insert("half".into(), Secret::default());
    assert!(matches!(store.get("half").await, Err(Error::NotFound)));
    store.create("half", b"value").await.unwrap();
    assert_eq!(store.get("half").await.unwrap().as_slice(), b"value");
    assert!(matches!(
        store.create("half", b"other").await,
        Err(Error::Exists)
    ));
    assert_eq!(sm.state().secrets["half"].versions.len(), 1);
    // Another value already version 1 (a racing create won): this create lost.
    sm.state().secrets.insert(
        "raced".into(),
        Secret {
            versions: vec![b"winner".to_vec()],
            created: 0,
        },
    );
    assert!(matches!(
        store.create("raced", b"loser").await,
        Err(Error::Exists)
    ));
    assert_eq!(store.get("raced").await.unwrap().as_slice(), b"winner");
}

#[tokio::test]
async fn retried_calls_that_were_carried_out_are_not_reported_wrongly() {
    let sm = FakeSecretManager::start().await;
    let store = connect(&sm).await;
    // CreateSecret carried out, its answer lost: the retry gets ALREADY_EXISTS.
    sm.state().fail_after_next = 1;
    store.create("a", b"value-a").await.unwrap();
    assert_eq!(store.get("a").await.unwrap().as_slice(), b"value-a");
    // Throttling and unavailability are retried.
    sm.state().throttle_next = 2;
    store.create("b", b"value-b").await.unwrap();
    sm.state().fail_next = 2;
    assert_eq!(store.get("b").await.unwrap().as_slice(), b"value-b");
    // A delete carried out whose answer was lost.
    sm.state().fail_after_next = 1;
    store.delete("b").await.unwrap();
    assert!(matches!(store.get("b").await, Err(Error::NotFound)));
}

#[tokio::test]
async fn a_token_expiring_mid_run_is_renewed_without_a_failed_request() {
    let sm = FakeSecretManager::start().await;
    sm.state().token_lifetime = Duration::from_secs(2);
    let store = connect(&sm).await;
    let logins = sm.state().logins;
    for i in 0..30 {
        store.create(&format!("k{i}"), b"v").await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(sm.state().logins >= logins + 2, "renewed");
    assert_eq!(sm.state().expired_token_refusals, 0);
    // A token the service forgot (refused) is replaced once.
    sm.state().tokens.clear();
    store.get("k1").await.unwrap();
}

#[tokio::test]
async fn application_default_credentials_key_file_user_and_metadata_server() {
    let sm = FakeSecretManager::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sa.json");
    std::fs::write(&file, gcp::key_file(&sm.token_uri())).unwrap();
    let env = Env::fixed([("GOOGLE_APPLICATION_CREDENTIALS", file.display().to_string())]);
    let store = GcpKeyStore::connect_with(&config(&sm, None), options(env))
        .await
        .unwrap();
    store.create("from-file", b"v").await.unwrap();
    assert!(format!("{store:?}").contains("GOOGLE_APPLICATION_CREDENTIALS"));

    // gcloud's well-known file with a user's refresh token.
    let gcloud = dir.path().join("gcloud");
    std::fs::create_dir(&gcloud).unwrap();
    std::fs::write(
        gcloud.join("application_default_credentials.json"),
        serde_json::json!({
            "type": "authorized_user",
            "client_id": gcp::USER_CLIENT_ID,
            "client_secret": gcp::USER_CLIENT_SECRET,
            "refresh_token": gcp::USER_REFRESH_TOKEN,
            "token_uri": sm.token_uri(),
        })
        .to_string(),
    )
    .unwrap();
    let env = Env::fixed([("CLOUDSDK_CONFIG", gcloud.display().to_string())]);
    let store = GcpKeyStore::connect_with(&config(&sm, None), options(env))
        .await
        .unwrap();
    assert_eq!(
        store.list("from").await.unwrap(),
        vec!["from-file".to_owned()]
    );

    // No file: the metadata server.
    let md = FakeMetadata::start(&sm).await;
    let env = Env::fixed([
        ("GCE_METADATA_HOST", md.host()),
        ("HOME", "/nonexistent".into()),
    ]);
    let store = GcpKeyStore::connect_with(&config(&sm, None), options(env))
        .await
        .unwrap();
    store.get("from-file").await.unwrap();
    let requests = md.requests.lock().unwrap().clone();
    assert_eq!(
        requests,
        vec![format!(
            "GET /computeMetadata/v1/instance/service-accounts/default/token?scopes={}",
            gcp::SCOPE
        )]
    );
}

#[tokio::test]
async fn wrong_credentials_or_project_are_clear_errors_without_secrets() {
    let sm = FakeSecretManager::start().await;
    // Another RSA key than the account's.
    let mut wrong = account(&sm);
    wrong.private_key = SecretString::new(
        std::fs::read_to_string(kes_fakes::pki_dir().join("../cloud/other-rsa.key")).unwrap(),
    );
    let err = GcpKeyStore::connect_with(
        &config(&sm, Some(wrong)),
        options(Env::fixed::<&str, &str>([])),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("gcp: connect: POST /token at https://127.0.0.1:")
            && err.ends_with(
                ": 400 Bad Request: invalid_grant: Invalid JWT Signature. (the service account key (credentials) was refused)"
            ),
        "{err}"
    );
    assert!(
        !err.contains("PRIVATE KEY") && !err.contains("eyJ"),
        "{err}"
    );

    let mut other = config(&sm, Some(account(&sm)));
    other.project_id = "not-my-project".into();
    let err = GcpKeyStore::connect_with(&other, options(Env::fixed::<&str, &str>([])))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("403 Forbidden: PERMISSION_DENIED: ")
            && err.contains("project 'not-my-project' (project_id) not found, or service account"),
        "{err}"
    );
    // A key that is no key.
    let mut broken = account(&sm);
    broken.private_key =
        SecretString::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into());
    let err = GcpKeyStore::connect_with(
        &config(&sm, Some(broken)),
        options(Env::fixed::<&str, &str>([])),
    )
    .await
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "gcp: connect: the private key (credentials) is not a usable RSA key"
    );
}

#[tokio::test]
async fn errors_name_the_key_and_the_service_code_never_the_token() {
    let sm = FakeSecretManager::start().await;
    let store = connect(&sm).await;
    let err = store
        .create("bad.name", b"v")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("gcp: create 'bad.name': POST /v1/projects/kes-test-project/secrets at https://127.0.0.1:")
            && err.contains(": 400 Bad Request: INVALID_ARGUMENT: Secret ID must be"),
        "{err}"
    );
    assert!(!err.contains("ya29"), "{err}");
    sm.state().fail_next = 100;
    let err = store.get("k").await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "gcp: get 'k': GET /v1/projects/kes-test-project/secrets/k/versions/1:access"
        ) && text.contains("503 Service Unavailable: UNAVAILABLE"),
        "{text}"
    );
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn an_outage_is_unreachable_until_it_is_back() {
    let mut sm = FakeSecretManager::start().await;
    let store = connect(&sm).await;
    store.status().await.unwrap();
    sm.server.stop().await;
    assert!(matches!(store.status().await, Err(Error::Unreachable(_))));
    assert!(matches!(store.get("x").await, Err(Error::Unreachable(_))));
    sm.server.restart().await;
    store.status().await.unwrap();
    store.create("x", b"v").await.unwrap();
}

// --- the config section -------------------------------------------------------------------

const BACKENDS: &[Backend<Arc<dyn StoreConfig>>] = &[kes_keystore_gcp::BACKEND];

fn parse(keystore: &str) -> Result<String, String> {
    let yaml = format!(
        "admin:\n  identity: disabled\ntls:\n  key: k.key\n  cert: k.crt\nkeystore:\n  gcp:\n    secretmanager:\n{keystore}"
    );
    let env = MapEnv::new().with(
        "GCP_KEY",
        "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n",
    );
    kes_config::parse(&yaml, "kes.yml", &env, BACKENDS)
        .map(|c| format!("{:?} / {}", c.keystore, c.keystore.describe()))
        .map_err(|e| e.to_string())
}

#[test]
fn valid_sections() {
    assert_eq!(
        parse("      project_id: my-project\n").unwrap(),
        "GcpConfig { project_id: \"my-project\", endpoint: \"secretmanager.googleapis.com:443\", scopes: [], credentials: None } / gcp keystore 'secretmanager.googleapis.com:443' project 'my-project'"
    );
    let got = parse(
        "      project_id: p\n      endpoint: https://sm.local:8443\n      scopes: [https://www.googleapis.com/auth/cloud-platform]\n      credentials:\n        client_email: a@p.iam.gserviceaccount.com\n        client_id: \"1\"\n        private_key_id: k1\n        private_key: ${GCP_KEY}\n",
    )
    .unwrap();
    assert!(
        got.contains("token_uri: \"https://accounts.google.com/o/oauth2/token\""),
        "{got}"
    );
    assert!(
        got.contains("private_key: SecretString([REDACTED])"),
        "{got}"
    );
    assert!(!got.contains("MIIE"), "{got}");
}

#[test]
fn invalid_sections_are_reported_where_they_are() {
    assert_eq!(
        parse("      endpoint: x\n").unwrap_err(),
        "kes.yml:8:5: keystore.gcp.secretmanager.project_id: no project ID specified"
    );
    assert_eq!(
        parse("      project_id: p\n      credentials:\n        client_email: a@b\n").unwrap_err(),
        "kes.yml:10:7: keystore.gcp.secretmanager.credentials.client_id: no client ID specified\n\
         kes.yml:10:7: keystore.gcp.secretmanager.credentials.private_key_id: no private key ID specified\n\
         kes.yml:10:7: keystore.gcp.secretmanager.credentials.private_key: no private key specified"
    );
}
