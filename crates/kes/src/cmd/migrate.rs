//! `kes migrate`: copies stored key records from the keystore of one server config file to the
//! keystore of another, without a server.
//!
//! What it must never do: change the source keystore (an `fs` source directory that does not
//! exist is an error, not created; opening a store does only what opening it for a server does,
//! which for `fs` is removing the temporary files of creates that crashed); leave a partly written key in the target (each key is
//! written with the keystore's atomic, exclusive `create`); overwrite a key without `--force`;
//! change a record (the stored bytes are copied as read, never parsed, decrypted or
//! re-encoded); keep a record in memory after it is written (the buffer is `Zeroizing`); copy
//! between a keystore and itself (with `--force` that would delete the keys it copies).
//!
//! Ctrl-C (or SIGTERM) stops after the key being copied, so that the delete and create of a
//! `--force` replacement are never separated; a second one stops at once.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kes_keystore::{Error as StoreError, KeyStore, OpenMode};

use crate::cli::MigrateArgs;
use crate::fail::Failure;
use crate::glob::Pattern;
use crate::keystores::{self, KeyStoreConfig};
use crate::term;

/// How often progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The MinKMS variables of the original's `-s`, `-e` and `-a` defaults.
const MINKMS_ENV: [&str; 3] = ["MINIO_KMS_SERVER", "MINIO_KMS_ENCLAVE", "MINIO_KMS_API_KEY"];

/// What to do with a key that exists in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    /// Stop with an error (the default).
    Fail,
    /// Keep the target's key (`--merge`).
    Skip,
    /// Delete it and copy the source's (`--force`).
    Replace,
}

/// A checked command line: both configs loaded, the pattern parsed.
struct Plan {
    source: Side,
    target: Side,
    pattern: Pattern,
    existing: Existing,
}

/// What the copy loop needs to know: the pattern, the rule for existing keys, and how errors
/// name the two keystores.
struct Job<'a> {
    pattern: &'a Pattern,
    existing: Existing,
    source: &'a str,
    target: &'a str,
}

/// One end of the migration.
struct Side {
    /// "source" or "target".
    role: &'static str,
    /// The config file's keystore section.
    keystore: KeyStoreConfig,
    /// The keystore, as errors name it.
    name: String,
}

/// Runs `kes migrate`.
pub fn run(args: MigrateArgs) -> Result<(), Failure> {
    let plan = plan(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::msg(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(migrate(&plan))
}

/// Checks the flags, parses the pattern and loads both config files.
fn plan(args: MigrateArgs) -> Result<Plan, Failure> {
    if args.force && args.merge {
        return Err(Failure::msg(
            "'--force' and '--merge' cannot be used together: --force replaces the keys that \
             exist in the target, --merge keeps them. See 'kes migrate --help'",
        ));
    }
    let minkms_flags =
        args.server.is_some() || args.enclave.is_some() || args.api_key.is_some() || args.insecure;
    if minkms_flags && args.to.is_some() {
        return Err(Failure::msg(
            "'--to' cannot be used with the MinKMS flags -s/--server, -e/--enclave, \
             -a/--api-key and -k/--insecure. See 'kes migrate --help'",
        ));
    }
    if minkms_flags {
        return Err(Failure::with_hint(
            "migrating keys to MinKMS (-s/--server, -e/--enclave, -a/--api-key, -k/--insecure) \
             is not supported by this version of kes",
            "kes migrate copies keys between the keystores of two KES config files: \
             --from <path> --to <path>",
        ));
    }
    let Some(from) = args.from else {
        return Err(Failure::with_hint(
            "no source specified",
            "name the config file whose keystore to copy from with --from <path>",
        ));
    };
    let Some(to) = args.to else {
        if let Some(var) = minkms_env() {
            return Err(Failure::with_hint(
                format!(
                    "no target specified, and migrating keys to MinKMS ({var} is set) is not \
                     supported by this version of kes"
                ),
                "name the config file whose keystore to copy to with --to <path>",
            ));
        }
        return Err(Failure::with_hint(
            "no target specified",
            "name the config file whose keystore to copy to with --to <path>",
        ));
    };
    let text = args.pattern.unwrap_or_else(|| "*".to_owned());
    let pattern = Pattern::parse(&text)
        .map_err(|e| Failure::msg(format!("invalid pattern '{text}': {e}")))?;
    let source = side("source", &from)?;
    let target = side("target", &to)?;
    let existing = if args.force {
        Existing::Replace
    } else if args.merge {
        Existing::Skip
    } else {
        Existing::Fail
    };
    Ok(Plan {
        source,
        target,
        pattern,
        existing,
    })
}

/// The first MinKMS variable that is set (and not empty).
fn minkms_env() -> Option<&'static str> {
    MINKMS_ENV
        .into_iter()
        .find(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Loads a config file.
fn side(role: &'static str, path: &Path) -> Result<Side, Failure> {
    let config = keystores::load(path).map_err(|errors| {
        let separator = if errors.len() > 1 { "\n" } else { " " };
        Failure::msg(format!(
            "cannot use the {role} config file:{separator}{errors}"
        ))
    })?;
    let name = config.keystore.describe();
    Ok(Side {
        role,
        keystore: config.keystore,
        name,
    })
}

/// Counts of what happened so far; read by the progress ticker while the copy runs (both on
/// one task, so plain cells do).
#[derive(Default)]
struct Progress {
    /// Keys matching the pattern.
    total: Cell<usize>,
    /// New in the target.
    copied: Cell<usize>,
    /// Replaced in the target (`--force`).
    replaced: Cell<usize>,
    /// Kept in the target (`--merge`).
    kept: Cell<usize>,
    /// Deleted from the source between listing and reading.
    gone: Cell<usize>,
    /// Set by the first Ctrl-C: stop before the next key.
    stop: Cell<bool>,
}

impl Progress {
    fn migrated(&self) -> usize {
        self.copied.get() + self.replaced.get()
    }

    fn processed(&self) -> usize {
        self.migrated() + self.kept.get() + self.gone.get()
    }

    fn bump(cell: &Cell<usize>) {
        cell.set(cell.get() + 1);
    }
}

/// How the copy loop ended, if not with an error.
enum End {
    Done,
    Stopped,
}

/// Opens both keystores, copies, closes them, and prints the outcome.
async fn migrate(plan: &Plan) -> Result<(), Failure> {
    let source = open(&plan.source, OpenMode::Existing).await?;
    let target = match open(&plan.target, OpenMode::Serve).await {
        Ok(target) => target,
        Err(err) => {
            let _ = source.close().await;
            return Err(err);
        }
    };
    // The stores say where they keep their values: one store under two names (an `fs`
    // directory reached through a link, a Vault engine through two endpoints) is one store.
    if source.locator().overlaps(&target.locator()) {
        let _ = source.close().await;
        let _ = target.close().await;
        return Err(Failure::with_hint(
            format!(
                "the source and the target are the same keystore ({})",
                plan.source.name
            ),
            "--from and --to must name the configs of two different keystores",
        ));
    }
    let progress = Progress::default();
    let mut ticker = Ticker::new();
    let result = {
        let job = Job {
            pattern: &plan.pattern,
            existing: plan.existing,
            source: &plan.source.name,
            target: &plan.target.name,
        };
        let work = copy_all(&job, source.as_ref(), target.as_ref(), &progress);
        tokio::pin!(work);
        let mut interrupts = Interrupts::new();
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
        loop {
            tokio::select! {
                result = &mut work => break result,
                _ = tick.tick() => ticker.show(&progress),
                () = interrupts.next() => {
                    if progress.stop.get() {
                        ticker.finish(&progress);
                        let _ = source.close().await;
                        let _ = target.close().await;
                        return Err(Failure::with_hint(
                            format!(
                                "interrupted: migrated {} before the interruption; the key being \
                                 copied may be missing from the target",
                                keys(progress.migrated())
                            ),
                            "run the same command with --merge (or --force) to copy the rest",
                        ));
                    }
                    progress.stop.set(true);
                    ticker.finish(&progress);
                    term::eprint(
                        "Stopping after the key being copied (press Ctrl-C again to stop at once)\n",
                    );
                }
            }
        }
    };
    ticker.finish(&progress);
    for (side, store) in [(&plan.source, &source), (&plan.target, &target)] {
        if let Err(err) = store.close().await {
            term::eprint(&format!(
                "Warning: cannot close the {} keystore ({}): {err}\n",
                side.role, side.name
            ));
        }
    }
    match result {
        Ok(End::Done) => Ok(term::print(&summary(&plan.pattern, &progress))?),
        Ok(End::Stopped) => Err(Failure::with_hint(
            format!(
                "interrupted: migrated {} of the {} that match the pattern",
                progress.migrated(),
                keys(progress.total.get())
            ),
            "run the same command with --merge to copy the rest",
        )),
        Err(failure) => Err(failure),
    }
}

/// Opens a side's keystore as `kes server` would; the source only if it exists.
async fn open(side: &Side, mode: OpenMode) -> Result<Arc<dyn KeyStore>, Failure> {
    side.keystore.open(mode).await.map_err(|err| {
        let message = format!(
            "cannot open the {} keystore ({}): {err}",
            side.role, side.name
        );
        match mode {
            OpenMode::Existing => Failure::with_hint(
                message,
                "check the keystore section of the --from config file; a relative fs path is \
                 relative to the current directory",
            ),
            OpenMode::Serve => Failure::msg(message),
        }
    })
}

/// Lists the source and copies every matching key, in name order.
async fn copy_all(
    job: &Job<'_>,
    source: &dyn KeyStore,
    target: &dyn KeyStore,
    progress: &Progress,
) -> Result<End, Failure> {
    let names = source
        .list(&job.pattern.literal_prefix())
        .await
        .map_err(|e| {
            Failure::msg(format!(
                "cannot list the keys of the source keystore ({}): {e}",
                job.source
            ))
        })?;
    let names: Vec<String> = names
        .into_iter()
        .filter(|name| job.pattern.matches(name))
        .collect();
    progress.total.set(names.len());
    for name in &names {
        if progress.stop.get() {
            return Ok(End::Stopped);
        }
        copy_one(job, source, target, name, progress)
            .await
            .map_err(|failure| before(failure, progress.migrated()))?;
    }
    Ok(End::Done)
}

/// Copies one key.
async fn copy_one(
    job: &Job<'_>,
    source: &dyn KeyStore,
    target: &dyn KeyStore,
    name: &str,
    progress: &Progress,
) -> Result<(), Failure> {
    // A `Zeroizing` buffer: wiped when it goes out of scope, whatever happens below.
    let record = match source.get(name).await {
        Ok(record) => record,
        Err(StoreError::NotFound) => {
            term::eprint(&format!(
                "Note: key '{name}' is no longer in the source keystore (deleted while \
                 migrating): skipped\n"
            ));
            Progress::bump(&progress.gone);
            return Ok(());
        }
        Err(err) => {
            return Err(Failure::msg(format!(
                "cannot read key '{name}' from the source keystore ({}): {err}",
                job.source
            )));
        }
    };
    let created = target.create(name, &record).await;
    match (created, job.existing) {
        (Ok(()), _) => {
            Progress::bump(&progress.copied);
            Ok(())
        }
        (Err(StoreError::Exists), Existing::Skip) => {
            Progress::bump(&progress.kept);
            Ok(())
        }
        (Err(StoreError::Exists), Existing::Fail) => Err(Failure::with_hint(
            format!(
                "key '{name}' already exists in the target keystore ({})",
                job.target
            ),
            "it was left as it is. Use --merge to skip the keys that exist in the target, \
             or --force to replace them",
        )),
        (Err(StoreError::Exists), Existing::Replace) => {
            replace(job, target, name, &record).await?;
            Progress::bump(&progress.replaced);
            Ok(())
        }
        (Err(err), _) => Err(Failure::msg(format!(
            "cannot create key '{name}' in the target keystore ({}): {err}",
            job.target
        ))),
    }
}

/// `--force`: deletes the target's key and creates it again with the source's record.
async fn replace(
    job: &Job<'_>,
    target: &dyn KeyStore,
    name: &str,
    record: &[u8],
) -> Result<(), Failure> {
    match target.delete(name).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(err) => {
            return Err(Failure::msg(format!(
                "cannot delete key '{name}' from the target keystore ({}) to replace it: {err}",
                job.target
            )));
        }
    }
    match target.create(name, record).await {
        Ok(()) => Ok(()),
        Err(StoreError::Exists) => Err(Failure::msg(format!(
            "key '{name}' was created again in the target keystore ({}) by someone else while \
             it was being replaced",
            job.target
        ))),
        Err(err) => Err(Failure::with_hint(
            format!(
                "cannot create key '{name}' in the target keystore ({}) after deleting the key \
                 it replaces: {err}",
                job.target
            ),
            "the key is still in the source keystore: run the command again to copy it",
        )),
    }
}

/// Adds how many keys were migrated before a failure to its message.
fn before(failure: Failure, migrated: usize) -> Failure {
    match failure {
        Failure::Error { message, hint } => Failure::Error {
            message: format!("{message}; migrated {} before it", keys(migrated)),
            hint,
        },
        other => other,
    }
}

/// `1 key`, `2 keys`.
fn keys(n: usize) -> String {
    if n == 1 {
        "1 key".to_owned()
    } else {
        format!("{n} keys")
    }
}

/// The final line.
fn summary(pattern: &Pattern, progress: &Progress) -> String {
    if progress.total.get() == 0 {
        return format!("Migrated 0 keys: no key in the source keystore matches '{pattern}'.\n");
    }
    let mut text = format!("Migrated {}", keys(progress.migrated()));
    if progress.replaced.get() > 0 {
        text.push_str(&format!(" ({} replaced)", progress.replaced.get()));
    }
    text.push('.');
    match progress.kept.get() {
        0 => {}
        1 => text.push_str(" Skipped 1 key that already exists in the target."),
        n => text.push_str(&format!(
            " Skipped {n} keys that already exist in the target."
        )),
    }
    match progress.gone.get() {
        0 => {}
        1 => text.push_str(" Skipped 1 key deleted from the source while migrating."),
        n => text.push_str(&format!(
            " Skipped {n} keys deleted from the source while migrating."
        )),
    }
    text.push('\n');
    text
}

/// Prints progress on stderr: on a terminal one line rewritten in place, otherwise one line
/// each time.
struct Ticker {
    terminal: bool,
    /// A line on the terminal waits for its newline.
    open: bool,
}

impl Ticker {
    fn new() -> Ticker {
        use std::io::IsTerminal as _;
        Ticker {
            terminal: std::io::stderr().is_terminal(),
            open: false,
        }
    }

    fn line(progress: &Progress) -> String {
        format!(
            "Migrating keys: {} of {}",
            progress.processed(),
            progress.total.get()
        )
    }

    fn show(&mut self, progress: &Progress) {
        if self.terminal {
            term::eprint(&format!("\r{}", Self::line(progress)));
            self.open = true;
        } else {
            term::eprint(&format!("{}\n", Self::line(progress)));
        }
    }

    /// Ends the terminal line with the latest counts.
    fn finish(&mut self, progress: &Progress) {
        if self.open {
            term::eprint(&format!("\r{}\n", Self::line(progress)));
            self.open = false;
        }
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, listened to for the whole migration so that none is missed.
struct Interrupts {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Interrupts {
    fn new() -> Interrupts {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Interrupts {
                signals: signal(SignalKind::interrupt())
                    .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                    .ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Interrupts {}
        }
    }

    /// Completes on the next signal.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            match &mut self.signals {
                Some((int, term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                // Without signal handlers the default ones apply: the process ends.
                None => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_count_what_happened() {
        let pattern = Pattern::parse("app-*").unwrap();
        let progress = Progress::default();
        assert_eq!(
            summary(&pattern, &progress),
            "Migrated 0 keys: no key in the source keystore matches 'app-*'.\n"
        );
        progress.total.set(1);
        progress.copied.set(1);
        assert_eq!(summary(&pattern, &progress), "Migrated 1 key.\n");
        progress.total.set(7);
        progress.copied.set(2);
        progress.replaced.set(1);
        progress.kept.set(2);
        progress.gone.set(2);
        assert_eq!(
            summary(&pattern, &progress),
            "Migrated 3 keys (1 replaced). Skipped 2 keys that already exist in the target. \
             Skipped 2 keys deleted from the source while migrating.\n"
        );
        assert_eq!(progress.processed(), 7);
    }

    use kes_keystore::MemKeyStore;
    use zeroize::Zeroizing;

    /// A store in memory whose operations can be made to fail.
    #[derive(Default)]
    struct Faulty {
        inner: MemKeyStore,
        /// `list` also returns these names, which `get` does not find.
        phantoms: Vec<String>,
        /// `get` of this name fails as unreachable.
        unreadable: Option<String>,
        /// `create` fails (after this many successful creates).
        creates_left: Option<std::sync::Mutex<usize>>,
    }

    #[async_trait::async_trait]
    impl KeyStore for Faulty {
        async fn status(&self) -> Result<Duration, StoreError> {
            self.inner.status().await
        }
        async fn create(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
            if let Some(left) = &self.creates_left {
                let mut left = left.lock().unwrap();
                if *left == 0 {
                    return Err(StoreError::other("disk full"));
                }
                *left -= 1;
            }
            self.inner.create(name, value).await
        }
        async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, StoreError> {
            if self.unreadable.as_deref() == Some(name) {
                return Err(StoreError::unreachable("connection refused"));
            }
            self.inner.get(name).await
        }
        async fn delete(&self, name: &str) -> Result<(), StoreError> {
            self.inner.delete(name).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
            let mut names = self.inner.list(prefix).await?;
            names.extend(
                self.phantoms
                    .iter()
                    .filter(|n| n.starts_with(prefix))
                    .cloned(),
            );
            names.sort();
            Ok(names)
        }
        async fn close(&self) -> Result<(), StoreError> {
            Ok(())
        }
        fn locator(&self) -> kes_keystore::Locator {
            self.inner.locator()
        }
    }

    async fn store(records: &[(&str, &str)]) -> Faulty {
        let store = Faulty::default();
        for (name, value) in records {
            store.inner.create(name, value.as_bytes()).await.unwrap();
        }
        store
    }

    async fn run_job(
        pattern: &str,
        existing: Existing,
        source: &Faulty,
        target: &Faulty,
    ) -> (Result<(), String>, Progress) {
        let pattern = Pattern::parse(pattern).unwrap();
        let job = Job {
            pattern: &pattern,
            existing,
            source: "S",
            target: "T",
        };
        let progress = Progress::default();
        let result = copy_all(&job, source, target, &progress).await;
        let result = match result {
            Ok(End::Done) => Ok(()),
            Ok(End::Stopped) => Err("stopped".to_owned()),
            Err(Failure::Error { message, hint }) => {
                Err(format!("{message} | {}", hint.unwrap_or_default()))
            }
            Err(other) => Err(format!("{other:?}")),
        };
        (result, progress)
    }

    async fn value(store: &Faulty, name: &str) -> Option<String> {
        match store.inner.get(name).await {
            Ok(v) => Some(String::from_utf8(v.to_vec()).unwrap()),
            Err(StoreError::NotFound) => None,
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn matching_records_are_copied_byte_for_byte() {
        let source = store(&[("a-1", "one\n"), ("a-2", "two"), ("b-1", "three")]).await;
        let target = Faulty::default();
        let (result, progress) = run_job("a-*", Existing::Fail, &source, &target).await;
        result.unwrap();
        assert_eq!(value(&target, "a-1").await.as_deref(), Some("one\n"));
        assert_eq!(value(&target, "a-2").await.as_deref(), Some("two"));
        assert_eq!(value(&target, "b-1").await, None);
        assert_eq!((progress.total.get(), progress.copied.get()), (2, 2));
        // The source is as it was.
        assert_eq!(source.inner.list("").await.unwrap(), ["a-1", "a-2", "b-1"]);
    }

    #[tokio::test]
    async fn keys_deleted_from_the_source_after_listing_are_skipped() {
        let mut source = store(&[("a", "1"), ("c", "3")]).await;
        source.phantoms = vec!["b".to_owned()];
        let target = Faulty::default();
        let (result, progress) = run_job("*", Existing::Fail, &source, &target).await;
        result.unwrap();
        assert_eq!(
            (
                progress.total.get(),
                progress.copied.get(),
                progress.gone.get()
            ),
            (3, 2, 1)
        );
        assert_eq!(value(&target, "c").await.as_deref(), Some("3"));
    }

    #[tokio::test]
    async fn existing_keys_stop_the_migration_or_are_kept_or_replaced() {
        let source = store(&[("a", "new-a"), ("b", "new-b"), ("c", "new-c")]).await;
        let target = store(&[("b", "old-b")]).await;
        let (result, progress) = run_job("*", Existing::Fail, &source, &target).await;
        assert_eq!(
            result.unwrap_err(),
            "key 'b' already exists in the target keystore (T); migrated 1 key before it | it \
             was left as it is. Use --merge to skip the keys that exist in the target, or \
             --force to replace them"
        );
        assert_eq!(progress.copied.get(), 1);
        assert_eq!(value(&target, "b").await.as_deref(), Some("old-b"));
        assert_eq!(value(&target, "c").await, None);

        let (result, progress) = run_job("*", Existing::Skip, &source, &target).await;
        result.unwrap();
        assert_eq!((progress.copied.get(), progress.kept.get()), (1, 2));
        assert_eq!(value(&target, "b").await.as_deref(), Some("old-b"));
        assert_eq!(value(&target, "c").await.as_deref(), Some("new-c"));

        let (result, progress) = run_job("*", Existing::Replace, &source, &target).await;
        result.unwrap();
        assert_eq!(progress.replaced.get(), 3);
        for name in ["a", "b", "c"] {
            assert_eq!(value(&target, name).await, Some(format!("new-{name}")));
        }
    }

    #[tokio::test]
    async fn errors_name_the_key_and_the_keystore() {
        let mut source = store(&[("a", "1"), ("b", "2")]).await;
        source.unreadable = Some("b".to_owned());
        let target = Faulty::default();
        let (result, _) = run_job("*", Existing::Fail, &source, &target).await;
        assert_eq!(
            result.unwrap_err(),
            "cannot read key 'b' from the source keystore (S): keystore is unreachable: \
             connection refused; migrated 1 key before it | "
        );

        let source = store(&[("a", "1"), ("b", "2")]).await;
        let target = Faulty {
            creates_left: Some(std::sync::Mutex::new(0)),
            ..Faulty::default()
        };
        let (result, _) = run_job("*", Existing::Fail, &source, &target).await;
        assert_eq!(
            result.unwrap_err(),
            "cannot create key 'a' in the target keystore (T): disk full; migrated 0 keys \
             before it | "
        );
    }

    #[tokio::test]
    async fn a_failed_replacement_says_the_source_still_has_the_key() {
        let source = store(&[("a", "new")]).await;
        let target = Faulty {
            creates_left: Some(std::sync::Mutex::new(1)),
            ..Faulty::default()
        };
        target.inner.create("a", b"old").await.unwrap();
        let (result, _) = run_job("*", Existing::Replace, &source, &target).await;
        assert_eq!(
            result.unwrap_err(),
            "cannot create key 'a' in the target keystore (T) after deleting the key it \
             replaces: disk full; migrated 0 keys before it | the key is still in the source \
             keystore: run the command again to copy it"
        );
        assert_eq!(value(&source, "a").await.as_deref(), Some("new"));
    }

    #[test]
    fn failures_say_how_many_keys_were_migrated_before() {
        let Failure::Error { message, hint } = before(Failure::with_hint("boom", "h"), 1) else {
            panic!()
        };
        assert_eq!(message, "boom; migrated 1 key before it");
        assert_eq!(hint.as_deref(), Some("h"));
    }
}
