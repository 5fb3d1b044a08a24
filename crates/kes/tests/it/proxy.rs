//! TLS proxies: a listed proxy forwards its client's certificate in a header.

use crate::harness::{Kes, Who, client, config, identity_of, pki, send};

fn escaped_pem(name: &str) -> String {
    let pem = std::fs::read_to_string(pki().join(format!("{name}.crt"))).unwrap();
    pem.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn forwarded_certificates_from_listed_proxies_only() {
    let dir = tempfile::tempdir().unwrap();
    let proxy_id = identity_of(&pki().join("other.crt"));
    let cfg = config(&dir.path().join("keys"), "").replace(
        "tls:\n",
        &format!("tls:\n  proxy:\n    identities:\n    - {proxy_id}\n    header:\n      cert: X-Client-Cert\n"),
    );
    let kes = Kes::start(dir.path(), &cfg);
    let proxy = client(Who::Other);
    let admin = client(Who::Admin);
    send(&admin, "POST", &kes.url("/v1/key/create/app-k"), None).await;

    // The proxy forwards app's certificate: the request has app's rights, no more.
    let as_app = |path: &str, method: &str| {
        proxy
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                kes.url(path),
            )
            .header("X-Client-Cert", escaped_pem("app"))
            .header("X-Forwarded-For", "10.9.8.7, 10.0.0.1")
            .send()
    };
    assert_eq!(
        as_app("/v1/key/describe/app-k", "GET")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(as_app("/v1/key/list/*", "GET").await.unwrap().status(), 403);
    let r = as_app("/v1/identity/self/describe", "GET").await.unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["identity"], crate::harness::app_identity());

    // The proxy's own requests without the header are refused.
    let r = send(&proxy, "GET", &kes.url("/v1/status"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (400, "no client certificate is present".into())
    );
    let r = proxy
        .get(kes.url("/v1/status"))
        .header("X-Client-Cert", "not a certificate")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // From anyone else the header is ignored: app forwarding the admin's certificate stays app.
    let r = client(Who::App)
        .get(kes.url("/v1/key/list/*"))
        .header("X-Client-Cert", escaped_pem("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client(Who::App)
        .get(kes.url("/v1/identity/self/describe"))
        .header("X-Client-Cert", escaped_pem("admin"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["identity"], crate::harness::app_identity());
}
