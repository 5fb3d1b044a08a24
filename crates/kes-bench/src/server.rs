//! The server under test: building the release binary, writing its configuration and keystore,
//! starting it on a free loopback port and stopping it again.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use kes_crypto::{KeyType, KeyVersion};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use crate::affinity::CpuSet;

/// How long the server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of the server's stderr is kept for error messages.
const STDERR_KEEP: usize = 64 * 1024;

/// The repository root, found from this crate's manifest directory at compile time.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the release `kes` binary with `cargo build --release -p kes` in `root` and returns the
/// path of the executable cargo reports (so `CARGO_TARGET_DIR` is honoured).
pub fn build_release(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the release server: cargo build --release -p kes");
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "kes",
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !out.status.success() {
        bail!("cargo build --release -p kes failed ({})", out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let field = |pointer: &str| msg.pointer(pointer);
        let is_kes_bin = field("/reason").is_some_and(|r| r == "compiler-artifact")
            && field("/target/name").is_some_and(|n| n == "kes")
            && field("/target/kind")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|k| k.iter().any(|k| k == "bin"));
        if is_kes_bin && let Some(exe) = field("/executable").and_then(serde_json::Value::as_str) {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo did not report the kes executable")
}

/// The identity (hex SHA-256 of the public key) of a PEM certificate file.
pub fn identity_of(cert: &Path) -> Result<String> {
    let der = CertificateDer::from_pem_file(cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?;
    kes_crypto::identity_of_certificate(der.as_ref())
        .map_err(|e| anyhow::anyhow!("identity of {}: {e}", cert.display()))
}

/// The name of benchmark key number `i`.
pub fn key_name(i: usize) -> String {
    format!("bench-{i:06}")
}

/// Writes keys `range` straight into a filesystem keystore directory, as `kes` would store them
/// (file name = key name, content = the encoded record, mode 0600). Much faster than creating
/// them over HTTP; existing files are left alone.
pub fn write_keys(dir: &Path, range: std::ops::Range<usize>, created_by: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let now = time::OffsetDateTime::now_utc();
    for i in range {
        let path = dir.join(key_name(i));
        if path.exists() {
            continue;
        }
        let record = KeyVersion::generate(KeyType::Aes256, created_by.to_owned(), now)
            .map_err(|e| anyhow::anyhow!("generating a key: {e}"))?
            .encode()
            .map_err(|e| anyhow::anyhow!("encoding a key: {e}"))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(record.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// What goes into the server's configuration file.
#[derive(Debug, Clone)]
pub struct ConfigSpec {
    /// The committed test PKI (`testdata/pki`).
    pub pki: PathBuf,
    /// The filesystem keystore directory.
    pub keystore: PathBuf,
    /// Whether audit logging is on (its lines go to the server's stdout, here `/dev/null`).
    pub audit: bool,
    /// The `mlock` setting (`auto`, `required`, `off`); `None` leaves the server's default.
    pub mlock: Option<String>,
    /// `limits.max_connections_per_address` (this server's section, not the original's); the
    /// `idle` phase opens more connections from 127.0.0.1 than the default 1,000 allows.
    /// `None` leaves the section out, so that any KES server reads the file.
    pub per_address: Option<usize>,
}

/// The YAML configuration: `admin.crt` is the admin, `app.crt` gets a policy that allows the
/// key routes on `bench-*` keys, the cache never expires during a run (so that measured phases
/// see a warm cache; cold reads are measured on their own).
pub fn config_yaml(spec: &ConfigSpec) -> Result<String> {
    let pki = &spec.pki;
    let admin = identity_of(&pki.join("admin.crt"))?;
    let app = identity_of(&pki.join("app.crt"))?;
    Ok(format!(
        "admin:
  identity: {admin}
tls:
  key: {key}
  cert: {cert}
cache:
  expiry:
    any: 1h
    unused: 1h
log:
  error: on
  audit: {audit}
policy:
  bench:
    allow:
    - /v1/key/generate/bench-*
    - /v1/key/encrypt/bench-*
    - /v1/key/decrypt/bench-*
    - /v1/key/hmac/bench-*
    deny:
    - /v1/key/generate/bench-denied*
    identities:
    - {app}
keystore:
  fs:
    path: {ks}
{mlock}{limits}",
        key = pki.join("server.key").display(),
        cert = pki.join("server.crt").display(),
        audit = if spec.audit { "on" } else { "off" },
        ks = spec.keystore.display(),
        mlock = spec
            .mlock
            .as_ref()
            .map(|m| format!("mlock: {m}\n"))
            .unwrap_or_default(),
        limits = spec
            .per_address
            .map(|n| format!("limits:\n  max_connections_per_address: {n}\n"))
            .unwrap_or_default(),
    ))
}

/// A running `kes server`; killed when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Writes `config` to `<dir>/config.yml` and starts `<bin> server --config <file> --addr
    /// 127.0.0.1:<free port>`, pinned to `cpus` if given. It is ready when the port accepts a
    /// connection, so any KES-compatible server binary can be driven (`--server-bin`), not only
    /// one that prints this server's `Listening on` line.
    pub fn start(bin: &Path, dir: &Path, config: &str, cpus: Option<CpuSet>) -> Result<Server> {
        let path = dir.join("config.yml");
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = Command::new(bin);
        before_exec(&mut command, cpus);
        let mut child = command
            .arg("server")
            .arg("--config")
            .arg(&path)
            .arg("--addr")
            .arg(addr.to_string())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let keep = Arc::clone(&stderr);
            std::thread::spawn(move || drain_stderr(pipe, &keep));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(Server {
                    child,
                    addr,
                    stderr,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                let text = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                bail!("{} server exited with {status}: {text}", bin.display());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let text = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                bail!("the server did not listen on {addr} within {START_TIMEOUT:?}: {text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last part of what the server wrote to stderr.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Fails if the server is no longer running.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!("kes server exited with {status}: {}", self.stderr()),
            Err(err) => bail!("kes server state unknown: {err}"),
        }
    }
}

impl Drop for Server {
    /// Asks the server to stop (SIGTERM), and kills it if it has not exited within 5 s.
    fn drop(&mut self) {
        let asked = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if asked {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In the forked server process: makes the kernel kill it when the thread that started it (the
/// benchmark's main thread) dies, so that a benchmark killed by a signal leaves no server
/// behind, and pins it to `cpus`.
pub(crate) fn before_exec(command: &mut Command, cpus: Option<CpuSet>) {
    use std::os::unix::process::CommandExt as _;
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2) and
    // sched_setaffinity(2), which are async-signal-safe; it reads only the CPU set it owns.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(set) = &cpus
                && libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set.raw())
                    != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Reads the server's stderr until it closes and keeps the last [`STDERR_KEEP`] bytes.
fn drain_stderr(pipe: impl std::io::Read, keep: &Mutex<String>) {
    let mut reader = BufReader::new(pipe);
    let mut line = String::new();
    loop {
        line.clear();
        // Bounded: one line is at most 64 KiB; the rest of a longer line is read as the next.
        match reader
            .by_ref()
            .take(STDERR_KEEP as u64)
            .read_line(&mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if let Ok(mut keep) = keep.lock() {
            keep.push_str(&line);
            if keep.len() > STDERR_KEEP {
                let mut cut = keep.len() - STDERR_KEEP;
                while !keep.is_char_boundary(cut) {
                    cut += 1;
                }
                keep.drain(..cut);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_valid_and_sort_by_number() {
        assert_eq!(key_name(7), "bench-000007");
        assert!(kes_crypto::names::is_valid_name(&key_name(99_999)));
        assert!(key_name(999) < key_name(1000));
    }

    #[test]
    fn written_keys_parse_back() {
        let dir = tempfile::tempdir().unwrap();
        write_keys(dir.path(), 0..3, "bench").unwrap();
        // A second call leaves existing keys alone and adds the missing ones.
        let first = std::fs::read(dir.path().join(key_name(0))).unwrap();
        write_keys(dir.path(), 0..4, "bench").unwrap();
        assert_eq!(std::fs::read(dir.path().join(key_name(0))).unwrap(), first);
        for i in 0..4 {
            let bytes = std::fs::read(dir.path().join(key_name(i))).unwrap();
            let key = KeyVersion::parse(&bytes).unwrap();
            assert_eq!(key.created_by(), "bench");
            assert_eq!(key.algorithm(), KeyType::Aes256);
        }
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(key_name(1)))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn config_names_the_admin_and_the_keystore() {
        let pki = repo_root().join("testdata/pki");
        let spec = ConfigSpec {
            pki: pki.clone(),
            keystore: "/tmp/ks".into(),
            audit: false,
            mlock: None,
            per_address: None,
        };
        let yaml = config_yaml(&spec).unwrap();
        assert!(!yaml.contains("limits"));
        assert!(yaml.contains(&identity_of(&pki.join("admin.crt")).unwrap()));
        assert!(yaml.contains("audit: off"));
        assert!(yaml.contains("path: /tmp/ks"));
        assert!(!yaml.contains("mlock"));
        let audit = config_yaml(&ConfigSpec {
            audit: true,
            mlock: Some("off".into()),
            pki: spec.pki.clone(),
            keystore: spec.keystore.clone(),
            per_address: None,
        })
        .unwrap();
        assert!(audit.contains("audit: on"));
        assert!(audit.ends_with("mlock: off\n"));
        let many = config_yaml(&ConfigSpec {
            per_address: Some(1104),
            ..spec
        })
        .unwrap();
        assert!(many.ends_with("limits:\n  max_connections_per_address: 1104\n"));
    }
}
