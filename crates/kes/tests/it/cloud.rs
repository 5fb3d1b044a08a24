//! `kes server` and `kes migrate` on the cloud secret stores without an emulator here (GCP
//! Secret Manager, Azure Key Vault), each played by its in-repo fake (kes-fakes, written from
//! the vendor's API reference in testdata/keystore-apis) on 127.0.0.1. The server reaches the
//! fakes as a user points it at any endpoint: the config's `endpoint`, the SDKs' environment
//! variables (`GCE_METADATA_HOST`, `GOOGLE_APPLICATION_CREDENTIALS`, …), and `SSL_CERT_FILE`
//! for the test CA.
//!
//! The scenarios are those of the enterprise key managers (enterprise.rs).

use std::time::Duration;

use kes_fakes::FakeServer;
use serde_json::json;

use crate::enterprise::{
    Vendor, a_server_on, down_and_back, migrate_through, server_config, wrong_credentials,
};
use crate::harness::{Kes, Who, client, send, send_json};

struct Gcp(kes_fakes::gcp::FakeSecretManager);

/// A PEM key as a single-quoted YAML scalar with literal `\n`, as users paste it.
fn yaml_pem(pem: &str) -> String {
    format!("'{}'", pem.trim_end().replace('\n', "\\n"))
}

impl Vendor for Gcp {
    const NAME: &'static str = "gcp";

    async fn start() -> Self {
        let sm = kes_fakes::gcp::FakeSecretManager::start().await;
        // Pages of 200: the server test's listing takes four.
        sm.state().page_limit = 200;
        Self(sm)
    }

    fn section(&self, credential: Option<&str>) -> String {
        let key = credential.map_or_else(kes_fakes::gcp::private_key_pem, str::to_owned);
        format!(
            "  gcp:\n    secretmanager:\n      project_id: {}\n      endpoint: {}\n      credentials:\n        client_email: {}\n        client_id: \"{}\"\n        private_key_id: {}\n        private_key: {}\n        token_uri: {}\n",
            kes_fakes::gcp::PROJECT,
            self.0.url(),
            kes_fakes::gcp::CLIENT_EMAIL,
            kes_fakes::gcp::CLIENT_ID,
            kes_fakes::gcp::KEY_ID,
            yaml_pem(&key),
            self.0.token_uri(),
        )
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SSL_CERT_FILE", kes_fakes::ca_file().display().to_string()),
            ("CLOUDSDK_CONFIG", "/nonexistent".to_owned()),
        ]
    }

    fn server(&mut self) -> &mut FakeServer {
        &mut self.0.server
    }

    fn stored(&self, name: &str) -> Option<Vec<u8>> {
        let state = self.0.state();
        let secret = state.secrets.get(name)?;
        assert_eq!(secret.versions.len(), 1, "one version");
        secret.versions.first().cloned()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_server() {
    a_server_on::<Gcp>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_down_and_back() {
    down_and_back::<Gcp>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_wrong_credentials() {
    let other =
        std::fs::read_to_string(kes_fakes::pki_dir().join("../cloud/other-rsa.key")).unwrap();
    wrong_credentials::<Gcp>(
        &other,
        "invalid_grant: Invalid JWT Signature. (the service account key (credentials) was refused)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_migrate() {
    migrate_through::<Gcp>().await;
}

/// No `credentials`: a key file named by GOOGLE_APPLICATION_CREDENTIALS, then (without one)
/// the metadata server named by GCE_METADATA_HOST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_application_default_credentials() {
    let sm = kes_fakes::gcp::FakeSecretManager::start().await;
    let md = kes_fakes::gcp::FakeMetadata::start(&sm).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sa.json");
    std::fs::write(&file, kes_fakes::gcp::key_file(&sm.token_uri())).unwrap();
    let section = format!(
        "  gcp:\n    secretmanager:\n      project_id: {}\n      endpoint: {}\n",
        kes_fakes::gcp::PROJECT,
        sm.url()
    );
    let ca = kes_fakes::ca_file().display().to_string();
    let admin = client(Who::Admin);
    let with_file = Kes::try_start_env(
        dir.path(),
        &server_config(&section, ""),
        &[
            ("SSL_CERT_FILE", ca.clone()),
            ("GOOGLE_APPLICATION_CREDENTIALS", file.display().to_string()),
        ],
    )
    .unwrap();
    let r = send(&admin, "POST", &with_file.url("/v1/key/create/adc"), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(sm.state().assertions.len(), 1, "the key file's JWT grant");
    drop(with_file);

    let dir2 = tempfile::tempdir().unwrap();
    let on_vm = Kes::try_start_env(
        dir2.path(),
        &server_config(&section, ""),
        &[
            ("SSL_CERT_FILE", ca),
            ("CLOUDSDK_CONFIG", "/nonexistent".to_owned()),
            ("GCE_METADATA_HOST", md.host()),
        ],
    )
    .unwrap();
    let r = send_json(
        &admin,
        "POST",
        &on_vm.url("/v1/key/generate/adc"),
        &json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(!md.requests.lock().unwrap().is_empty(), "a metadata token");
}

struct Azure(kes_fakes::azure::FakeKeyVault);

impl Vendor for Azure {
    const NAME: &'static str = "azure";
    // Each create waits for the vault's clock (whole seconds) to pass its version.
    const MANY: usize = 6;

    async fn start() -> Self {
        let kv = kes_fakes::azure::FakeKeyVault::start().await;
        // Pages of two: the server test's listing takes four.
        kv.state().page_limit = 2;
        Self(kv)
    }

    fn section(&self, credential: Option<&str>) -> String {
        format!(
            "  azure:\n    keyvault:\n      endpoint: {}\n      credentials:\n        tenant_id: {}\n        client_id: {}\n        client_secret: {}\n",
            self.0.url(),
            kes_fakes::azure::TENANT_ID,
            kes_fakes::azure::CLIENT_ID,
            credential.unwrap_or(kes_fakes::azure::CLIENT_SECRET),
        )
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SSL_CERT_FILE", kes_fakes::ca_file().display().to_string()),
            ("AZURE_AUTHORITY_HOST", self.0.url()),
        ]
    }

    fn server(&mut self) -> &mut FakeServer {
        &mut self.0.server
    }

    fn stored(&self, name: &str) -> Option<Vec<u8>> {
        let state = self.0.state();
        let versions = state.secrets.get(name)?;
        assert_eq!(versions.len(), 1, "one version");
        versions.first().map(|v| v.value.as_bytes().to_vec())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_server() {
    a_server_on::<Azure>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_down_and_back() {
    down_and_back::<Azure>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_wrong_credentials() {
    wrong_credentials::<Azure>(
        "not-the-client-secret",
        "invalid_client: AADSTS7000215: Invalid client secret provided.",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_migrate() {
    migrate_through::<Azure>().await;
}

/// No `credentials`: the managed identity of the instance metadata service (IMDS_ENDPOINT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_managed_identity() {
    let kv = kes_fakes::azure::FakeKeyVault::start().await;
    let imds = kes_fakes::azure::FakeImds::start(&kv).await;
    let dir = tempfile::tempdir().unwrap();
    let section = format!("  azure:\n    keyvault:\n      endpoint: {}\n", kv.url());
    let kes = Kes::try_start_env(
        dir.path(),
        &server_config(&section, ""),
        &[
            ("SSL_CERT_FILE", kes_fakes::ca_file().display().to_string()),
            ("IMDS_ENDPOINT", imds.url()),
        ],
    )
    .unwrap();
    let admin = client(Who::Admin);
    let r = send(&admin, "POST", &kes.url("/v1/key/create/mi"), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = send_json(&admin, "POST", &kes.url("/v1/key/generate/mi"), &json!({})).await;
    assert_eq!(r.status, 200);
    assert!(!imds.requests.lock().unwrap().is_empty(), "an IMDS token");
}
