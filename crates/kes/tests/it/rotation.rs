//! Key versions and rotation against the real binary: rotate, decrypt every kept version, the
//! version field, HMAC per version, removed versions, the record the original reads, racing
//! rotations on two servers over one keystore, and a server whose cache is behind.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::harness::{Kes, Reply, Who, client, config, send, send_json};

async fn post(c: &reqwest::Client, kes: &Kes, path: &str, body: Value) -> Reply {
    send_json(c, "POST", &kes.url(path), &body).await
}

async fn generate(c: &reqwest::Client, kes: &Kes, key: &str) -> (Value, Value) {
    let r = post(c, kes, &format!("/v1/key/generate/{key}"), json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    (v["plaintext"].clone(), v.clone())
}

async fn decrypt(c: &reqwest::Client, kes: &Kes, key: &str, body: Value) -> Reply {
    post(c, kes, &format!("/v1/key/decrypt/{key}"), body).await
}

async fn rotate(c: &reqwest::Client, kes: &Kes, key: &str) -> String {
    let r = send(c, "POST", &kes.url(&format!("/v1/key/rotate/{key}")), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["version"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn rotated_keys_decrypt_every_kept_version_and_encrypt_with_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), ""));
    let admin = client(Who::Admin);
    assert_eq!(
        send(&admin, "POST", &kes.url("/v1/key/create/k"), None)
            .await
            .status,
        200
    );
    // A key never rotated answers as the original: no version anywhere.
    let (pt1, g1) = generate(&admin, &kes, "k").await;
    assert!(g1.get("version").is_none(), "{g1}");
    let d = send(&admin, "GET", &kes.url("/v1/key/describe/k"), None).await;
    assert!(d.json().get("versions").is_none() && d.json().get("version").is_none());
    let mac = |version: Option<&str>| {
        let mut body = json!({"message": B64.encode(b"stable")});
        if let Some(v) = version {
            body["version"] = json!(v);
        }
        body
    };
    let h1 = post(&admin, &kes, "/v1/key/hmac/k", mac(None)).await.json();

    assert_eq!(rotate(&admin, &kes, "k").await, "v2");
    let (pt2, g2) = generate(&admin, &kes, "k").await;
    assert_eq!(g2["version"], "v2");
    assert_eq!(rotate(&admin, &kes, "k").await, "v3");
    let (pt3, g3) = generate(&admin, &kes, "k").await;
    assert_eq!(g3["version"], "v3");
    let enc = post(
        &admin,
        &kes,
        "/v1/key/encrypt/k",
        json!({"plaintext": B64.encode(b"hello")}),
    )
    .await
    .json();
    assert_eq!(enc["version"], "v3");

    // Every kept version decrypts, with and without naming it.
    for (pt, g, v) in [(&pt1, &g1, "v1"), (&pt2, &g2, "v2"), (&pt3, &g3, "v3")] {
        let r = decrypt(&admin, &kes, "k", json!({"ciphertext": g["ciphertext"]})).await;
        assert_eq!((r.status, &r.json()["plaintext"]), (200, pt), "{v}");
        let r = decrypt(
            &admin,
            &kes,
            "k",
            json!({"ciphertext": g["ciphertext"], "version": v}),
        )
        .await;
        assert_eq!((r.status, &r.json()["plaintext"]), (200, pt), "{v}");
    }
    // Naming the wrong version fails authentication, as any wrong key does.
    let r = decrypt(
        &admin,
        &kes,
        "k",
        json!({"ciphertext": g1["ciphertext"], "version": "v3"}),
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (400, "decryption failed: ciphertext is not authentic".into())
    );

    // describe lists the versions, newest first, without key material.
    let d = send(&admin, "GET", &kes.url("/v1/key/describe/k"), None)
        .await
        .json();
    assert_eq!(d["version"], "v3");
    let names: Vec<&str> = d["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["v3", "v2", "v1"]);
    assert!(d["versions"][0]["created_at"].is_string());
    assert_eq!(
        d["versions"][0].as_object().unwrap().len(),
        4,
        "{d}: version, algorithm, created_at, created_by only"
    );

    // HMAC: the newest by default, and a named version gives the same MAC as before rotating.
    let h = post(&admin, &kes, "/v1/key/hmac/k", mac(Some("v1")))
        .await
        .json();
    assert_eq!(h["hmac"], h1["hmac"]);
    assert_eq!(h["version"], "v1");
    let h = post(&admin, &kes, "/v1/key/hmac/k", mac(None)).await.json();
    assert_ne!(h["hmac"], h1["hmac"]);
    assert_eq!(h["version"], "v3");

    // Removing an old version: its ciphertexts no longer decrypt, the others still do.
    let r = send(
        &admin,
        "DELETE",
        &kes.url("/v1/key/version/delete/k/v1"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = decrypt(&admin, &kes, "k", json!({"ciphertext": g1["ciphertext"]})).await;
    assert_eq!(r.status, 400);
    let r = decrypt(
        &admin,
        &kes,
        "k",
        json!({"ciphertext": g1["ciphertext"], "version": "v1"}),
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (404, "key version does not exist".into())
    );
    let r = post(&admin, &kes, "/v1/key/hmac/k", mac(Some("v1"))).await;
    assert_eq!(
        (r.status, r.message()),
        (404, "key version does not exist".into())
    );
    let r = decrypt(&admin, &kes, "k", json!({"ciphertext": g2["ciphertext"]})).await;
    assert_eq!((r.status, &r.json()["plaintext"]), (200, &pt2));

    // The refusals.
    for (method, path, body, status, message) in [
        (
            "DELETE",
            "/v1/key/version/delete/k/v3",
            None,
            400,
            "the newest version of a key cannot be removed",
        ),
        (
            "DELETE",
            "/v1/key/version/delete/k/v9",
            None,
            404,
            "key version does not exist",
        ),
        (
            "DELETE",
            "/v1/key/version/delete/k/x1",
            None,
            400,
            "invalid key version",
        ),
        (
            "DELETE",
            "/v1/key/version/delete/nope/v1",
            None,
            404,
            "key does not exist",
        ),
        (
            "POST",
            "/v1/key/rotate/nope",
            None,
            404,
            "key does not exist",
        ),
        (
            "POST",
            "/v1/key/decrypt/k",
            Some(json!({"ciphertext": g2["ciphertext"], "version": "latest"})),
            400,
            "invalid key version",
        ),
        (
            "POST",
            "/v1/key/rotate/k",
            Some(json!({"key": B64.encode([7u8; 16]), "cipher": "AES256"})),
            406,
            "invalid key size for 'AES256'",
        ),
    ] {
        let body = body.map(|b: Value| serde_json::to_vec(&b).unwrap());
        let r = send(&admin, method, &kes.url(path), body).await;
        assert_eq!(
            (r.status, r.message()),
            (status, message.to_owned()),
            "{method} {path}"
        );
    }

    // Rotating to an imported key: the new version is exactly that key.
    let imported = [9u8; 32];
    let r = post(
        &admin,
        &kes,
        "/v1/key/rotate/k",
        json!({"key": B64.encode(imported), "cipher": "AES256"}),
    )
    .await;
    assert_eq!(r.json()["version"], "v4");
    let ct = kes_crypto::SecretKey::from_slice(kes_crypto::KeyType::Aes256, &imported)
        .unwrap()
        .encrypt(b"from outside", b"")
        .unwrap();
    let r = decrypt(&admin, &kes, "k", json!({"ciphertext": B64.encode(&ct)})).await;
    assert_eq!(r.json()["plaintext"], B64.encode(b"from outside"));

    // Policies apply to the new routes like to every route.
    let app = client(Who::App);
    let r = send(&app, "POST", &kes.url("/v1/key/rotate/app-k"), None).await;
    assert_eq!(r.status, 403);
}

/// Reads the newest version from a stored record the way the original server does: strict
/// padded standard base64, then the protobuf `KeyVersion`, skipping every field it does not
/// know. Returns (secret key, key type).
pub(crate) fn read_as_the_original(stored: &[u8]) -> (Vec<u8>, u64) {
    let raw = B64.decode(stored).expect("strict base64");
    let mut fields = Fields(&raw);
    let mut key = None;
    while let Some((number, value)) = fields.next() {
        // HMACKey, CreatedAt, CreatedBy and anything else: not needed here, or unknown.
        if let (1, Field::Bytes(secret)) = (number, value) {
            let mut inner = Fields(secret);
            let (mut bytes, mut ty) = (Vec::new(), 0);
            while let Some((n, v)) = inner.next() {
                match (n, v) {
                    (1, Field::Bytes(b)) => bytes = b.to_vec(),
                    (2, Field::Varint(t)) => ty = t,
                    _ => {}
                }
            }
            key = Some((bytes, ty));
        }
    }
    key.expect("a Key field")
}

/// The key type of the original's record numbering (§4.1): 1 AES-256, 2 ChaCha20.
pub(crate) fn original_key_type(ty: u64) -> kes_crypto::KeyType {
    match ty {
        1 => kes_crypto::KeyType::Aes256,
        2 => kes_crypto::KeyType::ChaCha20,
        other => panic!("key type {other}"),
    }
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The fields of a protobuf message (varint and length-delimited wire types; fixed-size ones
/// are skipped as the format defines).
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn varint(&mut self) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (b, rest) = self.0.split_first().expect("truncated varint");
            self.0 = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return value;
            }
        }
        panic!("varint too long")
    }

    fn next(&mut self) -> Option<(u64, Field<'a>)> {
        if self.0.is_empty() {
            return None;
        }
        let tag = self.varint();
        let value = match tag & 7 {
            0 => Field::Varint(self.varint()),
            2 => {
                let len = usize::try_from(self.varint()).unwrap();
                let (bytes, rest) = self.0.split_at(len);
                self.0 = rest;
                Field::Bytes(bytes)
            }
            1 => {
                self.0 = &self.0[8..];
                Field::Varint(0)
            }
            5 => {
                self.0 = &self.0[4..];
                Field::Varint(0)
            }
            other => panic!("wire type {other}"),
        };
        Some((tag >> 3, value))
    }
}

#[tokio::test]
async fn the_original_reads_the_newest_version_of_a_rotated_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let kes = Kes::start(dir.path(), &config(&keys, ""));
    let admin = client(Who::Admin);
    send(&admin, "POST", &kes.url("/v1/key/create/k"), None).await;
    let before = std::fs::read(keys.join("k")).unwrap();
    // A key never rotated: the record is exactly one KeyVersion (nothing but fields 1-4).
    let mut fields = Fields(&B64.decode(&before).unwrap()[..]).0.to_vec();
    let mut f = Fields(&fields[..]);
    while let Some((n, _)) = f.next() {
        assert!((1..=4).contains(&n), "field {n} in a record never rotated");
    }
    fields.clear();

    rotate(&admin, &kes, "k").await;
    rotate(&admin, &kes, "k").await;
    let (pt, g) = generate(&admin, &kes, "k").await;
    let stored = std::fs::read(keys.join("k")).unwrap();
    assert!(!stored.ends_with(b"\n"));
    let (secret, ty) = read_as_the_original(&stored);
    assert_eq!(secret.len(), 32);
    let ty = original_key_type(ty);
    // The newest version alone opens what the newest version sealed.
    let ct = B64.decode(g["ciphertext"].as_str().unwrap()).unwrap();
    let opened = kes_crypto::SecretKey::from_slice(ty, &secret)
        .unwrap()
        .decrypt(&ct, b"")
        .unwrap();
    assert_eq!(B64.encode(opened.expose_secret()), pt.as_str().unwrap());
    // And the record parses as a plain KeyVersion with this crate's own parser too.
    let plain = kes_crypto::KeyVersion::parse(&stored).unwrap();
    assert_eq!(&plain.key().expose_secret()[..], &secret[..]);
}

fn two_servers(keys: &Path, a: &Path, b: &Path) -> (Kes, Kes) {
    let cfg = config(keys, "");
    (Kes::start(a, &cfg), Kes::start(b, &cfg))
}

/// Creates `key` through server `a`, then rotates it `2 * each` times at once, alternating
/// between servers `a` and `b` over one keystore, and checks what every keystore with rotation
/// must hold: each rotation got a version of its own and all are kept; a data key sealed on `b` with
/// the first version before the race and one sealed on `a` with the newest after it decrypt on
/// both servers (`b` reads the key again for the newest). Returns the newest one's generate reply.
pub(crate) async fn racing_rotations_keep_every_version(
    a: &Kes,
    b: &Kes,
    key: &str,
    each: usize,
) -> Value {
    let admin = client(Who::Admin);
    let r = send(
        &admin,
        "POST",
        &a.url(&format!("/v1/key/create/{key}")),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (_, first) = generate(&admin, b, key).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..2 * each {
        let admin = admin.clone();
        let url = [a, b][i % 2].url(&format!("/v1/key/rotate/{key}"));
        tasks.spawn(async move { send(&admin, "POST", &url, None).await });
    }
    let mut versions = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        versions.push(r.json()["version"].as_str().unwrap().to_owned());
    }
    versions.sort();
    versions.dedup();
    assert_eq!(
        versions.len(),
        2 * each,
        "every rotation got its own version"
    );
    let d = send(
        &admin,
        "GET",
        &b.url(&format!("/v1/key/describe/{key}")),
        None,
    )
    .await
    .json();
    assert_eq!(d["versions"].as_array().unwrap().len(), 2 * each + 1, "{d}");
    assert_eq!(d["version"], format!("v{}", 2 * each + 1));

    let (_, newest) = generate(&admin, a, key).await;
    assert_eq!(newest["version"], format!("v{}", 2 * each + 1));
    for (g, server) in [(&newest, b), (&first, a), (&first, b)] {
        let r = decrypt(&admin, server, key, json!({"ciphertext": g["ciphertext"]})).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["plaintext"], g["plaintext"]);
    }
    newest
}

#[tokio::test]
async fn racing_rotations_on_two_servers_keep_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ka, kb) = two_servers(&dir.path().join("keys"), a.path(), b.path());
    racing_rotations_keep_every_version(&ka, &kb, "race", 12).await;
}

#[tokio::test]
async fn a_server_whose_cache_is_behind_refreshes_the_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ka, kb) = two_servers(&dir.path().join("keys"), a.path(), b.path());
    let admin = client(Who::Admin);
    send(&admin, "POST", &ka.url("/v1/key/create/shared"), None).await;
    // B caches the key (version 1).
    let (pt1, g1) = generate(&admin, &kb, "shared").await;
    // A rotates and seals with version 2 at once.
    assert_eq!(rotate(&admin, &ka, "shared").await, "v2");
    let (pt2, g2) = generate(&admin, &ka, "shared").await;
    assert_eq!(g2["version"], "v2");
    // B, still caching version 1, decrypts it: it reads the key again instead of failing.
    let r = decrypt(
        &admin,
        &kb,
        "shared",
        json!({"ciphertext": g2["ciphertext"]}),
    )
    .await;
    assert_eq!((r.status, &r.json()["plaintext"]), (200, &pt2));
    let r = decrypt(
        &admin,
        &kb,
        "shared",
        json!({"ciphertext": g1["ciphertext"]}),
    )
    .await;
    assert_eq!((r.status, &r.json()["plaintext"]), (200, &pt1));
    // Also when the version is named, after another rotation on A. A server reads a key again
    // at most once a second, so that requests cannot turn into keystore reads each.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(rotate(&admin, &ka, "shared").await, "v3");
    let (pt3, g3) = generate(&admin, &ka, "shared").await;
    let r = decrypt(
        &admin,
        &kb,
        "shared",
        json!({"ciphertext": g3["ciphertext"], "version": "v3"}),
    )
    .await;
    assert_eq!((r.status, &r.json()["plaintext"]), (200, &pt3));
}

#[tokio::test]
async fn scheduled_rotation_happens_once_per_period_across_servers_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = config(&dir.path().join("keys"), "rotation:\n  sched-*: 2s\n");
    let (ka, kb) = (Kes::start(a.path(), &cfg), Kes::start(b.path(), &cfg));
    let admin = client(Who::Admin);
    for key in ["sched-a", "other"] {
        let r = send(
            &admin,
            "POST",
            &ka.url(&format!("/v1/key/create/{key}")),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
    }
    // Wait for two scheduled rotations (bounded), reading the keystore's record itself: the
    // servers' caches learn of a rotation by the other server only when they expire.
    let record = dir.path().join("keys/sched-a");
    let mut times: Vec<time::OffsetDateTime> = Vec::new();
    for _ in 0..60 {
        let ring = kes_crypto::KeyRing::parse(&std::fs::read(&record).unwrap()).unwrap();
        times = ring.versions().map(|(_, v)| v.created_at()).collect();
        if times.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(
        times.len() >= 3,
        "{times:?}\n{}\n{}",
        ka.stderr(),
        kb.stderr()
    );
    // Once per period across both servers: each version is at least the period younger than
    // the one before it.
    for pair in times.windows(2) {
        assert!(
            pair[0] - pair[1] >= time::Duration::seconds(2),
            "versions made at {times:?}"
        );
    }
    // A key no rule names is left alone.
    let d = send(&admin, "GET", &ka.url("/v1/key/describe/other"), None)
        .await
        .json();
    assert!(d.get("versions").is_none(), "{d}");
    // Every rotation is audited by the server that made it, and logged (the lines may follow
    // the keystore write by a moment).
    let count = || {
        [&ka, &kb]
            .iter()
            .map(|k| {
                k.stdout()
                    .matches("\"path\":\"/v1/key/rotate/sched-a\"")
                    .count()
            })
            .sum::<usize>()
    };
    let mut audited = count();
    for _ in 0..40 {
        if audited >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        audited = count();
    }
    assert!(audited >= 2, "{}\n{}", ka.stdout(), kb.stdout());
    assert!(
        format!("{}{}", ka.stderr(), kb.stderr()).contains("rotated key 'sched-a' to v2"),
        "{}",
        ka.stderr()
    );
}
