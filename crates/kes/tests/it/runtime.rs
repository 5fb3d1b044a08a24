//! Runtime policy and identity administration (spec §3.1): changes take effect at once, live
//! in memory only, are gone after a restart, and survive a reload unless the file names them.

use std::time::Duration;

use serde_json::json;

use crate::harness::{
    Kes, Reply, Who, app_identity, client, config, default_config, identity_of, pki, send,
    send_json, start_default, status,
};

/// An identity no certificate of the test PKI has.
const UNKNOWN: &str = "a1a2a3a4a5a6a7a8a9a0b1b2b3b4b5b6b7b8b9b0c1c2c3c4c5c6c7c8c9c0d1d2";

fn other_id() -> String {
    identity_of(&pki().join("other.crt"))
}

/// `POST /v1/policy/assign/<policy>` of `identity`, sent by `who`.
async fn assign(who: &reqwest::Client, kes: &Kes, policy: &str, identity: &str) -> Reply {
    let url = kes.url(&format!("/v1/policy/assign/{policy}"));
    send_json(who, "POST", &url, &json!({ "identity": identity })).await
}

#[tokio::test]
async fn runtime_policies_grant_exactly_their_permissions() {
    let (dir, kes) = start_default();
    let admin = client(Who::Admin);
    let other = client(Who::Other);
    let other_id = other_id();
    send(&admin, "POST", &kes.url("/v1/key/create/shared"), None).await;

    // Before: `other` is in no policy.
    assert_eq!(status(&other, "GET", &kes.url("/v1/status")).await, 403);

    let ops = json!({"allow": ["/v1/status", "/v1/key/describe/*", "/v1/policy/assign/*"], "deny": ["/v1/key/describe/secret*"]});
    let r = send_json(&admin, "POST", &kes.url("/v1/policy/write/ops"), &ops).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let r = assign(&admin, &kes, "ops", &other_id).await;
    assert_eq!(r.status, 200);

    // Exactly the policy's permissions.
    assert_eq!(status(&other, "GET", &kes.url("/v1/status")).await, 200);
    assert_eq!(
        status(&other, "GET", &kes.url("/v1/key/describe/shared")).await,
        200
    );
    assert_eq!(
        status(&other, "GET", &kes.url("/v1/key/describe/secret1")).await,
        403
    );
    assert_eq!(
        status(&other, "POST", &kes.url("/v1/key/create/x")).await,
        403
    );
    assert_eq!(
        status(&other, "POST", &kes.url("/v1/key/generate/shared")).await,
        403
    );

    // Reads show the runtime state with who made it.
    let r = send(&admin, "GET", &kes.url("/v1/policy/read/ops"), None).await;
    assert_eq!(r.json()["allow"]["/v1/status"], json!({}));
    assert_eq!(r.json()["created_by"], crate::harness::admin_identity());
    let r = send(
        &admin,
        "GET",
        &kes.url(&format!("/v1/identity/describe/{other_id}")),
        None,
    )
    .await;
    assert_eq!(r.json()["policy"], "ops");
    let r = send(&admin, "GET", &kes.url("/v1/policy/list/*"), None).await;
    assert_eq!(r.json()["names"], json!(["app", "ops"]));
    let r = send(&other, "GET", &kes.url("/v1/identity/self/describe"), None).await;
    assert_eq!(r.json()["policy"], "ops");

    // The original's refusals.
    let r = assign(&admin, &kes, "ops", &crate::harness::admin_identity()).await;
    assert_eq!(
        (r.status, r.message()),
        (400, "cannot assign policy to system admin".into())
    );
    let r = assign(&admin, &kes, "ops", "").await;
    assert_eq!((r.status, r.message()), (400, "identity is unknown".into()));
    let r = assign(&admin, &kes, "nope", UNKNOWN).await;
    assert_eq!(
        (r.status, r.message()),
        (404, "policy does not exist".into())
    );
    let r = assign(&other, &kes, "ops", &other_id).await;
    assert_eq!(
        (r.status, r.message()),
        (403, "identity cannot assign policy to itself".into())
    );
    let r = send(&admin, "DELETE", &kes.url("/v1/policy/delete/nope"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (404, "policy does not exist".into())
    );
    let r = send(
        &admin,
        "DELETE",
        &kes.url(&format!("/v1/identity/forget/{UNKNOWN}")),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (404, "identity does not exist".into())
    );

    // Moving the identity (older route) removes the first policy's permissions.
    let r = send(
        &admin,
        "POST",
        &kes.url(&format!("/v1/identity/assign/app/{other_id}")),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        status(&other, "GET", &kes.url("/v1/key/describe/shared")).await,
        403
    );
    assert_eq!(
        status(&other, "POST", &kes.url("/v1/key/create/app-other")).await,
        200
    );

    // Deleting a policy removes its identities' access (config policies too, until restart).
    let r = send(&admin, "DELETE", &kes.url("/v1/policy/delete/app"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        status(&other, "POST", &kes.url("/v1/key/create/app-x")).await,
        403
    );
    assert_eq!(
        status(&client(Who::App), "GET", &kes.url("/v1/status")).await,
        403
    );
    let r = send(
        &admin,
        "GET",
        &kes.url(&format!("/v1/identity/describe/{other_id}")),
        None,
    )
    .await;
    assert_eq!(r.status, 404);

    // After a restart the runtime state is gone and the config state is back.
    drop(kes);
    let kes = Kes::start(dir.path(), &default_config(dir.path()));
    let r = send(&admin, "GET", &kes.url("/v1/policy/read/ops"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (404, "policy does not exist".into())
    );
    assert_eq!(
        status(&client(Who::App), "GET", &kes.url("/v1/status")).await,
        200
    );
    assert_eq!(status(&other, "GET", &kes.url("/v1/status")).await, 403);
}

#[tokio::test]
async fn runtime_routes_are_authorized_through_policies() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "  assigner:\n    allow:\n    - /v1/identity/assign/app/*\n    identities:\n    - IDENTITY\n";
    let cfg = config(&dir.path().join("keys"), "").replace(
        "keystore:\n",
        &format!("{}keystore:\n", extra.replace("IDENTITY", &other_id())),
    );
    let kes = Kes::start(dir.path(), &cfg);
    let other = client(Who::Other);
    let r = send(
        &other,
        "POST",
        &kes.url(&format!("/v1/identity/assign/app/{UNKNOWN}")),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        &other,
        "POST",
        &kes.url(&format!("/v1/identity/assign/assigner/{UNKNOWN}")),
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    let r = send_json(
        &other,
        "POST",
        &kes.url("/v1/policy/write/evil"),
        &json!({"allow": ["*"]}),
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn reload_keeps_runtime_changes_the_file_does_not_contradict() {
    let (_dir, kes) = start_default();
    let admin = client(Who::Admin);
    let other = client(Who::Other);
    send_json(
        &admin,
        "POST",
        &kes.url("/v1/policy/write/rt"),
        &json!({"allow": ["/v1/status"]}),
    )
    .await;
    assign(&admin, &kes, "rt", &other_id()).await;
    // Forget the file's app identity at runtime.
    let r = send(
        &admin,
        "DELETE",
        &kes.url(&format!("/v1/identity/delete/{}", app_identity())),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        status(&client(Who::App), "GET", &kes.url("/v1/status")).await,
        403
    );
    kes.signal("HUP");
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if kes.stderr().contains("configuration reloaded") {
            ok = true;
            break;
        }
    }
    assert!(ok, "{}", kes.stderr());
    // Kept: the runtime policy and assignment the file does not name.
    assert_eq!(status(&other, "GET", &kes.url("/v1/status")).await, 200);
    // Discarded: the change to an identity the file assigns.
    assert_eq!(
        status(&client(Who::App), "GET", &kes.url("/v1/status")).await,
        200
    );
}
