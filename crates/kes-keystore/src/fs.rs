//! The filesystem key store (kes-spec §8.3).

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use zeroize::Zeroizing;

use crate::{Error, KeyStore, Locator};

/// Names of temporary files start with this; a key name never does, because key names
/// contain no `.`.
const TEMP_PREFIX: &str = ".kes-tmp-";

/// `get` refuses values larger than this, as the original did.
const MAX_VALUE_SIZE: u64 = 1 << 20;

/// Temporary files older than this are leftovers of a crash and are removed by `open`. Younger
/// ones may belong to a create in progress: a configuration reload opens the directory again
/// while the previous store is still serving requests.
const STALE_TEMP_AGE: Duration = Duration::from_secs(5 * 60);

/// A key store that keeps each key in its own file, in one directory.
///
/// The layout is the original server's: the file name is the key name, the content is the
/// stored value, the file mode is 0600. A directory written by the original server works
/// unchanged, and the other way round. Names that are not plain file names (empty, or
/// containing `/`, `\`, `.` or NUL) are rejected with [`Error::Other`].
///
/// A create is atomic and exclusive: the value is written to a temporary file (whose name
/// starts with `.`, so it is never listed), flushed to disk, and then hard-linked to the key
/// name, which fails if the name exists; then the directory is flushed. So of two concurrent
/// creates of one name exactly one wins, and a crash never leaves a partial or empty key file.
/// On filesystems without hard links, an exclusive rename (`renameat2` with
/// `RENAME_NOREPLACE`, Linux) is used instead. Deletes flush the directory too, so that a
/// deleted key does not come back after a crash.
///
/// Blocking filesystem calls run on tokio's blocking thread pool.
#[derive(Debug, Clone)]
pub struct FsKeyStore {
    dir: Arc<Path>,
    /// Device and inode of the directory when it was opened: the same directory however it is
    /// reached (`..`, symbolic links, bind mounts).
    id: (u64, u64),
}

impl FsKeyStore {
    /// Opens the key store in the directory `path`, creating it (and its parents) with mode
    /// 0700 if it does not exist. The mode of an existing directory is left as it is. Temporary
    /// files left behind by a crashed create more than five minutes ago are removed.
    ///
    /// # Errors
    ///
    /// [`Error::Other`] when `path` is not a directory or cannot be created or read.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        blocking(move || open_dir(path, true)).await
    }

    /// Opens the key store in the existing directory `path`, as [`open`](Self::open) does, but
    /// never creates it.
    ///
    /// # Errors
    ///
    /// [`Error::Other`] when `path` does not exist ("the directory does not exist"), is not a
    /// directory or cannot be read.
    pub async fn open_existing(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        blocking(move || open_dir(path, false)).await
    }

    /// The directory of the store, made absolute when it was opened.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

#[async_trait::async_trait]
impl KeyStore for FsKeyStore {
    async fn status(&self) -> Result<Duration, Error> {
        let dir = Arc::clone(&self.dir);
        blocking(move || {
            let start = Instant::now();
            match fs::metadata(&dir) {
                Ok(meta) if meta.is_dir() => Ok(start.elapsed()),
                Ok(_) => Err(Error::unreachable(FsError::new(format!(
                    "'{}' is not a directory",
                    dir.display()
                )))),
                Err(err) => Err(Error::unreachable(FsError::with_cause(
                    format!("cannot access the keystore directory '{}'", dir.display()),
                    err,
                ))),
            }
        })
        .await
    }

    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        check_name(name)?;
        let dir = Arc::clone(&self.dir);
        let name = name.to_owned();
        let value = Zeroizing::new(value.to_vec());
        blocking(move || create_key(&dir, &name, &value)).await
    }

    async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        check_name(name)?;
        let dir = Arc::clone(&self.dir);
        let name = name.to_owned();
        blocking(move || read_key(&dir, &name)).await
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        check_name(name)?;
        let dir = Arc::clone(&self.dir);
        let name = name.to_owned();
        blocking(move || {
            let fail = |err| key_error("delete", &name, err);
            let path = dir.join(&name);
            // Under the key's lock, so that a replace under way cannot bring the key back.
            let locked = match lock_key(&path, &name, "delete") {
                Ok(file) => Some(file),
                Err(Error::NotFound) => None,
                Err(err) => return Err(err),
            };
            let removed = match fs::remove_file(&path) {
                Ok(()) => sync_dir(&dir).map_err(fail),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Err(Error::NotFound),
                Err(err) => Err(fail(err)),
            };
            drop(locked);
            removed
        })
        .await
    }

    async fn replace(&self, name: &str, old: &[u8], new: &[u8]) -> Result<(), Error> {
        check_name(name)?;
        let dir = Arc::clone(&self.dir);
        let name = name.to_owned();
        let old = Zeroizing::new(old.to_vec());
        let new = Zeroizing::new(new.to_vec());
        blocking(move || replace_key(&dir, &name, &old, &new)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let dir = Arc::clone(&self.dir);
        let prefix = prefix.to_owned();
        blocking(move || list_keys(&dir, &prefix)).await
    }

    async fn close(&self) -> Result<(), Error> {
        Ok(())
    }

    fn locator(&self) -> Locator {
        Locator::new(format!("fs:{}:{}", self.id.0, self.id.1))
    }
}

/// Runs blocking filesystem work on tokio's blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(err) => Err(Error::other(FsError::new(format!(
            "filesystem task failed: {err}"
        )))),
    }
}

fn open_dir(path: PathBuf, create: bool) -> Result<FsKeyStore, Error> {
    let path = std::path::absolute(&path).unwrap_or(path);
    let fail = |what: &str, err| {
        Error::other(FsError::with_cause(
            format!("cannot {what} the keystore directory '{}'", path.display()),
            err,
        ))
    };
    let meta = match fs::metadata(&path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound && !create => {
            return Err(Error::other("the directory does not exist"));
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(|err| fail("create", err))?;
            fs::metadata(&path).map_err(|err| fail("access", err))?
        }
        Err(err) => return Err(fail("access", err)),
    };
    if !meta.is_dir() {
        return Err(Error::other(FsError::new(format!(
            "the keystore path '{}' is not a directory",
            path.display()
        ))));
    }
    remove_stale_temp_files(&path);
    use std::os::unix::fs::MetadataExt as _;
    Ok(FsKeyStore {
        dir: path.into(),
        id: (meta.dev(), meta.ino()),
    })
}

/// Best effort: a temporary file that cannot be removed is harmless, since it is never listed.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
            continue;
        };
        // `.kes-tmp-<pid>-…`: the file of a process that no longer runs is a crash leftover,
        // whatever its age.
        let owner_gone = rest
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| pid != std::process::id() && !process_alive(pid));
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let age = meta
            .modified()
            .ok()
            .and_then(|modified| now.duration_since(modified).ok());
        if meta.is_file() && (owner_gone || age.is_some_and(|age| age > STALE_TEMP_AGE)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether a process with this id exists (Linux: `/proc/<pid>`). Elsewhere every process
/// counts as alive, so only the age rule applies.
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

fn create_key(dir: &Path, name: &str, value: &[u8]) -> Result<(), Error> {
    let fail = |err| key_error("create", name, err);
    let (temp, mut file) = create_temp_file(dir).map_err(fail)?;
    let written = file.write_all(value).and_then(|()| file.sync_all());
    drop(file);
    if let Err(err) = written {
        let _ = fs::remove_file(&temp);
        return Err(fail(err));
    }
    let linked = link_exclusive(&temp, &dir.join(name));
    // After a successful link the key name holds the data, so the temporary name goes in
    // every case. If removing it fails, the leftover is never listed and `open` removes it.
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => sync_dir(dir).map_err(fail),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(Error::Exists),
        Err(err) => Err(fail(err)),
    }
}

/// Creates a new, empty temporary file with mode 0600 in `dir`.
fn create_temp_file(dir: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    // Process id and counter make the name unique within this machine; the clock and the
    // exclusive open cover other machines sharing the directory.
    for _ in 0..8 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!("{TEMP_PREFIX}{pid}-{n}-{nanos}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::other(
        "cannot find an unused temporary file name",
    ))
}

/// Gives the file `temp` the additional name `dst`, failing with `AlreadyExists` if `dst`
/// exists. Never replaces `dst`.
fn link_exclusive(temp: &Path, dst: &Path) -> io::Result<()> {
    let link_err = match fs::hard_link(temp, dst) {
        Ok(()) => return Ok(()),
        Err(err) => err,
    };
    // Linux reports EPERM for filesystems without hard links (FAT, some network and FUSE
    // filesystems); try an exclusive rename there.
    if !matches!(
        link_err.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported
    ) {
        return Err(link_err);
    }
    match rename_noreplace(temp, dst) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(err),
        Err(rename_err) => Err(io::Error::other(format!(
            "cannot hard-link the temporary file ({link_err}) nor rename it exclusively \
             ({rename_err})"
        ))),
    }
}

/// Renames `from` to `to`, failing with `AlreadyExists` instead of replacing `to`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let from = CString::new(from.as_os_str().as_bytes())?;
    let to = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both pointers come from live `CString`s, so they are valid and NUL-terminated
    // for the duration of the call; `renameat2` does not keep them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Renames `from` to `to`, failing with `AlreadyExists` instead of replacing `to`.
#[cfg(not(target_os = "linux"))]
fn rename_noreplace(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Flushes the directory itself, so that names added or removed in it survive a crash.
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        // Some filesystems cannot sync directories at all; there is nothing more to do there.
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}

fn read_key(dir: &Path, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let file = open_key(&dir.join(name), name)?;
    read_value(&file, name)
}

/// Opens a key's file for reading; `NotFound` when there is no such key (or the name is not
/// a regular file, which `list` never shows either).
fn open_key(path: &Path, name: &str) -> Result<File, Error> {
    let fail = |err| key_error("read", name, err);
    // Non-blocking, so that a FIFO planted under a key name cannot hang the read; it has no
    // effect on regular files.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound),
        Err(err) => return Err(fail(err)),
    };
    let meta = file.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(Error::NotFound);
    }
    Ok(file)
}

/// Reads a key's whole value from its open file.
fn read_value(file: &File, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let fail = |err| key_error("read", name, err);
    let meta = file.metadata().map_err(fail)?;
    let too_large = || fail(io::Error::other("the value is larger than 1 MiB"));
    if meta.len() > MAX_VALUE_SIZE {
        return Err(too_large());
    }
    // Room for the whole value and the read that detects its end, so that the buffer never
    // grows (which would leave a copy of the value in freed memory).
    let capacity = usize::try_from(meta.len()).map_or(0, |len| len + 1);
    let mut value = Zeroizing::new(Vec::with_capacity(capacity));
    file.take(MAX_VALUE_SIZE + 1)
        .read_to_end(&mut value)
        .map_err(fail)?;
    if value.len() as u64 > MAX_VALUE_SIZE {
        return Err(too_large());
    }
    Ok(value)
}

/// How often a replace or delete retries when the key's file was swapped while it waited for
/// the lock (another process replaced it meanwhile).
const LOCK_ROUNDS: usize = 16;

/// Opens a key's file and takes its exclusive lock (`flock`), making sure the name still
/// refers to the locked file: a concurrent replace renames a new file over the name, so the
/// lock of the old file means nothing then, and the new file is locked instead.
fn lock_key(path: &Path, name: &str, op: &str) -> Result<File, Error> {
    use std::os::unix::fs::MetadataExt as _;
    let fail = |err| key_error(op, name, err);
    for _ in 0..LOCK_ROUNDS {
        let file = open_key(path, name)?;
        file.lock().map_err(fail)?;
        let held = file.metadata().map_err(fail)?;
        match fs::metadata(path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(file),
            Ok(_) => continue,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound),
            Err(err) => return Err(fail(err)),
        }
    }
    Err(fail(io::Error::other(
        "the key kept changing while waiting for its lock",
    )))
}

/// Replaces a key's value with `new` if it is still `old`: under the key file's lock, the
/// value is compared, the new one written to a temporary file, synced and renamed over the
/// name (atomic: a reader sees the old or the new value, never a mix), and the directory synced.
fn replace_key(dir: &Path, name: &str, old: &[u8], new: &[u8]) -> Result<(), Error> {
    let fail = |err| key_error("replace", name, err);
    let path = dir.join(name);
    let locked = lock_key(&path, name, "replace")?;
    let current = read_value(&locked, name)?;
    if current.as_slice() != old {
        return Err(Error::Changed);
    }
    let (temp, mut file) = create_temp_file(dir).map_err(fail)?;
    let written = file.write_all(new).and_then(|()| file.sync_all());
    drop(file);
    if let Err(err) = written.and_then(|()| fs::rename(&temp, &path)) {
        let _ = fs::remove_file(&temp);
        return Err(fail(err));
    }
    sync_dir(dir).map_err(fail)?;
    drop(locked);
    Ok(())
}

fn list_keys(dir: &Path, prefix: &str) -> Result<Vec<String>, Error> {
    let fail = |err| {
        Error::other(FsError::with_cause(
            format!("cannot list the keys in '{}'", dir.display()),
            err,
        ))
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        if !name.starts_with(prefix) || check_name(name).is_err() {
            continue;
        }
        let is_file = match entry.file_type() {
            Ok(kind) if kind.is_file() => true,
            // `get` follows symbolic links, so list those that lead to a regular file.
            Ok(kind) if kind.is_symlink() => fs::metadata(entry.path()).is_ok_and(|m| m.is_file()),
            Ok(_) => false,
            Err(err) if err.kind() == io::ErrorKind::NotFound => false,
            Err(err) => return Err(fail(err)),
        };
        if is_file {
            names.push(name.to_owned());
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// Rejects names that are not plain file names of this store.
fn check_name(name: &str) -> Result<(), Error> {
    let problem = if name.is_empty() {
        "it is empty"
    } else if name.contains('/') {
        "it contains '/'"
    } else if name.contains('\\') {
        "it contains '\\'"
    } else if name.contains('.') {
        "it contains '.'"
    } else if name.contains('\0') {
        "it contains a NUL character"
    } else {
        return Ok(());
    };
    Err(Error::other(FsError::new(format!(
        "invalid key name '{}': {problem}",
        name.escape_debug()
    ))))
}

fn key_error(op: &str, name: &str, cause: io::Error) -> Error {
    Error::other(FsError::with_cause(
        format!("cannot {op} key '{}'", name.escape_debug()),
        cause,
    ))
}

/// An error of the filesystem store: what failed, for which key or path, and the OS error.
#[derive(Debug)]
struct FsError {
    context: String,
    cause: Option<io::Error>,
}

impl FsError {
    fn new(context: String) -> Self {
        Self {
            context,
            cause: None,
        }
    }

    fn with_cause(context: String, cause: io::Error) -> Self {
        Self {
            context,
            cause: Some(cause),
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Some(cause) => write!(f, "fs: {}: {cause}", self.context),
            None => write!(f, "fs: {}", self.context),
        }
    }
}

impl std::error::Error for FsError {}

#[cfg(test)]
#[path = "fs_tests.rs"]
mod tests;
