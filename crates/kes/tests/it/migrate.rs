//! `kes migrate`, run as a real process on real keystores: directories (fs) and OpenBao.
//!
//! What users rely on: only the keys matching the pattern are copied, byte for byte; the source
//! is never changed; an existing target key stops the migration (nothing overwritten) unless
//! `--merge` (kept) or `--force` (replaced); a server started on the migrated keystore decrypts
//! what a server on the source encrypted; errors say what is wrong.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;

use crate::harness::{Kes, Who, client, config, kes_bin, send, send_json};
use crate::vault::bao::Bao;
use crate::vault::{approle_section, prepare, vault_config};

/// What one run of `kes migrate` did.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) status: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `kes migrate <args>` in `dir` with an empty environment plus `env` (at most 60 s).
pub(crate) fn migrate_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut child = Command::new(kes_bin())
        .arg("migrate")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kes migrate {args:?} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Out {
        status: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

pub(crate) fn migrate(dir: &Path, args: &[&str]) -> Out {
    migrate_env(dir, args, &[])
}

/// Every file of a directory (temporary files too) and its bytes; empty if it does not exist.
pub(crate) fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// A fresh key record, as the server stores it.
fn record(owner: &str) -> Vec<u8> {
    kes_crypto::KeyVersion::generate(
        kes_crypto::KeyType::default_for_new_keys(),
        owner.to_owned(),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap()
    .encode()
    .unwrap()
    .as_bytes()
    .to_vec()
}

/// `<dir>/<name>.yml`: a server config (committed PKI) with the fs keystore `<dir>/<name>`.
fn fs_config(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let keys = dir.join(name);
    let path = dir.join(format!("{name}.yml"));
    std::fs::write(&path, config(&keys, "")).unwrap();
    (path, keys)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// fs → fs with a pattern: exactly the matching keys arrive, with the source's bytes; the
/// source directory is unchanged, file for file.
#[test]
fn only_matching_records_are_copied_byte_for_byte_and_the_source_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (from, src) = fs_config(dir.path(), "src");
    let (to, dst) = fs_config(dir.path(), "dst");
    std::fs::create_dir(&src).unwrap();
    for name in ["app-1", "app-2", "app-10", "apple", "other"] {
        std::fs::write(src.join(name), record(name)).unwrap();
    }
    // A record with a trailing newline (as a hand-edited file may have): copied as it is.
    let mut odd = record("odd");
    odd.push(b'\n');
    std::fs::write(src.join("app-x"), &odd).unwrap();
    let before = files(&src);

    let out = migrate(dir.path(), &["--from", s(&from), "--to", s(&to), "app-?"]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.stdout, "Migrated 3 keys.\n");
    let copied = files(&dst);
    assert_eq!(
        copied.keys().collect::<Vec<_>>(),
        ["app-1", "app-2", "app-x"],
        "only the matching keys, and no temporary file"
    );
    for (name, bytes) in &copied {
        assert_eq!(bytes, &before[name], "{name} differs from the source");
    }
    assert_eq!(files(&src), before, "the source changed");

    // Classes, negation and escapes are Go's (plus `!`).
    let (to2, dst2) = fs_config(dir.path(), "dst2");
    let out = migrate(
        dir.path(),
        &["--from", s(&from), "--to", s(&to2), "[!o]pp[^\\-]*"],
    );
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(files(&dst2).keys().collect::<Vec<_>>(), ["apple"]);

    // No match: nothing to do, and said so.
    let out = migrate(dir.path(), &["--from", s(&from), "--to", s(&to2), "nope-*"]);
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (
            0,
            "Migrated 0 keys: no key in the source keystore matches 'nope-*'.\n"
        )
    );
    assert_eq!(files(&src), before, "the source changed");
}

/// A key that exists in the target: an error naming it, after the keys before it were
/// copied, and nothing overwritten; `--merge` keeps the target's record; `--force` replaces it;
/// `--force --merge` is an error that touches nothing.
#[test]
fn existing_target_keys_stop_the_migration_unless_merge_or_force() {
    let dir = tempfile::tempdir().unwrap();
    let (from, src) = fs_config(dir.path(), "src");
    let (to, dst) = fs_config(dir.path(), "dst");
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(&dst).unwrap();
    for name in ["k1", "k2", "k3"] {
        std::fs::write(src.join(name), record("source")).unwrap();
    }
    let own = record("target");
    std::fs::write(dst.join("k2"), &own).unwrap();
    let source = files(&src);
    let args = ["--from", s(&from), "--to", s(&to)];

    let out = migrate(dir.path(), &args);
    assert_eq!(out.status, 1, "{out:?}");
    assert_eq!(out.stdout, "");
    let dst_abs = std::path::absolute(&dst).unwrap();
    assert_eq!(
        out.stderr,
        format!(
            "Error: key 'k2' already exists in the target keystore (fs keystore '{}'); migrated \
             1 key before it\nHint: it was left as it is. Use --merge to skip the keys that \
             exist in the target, or --force to replace them\n",
            dst_abs.display()
        )
    );
    let target = files(&dst);
    assert_eq!(target.keys().collect::<Vec<_>>(), ["k1", "k2"]);
    assert_eq!(target["k1"], source["k1"]);
    assert_eq!(target["k2"], own, "the target's key was overwritten");

    let out = migrate(dir.path(), &[&args[..], &["--force", "--merge"]].concat());
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("Error: '--force' and '--merge' cannot be used together"),
        "{}",
        out.stderr
    );
    assert_eq!(files(&dst), target, "a usage error changed the target");

    let out = migrate(dir.path(), &[&args[..], &["--merge"]].concat());
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "Migrated 1 key. Skipped 2 keys that already exist in the target.\n"
    );
    let target = files(&dst);
    assert_eq!(target["k2"], own, "--merge replaced the target's key");
    assert_eq!(target["k3"], source["k3"]);

    let out = migrate(dir.path(), &[&args[..], &["--force"]].concat());
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.stdout, "Migrated 3 keys (3 replaced).\n");
    assert_eq!(files(&dst), source, "--force did not replace every key");
    assert_eq!(files(&src), source, "the source changed");
}

/// The point of it all: a server on the migrated keystore decrypts what a server on the source
/// encrypted, and describes the keys alike. The source server keeps running meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_the_migrated_keystore_decrypts_what_the_source_server_encrypted() {
    let (src_dir, dst_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let src_keys = src_dir.path().join("keys");
    let source = Kes::start(src_dir.path(), &config(&src_keys, ""));
    let admin = client(Who::Admin);
    let mut sealed = Vec::new();
    for key in ["app-db", "app-web"] {
        let r = send(
            &admin,
            "POST",
            &source.url(&format!("/v1/key/create/{key}")),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
        let r = send_json(
            &admin,
            "POST",
            &source.url(&format!("/v1/key/generate/{key}")),
            &json!({"context": B64.encode("bucket/object")}),
        )
        .await;
        assert_eq!(r.status, 200);
        sealed.push((
            key,
            r.json()["plaintext"].as_str().unwrap().to_owned(),
            r.json()["ciphertext"].as_str().unwrap().to_owned(),
        ));
    }

    let dst_keys = dst_dir.path().join("keys");
    let to = dst_dir.path().join("target.yml");
    std::fs::write(&to, config(&dst_keys, "")).unwrap();
    let from = src_dir.path().join("config.yml");
    let out = tokio::task::spawn_blocking({
        let (dir, from, to) = (dst_dir.path().to_owned(), from.clone(), to.clone());
        move || migrate(&dir, &["--from", s(&from), "--to", s(&to)])
    })
    .await
    .unwrap();
    assert_eq!((out.status, out.stdout.as_str()), (0, "Migrated 2 keys.\n"));

    let target = Kes::start(dst_dir.path(), &config(&dst_keys, ""));
    for (key, plaintext, ciphertext) in &sealed {
        let r = send_json(
            &admin,
            "POST",
            &target.url(&format!("/v1/key/decrypt/{key}")),
            &json!({"ciphertext": ciphertext, "context": B64.encode("bucket/object")}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["plaintext"].as_str(), Some(plaintext.as_str()));
        let describe = format!("/v1/key/describe/{key}");
        let a = send(&admin, "GET", &source.url(&describe), None).await;
        let b = send(&admin, "GET", &target.url(&describe), None).await;
        assert_eq!(a.json(), b.json(), "{key} is described differently");
    }
}

/// Errors a person can act on, before anything is read or written.
#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (from, src) = fs_config(dir.path(), "src");
    let (to, dst) = fs_config(dir.path(), "dst");

    // The source directory does not exist: an error, and it is not created.
    let out = migrate(dir.path(), &["--from", s(&from), "--to", s(&to)]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr.starts_with(&format!(
            "Error: cannot open the source keystore (fs keystore '{}'): the directory does not \
             exist\n",
            std::path::absolute(&src).unwrap().display()
        )),
        "{}",
        out.stderr
    );
    assert!(!src.exists() && !dst.exists());

    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("k"), record("x")).unwrap();

    // A config file that does not exist.
    let missing = dir.path().join("missing.yml");
    let out = migrate(dir.path(), &["--from", s(&from), "--to", s(&missing)]);
    assert_eq!(out.status, 1, "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "Error: cannot use the target config file: {}: cannot read the config file: No such \
             file or directory (os error 2)\n",
            missing.display()
        )
    );

    // A config file with errors: every one of them, located.
    let broken = dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        "admin:\n  identity: x\nkeystore:\n  fs:\n    paht: y\n",
    )
    .unwrap();
    let out = migrate(dir.path(), &["--from", s(&broken), "--to", s(&to)]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("Error: cannot use the source config file:\n"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("broken.yml:5:"), "{}", out.stderr);

    // An unterminated class.
    let out = migrate(dir.path(), &["--from", s(&from), "--to", s(&to), "app-["]);
    assert_eq!(out.status, 1, "{out:?}");
    assert_eq!(
        out.stderr,
        "Error: invalid pattern 'app-[': a character class '[' is not closed with ']'\n"
    );
    // A trailing escape.
    let out = migrate(dir.path(), &["--from", s(&from), "--to", s(&to), "app\\"]);
    assert_eq!(
        out.stderr,
        "Error: invalid pattern 'app\\': it ends with '\\', which escapes nothing\n"
    );

    // One keystore twice, by another name (with --force, copying would delete what it
    // copies): refused, and nothing changed.
    let before = files(&src);
    std::os::unix::fs::symlink(&src, dir.path().join("link")).unwrap();
    for other in ["link", "x/../src"] {
        let same = dir.path().join("same.yml");
        std::fs::write(&same, config(&dir.path().join(other), "")).unwrap();
        let out = migrate(
            dir.path(),
            &["--from", s(&from), "--to", s(&same), "--force"],
        );
        assert_eq!(out.status, 1, "{out:?}");
        assert!(
            out.stderr
                .starts_with("Error: the source and the target are the same keystore"),
            "{}",
            out.stderr
        );
        assert_eq!(files(&src), before);
    }

    // MinKMS is not supported: by flags or by its environment.
    let out = migrate(
        dir.path(),
        &[
            "--from",
            s(&from),
            "-s",
            "127.0.0.1:7373",
            "-e",
            "e",
            "-a",
            "k",
        ],
    );
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr.starts_with(
            "Error: migrating keys to MinKMS (-s/--server, -e/--enclave, -a/--api-key, \
             -k/--insecure) is not supported by this version of kes\n"
        ),
        "{}",
        out.stderr
    );
    let out = migrate_env(
        dir.path(),
        &["--from", s(&from)],
        &[("MINIO_KMS_SERVER", "127.0.0.1:7373")],
    );
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("migrating keys to MinKMS (MINIO_KMS_SERVER is set) is not supported"),
        "{}",
        out.stderr
    );
    // None of this wrote anything.
    assert!(!dst.exists());
}

/// fs → OpenBao (K/V v2, AppRole with the documented policy) → fs: the records in OpenBao are
/// the source's bytes, a server on OpenBao decrypts what the fs server encrypted, and the way
/// back gives the original files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_to_openbao_and_back() {
    let Some(bao) = Bao::dev().await else { return };
    let (role_id, secret_id) = prepare(&bao, "1h", "24h").await;
    let vault = vault_config(
        &approle_section(std::slice::from_ref(&bao.url), &role_id, &secret_id),
        "",
    );
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
    let to = dir.path().join("vault.yml");
    std::fs::write(&to, &vault).unwrap();

    let run = |args: Vec<String>| {
        let dir = dir.path().to_owned();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            migrate(&dir, &args)
        })
    };
    let out = run(vec![
        "--from".into(),
        s(&from).into(),
        "--to".into(),
        s(&to).into(),
        "app-*".into(),
    ])
    .await
    .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "Migrated 2 keys.\n"),
        "{out:?}"
    );

    // In OpenBao: the very bytes of the files.
    let originals = files(&src_keys);
    for key in ["app-1", "app-2"] {
        let secret = bao.ok("GET", &format!("/v1/kv/data/kes/{key}"), None).await;
        let stored = secret["data"]["data"][key].as_str().unwrap();
        assert_eq!(stored.as_bytes(), &originals[key][..], "{key}");
    }
    let (status, _) = bao.api("GET", "/v1/kv/data/kes/other", None).await;
    assert_eq!(status, 404, "a key outside the pattern was copied");

    // Again, without a flag: the first key exists.
    let out = run(vec![
        "--from".into(),
        s(&from).into(),
        "--to".into(),
        s(&to).into(),
    ])
    .await
    .unwrap();
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr.starts_with(&format!(
            "Error: key 'app-1' already exists in the target keystore (vault keystore '{}' \
             engine 'kv' prefix 'kes'); migrated 0 keys before it\n",
            bao.url
        )),
        "{}",
        out.stderr
    );

    // A server on OpenBao decrypts what the fs server sealed.
    let vault_dir = tempfile::tempdir().unwrap();
    let target = Kes::start(vault_dir.path(), &vault);
    let r = send_json(
        &admin,
        "POST",
        &target.url("/v1/key/decrypt/app-1"),
        &json!({"ciphertext": ciphertext}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["plaintext"].as_str(), Some(plaintext.as_str()));

    // And back: OpenBao → a new directory gives the original files.
    let back = dir.path().join("back.yml");
    let back_keys = dir.path().join("back");
    std::fs::write(&back, config(&back_keys, "")).unwrap();
    let out = run(vec![
        "--from".into(),
        s(&to).into(),
        "--to".into(),
        s(&back).into(),
    ])
    .await
    .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "Migrated 2 keys.\n"),
        "{out:?}"
    );
    let returned = files(&back_keys);
    assert_eq!(returned.keys().collect::<Vec<_>>(), ["app-1", "app-2"]);
    for (key, bytes) in &returned {
        assert_eq!(bytes, &originals[key], "{key}");
    }
}
