//! Crash consistency of the filesystem keystore: SIGKILL while creates are in flight.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::harness::{Kes, Who, client, default_config, send, start_default};

/// Runs `tasks` concurrent clients against `kes`, SIGKILLs the server after 700 ms, and gathers
/// what the clients saw acknowledged. Task `t` runs `work(t, base URL, stop)`, which must end
/// soon after `stop` is set (it is, once the server is dead).
async fn sigkill_during<T, F, Fut>(kes: Kes, tasks: usize, work: F) -> Vec<T>
where
    F: Fn(usize, String, Arc<AtomicBool>) -> Fut,
    Fut: Future<Output = Vec<T>> + Send + 'static,
    T: Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..tasks {
        let url = kes.url("");
        let stop = stop.clone();
        handles.push(tokio::spawn(work(t, url, stop)));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    kes.kill();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for handle in handles {
        acknowledged.extend(handle.await.unwrap());
    }
    acknowledged
}

/// The key file `<ks>/<name>` exists and holds a whole key.
fn assert_key_file(ks: &Path, name: &str) {
    let bytes = std::fs::read(ks.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    kes_crypto::KeyVersion::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_creates_loses_no_acknowledged_key_and_leaves_no_partial_file() {
    let (dir, kes) = start_default();
    let ks = dir.path().join("keys");
    let acknowledged = sigkill_during(kes, 8, |t, url, stop| async move {
        let admin = client(Who::Admin);
        let mut acknowledged = Vec::new();
        // Bounded: at most 2,000 creates per task.
        for i in 0..2000 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let name = format!("crash-{t}-{i}");
            let res = admin
                .post(format!("{url}/v1/key/create/{name}"))
                .send()
                .await;
            match res {
                Ok(r) if r.status() == 200 => acknowledged.push(name),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        acknowledged
    })
    .await;
    assert!(
        acknowledged.len() > 10,
        "too few creates before the kill: {}",
        acknowledged.len()
    );

    // Every acknowledged key is intact on disk; no file is partial.
    for name in &acknowledged {
        assert_key_file(&ks, name);
    }
    for entry in std::fs::read_dir(&ks).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.starts_with('.') {
            continue; // an unfinished temp file: never visible as a key
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        kes_crypto::KeyVersion::parse(&bytes)
            .unwrap_or_else(|e| panic!("partial key file {name}: {e}"));
    }

    // After a restart every acknowledged key works and temp files are gone.
    let kes = Kes::start(dir.path(), &default_config(dir.path()));
    let admin = client(Who::Admin);
    for name in acknowledged.iter().step_by(7) {
        let r = send(
            &admin,
            "POST",
            &kes.url(&format!("/v1/key/generate/{name}")),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{name}");
    }
    let r = send(&admin, "GET", &kes.url("/v1/key/list/crash-"), None).await;
    let listed = r.json()["names"].as_array().unwrap().len();
    assert!(listed >= acknowledged.len());
    let leftovers: Vec<_> = std::fs::read_dir(&ks)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_creates_and_deletes_keeps_every_acknowledged_change() {
    let (dir, kes) = start_default();
    let ks = dir.path().join("keys");
    let acknowledged = sigkill_during(kes, 6, |t, url, stop| async move {
        let admin = client(Who::Admin);
        // Every acknowledged create, with what is known of it afterwards: `Some(true)` no
        // delete was tried, `Some(false)` an acknowledged delete, `None` a delete was sent but
        // not acknowledged (either outcome is allowed).
        let mut acknowledged: Vec<(String, Option<bool>)> = Vec::new();
        // Bounded: at most 1,000 rounds of create + delete of the previous key.
        for i in 0..1000 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let name = format!("cd-{t}-{i}");
            match admin
                .post(format!("{url}/v1/key/create/{name}"))
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => acknowledged.push((name, Some(true))),
                Ok(_) => {}
                Err(_) => break,
            }
            if i % 2 == 1 {
                let victim = format!("cd-{t}-{}", i - 1);
                let Some(entry) = acknowledged.iter_mut().find(|(n, _)| *n == victim) else {
                    continue;
                };
                entry.1 = None;
                match admin
                    .delete(format!("{url}/v1/key/delete/{victim}"))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => entry.1 = Some(false),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        acknowledged
    })
    .await;
    let deleted = acknowledged
        .iter()
        .filter(|(_, state)| *state == Some(false))
        .count();
    assert!(deleted > 5, "too few deletes before the kill: {deleted}");
    for (name, state) in &acknowledged {
        let path = ks.join(name);
        let Some(present) = state else { continue };
        if *present {
            assert_key_file(&ks, name);
        } else {
            assert!(!path.exists(), "acknowledged delete of {name} came back");
        }
    }
}
