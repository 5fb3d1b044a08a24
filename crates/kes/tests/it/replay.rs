//! Replays every request recorded from the original KES server
//! (`testdata/kes-interop/vectors.json`) against our binary, started on a copy of the
//! recorded keystore with the recorded configuration.
//!
//! Deliberate differences, each checked for the corrected behaviour instead:
//! - `GET /v1/identity/self/describe` as a non-admin: the original answers 404 to everyone but
//!   the admin (spec §2.5); we answer 200 with the caller's policy.
//! - `GET /v1/key/list/<prefix>*`: the original treats the `*` literally and finds nothing
//!   (spec §2.7); we list the names with the prefix.
//! - Time-dependent fields: `created_at` of policies and identities (the server's start time)
//!   and `/version` differ by nature; every other field is compared.
//! - `POST /v1/key/create/..`: the original's URL cleaning redirects (301); so do we.
//! - `/v1/api` lists six more routes: the runtime policy and identity routes of spec §3.1.
//! - Setup requests that created or imported keys already present in the recorded keystore
//!   now answer "key already exists" (the keystore is the state *after* the recording).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::harness::{Kes, raw, shared_testdata, tls_client_config};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        std::fs::copy(entry.path(), &dest).unwrap();
        let mut perm = std::fs::metadata(&dest).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&dest, perm).unwrap();
    }
}

#[tokio::test]
async fn replay_recorded_vectors() {
    let data = shared_testdata();
    let interop = data.join("kes-interop");
    let vectors: Value =
        serde_json::from_slice(&std::fs::read(interop.join("vectors.json")).unwrap()).unwrap();
    let ids = &vectors["identities"];
    let certs = interop.join("certs");
    let dir = tempfile::tempdir().unwrap();
    let keystore = dir.path().join("keystore");
    copy_dir(&interop.join("keystore"), &keystore);
    let preexisting: Vec<String> = std::fs::read_dir(&keystore)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let config = format!(
        "address: 127.0.0.1:0\nadmin:\n  identity: {admin}\ntls:\n  key: {key}\n  cert: {cert}\npolicy:\n  app:\n    allow:\n    - /v1/key/create/vec-app*\n    - /v1/key/generate/vec-app*\n    - /v1/key/decrypt/vec-app*\n    - /v1/key/encrypt/vec-*\n    - /v1/identity/self/describe\n    deny:\n    - /v1/key/encrypt/vec-secret*\n    identities:\n    - {app}\nkeystore:\n  fs:\n    path: {ks}\n",
        admin = ids["admin"].as_str().unwrap(),
        app = ids["app"].as_str().unwrap(),
        key = certs.join("server.key").display(),
        cert = certs.join("server.crt").display(),
        ks = keystore.display(),
    );
    let kes = Kes::start(dir.path(), &config);
    let root = certs.join("server.crt");
    let admin = tls_client_config(
        Some((&certs.join("admin.crt"), &certs.join("admin.key"))),
        &root,
    );
    let app = tls_client_config(
        Some((&certs.join("app.crt"), &certs.join("app.key"))),
        &root,
    );
    let anonymous = tls_client_config(None, &root);

    let cases = vectors["cases"].as_array().unwrap();
    let mut checked = 0;
    for (i, case) in cases.iter().enumerate() {
        let who = case["as"].as_str().unwrap();
        let method = case["method"].as_str().unwrap();
        let path = case["path"].as_str().unwrap();
        let note = case["note"].as_str().unwrap_or_default();
        let body: Option<Vec<u8>> = match &case["body"] {
            Value::Null => None,
            Value::Object(o) if o.contains_key("raw") => {
                Some(o["raw"].as_str().unwrap().as_bytes().to_vec())
            }
            other => Some(serde_json::to_vec(other).unwrap()),
        };
        let config = match who {
            "admin" => admin.clone(),
            "app" => app.clone(),
            _ => anonymous.clone(),
        };
        let ctx = format!("case {i} ({note}): {who} {method} {path}");
        let res = raw(kes.addr, config.clone(), method, path, body.as_deref()).await;
        let want_status = case["status"].as_u64();
        let Some(want_status) = want_status else {
            // The recorded handshake failure of a client without certificate.
            assert!(
                res.is_err(),
                "{ctx}: expected the TLS handshake to fail, got {res:?}"
            );
            checked += 1;
            continue;
        };
        let res = res.unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let want = &case["reply"];
        let name = path.rsplit('/').next().unwrap_or_default();

        // Setup creates/imports of keys the recorded keystore already holds.
        if want_status == 200
            && (path.starts_with("/v1/key/create/") || path.starts_with("/v1/key/import/"))
            && preexisting.iter().any(|k| k == name)
        {
            assert_eq!(
                (res.status, res.message()),
                (400, "key already exists".into()),
                "{ctx}"
            );
            checked += 1;
            continue;
        }
        // Deliberate difference: non-admin self-describe works.
        if path == "/v1/identity/self/describe" && who == "app" {
            assert_eq!(res.status, 200, "{ctx}");
            let v = res.json();
            assert_eq!(v["identity"], ids["app"], "{ctx}");
            assert_eq!(v["policy"], "app", "{ctx}");
            assert_eq!(
                v["deny"],
                json!({"/v1/key/encrypt/vec-secret*": {}}),
                "{ctx}"
            );
            checked += 1;
            continue;
        }
        // Deliberate difference: a trailing `*` in a key listing is a prefix.
        if let Some(pattern) = path.strip_prefix("/v1/key/list/")
            && pattern.len() > 1
            && pattern.ends_with('*')
        {
            assert_eq!(res.status, 200, "{ctx}");
            let prefix = pattern.trim_end_matches('*');
            let names: Vec<String> = serde_json::from_value(res.json()["names"].clone()).unwrap();
            assert!(
                names.iter().all(|n| n.starts_with(prefix)),
                "{ctx}: {names:?}"
            );
            if prefix == "vec-c" {
                assert_eq!(names, ["vec-chacha", "vec-created"], "{ctx}");
            }
            if prefix == "vec-" {
                assert_eq!(
                    names,
                    ["vec-aes", "vec-chacha", "vec-created", "vec-legacy"],
                    "{ctx}"
                );
            }
            checked += 1;
            continue;
        }

        assert_eq!(
            res.status as u64,
            want_status,
            "{ctx}: {:?}",
            String::from_utf8_lossy(&res.body)
        );
        if want_status == 301 {
            assert!(res.headers.get("location").is_some(), "{ctx}");
            checked += 1;
            continue;
        }
        if want.is_string() {
            assert_eq!(res.body, want.as_str().unwrap().as_bytes(), "{ctx}");
            checked += 1;
            continue;
        }
        if want_status != 200 {
            assert_eq!(res.json(), *want, "{ctx}");
            checked += 1;
            continue;
        }
        let req: Value = body
            .as_deref()
            .map(|b| serde_json::from_slice(b).unwrap())
            .unwrap_or(Value::Null);
        let got = if res.body.is_empty() {
            Value::Null
        } else {
            res.json()
        };
        if path.starts_with("/v1/key/encrypt/") {
            // Random ciphertext: it must decrypt through the server to the request plaintext.
            let pt = decrypt(
                &kes,
                admin.clone(),
                name,
                &got["ciphertext"],
                &req["context"],
            )
            .await;
            assert_eq!(pt, req["plaintext"], "{ctx}");
        } else if path.starts_with("/v1/key/generate/") {
            let plaintext = &got["plaintext"];
            assert_eq!(
                B64.decode(plaintext.as_str().unwrap()).unwrap().len(),
                32,
                "{ctx}"
            );
            let pt = decrypt(
                &kes,
                admin.clone(),
                name,
                &got["ciphertext"],
                &req["context"],
            )
            .await;
            assert_eq!(&pt, plaintext, "{ctx}");
        } else if path == "/version" {
            assert!(got["version"].is_string(), "{ctx}");
        } else if path == "/v1/api" {
            // Every route of the original, as it listed it; we list the runtime policy and
            // identity routes (spec §3.1) and the two key version routes in addition.
            let got = got.as_array().unwrap();
            for route in want.as_array().unwrap() {
                assert!(got.contains(route), "{ctx}: missing {route}");
            }
            assert_eq!(got.len(), want.as_array().unwrap().len() + 8, "{ctx}");
        } else if path.starts_with("/v1/policy/")
            || path.starts_with("/v1/identity/describe/")
            || path == "/v1/identity/self/describe"
        {
            // Everything but the server's start time.
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("created_at");
                }
                v
            };
            assert_eq!(strip(&got), strip(want), "{ctx}");
            if want.get("created_at").is_some() {
                assert!(got["created_at"].is_string(), "{ctx}");
            }
        } else {
            assert_eq!(got, *want, "{ctx}");
        }
        checked += 1;
    }
    assert_eq!(checked, cases.len());
}

async fn decrypt(
    kes: &Kes,
    config: std::sync::Arc<rustls::ClientConfig>,
    name: &str,
    ciphertext: &Value,
    context: &Value,
) -> Value {
    let mut body = json!({"ciphertext": ciphertext});
    if !context.is_null() {
        body["context"] = context.clone();
    }
    let res = raw(
        kes.addr,
        config,
        "POST",
        &format!("/v1/key/decrypt/{name}"),
        Some(&serde_json::to_vec(&body).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(
        res.status,
        200,
        "decrypt {name}: {}",
        String::from_utf8_lossy(&res.body)
    );
    res.json()["plaintext"].clone()
}
