//! The conformance suite that every [`KeyStore`] backend must pass (kes-spec §8.1).
//!
//! A backend's tests call [`run_conformance`] with an empty store, inside a tokio runtime
//! (preferably multi-threaded, so that concurrent creates really run in parallel):
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! async fn conformance() {
//!     kes_keystore::testkit::run_conformance(MyStore::connect(..).await.unwrap()).await;
//! }
//! ```
//!
//! The suite panics with a message naming the broken rule. Every check deletes the keys it
//! created, so a store that passes is left empty. Key names used by the suite are valid KES
//! key names (kes-spec §2.3).

// This is test support: failing loudly with a message is its purpose.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use tokio::task::JoinSet;

use crate::{Error, KeyStore};

/// What [`run_conformance_with`] exercises.
#[derive(Clone, Debug)]
pub struct ConformanceOptions {
    /// How many keys the listing-completeness check creates (default 2,000: more than the
    /// original's 1,024-entry page).
    pub many_keys: usize,
    /// How many creates of one name race each other (default 16).
    pub racing_creates: usize,
    /// Whether values may be arbitrary bytes rather than ASCII text (default `true`). Backends
    /// that can only store text, as most remote secret stores, set it to `false`.
    pub binary_values: bool,
    /// Whether names may contain `_` (default `true`). Azure Key Vault allows only letters,
    /// digits and `-` in secret names, as the original's Azure backend inherits.
    pub underscore_names: bool,
}

impl Default for ConformanceOptions {
    fn default() -> Self {
        Self {
            many_keys: 2_000,
            racing_creates: 16,
            binary_values: true,
            underscore_names: true,
        }
    }
}

/// Runs the conformance suite with the default options against `store`, which must be empty.
pub async fn run_conformance<S: KeyStore>(store: S) {
    run_conformance_with(store, ConformanceOptions::default()).await;
}

/// Runs the conformance suite against `store`, which must be empty.
pub async fn run_conformance_with<S: KeyStore>(store: S, options: ConformanceOptions) {
    let store = Arc::new(store);
    starts_empty(&*store).await;
    status_is_ok(&*store).await;
    create_then_get(&*store).await;
    create_never_overwrites(&*store).await;
    get_missing(&*store).await;
    delete(&*store).await;
    list_prefixes(&*store, options.underscore_names).await;
    list_is_complete(&store, options.many_keys).await;
    racing_creates(&store, options.racing_creates).await;
    values_round_trip(&*store, options.binary_values).await;
    replace(&store, options.racing_creates).await;
    starts_empty(&*store).await;
}

/// `replace` is a compare-and-swap, or refused as a whole with `Unsupported`: it changes a value
/// only from the expected one, never creates, and racing read-modify-write loops lose no
/// update.
async fn replace<S: KeyStore>(store: &Arc<S>, racers: usize) {
    ok(store.create("conformance-cas", b"0").await, "create");
    match store.replace("conformance-cas", b"0", b"1").await {
        Err(Error::Unsupported(_)) => {
            ok(store.delete("conformance-cas").await, "delete");
            return;
        }
        other => ok(other, "replace from the current value"),
    }
    let got = ok(store.get("conformance-cas").await, "get after replace");
    assert_eq!(got.as_slice(), b"1", "replace did not store the new value");
    match store.replace("conformance-cas", b"0", b"2").await {
        Err(Error::Changed) => {}
        other => panic!(
            "replace from a stale value must fail with Changed, got {}",
            describe(&other)
        ),
    }
    let got = ok(store.get("conformance-cas").await, "get");
    assert_eq!(got.as_slice(), b"1", "a failed replace changed the value");
    match store.replace("conformance-none", b"", b"x").await {
        Err(Error::NotFound) => {}
        other => panic!(
            "replace of a missing key must fail with NotFound, got {}",
            describe(&other)
        ),
    }
    assert!(
        ok(store.list("conformance-none").await, "list").is_empty(),
        "replace created a key"
    );

    // Racing increments: each racer adds one, retrying when it lost; none is lost.
    let mut tasks = JoinSet::new();
    for _ in 0..racers {
        let store = Arc::clone(store);
        tasks.spawn(async move {
            for _ in 0..200 {
                let current = store.get("conformance-cas").await.expect("get");
                let n: u64 = std::str::from_utf8(&current).unwrap().parse().unwrap();
                match store
                    .replace("conformance-cas", &current, (n + 1).to_string().as_bytes())
                    .await
                {
                    Ok(()) => return,
                    Err(Error::Changed) => tokio::task::yield_now().await,
                    Err(err) => panic!("replace failed: {err}"),
                }
            }
            panic!("a racer lost 200 rounds in a row");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a racing replace panicked");
    }
    let got = ok(store.get("conformance-cas").await, "get after the race");
    assert_eq!(
        got.as_slice(),
        (1 + racers).to_string().as_bytes(),
        "racing replaces lost an update"
    );
    ok(store.delete("conformance-cas").await, "delete");
}

async fn starts_empty<S: KeyStore>(store: &S) {
    let names = store.list("").await.expect("list(\"\") failed");
    assert!(
        names.is_empty(),
        "the store must be empty before and after the suite, found {names:?}"
    );
}

async fn status_is_ok<S: KeyStore>(store: &S) {
    if let Err(err) = store.status().await {
        panic!("status of a working store failed: {err}");
    }
}

async fn create_then_get<S: KeyStore>(store: &S) {
    let value = b"a-value-of-conformance-1";
    ok(store.create("conformance-1", value).await, "create");
    let got = ok(store.get("conformance-1").await, "get after create");
    assert_eq!(
        got.as_slice(),
        value,
        "get returned another value than created"
    );
    ok(store.delete("conformance-1").await, "delete");
}

async fn create_never_overwrites<S: KeyStore>(store: &S) {
    ok(store.create("conformance-2", b"first").await, "create");
    match store.create("conformance-2", b"second").await {
        Err(Error::Exists) => {}
        other => panic!(
            "create of an existing name must fail with Exists, got {}",
            describe(&other)
        ),
    }
    let got = ok(store.get("conformance-2").await, "get");
    assert_eq!(
        got.as_slice(),
        b"first",
        "a failed create changed the value"
    );
    let names = ok(store.list("conformance-2").await, "list");
    assert_eq!(
        names,
        ["conformance-2"],
        "a failed create changed the listing"
    );
    ok(store.delete("conformance-2").await, "delete");
}

async fn get_missing<S: KeyStore>(store: &S) {
    match store.get("conformance-missing").await {
        Err(Error::NotFound) => {}
        other => panic!(
            "get of a missing key must fail with NotFound, got {}",
            describe(&other)
        ),
    }
}

async fn delete<S: KeyStore>(store: &S) {
    ok(store.create("conformance-3", b"value").await, "create");
    ok(store.create("conformance-3b", b"other").await, "create");
    ok(
        store.delete("conformance-3").await,
        "delete of an existing key",
    );
    match store.get("conformance-3").await {
        Err(Error::NotFound) => {}
        other => panic!(
            "get after delete must fail with NotFound, got {}",
            describe(&other)
        ),
    }
    let got = ok(
        store.get("conformance-3b").await,
        "get of a key next to a deleted one",
    );
    assert_eq!(got.as_slice(), b"other", "delete changed another key");
    match store.delete("conformance-3").await {
        Ok(()) | Err(Error::NotFound) => {}
        Err(err) => panic!("delete of a missing key must succeed or be NotFound, got {err:?}"),
    }
    ok(
        store.create("conformance-3", b"again").await,
        "create after delete",
    );
    let got = ok(store.get("conformance-3").await, "get after re-create");
    assert_eq!(got.as_slice(), b"again", "re-created key has the old value");
    ok(store.delete("conformance-3").await, "delete");
    ok(store.delete("conformance-3b").await, "delete");
}

async fn list_prefixes<S: KeyStore>(store: &S, underscore_names: bool) {
    // Byte-wise order puts upper case and digits before lower case; `_` sits between them.
    let names: Vec<&str> = [
        "list-a", "list-ab", "list-abc", "list-b", "list-ba", "list-B", "list-1", "list_x", "lista",
    ]
    .into_iter()
    .filter(|n| underscore_names || !n.contains('_'))
    .collect();
    for name in &names {
        ok(store.create(name, name.as_bytes()).await, "create");
    }
    let mut all: Vec<&str> = names.clone();
    all.sort_unstable();

    let cases: &[(&str, &[&str])] = &[
        ("", &all),
        ("l", &all),
        ("list", &all),
        (
            "list-",
            &[
                "list-1", "list-B", "list-a", "list-ab", "list-abc", "list-b", "list-ba",
            ],
        ),
        ("list-a", &["list-a", "list-ab", "list-abc"]),
        ("list-ab", &["list-ab", "list-abc"]),
        ("list-abc", &["list-abc"]),
        ("list-abcd", &[]),
        ("list-b", &["list-b", "list-ba"]),
        ("list-B", &["list-B"]),
        ("list_", if underscore_names { &["list_x"] } else { &[] }),
        ("lista", &["lista"]),
        ("list-c", &[]),
        ("x", &[]),
        ("List", &[]),
    ];
    for (prefix, want) in cases {
        let got = ok(store.list(prefix).await, "list");
        assert_eq!(&got, want, "list({prefix:?}) returned the wrong names");
    }
    for name in &names {
        ok(store.delete(name).await, "delete");
    }
}

async fn list_is_complete<S: KeyStore>(store: &Arc<S>, count: usize) {
    let names: Vec<String> = (0..count).map(|i| format!("many-{i:05}")).collect();
    for_each_concurrently(store, &names, |store, name| async move {
        ok(store.create(&name, name.as_bytes()).await, "create");
    })
    .await;

    let got = ok(store.list("many-").await, "list");
    assert_eq!(got.len(), count, "list(\"many-\") is incomplete");
    assert_eq!(got, names, "list(\"many-\") returned the wrong names");
    let got = ok(store.list("").await, "list");
    assert_eq!(got, names, "list(\"\") returned the wrong names");
    let got = ok(store.list("many-0001").await, "list");
    let want: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("many-0001"))
        .collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), want, "list(\"many-0001\")");

    for_each_concurrently(store, &names, |store, name| async move {
        ok(store.delete(&name).await, "delete");
    })
    .await;
}

async fn racing_creates<S: KeyStore>(store: &Arc<S>, racers: usize) {
    let mut tasks = JoinSet::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(racers));
    for i in 0..racers {
        let store = Arc::clone(store);
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            let value = format!("racer-{i}");
            barrier.wait().await;
            (
                value.clone(),
                store.create("conformance-race", value.as_bytes()).await,
            )
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (value, result) = joined.expect("a create task panicked");
        match result {
            Ok(()) => winners.push(value),
            Err(Error::Exists) => {}
            Err(err) => panic!("a racing create must succeed or fail with Exists, got {err:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of {racers} racing creates must win, got {winners:?}"
    );
    let got = ok(store.get("conformance-race").await, "get");
    assert_eq!(
        got.as_slice(),
        winners[0].as_bytes(),
        "the stored value is not the winner's"
    );
    ok(store.delete("conformance-race").await, "delete");
}

async fn values_round_trip<S: KeyStore>(store: &S, binary: bool) {
    let mut values: Vec<Vec<u8>> = vec![
        b"x".to_vec(),
        b"a record with spaces, \"quotes\", {braces} and\nnewlines\r\n".to_vec(),
        br#"{"bytes":"Po7zpqDzCNdtuatN8yT15zBwsgPNiRQJt493iQX7kw8=","algorithm":"AES256"}"#
            .to_vec(),
        (b' '..=b'~').cycle().take(64 * 1024).collect(),
    ];
    if binary {
        values.push((0..=255u8).collect());
        values.push(vec![0; 32]);
        values.push(vec![0xFF, 0xFE, 0x00, 0xC3, 0x28]);
        // A pseudo-random 100 KiB value.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        values.push(
            (0..100 * 1024)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect(),
        );
    }
    for (i, value) in values.iter().enumerate() {
        let name = format!("value-{i}");
        ok(store.create(&name, value).await, "create");
        let got = ok(store.get(&name).await, "get");
        assert!(
            got.as_slice() == value.as_slice(),
            "value #{i} ({} bytes) did not round-trip",
            value.len()
        );
        ok(store.delete(&name).await, "delete");
    }
}

/// Runs `op` for every name, at most 32 at a time.
async fn for_each_concurrently<S, F, Fut>(store: &Arc<S>, names: &[String], op: F)
where
    S: KeyStore,
    F: Fn(Arc<S>, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    for name in names {
        if tasks.len() >= 32
            && let Some(joined) = tasks.join_next().await
        {
            joined.expect("a task panicked");
        }
        tasks.spawn(op(Arc::clone(store), name.clone()));
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("a task panicked");
    }
}

fn ok<T>(result: Result<T, Error>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{what} failed: {err} ({err:?})"),
    }
}

/// Describes a result without showing a returned value, which may be secret.
fn describe<T>(result: &Result<T, Error>) -> String {
    match result {
        Ok(_) => "success".to_owned(),
        Err(err) => format!("{err:?}"),
    }
}
