#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{FsKeyStore, TEMP_PREFIX, rename_noreplace};
use crate::testkit::run_conformance;
use crate::{Error, KeyStore};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The repository's `testdata`.
fn shared_testdata() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    assert!(dir.is_dir(), "test data missing at {}", dir.display());
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    run_conformance(FsKeyStore::open(&path).await.unwrap()).await;
    // Nothing is left behind: no key file, no temporary file.
    assert_eq!(dir_entries(&path), Vec::<String>::new());
}

#[tokio::test]
async fn open_creates_private_directory_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/keys");
    let store = FsKeyStore::open(&path).await.unwrap();
    assert_eq!(store.path(), path);
    assert_eq!(mode(&path), 0o700);
    assert_eq!(mode(&dir.path().join("a")), 0o700);

    store.create("my-key", b"record").await.unwrap();
    let file = path.join("my-key");
    assert_eq!(mode(&file), 0o600);
    // The original's layout: the file is named after the key and holds exactly the value.
    assert_eq!(fs::read(&file).unwrap(), b"record");
    assert_eq!(dir_entries(&path), ["my-key"]);
}

#[tokio::test]
async fn open_keeps_mode_of_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    FsKeyStore::open(dir.path()).await.unwrap();
    assert_eq!(mode(dir.path()), 0o755);
}

#[tokio::test]
async fn open_rejects_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let err = FsKeyStore::open(&file).await.unwrap_err();
    assert!(matches!(err, Error::Other(_)), "{err:?}");
    assert!(err.to_string().contains("is not a directory"), "{err}");

    let err = FsKeyStore::open(file.join("below")).await.unwrap_err();
    assert!(err.to_string().starts_with("fs: cannot "), "{err}");
}

#[tokio::test]
async fn reads_a_directory_written_by_the_original() {
    // A record as the original wrote it, with std::fs and no help from the store.
    let dir = tempfile::tempdir().unwrap();
    let record = br#"{"bytes":"Po7zpqDzCNdtuatN8yT15zBwsgPNiRQJt493iQX7kw8=","algorithm":"AES256-GCM_SHA256","created_at":"2021-06-01T10:00:00Z"}"#;
    fs::write(dir.path().join("legacy-key"), record).unwrap();
    let store = FsKeyStore::open(dir.path()).await.unwrap();
    assert_eq!(store.list("").await.unwrap(), ["legacy-key"]);
    assert_eq!(store.get("legacy-key").await.unwrap().as_slice(), record);
    assert!(matches!(
        store.create("legacy-key", b"other").await,
        Err(Error::Exists)
    ));
    assert_eq!(store.get("legacy-key").await.unwrap().as_slice(), record);
}

#[tokio::test]
async fn reads_the_recorded_keystore_of_the_original() {
    let testdata = shared_testdata();
    let recorded = testdata.join("kes-interop/keystore");
    // Work on a copy: the store must not be able to touch the shared data.
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for entry in fs::read_dir(&recorded).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        names.push(entry.file_name().into_string().unwrap());
    }
    names.sort();
    assert_eq!(
        names,
        ["vec-aes", "vec-chacha", "vec-created", "vec-legacy"]
    );

    let store = FsKeyStore::open(dir.path()).await.unwrap();
    assert_eq!(store.list("").await.unwrap(), names);
    assert_eq!(
        store.list("vec-c").await.unwrap(),
        ["vec-chacha", "vec-created"]
    );
    for name in &names {
        let want = fs::read(recorded.join(name)).unwrap();
        assert_eq!(store.get(name).await.unwrap().as_slice(), want, "{name}");
    }
}

#[tokio::test]
async fn list_ignores_what_is_not_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let store = FsKeyStore::open(path).await.unwrap();
    store.create("key-1", b"one").await.unwrap();

    fs::write(path.join(format!("{TEMP_PREFIX}1-2-3")), b"partial").unwrap();
    fs::write(path.join(".hidden"), b"x").unwrap();
    fs::write(path.join("notes.txt"), b"x").unwrap();
    fs::write(path.join("back\\slash"), b"x").unwrap();
    fs::create_dir(path.join("key-dir")).unwrap();
    symlink(path.join("key-1"), path.join("key-link")).unwrap();
    symlink(path.join("missing"), path.join("key-dangling")).unwrap();
    symlink(path.join("key-dir"), path.join("key-dirlink")).unwrap();

    assert_eq!(store.list("").await.unwrap(), ["key-1", "key-link"]);
    assert_eq!(store.list("key-").await.unwrap(), ["key-1", "key-link"]);
    assert_eq!(store.get("key-link").await.unwrap().as_slice(), b"one");
    assert!(matches!(store.get("key-dir").await, Err(Error::NotFound)));
    assert!(matches!(
        store.get("key-dangling").await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn get_of_a_fifo_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("key-fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot run mkfifo");
        return;
    }
    let store = FsKeyStore::open(dir.path()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), store.get("key-fifo"))
        .await
        .expect("get of a FIFO hung");
    assert!(matches!(got, Err(Error::NotFound)));
    assert_eq!(store.list("").await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn open_removes_only_stale_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let stale = path.join(format!("{TEMP_PREFIX}1-1-1"));
    let fresh = path.join(format!("{TEMP_PREFIX}1-2-2"));
    let dotfile = path.join(".keep");
    for file in [&stale, &fresh, &dotfile] {
        fs::write(file, b"partial").unwrap();
    }
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for file in [&stale, &dotfile] {
        fs::File::options()
            .write(true)
            .open(file)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
    }
    FsKeyStore::open(path).await.unwrap();
    assert!(!stale.exists(), "a stale temporary file survived");
    assert!(fresh.exists(), "a recent temporary file was removed");
    assert!(dotfile.exists(), "a file that is not ours was removed");
}

#[tokio::test]
async fn failed_create_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let store = FsKeyStore::open(path).await.unwrap();

    // An existing name.
    store.create("key", b"first").await.unwrap();
    assert!(matches!(
        store.create("key", b"second").await,
        Err(Error::Exists)
    ));
    assert_eq!(dir_entries(path), ["key"]);
    assert_eq!(fs::read(path.join("key")).unwrap(), b"first");

    // A name the filesystem refuses after the value was written to the temporary file.
    let long = "k".repeat(300);
    let err = store.create(&long, b"SECRET-VALUE").await.unwrap_err();
    assert!(matches!(err, Error::Other(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("fs: cannot create key '{long}': ")),
        "{msg}"
    );
    assert!(!msg.contains("SECRET"), "{msg}");
    assert!(!format!("{err:?}").contains("SECRET"));
    assert_eq!(dir_entries(path), ["key"]);
}

#[tokio::test]
async fn invalid_names_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::write(&outside, b"x").unwrap();
    let store = FsKeyStore::open(dir.path().join("keys")).await.unwrap();
    let bad = [
        "",
        "a/b",
        "../outside",
        "..",
        ".",
        "a.b",
        ".kes-tmp-1-2-3",
        "a\\b",
        "a\0b",
    ];
    for name in bad {
        for result in [
            store.create(name, b"SECRET").await,
            store.get(name).await.map(|_| ()),
            store.delete(name).await,
        ] {
            let err = result.unwrap_err();
            assert!(matches!(err, Error::Other(_)), "{name:?}: {err:?}");
            let msg = err.to_string();
            assert!(msg.starts_with("fs: invalid key name '"), "{msg}");
            assert!(!msg.contains("SECRET"));
        }
    }
    assert!(outside.exists());
    assert_eq!(dir_entries(&dir.path().join("keys")), Vec::<String>::new());
}

#[tokio::test]
async fn get_refuses_values_over_one_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsKeyStore::open(dir.path()).await.unwrap();
    let max = vec![7u8; 1 << 20];
    fs::write(dir.path().join("max"), &max).unwrap();
    fs::write(dir.path().join("over"), vec![7u8; (1 << 20) + 1]).unwrap();
    assert_eq!(store.get("max").await.unwrap().as_slice(), max);
    let err = store.get("over").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "fs: cannot read key 'over': the value is larger than 1 MiB"
    );
}

#[tokio::test]
async fn delete_removes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsKeyStore::open(dir.path()).await.unwrap();
    store.create("key", b"v").await.unwrap();
    store.delete("key").await.unwrap();
    assert!(!dir.path().join("key").exists());
    assert!(matches!(store.delete("key").await, Err(Error::NotFound)));
}

#[tokio::test]
async fn status_reports_a_missing_directory_as_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let store = FsKeyStore::open(&path).await.unwrap();
    store.status().await.unwrap();
    fs::remove_dir(&path).unwrap();
    let err = store.status().await.unwrap_err();
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("keystore is unreachable: fs: cannot access the keystore directory"),
        "{err}"
    );
    fs::write(&path, b"now a file").unwrap();
    assert!(matches!(store.status().await, Err(Error::Unreachable(_))));
}

#[test]
fn exclusive_rename_never_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    fs::write(&a, b"a").unwrap();
    fs::write(&b, b"b").unwrap();
    let err = rename_noreplace(&a, &b).unwrap_err();
    if cfg!(target_os = "linux") {
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&b).unwrap(), b"b");
        rename_noreplace(&a, &c).unwrap();
        assert!(!a.exists());
        assert_eq!(fs::read(&c).unwrap(), b"a");
    } else {
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    }
}

/// One directory is one store however it is named (`..`, a symbolic link); `kes migrate` relies
/// on this to refuse copying a store onto itself.
#[tokio::test]
async fn one_directory_has_one_locator() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let store = FsKeyStore::open(&a).await.unwrap();
    let dotted = FsKeyStore::open(dir.path().join("a/../a")).await.unwrap();
    assert!(store.locator().overlaps(&dotted.locator()));
    let link = dir.path().join("link");
    symlink(&a, &link).unwrap();
    let linked = FsKeyStore::open_existing(&link).await.unwrap();
    assert!(store.locator().overlaps(&linked.locator()));
    let other = FsKeyStore::open(dir.path().join("b")).await.unwrap();
    assert!(!store.locator().overlaps(&other.locator()));
}

/// Opening a store that must exist creates nothing.
#[tokio::test]
async fn open_existing_never_creates_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = FsKeyStore::open_existing(&missing).await.unwrap_err();
    assert!(matches!(err, Error::Other(_)), "{err:?}");
    assert_eq!(err.to_string(), "the directory does not exist");
    assert!(!missing.exists());
}
