//! Keystore faults on the filesystem keystore: a corrupted key file, a read-only directory, a
//! full disk. Clear 5xx errors, nothing else damaged, recovery without a restart.
//!
//! The read-only and disk-full tests mount a small tmpfs, which needs root; elsewhere they skip
//! with a printed reason.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::harness::{Kes, Who, client, config, send, send_json, start_default, status};

/// A tmpfs mounted for the life of the guard.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs (needs root)");
            return None;
        }
        Some(Tmpfs(path.to_owned()))
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A server whose keystore `<dir>/keys` is a fresh tmpfs of `size`, or `None` (skip) where no
/// tmpfs can be mounted. Bind all three, in this order, so the server stops before the unmount.
fn start_on_tmpfs(size: &str) -> Option<(tempfile::TempDir, Tmpfs, Kes)> {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("keys");
    let fs = Tmpfs::mount(&ks, size)?;
    let kes = Kes::start(dir.path(), &config(&ks, ""));
    Some((dir, fs, kes))
}

#[tokio::test]
async fn a_corrupted_key_file_is_a_502_and_recovers_when_repaired() {
    let (dir, kes) = start_default();
    let ks = dir.path().join("keys");
    let admin = client(Who::Admin);
    for k in ["good", "bad"] {
        assert_eq!(
            status(&admin, "POST", &kes.url(&format!("/v1/key/create/{k}"))).await,
            200
        );
    }
    let original = std::fs::read(ks.join("bad")).unwrap();
    for garbage in [
        &b""[..],
        b"not base64!",
        b"{\"bytes\":\"AAAA\"}",
        &original[..original.len() / 2],
    ] {
        std::fs::write(ks.join("bad"), garbage).unwrap();
        let r = send(&admin, "POST", &kes.url("/v1/key/generate/bad"), None).await;
        assert_eq!((r.status, r.message()), (502, "failed to read key".into()));
        let r = send(&admin, "GET", &kes.url("/v1/key/describe/bad"), None).await;
        assert_eq!(r.status, 502);
        // Nothing else is affected.
        assert_eq!(
            status(&admin, "POST", &kes.url("/v1/key/generate/good")).await,
            200
        );
    }
    // The error log names the key, never its content.
    assert!(kes.stderr().contains("'bad'"), "{}", kes.stderr());
    std::fs::write(ks.join("bad"), &original).unwrap();
    assert_eq!(
        status(&admin, "POST", &kes.url("/v1/key/generate/bad")).await,
        200
    );
}

#[tokio::test]
async fn a_read_only_keystore_fails_writes_cleanly_and_recovers() {
    let Some((dir, fs, kes)) = start_on_tmpfs("1m") else {
        return;
    };
    let ks = dir.path().join("keys");
    let admin = client(Who::Admin);
    assert_eq!(
        status(&admin, "POST", &kes.url("/v1/key/create/k1")).await,
        200
    );
    let r = send(&admin, "POST", &kes.url("/v1/key/generate/k1"), None).await;
    let ct = r.json()["ciphertext"].clone();
    fs.remount("ro");
    let r = send(&admin, "POST", &kes.url("/v1/key/create/k2"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (502, "failed to create key".into())
    );
    let r = send(&admin, "DELETE", &kes.url("/v1/key/delete/k1"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (502, "failed to delete key".into())
    );
    // Reads still work.
    let r = send_json(
        &admin,
        "POST",
        &kes.url("/v1/key/decrypt/k1"),
        &json!({"ciphertext": ct}),
    )
    .await;
    assert_eq!(r.status, 200);
    fs.remount("rw");
    assert_eq!(
        status(&admin, "POST", &kes.url("/v1/key/create/k2")).await,
        200
    );
    // No temp file was left behind by the failed attempts.
    let leftovers: Vec<_> = std::fs::read_dir(&ks)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

#[tokio::test]
async fn a_full_disk_fails_creates_cleanly_and_recovers() {
    let Some((dir, _fs, kes)) = start_on_tmpfs("64k") else {
        return;
    };
    let ks = dir.path().join("keys");
    let admin = client(Who::Admin);
    let mut created = Vec::new();
    let mut full = false;
    // tmpfs allocates a 4 KiB page per file: 64 KiB hold at most 16 keys.
    for i in 0..64 {
        let name = format!("k{i}");
        let r = send(
            &admin,
            "POST",
            &kes.url(&format!("/v1/key/create/{name}")),
            None,
        )
        .await;
        match r.status {
            200 => created.push(name),
            502 => {
                assert_eq!(r.message(), "failed to create key");
                full = true;
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(full, "the disk never filled");
    // Every acknowledged key is intact; no partial or temp file.
    for entry in std::fs::read_dir(&ks).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        assert!(created.contains(&name), "unexpected file {name}");
        kes_crypto::KeyVersion::parse(&std::fs::read(entry.path()).unwrap()).unwrap();
    }
    for name in &created {
        assert_eq!(
            status(
                &admin,
                "POST",
                &kes.url(&format!("/v1/key/generate/{name}"))
            )
            .await,
            200
        );
    }
    // Free space: creates work again without a restart.
    assert_eq!(
        status(
            &admin,
            "DELETE",
            &kes.url(&format!("/v1/key/delete/{}", created[0]))
        )
        .await,
        200
    );
    assert_eq!(
        status(&admin, "POST", &kes.url("/v1/key/create/after")).await,
        200
    );
}
