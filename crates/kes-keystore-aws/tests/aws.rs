//! The AWS Secrets Manager keystore against a real emulator (moto, started per test on a free
//! loopback port): the conformance suite with and without `kmskey`, the stored format both
//! ways, throttling and outages, credentials moto refuses, and the config section.
//!
//! Without `moto_server` the tests print a reason and pass, unless `CI` is set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kes_config::{Backend, MapEnv, SecretString};
use kes_keystore::retry::RetryPolicy;
use kes_keystore::testkit::ConformanceOptions;
use kes_keystore::{Error, KeyStore, StoreConfig};
use kes_keystore_aws::{AwsConfig, AwsCredentials, AwsKeyStore};
use serde_json::json;
use support::moto::{ACCESS_KEY, Fault, Moto, Proxy, REGION, SECRET_KEY};

fn config(endpoint: &str, kms_key: Option<&str>) -> AwsConfig {
    AwsConfig {
        endpoint: endpoint.to_owned(),
        region: REGION.to_owned(),
        kms_key: kms_key.map(str::to_owned),
        credentials: Some(AwsCredentials {
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SecretString::new(SECRET_KEY.to_owned()),
            session_token: None,
        }),
    }
}

fn quick() -> RetryPolicy {
    RetryPolicy::new(
        4,
        Duration::from_millis(20),
        Duration::from_millis(100),
        Duration::from_secs(3),
    )
}

async fn connect(endpoint: &str, kms_key: Option<&str>) -> AwsKeyStore {
    AwsKeyStore::connect_with(&config(endpoint, kms_key), quick())
        .await
        .unwrap()
}

fn text(err: &Error) -> String {
    match err {
        Error::Unreachable(e) | Error::Other(e) => e.to_string(),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let Some(moto) = Moto::start() else { return };
    let started = Instant::now();
    kes_keystore::testkit::run_conformance(connect(&moto.url(), None).await).await;
    eprintln!("conformance: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_with_a_kms_key() {
    let Some(moto) = Moto::start() else { return };
    let key = moto.create_kms_key();
    let store = connect(&moto.url(), Some(&key)).await;
    let options = ConformanceOptions {
        many_keys: 300,
        ..ConformanceOptions::default()
    };
    kes_keystore::testkit::run_conformance_with(store, options).await;
    // Secrets created under the key name it.
    let store = connect(&moto.url(), Some(&key)).await;
    store.create("under-kms", b"record").await.unwrap();
    let (status, described) = moto.secrets("DescribeSecret", &json!({"SecretId": "under-kms"}));
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["KmsKeyId"], json!(key), "{described}");
}

/// Records are stored as the original stores them (name = key name, SecretString = record),
/// and secrets another client wrote in that format — or as SecretBinary — are read unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_stored_and_read_in_the_original_format() {
    let Some(moto) = Moto::start() else { return };
    let store = connect(&moto.url(), None).await;
    let record = br#"{"bytes":"Po7zpqDzCNdtuatN8yT15zBwsgPNiRQJt493iQX7kw8=","algorithm":"AES256-GCM_SHA256","created_at":"2026-01-01T00:00:00Z"}"#;
    store.create("my-key", record).await.unwrap();
    let (status, secret) = moto.secret("my-key");
    assert_eq!(status, 200, "{secret}");
    assert_eq!(secret["Name"], "my-key");
    assert_eq!(secret["SecretString"].as_str().unwrap().as_bytes(), record);
    assert!(secret.get("SecretBinary").is_none(), "{secret}");
    assert_eq!(moto.names(), ["my-key"]);

    // Written by another client (as the original does): read unchanged, listed, deleted.
    let foreign = r#"{"bytes":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","algorithm":"AES256-GCM_SHA256"}"#;
    let (status, body) = moto.secrets(
        "CreateSecret",
        &json!({"Name": "from-go-kes", "SecretString": foreign}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        store.get("from-go-kes").await.unwrap().as_slice(),
        foreign.as_bytes()
    );
    let (status, body) = moto.secrets(
        "CreateSecret",
        &json!({"Name": "binary", "SecretBinary": B64.encode([0u8, 1, 0xFF])}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        store.get("binary").await.unwrap().as_slice(),
        [0u8, 1, 0xFF]
    );
    assert_eq!(
        store.list("").await.unwrap(),
        ["binary", "from-go-kes", "my-key"]
    );
    assert_eq!(store.list("from").await.unwrap(), ["from-go-kes"]);
    let exists = store.create("from-go-kes", b"x").await;
    assert!(matches!(exists, Err(Error::Exists)), "{exists:?}");

    // A record that is not UTF-8 goes into SecretBinary (the original would mangle it).
    store.create("raw", &[0xC3, 0x28, 0x00]).await.unwrap();
    let (_, secret) = moto.secret("raw");
    assert_eq!(
        secret["SecretBinary"],
        json!(B64.encode([0xC3, 0x28, 0x00]))
    );

    // Deleted for good, at once: the name is free again.
    store.delete("my-key").await.unwrap();
    let (_, gone) = moto.secret("my-key");
    assert_eq!(gone["__type"], "ResourceNotFoundException", "{gone}");
    store.create("my-key", b"again").await.unwrap();
    assert_eq!(store.get("my-key").await.unwrap().as_slice(), b"again");
}

/// A secret scheduled for deletion (by another client, with a recovery window) is gone for
/// KES: not found, not listed; deleting it deletes it for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_scheduled_for_deletion_is_not_found() {
    let Some(moto) = Moto::start() else { return };
    let store = connect(&moto.url(), None).await;
    store.create("doomed", b"record").await.unwrap();
    let (status, body) = moto.secrets(
        "DeleteSecret",
        &json!({"SecretId": "doomed", "RecoveryWindowInDays": 7}),
    );
    assert_eq!(status, 200, "{body}");
    assert!(matches!(store.get("doomed").await, Err(Error::NotFound)));
    assert!(store.list("").await.unwrap().is_empty());
    store.delete("doomed").await.unwrap();
    let (_, gone) = moto.secret("doomed");
    assert_eq!(gone["__type"], "ResourceNotFoundException", "{gone}");
    // Deleting a missing name: success or "not found", as the contract allows.
    let again = store.delete("doomed").await;
    assert!(matches!(again, Ok(()) | Err(Error::NotFound)), "{again:?}");
}

/// Throttling and 5xx are retried with backoff; when they outlast the retries the error is
/// "unreachable" and names the operation, the key and the code; then the store recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_is_retried_and_then_reported() {
    let Some(moto) = Moto::start() else { return };
    let proxy = Proxy::start(&moto).await;
    let store = connect(&proxy.url(), None).await;

    proxy.inject(Fault::throttling(), 3);
    store.create("busy", b"record").await.unwrap();
    assert_eq!(proxy.faulted(), 3);
    proxy.inject(Fault::unavailable(), 2);
    assert_eq!(store.get("busy").await.unwrap().as_slice(), b"record");
    assert_eq!(proxy.faulted(), 5);

    // More throttling than attempts (4): the caller gets a clear, "unreachable" error.
    proxy.inject(Fault::throttling(), 10);
    let err = store.get("busy").await.unwrap_err();
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
    assert_eq!(
        text(&err),
        format!(
            "aws: get 'busy': GetSecretValue at {}: ThrottlingException (HTTP 400): Rate exceeded",
            proxy.url()
        )
    );
    assert_eq!(proxy.faulted(), 9, "4 attempts");
    // The rest of the faults pass, then it works again.
    for _ in 0..10 {
        if store.get("busy").await.is_ok() {
            break;
        }
    }
    assert_eq!(store.get("busy").await.unwrap().as_slice(), b"record");

    // A create interrupted by the deletion of the same name still running (the service's
    // InvalidRequestException) waits for it and succeeds.
    proxy.inject(
        Fault {
            action: "CreateSecret".into(),
            status: 400,
            code: "InvalidRequestException".into(),
            message: "You can't create this secret because a secret with this name is already scheduled for deletion.".into(),
        },
        1,
    );
    store.create("recreated", b"record").await.unwrap();
}

/// moto stopped: status and every call report the store unreachable, with the endpoint;
/// moto back on the same port: the same store works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_down_and_back() {
    let Some(mut moto) = Moto::start() else {
        return;
    };
    let store = connect(&moto.url(), None).await;
    store.status().await.unwrap();
    moto.stop();
    let err = store.status().await.unwrap_err();
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
    let message = text(&err);
    assert!(
        message.starts_with(&format!("aws: status: GET {}: no answer: ", moto.url())),
        "{message}"
    );
    let err = store.get("k").await.unwrap_err();
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
    assert!(
        text(&err).starts_with(&format!(
            "aws: get 'k': GetSecretValue at {}: no answer: ",
            moto.url()
        )),
        "{}",
        text(&err)
    );
    moto.restart();
    store.status().await.unwrap();
    store.create("k", b"v").await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_slice(), b"v");

    // Nothing listening at all: connecting fails, unreachable.
    let port = support::moto::free_port();
    let err =
        AwsKeyStore::connect_with(&config(&format!("http://127.0.0.1:{port}"), None), quick())
            .await
            .unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(
        err.to_string()
            .starts_with("aws: connect: GET http://127.0.0.1:"),
        "{err}"
    );
}

/// moto with authentication on, and an IAM user holding exactly the permissions docs/aws.md
/// lists: the store works with its keys; a wrong secret key or an unknown access key is refused
/// with the service's code and a hint, never with the secret key or the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_moto_refuses_are_clear_errors() {
    // The first IAM calls, which set up the user, are let through unauthenticated.
    let Some(moto) = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]) else {
        return;
    };
    let (access_key, secret_key) = support::iam_user(&moto, support::DOCUMENTED_POLICY);
    let mut good = config(&moto.url(), None);
    good.credentials = Some(AwsCredentials {
        access_key: access_key.clone(),
        secret_key: SecretString::new(secret_key.clone()),
        session_token: None,
    });
    let store = AwsKeyStore::connect_with(&good, quick()).await.unwrap();
    kes_keystore::testkit::run_conformance_with(
        store,
        ConformanceOptions {
            many_keys: 150,
            racing_creates: 4,
            ..ConformanceOptions::default()
        },
    )
    .await;

    let record = b"{\"bytes\":\"c2VjcmV0LXJlY29yZA==\"}";
    let wrong_secret = "wrong-secret-key-0000000000000000000000000";
    let mut bad = good.clone();
    bad.credentials = Some(AwsCredentials {
        access_key: access_key.clone(),
        secret_key: SecretString::new(wrong_secret.to_owned()),
        session_token: None,
    });
    let store = AwsKeyStore::connect_with(&bad, quick()).await.unwrap();
    let err = store.create("k", record).await.unwrap_err();
    let message = text(&err);
    assert!(matches!(err, Error::Other(_)), "{err:?}");
    assert!(
        message.starts_with("aws: create 'k': CreateSecret at "),
        "{message}"
    );
    assert!(
        message.contains("SignatureDoesNotMatch") || message.contains("InvalidSignatureException"),
        "{message}"
    );
    for secret in [wrong_secret, &secret_key, "c2VjcmV0LXJlY29yZA"] {
        assert!(!message.contains(secret), "{message}");
        assert!(!format!("{err:?}").contains(secret));
    }

    let mut unknown = good.clone();
    unknown.credentials = Some(AwsCredentials {
        access_key: "AKIAUNKNOWN000000000".into(),
        secret_key: SecretString::new(secret_key.clone()),
        session_token: None,
    });
    let store = AwsKeyStore::connect_with(&unknown, quick()).await.unwrap();
    let message = text(&store.get("k").await.unwrap_err());
    assert!(
        message.contains("UnrecognizedClientException") || message.contains("InvalidClientTokenId"),
        "{message}"
    );
    assert!(message.contains("check credentials.accesskey"), "{message}");
    assert!(!message.contains(&secret_key), "{message}");
}

/// What the service says is cut and cleared of the record the call sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_never_show_the_record() {
    let Some(moto) = Moto::start() else { return };
    let proxy = Proxy::start(&moto).await;
    let store = connect(&proxy.url(), None).await;
    let record = r#"{"bytes":"dG9wLXNlY3JldC1rZXktYnl0ZXM="}"#;
    proxy.inject(
        Fault {
            action: "CreateSecret".into(),
            status: 400,
            code: "AccessDeniedException".into(),
            message: format!("not allowed to store {record}"),
        },
        1,
    );
    let err = store.create("k", record.as_bytes()).await.unwrap_err();
    let message = text(&err);
    assert_eq!(
        message,
        format!(
            "aws: create 'k': CreateSecret at {}: AccessDeniedException (HTTP 400): not allowed to store [REDACTED]",
            proxy.url()
        )
    );
    assert!(!format!("{err:?}").contains("dG9wLXNlY3JldC1rZXktYnl0ZXM"));
    assert!(!format!("{store:?}").contains(SECRET_KEY));
}

// --- the config section -------------------------------------------------------------------

const BACKENDS: &[Backend<Arc<dyn StoreConfig>>] = &[kes_keystore_aws::BACKEND];

fn parse(keystore: &str) -> Result<String, String> {
    let yaml = format!(
        "admin:\n  identity: disabled\ntls:\n  key: k.key\n  cert: k.crt\nkeystore:\n  aws:\n    secretsmanager:\n{keystore}"
    );
    let env = MapEnv::new().with("AWS_SECRET", "c2VjcmV0");
    kes_config::parse(&yaml, "kes.yml", &env, BACKENDS)
        .map(|c| format!("{:?} / {}", c.keystore, c.keystore.describe()))
        .map_err(|e| e.to_string())
}

#[test]
fn a_valid_section() {
    let got = parse(
        "      endpoint: secretsmanager.us-east-2.amazonaws.com\n      region: us-east-2\n      kmskey: alias/kes\n      credentials:\n        accesskey: AKIAEXAMPLE\n        secretkey: ${AWS_SECRET}\n        token: tok\n",
    )
    .unwrap();
    assert_eq!(
        got,
        "AwsConfig { endpoint: \"secretsmanager.us-east-2.amazonaws.com\", region: \"us-east-2\", kms_key: Some(\"alias/kes\"), credentials: Some(AwsCredentials { access_key: \"AKIAEXAMPLE\", secret_key: SecretString([REDACTED]), session_token: Some(SecretString([REDACTED])) }) } / aws keystore 'https://secretsmanager.us-east-2.amazonaws.com' region 'us-east-2' kmskey 'alias/kes'"
    );
    // Empty credentials (as the original's sample has them): the credential chain.
    let got = parse(
        "      endpoint: http://127.0.0.1:5000/\n      region: us-east-1\n      kmskey: ''\n      credentials:\n        accesskey: ''\n        secretkey: ''\n        token: ''\n",
    )
    .unwrap();
    assert!(got.contains("kms_key: None, credentials: None"), "{got}");
    assert!(
        got.ends_with("/ aws keystore 'http://127.0.0.1:5000' region 'us-east-1'"),
        "{got}"
    );
}

#[test]
fn invalid_sections_are_reported_where_they_are() {
    assert_eq!(
        parse("      kmskey: k\n").unwrap_err(),
        "kes.yml:8:5: keystore.aws.secretsmanager.endpoint: no endpoint specified\n\
         kes.yml:8:5: keystore.aws.secretsmanager.region: no region specified"
    );
    assert_eq!(
        parse("      endpoint: ftp://x\n      region: r\n      credentials: {accesskey: a}\n")
            .unwrap_err(),
        "kes.yml:9:17: keystore.aws.secretsmanager.endpoint: invalid endpoint 'ftp://x': the scheme must be http:// or https://\n\
         kes.yml:11:7: keystore.aws.secretsmanager.credentials.secretkey: no secret key specified for the access key"
    );
    assert_eq!(
        parse("      endpoint: e\n      region: r\n      credentials: {secretkey: s, token: t, id: x}\n")
            .unwrap_err(),
        "kes.yml:11:7: keystore.aws.secretsmanager.credentials.accesskey: no access key specified for the secret key\n\
         kes.yml:11:45: keystore.aws.secretsmanager.credentials: unknown key 'id'"
    );
    assert_eq!(
        parse("      endpoint: e\n      region: r\n      credentials: {token: t}\n").unwrap_err(),
        "kes.yml:11:28: keystore.aws.secretsmanager.credentials.token: a session token needs an access key and a secret key"
    );
}
