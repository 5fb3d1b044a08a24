//! `kes server` and `kes migrate` with `keystore.aws.secretsmanager`, against real moto servers
//! (the AWS emulator): the key API on it, secrets another client wrote in the original's
//! format, throttling and moto going away and coming back, credentials from the standard chain
//! (environment, web identity through moto's STS), and fs → AWS → fs migration.
//!
//! moto comes from `pip install 'moto[server]'` (scripts/test-deps). Without it these tests
//! print a reason and pass, unless `CI` is set.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;

use crate::harness::{Kes, Who, admin_identity, client, config, pki, send, send_json};

#[path = "../../../kes-keystore-aws/tests/support/moto.rs"]
pub(crate) mod moto;

use moto::{ACCESS_KEY, Fault, Moto, Proxy, REGION, SECRET_KEY};

/// A server config for the committed PKI with `keystore.aws.secretsmanager` at `endpoint`;
/// `credentials` is the block's credentials lines (may be empty), `extra` top-level YAML.
fn aws_config(endpoint: &str, credentials: &str, extra: &str) -> String {
    let pki = pki();
    format!(
        "admin:\n  identity: {admin}\ntls:\n  key: {key}\n  cert: {cert}\nkeystore:\n  aws:\n    secretsmanager:\n      endpoint: {endpoint}\n      region: {REGION}\n{credentials}{extra}",
        admin = admin_identity(),
        key = pki.join("server.key").display(),
        cert = pki.join("server.crt").display(),
    )
}

fn static_credentials() -> String {
    format!(
        "      credentials:\n        accesskey: {ACCESS_KEY}\n        secretkey: {SECRET_KEY}\n"
    )
}

/// A fresh key record, as the server (and the original) stores it.
fn record() -> String {
    let version = kes_crypto::KeyVersion::generate(
        kes_crypto::KeyType::default_for_new_keys(),
        admin_identity(),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    String::from_utf8(version.encode().unwrap().as_bytes().to_vec()).unwrap()
}

async fn generate(admin: &reqwest::Client, kes: &Kes, key: &str) -> crate::harness::Reply {
    send_json(
        admin,
        "POST",
        &kes.url(&format!("/v1/key/generate/{key}")),
        &json!({"context": B64.encode("bucket/object")}),
    )
    .await
}

async fn decrypt(
    admin: &reqwest::Client,
    kes: &Kes,
    key: &str,
    ciphertext: &str,
) -> crate::harness::Reply {
    send_json(
        admin,
        "POST",
        &kes.url(&format!("/v1/key/decrypt/{key}")),
        &json!({"ciphertext": ciphertext, "context": B64.encode("bucket/object")}),
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

/// The key API on moto: create, generate, decrypt, list, delete; the secrets are named as the
/// keys and hold the records; a secret another client wrote in the original's format is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_moto_serves_the_key_api() {
    let Some(moto) = Moto::start() else { return };
    let kms_key = moto.create_kms_key();
    let config = aws_config(
        &moto.url(),
        &format!("{}      kmskey: {kms_key}\n", static_credentials()),
        "",
    );
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config);
    let admin = client(Who::Admin);

    for key in ["app-1", "app-2"] {
        let r = send(
            &admin,
            "POST",
            &kes.url(&format!("/v1/key/create/{key}")),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let r = send(&admin, "POST", &kes.url("/v1/key/create/app-1"), None).await;
    assert_eq!((r.status, r.message()), (400, "key already exists".into()));
    let r = generate(&admin, &kes, "app-1").await;
    assert_eq!(r.status, 200);
    let plaintext = r.json()["plaintext"].as_str().unwrap().to_owned();
    let ciphertext = r.json()["ciphertext"].as_str().unwrap().to_owned();
    let r = decrypt(&admin, &kes, "app-1", &ciphertext).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["plaintext"], plaintext);

    // In moto: one secret per key, its SecretString the record, under the KMS key.
    let (status, secret) = moto.secret("app-1");
    assert_eq!(status, 200, "{secret}");
    let stored = secret["SecretString"].as_str().unwrap();
    kes_crypto::KeyVersion::parse(stored.as_bytes()).unwrap();
    let (_, described) = moto.secrets("DescribeSecret", &json!({"SecretId": "app-1"}));
    assert_eq!(described["KmsKeyId"], json!(kms_key));

    // Written by another client, as the original writes it: the server uses it.
    let (status, body) = moto.secrets(
        "CreateSecret",
        &json!({"Name": "from-go-kes", "SecretString": record()}),
    );
    assert_eq!(status, 200, "{body}");
    let r = generate(&admin, &kes, "from-go-kes").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let ciphertext = r.json()["ciphertext"].as_str().unwrap().to_owned();
    assert_eq!(
        decrypt(&admin, &kes, "from-go-kes", &ciphertext)
            .await
            .status,
        200
    );

    let r = send(&admin, "GET", &kes.url("/v1/key/list/app-*"), None).await;
    assert_eq!(r.json()["names"], json!(["app-1", "app-2"]));
    let r = send(&admin, "GET", &kes.url("/v1/key/list/*"), None).await;
    assert_eq!(r.json()["names"], json!(["app-1", "app-2", "from-go-kes"]));
    let r = send(&admin, "DELETE", &kes.url("/v1/key/delete/app-2"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(moto.names(), ["app-1", "from-go-kes"]);
    let r = generate(&admin, &kes, "app-2").await;
    assert_eq!((r.status, r.message()), (404, "key does not exist".into()));
    let r = send(&admin, "GET", &kes.url("/v1/status"), None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.json().get("keystore_unreachable").is_none(),
        "{}",
        r.json()
    );
}

/// Throttling is absorbed by retries; throttling that outlasts them, and moto stopped, fail as
/// the original fails (502) with the cause in the error log, `/v1/status` says unreachable,
/// cached keys keep working; moto back: the server recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_and_moto_down_then_recovery() {
    let Some(mut moto) = Moto::start() else {
        return;
    };
    let mut proxy = Proxy::start(&moto).await;
    let config = aws_config(
        &proxy.url(),
        &static_credentials(),
        "cache:\n  expiry:\n    any: 10m\n    unused: 10m\n    offline: 10m\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config);
    let admin = client(Who::Admin);

    proxy.inject(Fault::throttling(), 3);
    let r = send(&admin, "POST", &kes.url("/v1/key/create/busy"), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(proxy.faulted(), 3);

    // More throttling than the default 7 attempts.
    proxy.inject(Fault::throttling(), 8);
    let r = send(&admin, "POST", &kes.url("/v1/key/create/throttled"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (502, "failed to create key".into())
    );
    eventually(
        Duration::from_secs(5),
        "the error log names the cause",
        || async {
            kes.stderr()
                .contains("aws: create 'throttled': CreateSecret at ")
                && kes
                    .stderr()
                    .contains("ThrottlingException (HTTP 400): Rate exceeded")
        },
    )
    .await;
    assert!(!kes.stderr().contains(SECRET_KEY));
    // Drain the last fault, then it works.
    let _ = send(&admin, "GET", &kes.url("/v1/key/list/*"), None).await;
    let r = send(&admin, "POST", &kes.url("/v1/key/create/throttled"), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let r = generate(&admin, &kes, "busy").await;
    assert_eq!(r.status, 200);
    let ciphertext = r.json()["ciphertext"].as_str().unwrap().to_owned();

    // Nothing answers at the endpoint (a proxy in front of a stopped moto would still answer).
    moto.stop();
    proxy.server.stop().await;
    let status_url = kes.url("/v1/status");
    eventually(
        Duration::from_secs(30),
        "status reports unreachable",
        || async {
            let r = send(&admin, "GET", &status_url, None).await;
            r.status == 200 && r.json()["keystore_unreachable"] == true
        },
    )
    .await;
    // Cached: still works.
    assert_eq!(decrypt(&admin, &kes, "busy", &ciphertext).await.status, 200);
    let r = send(&admin, "POST", &kes.url("/v1/key/create/while-down"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (502, "failed to create key".into())
    );

    moto.restart();
    proxy.server.restart().await;
    eventually(Duration::from_secs(30), "creates work again", || async {
        send(&admin, "POST", &kes.url("/v1/key/create/after"), None)
            .await
            .status
            == 200
    })
    .await;
    eventually(
        Duration::from_secs(30),
        "status reports reachable",
        || async {
            let r = send(&admin, "GET", &status_url, None).await;
            r.status == 200
                && r.json()
                    .get("keystore_unreachable")
                    .is_none_or(|v| v == false)
        },
    )
    .await;
}

/// No credentials in the config: the standard chain. Environment variables sign the requests;
/// web identity (EKS IRSA) gets temporary credentials from STS (moto's, through
/// `AWS_ENDPOINT_URL_STS`); with nothing anywhere the error says there are no credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_the_standard_chain() {
    let Some(moto) = Moto::start() else { return };
    let proxy = Proxy::start(&moto).await;
    let config = aws_config(&proxy.url(), "", "");
    let admin = client(Who::Admin);
    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_str().unwrap().to_owned();
    let base = [
        ("HOME", home.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];

    // Environment variables.
    let dir = tempfile::tempdir().unwrap();
    let mut env = base.to_vec();
    env.extend([
        ("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1"),
        ("AWS_SECRET_ACCESS_KEY", "from-the-environment-secret"),
    ]);
    let kes = Kes::try_start_env(dir.path(), &config, &env).unwrap();
    let r = send(&admin, "POST", &kes.url("/v1/key/create/env"), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(proxy.access_keys().last().unwrap(), "AKIAFROMENVIRONMENT1");
    drop(kes);

    // Web identity: a token file and a role; STS at moto.
    let token = home.clone() + "/token";
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrZXMifQ.c2ln").unwrap();
    let moto_url = moto.url();
    let mut env = base.to_vec();
    env.extend([
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.as_str()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/kes"),
        ("AWS_ROLE_SESSION_NAME", "kes"),
        ("AWS_ENDPOINT_URL_STS", moto_url.as_str()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::try_start_env(dir.path(), &config, &env).unwrap();
    let r = send(&admin, "POST", &kes.url("/v1/key/create/irsa"), None).await;
    assert_eq!(
        r.status,
        200,
        "{}\n{}",
        String::from_utf8_lossy(&r.body),
        kes.stderr()
    );
    let used = proxy.access_keys().last().unwrap().clone();
    assert!(
        used.starts_with("ASIA"),
        "STS's temporary key signs: {used}"
    );
    drop(kes);

    // Nothing: the server starts (the endpoint answers), and a create fails with the cause.
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::try_start_env(dir.path(), &config, &base).unwrap();
    let r = send(&admin, "POST", &kes.url("/v1/key/create/none"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (502, "failed to create key".into())
    );
    eventually(Duration::from_secs(5), "the error log says why", || async {
        kes.stderr()
            .contains("aws: create 'none': CreateSecret at ")
            && kes.stderr().contains("no usable AWS credentials")
    })
    .await;
}

/// fs → AWS → fs with `kes migrate`: the secrets hold the files' bytes, a server on moto decrypts
/// what the fs server encrypted, and the way back gives the original files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_to_aws_and_back() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src_keys = dir.path().join("src");
    let source = Kes::start(dir.path(), &config(&src_keys, ""));
    let admin = client(Who::Admin);
    for key in ["app-1", "app-2", "other"] {
        let r = send(
            &admin,
            "POST",
            &source.url(&format!("/v1/key/create/{key}")),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let r = send_json(
        &admin,
        "POST",
        &source.url("/v1/key/generate/app-1"),
        &json!({}),
    )
    .await;
    let (plaintext, ciphertext) = (
        r.json()["plaintext"].as_str().unwrap().to_owned(),
        r.json()["ciphertext"].as_str().unwrap().to_owned(),
    );
    let from = dir.path().join("config.yml");
    let to = dir.path().join("aws.yml");
    let aws = aws_config(&moto.url(), &static_credentials(), "");
    std::fs::write(&to, &aws).unwrap();
    let run = |args: Vec<String>| {
        let dir = dir.path().to_owned();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::migrate::migrate(&dir, &args)
        })
    };
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let out = run(vec![
        "--from".into(),
        s(&from),
        "--to".into(),
        s(&to),
        "app-*".into(),
    ])
    .await
    .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "Migrated 2 keys.\n"),
        "{out:?}"
    );
    let originals = crate::migrate::files(&src_keys);
    for key in ["app-1", "app-2"] {
        let (_, secret) = moto.secret(key);
        assert_eq!(
            secret["SecretString"].as_str().unwrap().as_bytes(),
            &originals[key][..]
        );
    }
    assert_eq!(moto.names(), ["app-1", "app-2"]);

    let out = run(vec!["--from".into(), s(&from), "--to".into(), s(&to)])
        .await
        .unwrap();
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr.starts_with(&format!(
            "Error: key 'app-1' already exists in the target keystore (aws keystore '{}' region '{REGION}'); migrated 0 keys before it\n",
            moto.url()
        )),
        "{}",
        out.stderr
    );

    let aws_dir = tempfile::tempdir().unwrap();
    let target = Kes::start(aws_dir.path(), &aws);
    let r = send_json(
        &admin,
        "POST",
        &target.url("/v1/key/decrypt/app-1"),
        &json!({"ciphertext": ciphertext}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["plaintext"].as_str(), Some(plaintext.as_str()));

    let back = dir.path().join("back.yml");
    let back_keys = dir.path().join("back");
    std::fs::write(&back, config(&back_keys, "")).unwrap();
    let out = run(vec!["--from".into(), s(&to), "--to".into(), s(&back)])
        .await
        .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "Migrated 2 keys.\n"),
        "{out:?}"
    );
    let returned = crate::migrate::files(&back_keys);
    assert_eq!(returned.keys().collect::<Vec<_>>(), ["app-1", "app-2"]);
    for (key, bytes) in &returned {
        assert_eq!(bytes, &originals[key], "{key}");
    }
}

/// Rotation on Secrets Manager: two servers rotating one key at once keep every version (the
/// replace is a compare-and-swap on the `AWSCURRENT` label), a ciphertext of the first version
/// and one of the newest decrypt on both servers, and the secret's current value is a record
/// whose newest version is where the original looks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_rotations_on_two_servers_over_moto_keep_every_version() {
    let Some(moto) = Moto::start() else { return };
    let config = aws_config(&moto.url(), &static_credentials(), "");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Kes::start(dir_a.path(), &config);
    let b = Kes::start(dir_b.path(), &config);
    const EACH: usize = 4;
    let newest =
        crate::rotation::racing_rotations_keep_every_version(&a, &b, "turning", EACH).await;

    // What the original reads: the current value, decoded as the original decodes a record
    // (unknown fields skipped), is the newest version, and it alone opens the newest ciphertext.
    // The original's GetSecretValue names no stage: AWS answers with AWSCURRENT. moto answers
    // such a call from the version its last unlabelled PutSecretValue made current, not from
    // the label, so the label is named here.
    let (status, secret) = moto.secrets(
        "GetSecretValue",
        &json!({"SecretId": "turning", "VersionStage": "AWSCURRENT"}),
    );
    assert_eq!(status, 200, "{secret}");
    let stored = secret["SecretString"].as_str().unwrap().as_bytes();
    let ring = kes_crypto::KeyRing::parse(stored).unwrap();
    assert_eq!(ring.newest().0, 2 * EACH as u32 + 1);
    let (key, ty) = crate::rotation::read_as_the_original(stored);
    let ty = crate::rotation::original_key_type(ty);
    let sealed = B64.decode(newest["ciphertext"].as_str().unwrap()).unwrap();
    let opened = kes_crypto::SecretKey::from_slice(ty, &key)
        .unwrap()
        .decrypt(&sealed, b"")
        .unwrap();
    assert_eq!(
        B64.encode(opened.expose_secret()),
        newest["plaintext"].as_str().unwrap()
    );
}
