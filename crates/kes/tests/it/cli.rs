//! The `kes` command line, run as a real process against a real `kes server`.
//!
//! * [`cli_snapshots`] runs every case in `tests/cmd/*.toml` (format below) and compares exit
//!   code, stdout and stderr with what the file pins.
//! * [`replay_cli_transcript`] replays the original CLI's recorded session
//!   (`testdata/kes-cli/transcript.json`) and pins our output byte for byte, except
//!   in the steps listed in [`deviation`], where the original is wrong or machine-specific.
//! * The identity tests check that the CLI's identities are the ones the server computes.
//!
//! Snapshot file format (all keys optional except `args`):
//!
//! ```toml
//! # What the case shows.
//! server = "pki"            # "pki" (committed test PKI, default), "dev" (`kes server --dev`), "none"
//! as = "admin"              # pki: "admin" | "app" | "other" | "none"; dev: "admin" | "none"
//! setup = [{ args = ["policy", "add", "p", "-"], stdin = "{}" }]   # must exit 0; `as` too
//! args = ["key", "create", "k"]
//! env = { KES_CAPATH = "" } # extra variables; "" unsets one
//! stdin = ""
//! status = 0
//! stdout = ""
//! stderr = ""
//! [follow]                  # run `args` in the background (e.g. `kes log`), then these as
//! during = [{ args = [...] }]  # admin, wait for `lines` stdout lines, stop it with SIGINT
//! lines = 3
//! ```
//!
//! In args, env, stdin and the expected texts, `{ADDR}` (the server's `127.0.0.1:port`),
//! `{TMP}` (the case's working directory), `{PKI}` (testdata/pki), `{ADMIN_ID}`, `{APP_ID}`,
//! `{OTHER_ID}` (identities of the PKI's certificates) are replaced. In expected texts, `[..]`
//! matches any characters within a line and a line `...` any number of lines. By default the
//! pki cases talk to the server with KES_SERVER={ADDR}, KES_CAPATH={PKI}/ca.crt and the
//! certificate of `as` in KES_CLIENT_CERT/KES_CLIENT_KEY; dev cases with KES_API_KEY.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::harness::{
    Kes, admin_identity, app_identity, config, identity_of, kes_bin, pki, shared_testdata,
};

// ---- running the binary ---------------------------------------------------------------------

/// What one run of `kes` did.
#[derive(Debug, Clone)]
struct Output {
    status: i32,
    stdout: String,
    stderr: String,
}

/// A `kes` process with a clean environment: only `env` is set.
fn command(args: &[String], env: &BTreeMap<String, String>, cwd: &Path) -> Command {
    let mut cmd = Command::new(kes_bin());
    cmd.args(args).env_clear().current_dir(cwd);
    for (k, v) in env {
        if !v.is_empty() {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A pipe read in the background.
struct Collected {
    buf: Arc<Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

/// Collects a pipe in the background.
fn collect(mut pipe: impl std::io::Read + Send + 'static) -> Collected {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let out = buf.clone();
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            out.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    Collected { buf, reader }
}

/// What was read so far.
fn text(collected: &Collected) -> String {
    String::from_utf8_lossy(&collected.buf.lock().unwrap()).into_owned()
}

/// Everything, once the writer closed the pipe (the process exited).
fn finish(collected: Collected) -> String {
    let _ = collected.reader.join();
    String::from_utf8_lossy(&collected.buf.lock().unwrap()).into_owned()
}

/// Runs `kes` to completion (at most 60 s).
fn run(args: &[String], env: &BTreeMap<String, String>, stdin: &str, cwd: &Path) -> Output {
    let mut child = command(args, env, cwd).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_owned();
    std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "kes {args:?} did not finish in time; stderr: {}",
                text(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status: status.code().unwrap_or(-1),
        stdout: finish(stdout),
        stderr: finish(stderr),
    }
}

/// Sends SIGINT to a process.
fn interrupt(pid: u32) {
    let status = Command::new("kill")
        .arg("-INT")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

// ---- matching -------------------------------------------------------------------------------

/// Whether `actual` matches `expected`, where `[..]` matches any characters within a line and
/// a line `...` any number of lines.
fn matches(expected: &str, actual: &str) -> bool {
    let expected: Vec<&str> = expected.split('\n').collect();
    let actual: Vec<&str> = actual.split('\n').collect();
    match_lines(&expected, &actual)
}

fn match_lines(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((&"...", rest)) => (0..=actual.len()).any(|i| match_lines(rest, &actual[i..])),
        Some((first, rest)) => {
            !actual.is_empty() && match_line(first, actual[0]) && match_lines(rest, &actual[1..])
        }
    }
}

fn match_line(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let Some(middle) = rest.strip_suffix(last) else {
        return false;
    };
    rest = middle;
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[test]
fn the_matcher_masks_what_it_should() {
    assert!(matches("a [..] c\n", "a bbb c\n"));
    assert!(matches("a[..]\n", "a\n"));
    assert!(!matches("a [..] c\n", "a bbb d\n"));
    assert!(!matches("abc", "abc\n"));
    assert!(matches("x\n...\nz\n", "x\n1\n2\nz\n"));
    assert!(matches("x\n...\nz\n", "x\nz\n"));
    assert!(!matches("x\n...\nz\n", "x\n1\n"));
    assert!(matches("[..]-[..]-[..]", "1-2-3"));
    assert!(!matches("[..]ab[..]ba", "aba"));
}

// ---- snapshot cases -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default = "default_server")]
    server: String,
    #[serde(default = "default_as", rename = "as")]
    who: String,
    #[serde(default)]
    setup: Vec<Step>,
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    stdin: String,
    status: i32,
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stderr: String,
    follow: Option<Follow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    args: Vec<String>,
    #[serde(default)]
    stdin: String,
    #[serde(default = "default_as", rename = "as")]
    who: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Follow {
    during: Vec<Step>,
    lines: usize,
}

fn default_server() -> String {
    "pki".into()
}

fn default_as() -> String {
    "admin".into()
}

/// A case's server and the values substituted into the case.
struct Env {
    _server: Option<Kes>,
    vars: BTreeMap<&'static str, String>,
    server_kind: String,
    dev_api_key: Option<String>,
    dir: PathBuf,
}

impl Env {
    fn new(kind: &str, dir: &Path) -> Env {
        let (server, dev_api_key) = match kind {
            "pki" => {
                let ks = dir.join("keystore");
                (Some(Kes::start(dir, &config(&ks, ""))), None)
            }
            "dev" => {
                let kes = Kes::start_dev(dir);
                let key = kes
                    .stderr()
                    .lines()
                    .find_map(|l| l.strip_prefix("Admin API key: ").map(str::to_owned))
                    .expect("dev server prints its API key");
                (Some(kes), Some(key))
            }
            "none" => (None, None),
            other => panic!("unknown server kind {other}"),
        };
        let mut vars = BTreeMap::new();
        vars.insert(
            "{ADDR}",
            server
                .as_ref()
                .map(|s| s.addr.to_string())
                .unwrap_or_default(),
        );
        vars.insert("{TMP}", dir.display().to_string());
        vars.insert("{PKI}", pki().canonicalize().unwrap().display().to_string());
        vars.insert("{ADMIN_ID}", admin_identity());
        vars.insert("{APP_ID}", app_identity());
        vars.insert("{OTHER_ID}", identity_of(&pki().join("other.crt")));
        Env {
            _server: server,
            vars,
            server_kind: kind.to_owned(),
            dev_api_key,
            dir: dir.to_owned(),
        }
    }

    fn subst(&self, s: &str) -> String {
        self.vars
            .iter()
            .fold(s.to_owned(), |acc, (k, v)| acc.replace(k, v))
    }

    /// The environment of a command run as `who`, plus the case's `extra` variables.
    fn env(&self, who: &str, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let pki = &self.vars["{PKI}"];
        if self.server_kind != "none" {
            env.insert("KES_SERVER".to_owned(), self.vars["{ADDR}"].clone());
        }
        match (self.server_kind.as_str(), who) {
            (_, "none") => {}
            ("pki", name) => {
                env.insert("KES_CAPATH".to_owned(), format!("{pki}/ca.crt"));
                env.insert("KES_CLIENT_CERT".to_owned(), format!("{pki}/{name}.crt"));
                env.insert("KES_CLIENT_KEY".to_owned(), format!("{pki}/{name}.key"));
            }
            ("dev", "admin") => {
                env.insert("KES_API_KEY".to_owned(), self.dev_api_key.clone().unwrap());
            }
            ("none", _) => {}
            (kind, who) => panic!("cannot run as {who} with server {kind}"),
        }
        for (k, v) in extra {
            env.insert(k.clone(), self.subst(v));
        }
        env
    }

    fn args(&self, args: &[String]) -> Vec<String> {
        args.iter().map(|a| self.subst(a)).collect()
    }

    fn setup(&self, step: &Step) {
        let out = run(
            &self.args(&step.args),
            &self.env(&step.who, &BTreeMap::new()),
            &self.subst(&step.stdin),
            &self.dir,
        );
        assert_eq!(
            out.status, 0,
            "setup {:?} failed: {}",
            step.args, out.stderr
        );
    }
}

fn run_case(case: &Case) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().canonicalize().unwrap();
    let env = Env::new(&case.server, &dir_path);
    for step in &case.setup {
        env.setup(step);
    }
    let args = env.args(&case.args);
    let vars = env.env(&case.who, &case.env);
    let mut out = match &case.follow {
        None => run(&args, &vars, &env.subst(&case.stdin), &dir_path),
        Some(follow) => {
            let mut child = command(&args, &vars, &dir_path).spawn().unwrap();
            drop(child.stdin.take());
            let stdout = collect(child.stdout.take().unwrap());
            let stderr = collect(child.stderr.take().unwrap());
            // The audit view prints its header once the stream is open; the JSON view prints
            // nothing, so give it time to connect.
            let deadline = Instant::now() + Duration::from_secs(10);
            if args.iter().any(|a| a == "--json") {
                std::thread::sleep(Duration::from_millis(1000));
            } else {
                while !text(&stdout).contains('\n') && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            for step in &follow.during {
                let out = run(
                    &env.args(&step.args),
                    &env.env(&step.who, &BTreeMap::new()),
                    &env.subst(&step.stdin),
                    &dir_path,
                );
                let _ = out; // errors are part of what the log shows
            }
            while text(&stdout).lines().count() < follow.lines && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            interrupt(child.id());
            let status = child.wait().unwrap();
            Output {
                status: status.code().unwrap_or(-1),
                stdout: finish(stdout),
                stderr: finish(stderr),
            }
        }
    };
    // The working directory differs per run.
    out.stdout = out.stdout.replace(&env.vars["{TMP}"], "{TMP}");
    out.stderr = out.stderr.replace(&env.vars["{TMP}"], "{TMP}");
    let expected_stdout = env.subst(&case.stdout).replace(&env.vars["{TMP}"], "{TMP}");
    let expected_stderr = env.subst(&case.stderr).replace(&env.vars["{TMP}"], "{TMP}");
    Output {
        status: out.status,
        stdout: check(&expected_stdout, out.stdout),
        stderr: check(&expected_stderr, out.stderr),
    }
}

/// Returns `actual` if it matches, else a marker with both texts.
fn check(expected: &str, actual: String) -> String {
    if matches(expected, &actual) {
        String::new()
    } else {
        format!("expected:\n{expected}\n--- got:\n{actual}\n---")
    }
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd")
}

#[test]
fn cli_snapshots() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 30,
        "expected the snapshot cases in {}",
        cases_dir().display()
    );
    let filter = std::env::var("KES_CLI_CASE").unwrap_or_default();
    let mut failures = Vec::new();
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if !name.contains(&filter) {
            continue;
        }
        let case: Case = toml::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let out = run_case(&case);
        let mut problems = String::new();
        if out.status != case.status {
            problems.push_str(&format!(
                "exit status {} instead of {}\n",
                out.status, case.status
            ));
        }
        if !out.stdout.is_empty() {
            problems.push_str(&format!("stdout differs\n{}\n", out.stdout));
        }
        if !out.stderr.is_empty() {
            problems.push_str(&format!("stderr differs\n{}\n", out.stderr));
        }
        if !problems.is_empty() {
            failures.push(format!("=== {name}\n{problems}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---- the original's transcript --------------------------------------------------------------

/// Our output where the original is wrong (README of kes-cli) or machine-specific, by step
/// index: `(exit code, stdout, stderr)` with the transcript's placeholders.
fn deviation(index: usize) -> Option<(i32, &'static str, &'static str)> {
    Some(match index {
        // `key ls --json`, `identity ls --json`, `policy ls --json`: only the JSON.
        6 => (0, "[\"demo-k1\",\"demo-k2\"]\n", ""),
        25 => (0, "[\"<admin-identity>\",\"<app-identity>\"]\n", ""),
        29 => (0, "[\"demo-app\"]\n", ""),
        // A prefix without `*` lists the matching keys; a trailing `*` is a prefix match.
        7 | 8 => (0, "Key\ndemo-k1\ndemo-k2\n", ""),
        // `identity info --json` prints JSON.
        22 => (
            0,
            "{\"identity\":\"<admin-identity>\",\"admin\":true,\"created_at\":\"<time>\"}\n",
            "",
        ),
        // `identity info` as a non-admin describes the identity and its policy.
        23 => (
            0,
            "Identity    <app-identity>\nCreated At  <local time>\nRole        User\nCreated By  <admin-identity>\nPolicy      demo-app\nAllow       /v1/key/decrypt/demo-*\n            /v1/key/generate/demo-*\nDeny        /v1/key/decrypt/demo-secret*\n",
            "",
        ),
        // `policy ls` lists policies under the header "Policy" (the original says "Key").
        28 => (0, "Policy\ndemo-app\n", ""),
        // Version, platform and memory are ours; uptime appears once it is not zero.
        38 => (
            0,
            "{\"version\":\"<any>\",\"os\":\"<any>\",\"arch\":\"<any>\",<any>\"num_cpu\":<any>,\"num_cpu_used\":<any>,\"mem_heap_used\":<any>,\"mem_stack_used\":<any>,\"keystore_latency\":1}\n",
            "",
        ),
        // Errors a person can act on: what failed, and a hint.
        40 => (
            1,
            "",
            "Error: failed to list keys: TLS connection to https://127.0.0.1:<port> failed: the server's certificate <any>\nHint: if you trust this server, set KES_CAPATH to the CA certificate (PEM) that signed its certificate, or add that CA to the system's trust store; for a test server with a self-signed certificate, -k/--insecure skips the check.\n",
        ),
        41 => (
            1,
            "",
            "Error: failed to list keys: cannot connect to https://127.0.0.1:1: connection refused\nHint: is the KES server running and reachable at that address? The address comes from KES_SERVER (or MINIO_KES_SERVER).\n",
        ),
        // `kes key` lists the version commands the original never had.
        44 => (
            2,
            "",
            "Usage:\n    kes key <command>\n\nCommands:\n    create                   Create a new crypto key.\n    import                   Import a crypto key.\n    info                     Get information about a crypto key. \n    ls                       List crypto keys.\n    rm                       Delete a crypto key.\n\n    encrypt                  Encrypt a message.\n    decrypt                  Decrypt an encrypted message.\n    dek                      Generate a new data encryption key.\n\n    rotate                   Add a new version to a crypto key.\n    rm-version               Remove an old version of a crypto key.\n\nOptions:\n    -h, --help               Print command line options.\n",
        ),
        _ => return None,
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        std::fs::copy(entry.path(), &dest).unwrap();
        let mut perm = std::fs::metadata(&dest).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&dest, perm).unwrap();
    }
}

/// Two API keys, the first one's identity sorting before the second's (the transcript lists
/// the admin first).
fn ordered_api_keys() -> (kes_crypto::ApiKey, kes_crypto::ApiKey) {
    loop {
        let a = kes_crypto::ApiKey::generate().unwrap();
        let b = kes_crypto::ApiKey::generate().unwrap();
        if a.identity() < b.identity() {
            return (a, b);
        }
    }
}

#[test]
fn replay_cli_transcript() {
    let data = shared_testdata();
    let transcript: Value =
        serde_json::from_slice(&std::fs::read(data.join("kes-cli/transcript.json")).unwrap())
            .unwrap();
    let steps = transcript["steps"].as_array().unwrap();
    assert_eq!(
        steps.len(),
        45,
        "the transcript changed: review the deviations"
    );

    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().canonicalize().unwrap();
    copy_dir(&data.join("kes-interop/certs"), &tmp.join("certs"));
    let (admin, app) = ordered_api_keys();
    let (admin_key, app_key) = (
        admin.expose_secret().to_string(),
        app.expose_secret().to_string(),
    );
    let (admin_id, app_id) = (admin.identity(), app.identity());
    let server_config = transcript["server_config"]
        .as_str()
        .unwrap()
        .replace("<admin-identity>", &admin_id)
        .replace("<app-identity>", &app_id)
        .replace("127.0.0.1:<port>", "127.0.0.1:0")
        .replace("<tmp>", &tmp.display().to_string())
        .replace("certs/", &format!("{}/certs/", tmp.display()));
    let server_dir = tmp.join("server");
    std::fs::create_dir_all(&server_dir).unwrap();
    let kes = Kes::start(&server_dir, &server_config);
    let port = kes.addr.port().to_string();

    let mut last_ciphertext = String::new();
    let mut failures = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let note = step["note"].as_str().unwrap();
        let who = step["as"].as_str().unwrap();
        let args: Vec<String> = step["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                a.as_str()
                    .unwrap()
                    .replace("<port>", &port)
                    .replace("<admin-api-key>", &admin_key)
                    .replace("<ciphertext>", &last_ciphertext)
            })
            .collect();
        let mut env = BTreeMap::new();
        let server = match note {
            "server unreachable" => "127.0.0.1:1".to_owned(),
            _ => format!("127.0.0.1:{port}"),
        };
        env.insert("KES_SERVER".to_owned(), server);
        let api_key = match (who, note) {
            (_, "malformed API key") => Some("kes:v1:AAAA".to_owned()),
            ("admin", _) => Some(admin_key.clone()),
            ("app", _) => Some(app_key.clone()),
            _ => None,
        };
        if let Some(key) = api_key {
            env.insert("KES_API_KEY".to_owned(), key);
        }
        let out = run(&args, &env, "", &tmp);
        if let Some(ct) = serde_json::from_str::<Value>(&out.stdout)
            .ok()
            .and_then(|v| v["ciphertext"].as_str().map(str::to_owned))
        {
            last_ciphertext = ct;
        }

        let (status, stdout, stderr) = match deviation(index) {
            Some((status, stdout, stderr)) => (status, stdout.to_owned(), stderr.to_owned()),
            None => (
                i32::try_from(step["rc"].as_i64().unwrap()).unwrap(),
                step["stdout"].as_str().unwrap().to_owned(),
                step["stderr"].as_str().unwrap().to_owned(),
            ),
        };
        let pattern = |text: &str| {
            text.replace("<admin-api-key>", &admin_key)
                .replace("<admin-identity>", &admin_id)
                .replace("<app-identity>", &app_id)
                .replace("<port>", &port)
                .replace("<local time>", "[..]-[..]-[..] [..]:[..]:[..]")
                .replace("<time>", "[..]")
                .replace("<base64>", "[..]")
                .replace("<any>", "[..]")
        };
        let (want_out, want_err) = (pattern(&stdout), pattern(&stderr));
        if out.status != status
            || !matches(&want_out, &out.stdout)
            || !matches(&want_err, &out.stderr)
        {
            failures.push(format!(
                "step {index} `kes {}` ({note}):\n  want {status} {want_out:?} {want_err:?}\n  got  {} {:?} {:?}",
                args.join(" "),
                out.status,
                out.stdout,
                out.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} step(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---- identities -----------------------------------------------------------------------------

/// `kes identity of` and the server agree on the identity of every API key the original
/// computed (vectors.json `api_keys`): the server derives it from the client certificate the
/// CLI makes from the key.
#[test]
fn api_key_identities_match_the_vectors_and_the_server() {
    let data = shared_testdata();
    let vectors: Value =
        serde_json::from_slice(&std::fs::read(data.join("kes-interop/vectors.json")).unwrap())
            .unwrap();
    let keys = vectors["api_keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    let dir = tempfile::tempdir().unwrap();
    for (i, vector) in keys.iter().enumerate() {
        let (key, identity) = (
            vector["api_key"].as_str().unwrap(),
            vector["identity"].as_str().unwrap(),
        );
        let out = run(
            &["identity".into(), "of".into(), key.into()],
            &BTreeMap::new(),
            "",
            dir.path(),
        );
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, identity),
            "identity of {key}"
        );

        // A server whose admin is that identity accepts the key as its admin.
        let server_dir = dir.path().join(format!("s{i}"));
        std::fs::create_dir_all(&server_dir).unwrap();
        let conf = format!(
            "admin:\n  identity: {identity}\ntls:\n  key: {}\n  cert: {}\nkeystore:\n  fs:\n    path: {}\n",
            pki().join("server.key").display(),
            pki().join("server.crt").display(),
            server_dir.join("ks").display()
        );
        let kes = Kes::start(&server_dir, &conf);
        let env = BTreeMap::from([
            ("KES_SERVER".to_owned(), kes.addr.to_string()),
            ("KES_API_KEY".to_owned(), key.to_owned()),
            (
                "KES_CAPATH".to_owned(),
                pki().join("ca.crt").display().to_string(),
            ),
        ]);
        let out = run(
            &["identity".into(), "info".into(), "--json".into()],
            &env,
            "",
            dir.path(),
        );
        assert_eq!(out.status, 0, "{}", out.stderr);
        let described: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(described["identity"], identity);
        assert_eq!(described["admin"], true);
    }
}

/// A certificate and encrypted key made by `kes identity new --encrypt` serve as the server's
/// TLS identity with `tls.password`; a client presenting the same certificate (its encrypted
/// key unlocked with the password on stdin) is the identity `kes identity of` computes, and
/// the server's banner names it as admin.
#[test]
fn encrypted_identity_certificates_work_with_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |v: &str| v.to_owned();
    let (key, cert) = (d.join("id.key"), d.join("id.crt"));
    let out = run(
        &[
            s("identity"),
            s("new"),
            s("--key"),
            key.display().to_string(),
            s("--cert"),
            cert.display().to_string(),
            s("--encrypt"),
            s("--ip"),
            s("127.0.0.1"),
            s("--dns"),
            s("localhost"),
            s("kes-test"),
        ],
        &BTreeMap::new(),
        "correct horse\ncorrect horse\n",
        d,
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    let key_pem = std::fs::read_to_string(&key).unwrap();
    assert!(
        key_pem.contains("Proc-Type: 4,ENCRYPTED") && key_pem.contains("DEK-Info: AES-256-CBC,"),
        "{key_pem}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&cert).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    let of = run(
        &[s("identity"), s("of"), cert.display().to_string()],
        &BTreeMap::new(),
        "",
        d,
    );
    assert_eq!(of.status, 0, "{}", of.stderr);
    let identity = of.stdout.clone();
    assert_eq!(identity.len(), 64);
    assert_eq!(
        identity,
        identity_of(&cert),
        "the CLI and the harness disagree"
    );
    assert!(
        out.stdout.contains(&format!("\n   {identity}\n")),
        "identity new printed another identity: {}",
        out.stdout
    );

    // Without the password, the server refuses the key; with it, it starts.
    let conf = |password: &str| {
        format!(
            "admin:\n  identity: {identity}\ntls:\n  key: {}\n  cert: {}\n  password: \"{password}\"\nkeystore:\n  fs:\n    path: {}\n",
            key.display(),
            cert.display(),
            d.join("ks").display()
        )
    };
    assert!(
        Kes::try_start(d, &conf("wrong horse"), &[]).is_err(),
        "a wrong tls.password was accepted"
    );
    let kes = Kes::start(d, &conf("correct horse"));
    assert!(
        kes.stderr().contains(&format!("Admin       {identity}")),
        "{}",
        kes.stderr()
    );

    let env = BTreeMap::from([
        ("KES_SERVER".to_owned(), kes.addr.to_string()),
        ("KES_CLIENT_CERT".to_owned(), cert.display().to_string()),
        ("KES_CLIENT_KEY".to_owned(), key.display().to_string()),
        // The self-signed certificate is its own trust anchor.
        ("KES_CAPATH".to_owned(), cert.display().to_string()),
    ]);
    let info = run(
        &[s("identity"), s("info"), s("--json")],
        &env,
        "correct horse\n",
        d,
    );
    assert_eq!(info.status, 0, "{}", info.stderr);
    let described: Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(described["identity"].as_str(), Some(identity.as_str()));
    assert_eq!(described["admin"], true);
    assert_eq!(
        info.stderr,
        format!("Enter password for private key {}: \n", key.display())
    );

    // A wrong password for the client key is an error a person understands.
    let bad = run(&[s("key"), s("ls")], &env, "nope\n", d);
    assert_eq!(bad.status, 1);
    assert!(
        bad.stderr.contains("cannot decrypt private key"),
        "{}",
        bad.stderr
    );
}

/// The encrypted key the original made (`kes-interop/certs/encrypted-server.*`) is read by
/// the CLI, and its identity is the one the original computed.
#[test]
fn the_originals_encrypted_identity_is_read() {
    let data = shared_testdata();
    let certs = data.join("kes-interop/certs");
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "identity".into(),
            "of".into(),
            certs.join("encrypted-server.crt").display().to_string(),
        ],
        &BTreeMap::new(),
        "",
        dir.path(),
    );
    assert_eq!(
        out.stdout,
        "632fb89c4511295024717a016f6a792d214811f36e036c7e3cdb95d5dab35183"
    );
    let conf = format!(
        "admin:\n  identity: 632fb89c4511295024717a016f6a792d214811f36e036c7e3cdb95d5dab35183\ntls:\n  key: {}\n  cert: {}\n  password: \"correct horse battery\"\nkeystore:\n  fs:\n    path: {}\n",
        certs.join("encrypted-server.key").display(),
        certs.join("encrypted-server.crt").display(),
        dir.path().join("ks").display()
    );
    let kes = Kes::start(dir.path(), &conf);
    let env = BTreeMap::from([
        ("KES_SERVER".to_owned(), kes.addr.to_string()),
        (
            "KES_CLIENT_CERT".to_owned(),
            certs.join("encrypted-server.crt").display().to_string(),
        ),
        (
            "KES_CLIENT_KEY".to_owned(),
            certs.join("encrypted-server.key").display().to_string(),
        ),
    ]);
    let out = run(
        &[
            "identity".into(),
            "info".into(),
            "-k".into(),
            "--json".into(),
        ],
        &env,
        "correct horse battery\n",
        dir.path(),
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    let described: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        described["identity"],
        "632fb89c4511295024717a016f6a792d214811f36e036c7e3cdb95d5dab35183"
    );
    assert_eq!(described["admin"], true);
}
