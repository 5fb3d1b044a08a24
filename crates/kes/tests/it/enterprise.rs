//! `kes server` and `kes migrate` on the enterprise key managers (Fortanix DSM, Thales
//! CipherTrust / Gemalto KeySecure, Entrust KeyControl), each played by its in-repo fake
//! (kes-fakes, written from the vendor's API reference) on 127.0.0.1 with the test CA.
//!
//! For every vendor: a server does create, generate, decrypt, list, delete; a listing of more
//! keys than three pages hold is complete; a token that expires during the run is renewed
//! without a failed request; the key manager down → the original's status and errors, and
//! recovery without restart; wrong credentials → a clear startup error naming the backend;
//! `kes migrate` fs → vendor → fs copies the records byte for byte.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kes_fakes::FakeServer;
use serde_json::json;

use crate::harness::{Kes, Who, admin_identity, client, config, pki, send, send_json};
use crate::migrate::{files, migrate_env};

/// What the tests need of one vendor's fake.
pub(crate) trait Vendor {
    /// The backend's name in errors (`fortanix`).
    const NAME: &'static str;
    /// How many keys the server test creates (more than three pages of the listing).
    const MANY: usize = 620;
    /// Environment variables the server needs for this fake (`SSL_CERT_FILE`, the SDKs'
    /// endpoint overrides).
    fn env(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Starts the fake.
    async fn start() -> Self;
    /// The YAML under `keystore:` (indented by two spaces) for this fake, with `credential`
    /// in place of the right one when given.
    fn section(&self, credential: Option<&str>) -> String;
    /// The server.
    fn server(&mut self) -> &mut FakeServer;
    /// The value stored under `name`, decoded as the original decodes it.
    fn stored(&self, name: &str) -> Option<Vec<u8>>;
    /// Makes new tokens expire after `lifetime`.
    fn set_token_lifetime(&self, lifetime: Duration);
    /// Logins (and renewals) so far.
    fn logins(&self) -> usize;
    /// Requests refused because their token had expired.
    fn expired_token_refusals(&self) -> usize;
    /// Listing requests so far.
    fn list_requests(&self) -> usize;
}

struct Fortanix(kes_fakes::fortanix::FakeDsm);

impl Vendor for Fortanix {
    const NAME: &'static str = "fortanix";

    async fn start() -> Self {
        Self(kes_fakes::fortanix::FakeDsm::start().await)
    }

    fn section(&self, credential: Option<&str>) -> String {
        format!(
            "  fortanix:\n    sdkms:\n      endpoint: {}\n      group_id: {}\n      credentials:\n        key: {}\n      tls:\n        ca: {}\n",
            self.0.url(),
            kes_fakes::fortanix::GROUP,
            credential.unwrap_or(kes_fakes::fortanix::API_KEY),
            kes_fakes::ca_file().display()
        )
    }

    fn server(&mut self) -> &mut FakeServer {
        &mut self.0.server
    }

    fn stored(&self, name: &str) -> Option<Vec<u8>> {
        let state = self.0.state();
        let object = state.objects.get(name)?;
        Some(B64.decode(&object.value).unwrap())
    }

    fn set_token_lifetime(&self, lifetime: Duration) {
        self.0.state().token_lifetime = lifetime;
    }

    fn logins(&self) -> usize {
        self.0.state().logins
    }

    fn expired_token_refusals(&self) -> usize {
        self.0.state().expired_token_refusals
    }

    fn list_requests(&self) -> usize {
        self.0.state().list_requests
    }
}

struct Gemalto(kes_fakes::gemalto::FakeCipherTrust);

impl Vendor for Gemalto {
    const NAME: &'static str = "gemalto";

    async fn start() -> Self {
        Self(kes_fakes::gemalto::FakeCipherTrust::start().await)
    }

    fn section(&self, credential: Option<&str>) -> String {
        format!(
            "  gemalto:\n    keysecure:\n      endpoint: {}\n      credentials:\n        token: {}\n        domain: {}\n      tls:\n        ca: {}\n",
            self.0.url(),
            credential.unwrap_or(kes_fakes::gemalto::REFRESH_TOKEN),
            kes_fakes::gemalto::DOMAIN,
            kes_fakes::ca_file().display()
        )
    }

    fn server(&mut self) -> &mut FakeServer {
        &mut self.0.server
    }

    fn stored(&self, name: &str) -> Option<Vec<u8>> {
        let state = self.0.state();
        let (data_type, material, _) = state.secrets.get(name)?;
        assert_eq!(data_type, "seed");
        Some(material.as_bytes().to_vec())
    }

    fn set_token_lifetime(&self, lifetime: Duration) {
        self.0.state().token_lifetime = lifetime;
    }

    fn logins(&self) -> usize {
        self.0.state().logins
    }

    fn expired_token_refusals(&self) -> usize {
        self.0.state().expired_token_refusals
    }

    fn list_requests(&self) -> usize {
        self.0.state().list_requests
    }
}

struct Entrust(kes_fakes::entrust::FakeKeyControl);

impl Vendor for Entrust {
    const NAME: &'static str = "entrust";

    async fn start() -> Self {
        Self(kes_fakes::entrust::FakeKeyControl::start().await)
    }

    fn section(&self, credential: Option<&str>) -> String {
        format!(
            "  entrust:\n    keycontrol:\n      endpoint: {}\n      vault_id: {}\n      box_id: {}\n      credentials:\n        username: {}\n        password: {}\n      tls:\n        ca: {}\n",
            self.0.url(),
            kes_fakes::entrust::VAULT_ID,
            kes_fakes::entrust::BOX_ID,
            kes_fakes::entrust::USERNAME,
            credential.unwrap_or(kes_fakes::entrust::PASSWORD),
            kes_fakes::ca_file().display()
        )
    }

    fn server(&mut self) -> &mut FakeServer {
        &mut self.0.server
    }

    fn stored(&self, name: &str) -> Option<Vec<u8>> {
        let state = self.0.state();
        let secret = state.secrets.get(name)?;
        // secret_data is the base64 of the value, as the original sends a Go []byte.
        Some(B64.decode(secret.data.as_str().unwrap()).unwrap())
    }

    fn set_token_lifetime(&self, lifetime: Duration) {
        self.0.state().token_lifetime = lifetime;
    }

    fn logins(&self) -> usize {
        let state = self.0.state();
        state.logins + state.renewals
    }

    fn expired_token_refusals(&self) -> usize {
        self.0.state().expired_token_refusals
    }

    fn list_requests(&self) -> usize {
        self.0.state().list_requests
    }
}

/// A server config for the committed PKI with `keystore` (lines under `keystore:`).
pub(crate) fn server_config(keystore: &str, extra: &str) -> String {
    let pki = pki();
    format!(
        "admin:\n  identity: {admin}\ntls:\n  key: {key}\n  cert: {cert}\nkeystore:\n{keystore}{extra}",
        admin = admin_identity(),
        key = pki.join("server.key").display(),
        cert = pki.join("server.crt").display(),
    )
}

/// A server on `vendor`'s fake, started in `dir`.
fn start_on<V: Vendor>(vendor: &V, dir: &Path) -> Kes {
    Kes::try_start_env(
        dir,
        &server_config(&vendor.section(None), ""),
        &vendor.env(),
    )
    .unwrap_or_else(|e| panic!("server did not start: {e}"))
}

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

/// Create, generate, decrypt, list (more than three pages), delete; values as the original
/// stores them; a token expiring mid-run.
pub(crate) async fn a_server_on<V: Vendor>() {
    let vendor = V::start().await;
    // Tokens of two seconds: the creates below (over four seconds) never meet an expired one.
    vendor.set_token_lifetime(Duration::from_secs(2));
    let dir = tempfile::tempdir().unwrap();
    let kes = start_on(&vendor, dir.path());
    let admin = client(Who::Admin);

    let r = send(&admin, "POST", &kes.url("/v1/key/create/my-key"), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // The record as the fs keystore holds it: base64 text of the protobuf key version.
    let record = vendor.stored("my-key").expect("stored");
    assert!(
        B64.decode(&record).is_ok_and(|p| !p.is_empty()),
        "a KES key record"
    );
    let r = send(&admin, "POST", &kes.url("/v1/key/create/my-key"), None).await;
    assert_eq!((r.status, r.message()), (400, "key already exists".into()));

    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/generate/my-key"),
        &json!({"context": B64.encode("ctx")}),
    )
    .await;
    assert_eq!(r.status, 200);
    let plaintext = r.json()["plaintext"].as_str().unwrap().to_owned();
    let ciphertext = r.json()["ciphertext"].as_str().unwrap().to_owned();

    // Another server on the same key manager (nothing cached) decrypts it.
    let dir2 = tempfile::tempdir().unwrap();
    let other = start_on(&vendor, dir2.path());
    let r = send_json(
        &admin,
        "POST",
        &other.url("/v1/key/decrypt/my-key"),
        &json!({"ciphertext": ciphertext, "context": B64.encode("ctx")}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["plaintext"], plaintext);

    let logins = vendor.logins();
    let started = Instant::now();
    let n = V::MANY;
    for i in 0..n {
        let r = send(
            &admin,
            "POST",
            &kes.url(&format!("/v1/key/create/k-{i:04}")),
            None,
        )
        .await;
        assert_eq!(
            r.status,
            200,
            "create k-{i:04}: {}",
            String::from_utf8_lossy(&r.body)
        );
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "over two token lifetimes"
    );
    assert!(vendor.logins() > logins + 1, "the token was renewed");
    assert_eq!(
        vendor.expired_token_refusals(),
        0,
        "no request with an expired token"
    );

    // The listing of all of them (more than three pages) is complete and ends.
    let pages = vendor.list_requests();
    let r = send(&admin, "GET", &kes.url("/v1/key/list/k-*"), None).await;
    assert_eq!(r.status, 200);
    let names: Vec<String> = serde_json::from_value(r.json()["names"].clone()).unwrap();
    assert!(
        r.json().get("continue_at").is_none(),
        "one answer holds all"
    );
    let want: Vec<String> = (0..n).map(|i| format!("k-{i:04}")).collect();
    assert_eq!(names, want);
    assert!(vendor.list_requests() - pages >= 3, "at least three pages");

    let r = send(&admin, "DELETE", &kes.url("/v1/key/delete/my-key"), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(vendor.stored("my-key").is_none());
    let r = send(&admin, "DELETE", &kes.url("/v1/key/delete/my-key"), None).await;
    assert_ne!(r.status, 200, "deleting a deleted key");
}

/// The key manager down: status says unreachable, an uncached key fails as in the original;
/// back: the server recovers by itself.
pub(crate) async fn down_and_back<V: Vendor>() {
    let mut vendor = V::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kes = start_on(&vendor, dir.path());
    let admin = client(Who::Admin);
    for key in ["cached", "uncached"] {
        let r = send(
            &admin,
            "POST",
            &kes.url(&format!("/v1/key/create/{key}")),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let generate = |key: &str| {
        let (admin, url) = (admin.clone(), kes.url(&format!("/v1/key/generate/{key}")));
        async move { send_json(&admin, "POST", &url, &json!({})).await }
    };
    assert_eq!(generate("cached").await.status, 200);
    // A second server knows no key yet: every key is uncached there.
    let dir2 = tempfile::tempdir().unwrap();
    let cold = start_on(&vendor, dir2.path());

    vendor.server().stop().await;
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
    let r = send_json(
        &admin,
        "POST",
        &cold.url("/v1/key/generate/uncached"),
        &json!({}),
    )
    .await;
    assert_eq!((r.status, r.message()), (502, "failed to read key".into()));
    let r = send(&admin, "POST", &kes.url("/v1/key/create/while-down"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (502, "failed to create key".into())
    );
    assert_eq!(
        generate("cached").await.status,
        200,
        "cached keys keep working"
    );

    vendor.server().restart().await;
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
    let r = send_json(
        &admin,
        "POST",
        &cold.url("/v1/key/generate/uncached"),
        &json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = send(&admin, "POST", &kes.url("/v1/key/create/after"), None).await;
    assert_eq!(r.status, 200);
}

/// Wrong credentials: the server does not start, and says which backend refused.
pub(crate) async fn wrong_credentials<V: Vendor>(bad: &str, expect: &str) {
    let vendor = V::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = server_config(&vendor.section(Some(bad)), "");
    let err = match Kes::try_start_env(dir.path(), &config, &vendor.env()) {
        Err(err) => err,
        Ok(_) => panic!("a server started with wrong credentials"),
    };
    assert!(err.contains(V::NAME) && err.contains(expect), "{err}");
    assert!(!err.contains(bad), "the credential in the error: {err}");
}

/// fs → vendor → fs: the records arrive byte for byte, a server on the vendor decrypts what
/// the fs server sealed, and the way back gives the original files.
pub(crate) async fn migrate_through<V: Vendor>() {
    let vendor = V::start().await;
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
    let plaintext = r.json()["plaintext"].as_str().unwrap().to_owned();
    let ciphertext = r.json()["ciphertext"].as_str().unwrap().to_owned();
    drop(source);

    let from = dir.path().join("config.yml");
    let to = dir.path().join("vendor.yml");
    std::fs::write(&to, server_config(&vendor.section(None), "")).unwrap();
    let back_keys = dir.path().join("back");
    let back = dir.path().join("back.yml");
    std::fs::write(&back, config(&back_keys, "")).unwrap();
    let vendor_env = vendor.env();
    let run = |args: Vec<String>| {
        let dir = dir.path().to_owned();
        let env = vendor_env.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            migrate_env(&dir, &args, &env)
        })
    };
    let s = |p: &Path| p.display().to_string();
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
    let originals = files(&src_keys);
    for key in ["app-1", "app-2"] {
        assert_eq!(vendor.stored(key).unwrap(), originals[key], "{key}");
    }
    assert!(vendor.stored("other").is_none());

    let vendor_dir = tempfile::tempdir().unwrap();
    let target = start_on(&vendor, vendor_dir.path());
    let r = send_json(
        &admin,
        "POST",
        &target.url("/v1/key/decrypt/app-1"),
        &json!({"ciphertext": ciphertext}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["plaintext"], plaintext);
    drop(target);

    let out = run(vec!["--from".into(), s(&to), "--to".into(), s(&back)])
        .await
        .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "Migrated 2 keys.\n"),
        "{out:?}"
    );
    let returned = files(&back_keys);
    for key in ["app-1", "app-2"] {
        assert_eq!(returned[key], originals[key], "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fortanix_server() {
    a_server_on::<Fortanix>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fortanix_down_and_back() {
    down_and_back::<Fortanix>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fortanix_wrong_credentials() {
    wrong_credentials::<Fortanix>("d3Jvbmc6a2V5", "the API key (credentials.key) was refused")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fortanix_migrate() {
    migrate_through::<Fortanix>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemalto_server() {
    a_server_on::<Gemalto>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemalto_down_and_back() {
    down_and_back::<Gemalto>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemalto_wrong_credentials() {
    wrong_credentials::<Gemalto>(
        "not-the-refresh-token",
        "the refresh token (credentials.token) or its domain was refused",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemalto_migrate() {
    migrate_through::<Gemalto>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrust_server() {
    a_server_on::<Entrust>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrust_down_and_back() {
    down_and_back::<Entrust>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrust_wrong_credentials() {
    wrong_credentials::<Entrust>(
        "not-the-password",
        "the username or password (credentials) was refused",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrust_migrate() {
    migrate_through::<Entrust>().await;
}
