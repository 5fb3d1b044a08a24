//! The Entrust KeyControl keystore against the in-repo fake KeyControl (kes-fakes `entrust`):
//! the conformance suite, the stored format, `next_token` paging, token renewal and re-login,
//! outages, refused credentials, and the `keystore.entrust.keycontrol` section.

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
use kes_fakes::entrust::{BOX_ID, BOX_NAME, FakeKeyControl, PASSWORD, Secret, USERNAME, VAULT_ID};
use kes_keystore::retry::RetryPolicy;
use kes_keystore::testkit::ConformanceOptions;
use kes_keystore::{Error, KeyStore, StoreConfig};
use kes_keystore_entrust::{EntrustConfig, EntrustKeyStore};
use serde_json::{Value, json};

fn config(kc: &FakeKeyControl) -> EntrustConfig {
    config_for(kc.url())
}

fn config_for(endpoint: String) -> EntrustConfig {
    EntrustConfig {
        endpoint,
        vault_id: VAULT_ID.to_owned(),
        box_id: BOX_ID.to_owned(),
        username: USERNAME.to_owned(),
        password: SecretString::new(PASSWORD.to_owned()),
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

async fn connect(kc: &FakeKeyControl) -> EntrustKeyStore {
    EntrustKeyStore::connect_with(&config(kc), quick())
        .await
        .unwrap()
}

fn secret(data: &str, expired: bool) -> Secret {
    Secret {
        id: format!("id-{data}"),
        data: Value::String(data.to_owned()),
        expired,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let kc = FakeKeyControl::start().await;
    // Values are base64 in secret_data: any bytes are stored.
    kes_keystore::testkit::run_conformance_with(connect(&kc).await, ConformanceOptions::default())
        .await;
    assert!(kc.state().list_requests >= 10);
}

#[tokio::test]
async fn values_are_stored_as_the_original_stores_them() {
    let kc = FakeKeyControl::start().await;
    let store = connect(&kc).await;
    let record = b"CiIKIBkV8wWJvPRb4mYkPpDAl6zV7hsD1ZtrzB8OprVrSSAjEAE=";
    store.create("my-key", record).await.unwrap();
    // The original sends the value as a Go []byte: standard base64 in a JSON string.
    assert_eq!(
        kc.state().secrets["my-key"].data,
        Value::String(B64.encode(record))
    );
    // A secret the original wrote is read unchanged.
    kc.state().secrets.insert(
        "from-go".into(),
        secret(&B64.encode(b"written-by-go-kes"), false),
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
    assert_eq!(store.list("").await.unwrap(), vec!["my-key".to_owned()]);
    {
        let state = kc.state();
        for line in [
            format!("POST /vault/1.0/Login/{VAULT_ID}/"),
            "POST /vault/1.0/GetBox/".to_owned(),
            "POST /vault/1.0/CreateSecret/".to_owned(),
            "POST /vault/1.0/CheckoutSecret/".to_owned(),
            "POST /vault/1.0/DeleteSecret/".to_owned(),
            "POST /vault/1.0/ListSecretIds/".to_owned(),
        ] {
            assert!(state.log.contains(&line), "{line}: {:?}", state.log);
        }
        assert_eq!(
            state.list_bodies,
            vec![json!({"box_id": BOX_ID, "max_items": 256})]
        );
    }
    // A secret that is not a KES record (a key/value secret) is an error, not a wrong value.
    kc.state().secrets.insert(
        "kv".into(),
        Secret {
            id: "id-kv".into(),
            data: json!({"user": "x"}),
            expired: false,
        },
    );
    let err = store.get("kv").await.unwrap_err().to_string();
    assert!(
        err.starts_with("entrust: get 'kv': POST /vault/1.0/CheckoutSecret/ at https://127.0.0.1:")
            && err.ends_with(
                ": invalid response: secret_data is not a string (not a secret KES wrote)"
            ),
        "{err}"
    );
}

#[tokio::test]
async fn listing_follows_next_token_skips_expired_and_empty_names_and_ends() {
    let kc = FakeKeyControl::start().await;
    let store = connect(&kc).await;
    let mut want = Vec::new();
    for i in 0..700 {
        let name = format!("key-{i:04}");
        store.create(&name, b"x").await.unwrap();
        want.push(name);
    }
    store.create("other", b"x").await.unwrap();
    {
        let mut state = kc.state();
        state
            .secrets
            .insert("key-expired".into(), secret("eA==", true));
        // A name the vault should never have; the original put empty names into its listings.
        state.secrets.insert(String::new(), secret("eA==", false));
        state.list_requests = 0;
        state.list_bodies.clear();
    }
    assert_eq!(store.list("key-").await.unwrap(), want);
    {
        let state = kc.state();
        assert_eq!(state.list_requests, 3, "703 secrets in pages of 256");
        // The first page has no next_token; the others carry the vault's token verbatim.
        assert!(state.list_bodies[0].get("next_token").is_none());
        let token = state.list_bodies[2]["next_token"].as_str().unwrap();
        let decoded: Value = serde_json::from_slice(&B64.decode(token).unwrap()).unwrap();
        assert_eq!(decoded["box_id"], BOX_ID);
    }
    let all = store.list("").await.unwrap();
    assert_eq!(all.len(), 701);
    assert!(!all.iter().any(String::is_empty));
    assert!(!all.contains(&"key-expired".to_owned()));
}

#[tokio::test]
async fn a_vault_that_repeats_its_next_token_ends_the_listing_with_an_error() {
    // A vault whose listing never ends: the same token on every page.
    let handler: kes_fakes::Handler = Arc::new(|req: &kes_fakes::Request| {
        let path = req.decoded_path();
        if path.starts_with("/vault/1.0/Login/") {
            kes_fakes::Response::json(200, &json!({"access_token": "t"}))
        } else if path == "/vault/1.0/ListSecretIds/" {
            kes_fakes::Response::json(
                200,
                &json!({"secrets": [{"name": "a", "expired": false}], "next_token": "c2FtZQ=="}),
            )
        } else {
            kes_fakes::Response::json(200, &json!({}))
        }
    });
    let server = kes_fakes::FakeServer::https(handler).await;
    let store = EntrustKeyStore::connect_with(&config_for(server.url()), quick())
        .await
        .unwrap();
    let err = store.list("").await.unwrap_err().to_string();
    assert!(
        err.ends_with(": invalid response: the vault sent a next_token it had sent before"),
        "{err}"
    );
    assert!(server.requests() < 10, "{} requests", server.requests());
}

#[tokio::test]
async fn a_token_expiring_mid_run_is_renewed_without_a_failed_request() {
    let kc = FakeKeyControl::start().await;
    kc.state().token_lifetime = Duration::from_secs(2);
    let store = connect(&kc).await;
    for i in 0..16 {
        store.create(&format!("k{i}"), b"v").await.unwrap();
        assert_eq!(store.get(&format!("k{i}")).await.unwrap().as_slice(), b"v");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let state = kc.state();
    assert_eq!(state.logins, 1, "renewed, not logged in again");
    assert!(state.renewals >= 3, "renewed: {} times", state.renewals);
    assert_eq!(state.expired_token_refusals, 0);
    assert!(state.log.contains(&"POST /vault/1.0/Renew/".to_owned()));
}

#[tokio::test]
async fn a_refused_renewal_falls_back_to_a_new_login() {
    let kc = FakeKeyControl::start().await;
    kc.state().token_lifetime = Duration::from_secs(2);
    kc.state().refuse_renewals = true;
    let store = connect(&kc).await;
    for i in 0..12 {
        store.create(&format!("k{i}"), b"v").await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let state = kc.state();
    assert!(state.logins >= 3, "logged in {} times", state.logins);
    assert_eq!(state.renewals, 0);
    assert_eq!(state.expired_token_refusals, 0);
}

#[tokio::test]
async fn a_refused_token_is_replaced() {
    let kc = FakeKeyControl::start().await;
    let store = connect(&kc).await;
    kc.state().tokens.clear();
    store.create("k", b"v").await.unwrap();
    assert_eq!(kc.state().logins, 2);
}

#[tokio::test]
async fn transient_failures_are_retried_and_an_outage_is_unreachable_until_it_is_back() {
    let mut kc = FakeKeyControl::start().await;
    let store = connect(&kc).await;
    kc.state().fail_next = 2;
    store.create("k", b"v").await.unwrap();
    store.status().await.unwrap();
    kc.server.stop().await;
    match store.status().await {
        Err(Error::Unreachable(err)) => {
            let err = err.to_string();
            assert!(
                err.starts_with("entrust: status: POST /vault/1.0/GetBox/ at https://127.0.0.1:"),
                "{err}"
            );
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert!(matches!(store.get("k").await, Err(Error::Unreachable(_))));
    kc.server.restart().await;
    store.status().await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_slice(), b"v");
}

#[tokio::test]
async fn a_retried_create_that_was_carried_out_is_not_reported_as_existing() {
    let kc = FakeKeyControl::start().await;
    let store = connect(&kc).await;
    // The vault creates the secret but the answer is lost: the retry meets 409.
    kc.state().fail_after_next = 1;
    store.create("k", b"v").await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_slice(), b"v");
    // Without a lost answer, an existing name is an error, and never overwritten.
    assert!(matches!(store.create("k", b"v").await, Err(Error::Exists)));
    assert!(matches!(store.create("k", b"w").await, Err(Error::Exists)));
    assert_eq!(store.get("k").await.unwrap().as_slice(), b"v");
}

#[tokio::test]
async fn wrong_credentials_vault_or_box_are_clear_errors_without_the_password() {
    let kc = FakeKeyControl::start().await;
    let wrong = |f: &dyn Fn(&mut EntrustConfig)| {
        let mut cfg = config(&kc);
        f(&mut cfg);
        cfg
    };
    let cases: Vec<(EntrustConfig, String)> = vec![
        (
            wrong(&|c| c.password = SecretString::new("not-the-password".into())),
            format!("entrust: connect: POST /vault/1.0/Login/{VAULT_ID}/ at "),
        ),
        (
            wrong(&|c| c.username = "nobody".into()),
            format!("entrust: connect: POST /vault/1.0/Login/{VAULT_ID}/ at "),
        ),
        (
            wrong(&|c| c.vault_id = "0000-no-vault".into()),
            "entrust: connect: POST /vault/1.0/Login/0000-no-vault/ at ".into(),
        ),
        (
            wrong(&|c| c.box_id = "no-box".into()),
            "entrust: connect: POST /vault/1.0/GetBox/ at ".into(),
        ),
    ];
    let ends = [
        ": 401 Unauthorized: Invalid username or password (the username or password (credentials) was refused)",
        ": 401 Unauthorized: Invalid username or password (the username or password (credentials) was refused)",
        ": 404 Not Found: Vault not found (vault '0000-no-vault' (vault_id) not found)",
        &format!(
            ": 404 Not Found: Box not found (box 'no-box' (box_id) not found in vault '{VAULT_ID}', or the user may not read it)"
        ),
    ];
    for ((cfg, start), end) in cases.into_iter().zip(ends) {
        let err = EntrustKeyStore::connect_with(&cfg, quick())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&start) && err.ends_with(end), "{err}");
        assert!(!err.contains("not-the-password") && !err.contains(PASSWORD));
    }
    // The box may be named by its name, too.
    let by_name = wrong(&|c| c.box_id = BOX_NAME.into());
    EntrustKeyStore::connect_with(&by_name, quick())
        .await
        .unwrap();
}

#[tokio::test]
async fn errors_name_the_key_and_the_vendor_text_never_the_token() {
    let kc = FakeKeyControl::start().await;
    let store = connect(&kc).await;
    store.create("k", b"secret-record").await.unwrap();
    let token = kc.state().tokens.keys().next().unwrap().clone();
    kc.state().fail_next = 100;
    let err = store.get("k").await.unwrap_err().to_string();
    assert!(
        !err.contains(&token) && !err.contains(&B64.encode(b"secret-record")),
        "{err}"
    );
    assert!(
        err.starts_with(
            "keystore is unreachable: entrust: get 'k': POST /vault/1.0/CheckoutSecret/ at "
        ),
        "{err}"
    );
    assert!(
        err.ends_with(": 503 Service Unavailable: Service unavailable"),
        "{err}"
    );
    kc.state().fail_next = 0;
    kc.state().secrets.get_mut("k").unwrap().expired = true;
    let err = store.get("k").await.unwrap_err().to_string();
    assert!(
        err.starts_with("entrust: get 'k': POST /vault/1.0/CheckoutSecret/ at ")
            && err.ends_with(": 400 Bad Request: Secret has expired"),
        "{err}"
    );
    let debug = format!("{store:?}");
    assert!(
        !debug.contains(PASSWORD) && !debug.contains(&token),
        "{debug}"
    );
    store.close().await.unwrap();
    assert_eq!(
        store.get("k").await.unwrap_err().to_string(),
        "entrust: get 'k': the keystore is closed"
    );
}

// --- the config section -------------------------------------------------------------------

const BACKENDS: &[Backend<Arc<dyn StoreConfig>>] = &[kes_keystore_entrust::BACKEND];

fn parse(keystore: &str) -> Result<String, String> {
    let yaml = format!(
        "admin:\n  identity: disabled\ntls:\n  key: k.key\n  cert: k.crt\nkeystore:\n  entrust:\n    keycontrol:\n{keystore}"
    );
    let env = MapEnv::new().with("KC_PASSWORD", "pw");
    kes_config::parse(&yaml, "kes.yml", &env, BACKENDS)
        .map(|c| format!("{:?} / {}", c.keystore, c.keystore.describe()))
        .map_err(|e| e.to_string())
}

#[test]
fn a_valid_section() {
    let got = parse(
        "      endpoint: https://kc.example\n      vault_id: v-1\n      box_id: b-1\n      credentials:\n        username: kes\n        password: ${KC_PASSWORD}\n      tls:\n        ca: /etc/ca.pem\n",
    )
    .unwrap();
    assert_eq!(
        got,
        "EntrustConfig { endpoint: \"https://kc.example\", vault_id: \"v-1\", box_id: \"b-1\", username: \"kes\", password: SecretString([REDACTED]), ca: Some(\"/etc/ca.pem\") } / entrust keystore 'https://kc.example' vault 'v-1' box 'b-1'"
    );
}

#[test]
fn invalid_sections_are_reported_where_they_are() {
    assert_eq!(
        parse("      tls: {ca: c}\n").unwrap_err(),
        "kes.yml:8:5: keystore.entrust.keycontrol.endpoint: no endpoint specified\n\
         kes.yml:8:5: keystore.entrust.keycontrol.vault_id: no vault ID specified\n\
         kes.yml:8:5: keystore.entrust.keycontrol.box_id: no box ID specified\n\
         kes.yml:8:5: keystore.entrust.keycontrol.credentials.username: no username specified\n\
         kes.yml:8:5: keystore.entrust.keycontrol.credentials.password: no password specified"
    );
    assert_eq!(
        parse(
            "      endpoint: https://kc\n      vault_id: v\n      box_id: b\n      credentials: {username: u, password: p, token: t}\n"
        )
        .unwrap_err(),
        "kes.yml:12:47: keystore.entrust.keycontrol.credentials: unknown key 'token'"
    );
    assert_eq!(
        parse(
            "      endpoint: https://kc\n      vault_id: v\n      box_id: [b]\n      credentials: {username: u, password: p}\n"
        )
        .unwrap_err(),
        "kes.yml:11:15: keystore.entrust.keycontrol.box_id: expected a string, found a list"
    );
}
