//! Tests of kes-config through its public API: the data files under `tests/data` and the
//! behaviour of `parse`, `load` and the public types.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_in_result
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use kes_config::{Env, Error, Errors, LogLevel, MapEnv, ProcessEnv, SecretString, sample};
use kes_keystore_vault::VaultKvVersion;

mod backends;
use backends::{BACKENDS, KeyStoreConfig};

type Config = kes_config::Config<KeyStoreConfig>;

fn parse(source: &str, file: &str, env: &dyn Env) -> Result<Config, Errors> {
    kes_config::parse(source, file, env, BACKENDS)
}

fn load(path: &Path, env: &dyn Env) -> Result<Config, Errors> {
    kes_config::load(path, env, BACKENDS)
}

const ADMIN: &str = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22";
const APP: &str = "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb";
const OTHER: &str = "ab785e3b95d80d72cc9c27cb9fde886a0bf9068a69d40e3bd08a54e68c3f2bf7";
const PROXY: &str = "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6";

fn data_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(kind)
}

/// The `.yml` files of `tests/data/<kind>`, sorted.
fn data_files(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no test files in {kind}");
    files
}

/// The environment a data file declares in `# env: NAME=value` comment lines.
fn file_env(source: &str) -> MapEnv {
    source
        .lines()
        .filter_map(|line| line.strip_prefix("# env: "))
        .map(|line| line.split_once('=').expect("# env: NAME=value"))
        .collect()
}

fn parse_data(kind: &str, name: &str) -> Result<Config, Errors> {
    let source = std::fs::read_to_string(data_dir(kind).join(name)).unwrap();
    parse(&source, name, &file_env(&source))
}

fn valid(name: &str) -> Config {
    parse_data("valid", name).unwrap_or_else(|e| panic!("{name}:\n{e}"))
}

fn errors(source: &str) -> String {
    match parse(source, "kes.yml", &MapEnv::new()) {
        Ok(_) => panic!("accepted:\n{source}"),
        Err(e) => e.to_string(),
    }
}

const MINIMAL: &str =
    "admin: {identity: disabled}\ntls: {key: k, cert: c}\nkeystore: {fs: {path: p}}\n";

// ---- data files ------------------------------------------------------------------------------

#[test]
fn every_valid_file_parses() {
    for file in data_files("valid") {
        let name = file.file_name().unwrap().to_str().unwrap();
        if let Err(e) = parse_data("valid", name) {
            panic!("{name} was rejected:\n{e}");
        }
    }
}

#[test]
fn every_invalid_file_reports_exactly_its_expected_errors() {
    let mut failures = Vec::new();
    for file in data_files("invalid") {
        let name = file.file_name().unwrap().to_str().unwrap();
        let expected_path = file.with_extension("err");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        match parse_data("invalid", name) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(errors) => {
                let got = errors.to_string();
                if got != expected.trim_end() {
                    failures.push(format!(
                        "{name}:\n--- expected\n{}\n--- got\n{got}",
                        expected.trim_end()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn every_expected_error_file_has_its_config() {
    for entry in std::fs::read_dir(data_dir("invalid")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "err") {
            assert!(
                path.with_extension("yml").exists(),
                "{} has no .yml",
                path.display()
            );
        }
    }
}

// ---- what valid files mean -------------------------------------------------------------------

#[test]
fn full_config_has_every_section() {
    let c = valid("full.yml");
    assert_eq!(c.address, Some("127.0.0.1:7373".parse().unwrap()));
    assert_eq!(c.admin, ADMIN);

    assert_eq!(c.tls.key, PathBuf::from("./server.key"));
    assert_eq!(c.tls.cert, PathBuf::from("./server.crt"));
    assert_eq!(
        c.tls.password.as_ref().unwrap().expose_secret(),
        "correct horse battery staple"
    );
    assert_eq!(c.tls.auth, Some(true));
    assert_eq!(c.tls.ca, Some(PathBuf::from("./ca")));
    assert_eq!(c.tls.proxy.identities, [PROXY]);
    assert_eq!(
        c.tls.proxy.header_cert.as_deref(),
        Some("X-Forwarded-Client-Cert")
    );

    let names: Vec<&str> = c.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["my-app", "monitoring"], "file order");
    assert_eq!(
        c.policies[0].allow,
        [
            "/v1/key/create/my-app*",
            "/v1/key/generate/my-app*",
            "/v1/key/decrypt/my-app*"
        ]
    );
    assert_eq!(c.policies[0].deny, ["/v1/key/generate/my-app-internal*"]);
    assert_eq!(c.policies[0].identities, [APP]);
    assert_eq!(c.policies[1].allow, ["/v1/metrics", "/v1/status"]);
    assert!(c.policies[1].deny.is_empty());
    assert_eq!(c.policies[1].identities, [OTHER]);

    assert_eq!(c.cache.any, Some(Duration::from_secs(300)));
    assert_eq!(c.cache.unused, Some(Duration::from_secs(30)));
    assert_eq!(c.cache.offline, Some(Duration::from_secs(5400)));

    let api: Vec<(&str, bool, Option<Duration>)> = c
        .api
        .iter()
        .map(|a| (a.path.as_str(), a.skip_auth, a.timeout))
        .collect();
    assert_eq!(
        api,
        [
            ("/v1/ready", true, Some(Duration::from_secs(5))),
            ("/v1/key/create/", false, Some(Duration::from_secs(90))),
            ("/v1/metrics", false, None),
        ]
    );
    assert_eq!(c.log.error, LogLevel::WARN);
    assert_eq!(c.log.audit, LogLevel::OFF);
    assert_eq!(c.keys, ["my-app-key", "backup-key"]);
    assert_eq!(
        c.limits,
        kes_config::LimitsConfig {
            max_connections: Some(2000),
            max_connections_per_address: Some(500),
            idle_timeout: Some(Duration::from_secs(120)),
        }
    );

    assert_eq!(
        c.rotation,
        [
            kes_config::RotationConfig {
                pattern: "my-app-*".into(),
                period: Duration::from_secs(720 * 3600),
            },
            kes_config::RotationConfig {
                pattern: "backup-key".into(),
                period: Duration::from_secs(2160 * 3600),
            },
        ]
    );

    let KeyStoreConfig::Vault(v) = &c.keystore else {
        panic!("{:?}", c.keystore)
    };
    assert_eq!(v.endpoints, ["https://vault.example.com:8200"]);
    assert_eq!(v.engine, "kes-kv");
    assert_eq!(v.version, VaultKvVersion::V2);
    assert_eq!(v.namespace.as_deref(), Some("team-a"));
    assert_eq!(v.prefix, "kes");
    let transit = v.transit.as_ref().unwrap();
    assert_eq!(
        (transit.engine.as_str(), transit.key.as_str()),
        ("transit", "kes-wrap")
    );
    let approle = v.approle.as_ref().unwrap();
    assert_eq!(approle.engine, "approle");
    assert_eq!(approle.namespace.as_deref(), Some("/"));
    assert_eq!(approle.id, "0f1d9b2a-role");
    assert_eq!(approle.secret.expose_secret(), "s3cr3t-id");
    assert!(v.kubernetes.is_none());
    assert_eq!(v.tls.key, Some(PathBuf::from("./vault.key")));
    assert_eq!(v.tls.cert, Some(PathBuf::from("./vault.crt")));
    assert_eq!(v.tls.ca, Some(PathBuf::from("/etc/ssl/vault-ca.pem")));
    assert_eq!(v.status_ping, Duration::from_secs(10));
}

#[test]
fn minimal_config_gets_the_defaults() {
    let c = valid("minimal-dev.yml");
    assert_eq!(c.address, None);
    assert_eq!(c.admin, "disabled");
    assert_eq!(
        c.tls.password.as_ref().map(SecretString::expose_secret),
        None
    );
    assert_eq!(c.tls.auth, None);
    assert_eq!(c.tls.ca, None);
    assert!(c.tls.proxy.identities.is_empty());
    assert_eq!(c.tls.proxy.header_cert, None);
    assert!(c.policies.is_empty() && c.api.is_empty() && c.keys.is_empty());
    assert_eq!(
        (c.cache.any, c.cache.unused, c.cache.offline),
        (None, None, None)
    );
    assert_eq!((c.log.error, c.log.audit), (LogLevel::INFO, LogLevel::INFO));
    assert_eq!(c.limits, kes_config::LimitsConfig::default());
    assert!(
        matches!(&c.keystore, KeyStoreConfig::Fs { path } if path == Path::new("/tmp/kes-dev"))
    );
}

#[test]
fn vault_defaults_and_kubernetes_login() {
    let c = valid("vault-kubernetes.yml");
    let KeyStoreConfig::Vault(v) = &c.keystore else {
        panic!()
    };
    assert_eq!(
        v.endpoints,
        ["https://vault-0.vault:8200", "https://vault-1.vault:8200"]
    );
    assert_eq!(v.engine, "kv");
    assert_eq!(v.version, VaultKvVersion::V1);
    assert_eq!(v.namespace, None);
    assert_eq!(v.prefix, "");
    assert!(
        v.transit.is_none(),
        "a transit block with empty values is no transit"
    );
    assert!(v.approle.is_none());
    let k8s = v.kubernetes.as_ref().unwrap();
    assert_eq!(k8s.engine, "kubernetes");
    assert_eq!(k8s.namespace, None);
    assert_eq!(k8s.role, "kes-server");
    assert_eq!(
        k8s.jwt.expose_secret(),
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    );
    assert_eq!(v.tls, Default::default());
    assert_eq!(v.status_ping, Duration::from_secs(15));
}

#[test]
fn root_is_the_admin_of_old_layouts_and_paths_the_allow_list() {
    let v14 = valid("legacy-v0.14-root-paths.yml");
    assert_eq!(v14.admin, ADMIN);
    assert_eq!(
        v14.policies[0].allow,
        [
            "/v1/key/create/my-app*",
            "/v1/key/generate/my-app*",
            "/v1/key/decrypt/my-app*"
        ]
    );
    assert_eq!(v14.log.error, LogLevel::INFO, "error: on");
    assert_eq!(v14.log.audit, LogLevel::OFF, "audit: off");

    let v17 = valid("legacy-v0.17-root-allow.yml");
    assert_eq!(v17.admin, ADMIN);
    assert_eq!(v17.policies[0].deny, ["/v1/key/generate/my-app-internal*"]);
}

#[test]
fn v0_19_sample_layout_uses_the_filled_in_login_block() {
    let c = valid("legacy-v0.19-server-config.yml");
    assert_eq!(c.log.audit, LogLevel::INFO, "audit: on");
    assert_eq!(
        c.tls.password.as_ref().map(SecretString::expose_secret),
        None,
        "empty password"
    );
    let KeyStoreConfig::Vault(v) = &c.keystore else {
        panic!()
    };
    assert_eq!(v.engine, "kv", "empty engine means the default");
    assert_eq!(v.version, VaultKvVersion::V1);
    assert_eq!(v.approle.as_ref().unwrap().id, "my-role-id");
    assert!(
        v.kubernetes.is_none(),
        "the empty kubernetes block is not used"
    );
    assert_eq!(v.tls, Default::default());
}

#[test]
fn env_references_are_replaced_except_in_patterns() {
    let c = valid("env.yml");
    assert_eq!(c.address, Some("127.0.0.1:7000".parse().unwrap()));
    assert_eq!(
        c.admin, ADMIN,
        "blanks around the reference and the name are trimmed"
    );
    assert_eq!(c.tls.key, PathBuf::from("/var/lib/kes"));
    assert_eq!(
        c.tls.cert,
        PathBuf::from("cert-${KES_DIR}"),
        "no partial interpolation"
    );
    assert!(
        c.tls.password.is_none(),
        "a variable set to the empty string is set, and empty"
    );
    assert_eq!(c.tls.auth, Some(true));
    assert_eq!(c.policies[0].allow, ["${NOT_EXPANDED}"]);
    assert_eq!(c.policies[0].deny, ["/v1/key/delete/${ALSO_NOT}*"]);
    assert_eq!(
        c.policies[0].identities,
        [APP],
        "the empty identity is dropped"
    );
    assert_eq!(c.cache.any, Some(Duration::from_secs(600)));
    assert_eq!(
        c.cache.unused, None,
        "\"0\" from the environment is a zero duration"
    );
    assert!(c.api[0].skip_auth);
    assert_eq!(c.log.audit, LogLevel::OFF);
    assert_eq!(c.keys, ["env-key"]);
    let KeyStoreConfig::Vault(v) = &c.keystore else {
        panic!()
    };
    assert_eq!(v.endpoints, ["https://a.example:8200", "127.0.0.1:7000"]);
    assert_eq!(
        v.kubernetes.as_ref().unwrap().jwt.expose_secret(),
        "eyJhbGciOi.secret.jwt"
    );
}

#[test]
fn yaml_features_resolve_like_yaml_v3() {
    let c = valid("yaml-features.yml");
    assert_eq!(c.tls.auth, Some(false), "auth: OFF");
    assert_eq!(c.cache.any, None, "!!str 0");
    assert_eq!(c.cache.unused, None, "0s");
    assert_eq!(c.cache.offline, Some(Duration::from_secs(3600)));
    let api: Vec<(&str, bool, Option<Duration>)> = c
        .api
        .iter()
        .map(|a| (a.path.as_str(), a.skip_auth, a.timeout))
        .collect();
    assert_eq!(
        api,
        [
            ("/v1/ready", true, None),
            ("/v1/status", false, Some(Duration::from_secs(2))),
            ("/v1/metrics", true, None),
            ("/version", true, None),
        ]
    );
    assert_eq!(c.log.error, LogLevel::DEBUG, "folded block scalar");
}

// ---- behaviour of parse ----------------------------------------------------------------------

#[test]
fn the_sample_parses_and_covers_every_section() {
    let c = parse(sample(), "sample.yml", &MapEnv::new()).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(c.keystore, KeyStoreConfig::Fs { .. }));
    assert!(!c.policies.is_empty() && !c.api.is_empty() && !c.keys.is_empty());
    for section in [
        "version:",
        "address:",
        "admin:",
        "tls:",
        "proxy:",
        "policy:",
        "cache:",
        "api:",
        "log:",
        "keys:",
        "keystore:",
        "vault:",
        "approle:",
        "kubernetes:",
        "transit:",
    ] {
        assert!(sample().contains(section), "sample lacks {section}");
    }
}

#[test]
fn all_errors_are_reported_at_once() {
    let source = "adress: x\nadmin: {}\ntls: {key: k, cert: c, auth: maybe}\ncache: {expiry: {any: 0}}\nlog: {error: loud}\n";
    let Err(errors) = parse(source, "kes.yml", &MapEnv::new()) else {
        panic!()
    };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "",
            "keystore",
            "admin.identity",
            "tls.auth",
            "cache.expiry.any",
            "log.error"
        ]
    );
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert!(lines.is_sorted(), "ordered by position: {lines:?}");
    assert_eq!(
        errors.to_string().lines().count(),
        errors.len(),
        "one error per line"
    );
}

#[test]
fn a_bare_integer_duration_needs_a_unit_but_quoted_zero_is_fine() {
    let with = |any: &str| format!("{MINIMAL}cache: {{expiry: {{any: {any}}}}}\n");
    assert_eq!(
        errors(&with("0")),
        "kes.yml:4:23: cache.expiry.any: expected a duration with a unit (e.g. '30s', '5m', '1h'), found the integer 0"
    );
    assert!(errors(&with("300")).contains("found the integer 300"));
    for ok in ["\"0\"", "'0'", "0s", "5m", "1h30m", "500ms", "1.5h"] {
        parse(&with(ok), "kes.yml", &MapEnv::new()).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn missing_variable_is_located_and_set_but_empty_is_not_missing() {
    let source = "admin: {identity: disabled}\ntls:\n  key: k\n  cert: c\n  password: ${PW}\nkeystore: {fs: {path: p}}\n";
    assert_eq!(
        errors(source),
        "kes.yml:5:13: tls.password: referenced environment variable 'PW' not found"
    );
    let c = parse(source, "kes.yml", &MapEnv::new().with("PW", "")).unwrap();
    assert!(c.tls.password.is_none());
    let c = parse(source, "kes.yml", &MapEnv::new().with("PW", "pw")).unwrap();
    assert_eq!(c.tls.password.unwrap().expose_secret(), "pw");
}

#[test]
fn secrets_never_appear_in_debug_output_or_errors() {
    let c = valid("full.yml");
    let debug = format!("{c:?}");
    assert!(!debug.contains("correct horse"), "{debug}");
    assert!(!debug.contains("s3cr3t-id"), "{debug}");
    assert!(debug.contains("[REDACTED]"));
    assert_eq!(
        format!("{:?}", SecretString::new("hunter2".into())),
        "SecretString([REDACTED])"
    );

    let Err(errors) = parse_data("invalid", "wrong-types.yml") else {
        panic!()
    };
    let text = errors.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("s3cr3t"),
        "{text}"
    );
}

#[test]
fn policy_identities_and_the_proxy_list_are_deduplicated() {
    let source = format!("{MINIMAL}policy:\n  a:\n    identities: [{APP}, {APP}]\n");
    let c = parse(&source, "kes.yml", &MapEnv::new()).unwrap();
    assert_eq!(c.policies[0].identities, [APP]);
}

#[test]
fn admin_placeholders_are_accepted_as_is() {
    for admin in ["disabled", "_", "not/an/identity", "ADMIN"] {
        let source = MINIMAL.replace("disabled", &format!("'{admin}'"));
        let c =
            parse(&source, "kes.yml", &MapEnv::new()).unwrap_or_else(|e| panic!("{admin}: {e}"));
        assert_eq!(c.admin, admin);
    }
}

#[test]
fn address_forms() {
    for (written, addr) in [
        ("0.0.0.0:7373", "0.0.0.0:7373"),
        ("':7373'", "0.0.0.0:7373"),
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("'[::1]:7373'", "[::1]:7373"),
    ] {
        let c = parse(
            &format!("address: {written}\n{MINIMAL}"),
            "kes.yml",
            &MapEnv::new(),
        )
        .unwrap();
        assert_eq!(c.address, Some(addr.parse().unwrap()), "{written}");
    }
    assert_eq!(
        errors(&format!("address: 7373\n{MINIMAL}")),
        "kes.yml:1:10: address: invalid address '7373': expected <ip>:<port> or :<port>"
    );
}

#[test]
fn tls_auth_values() {
    for (written, auth) in [
        ("on", Some(true)),
        ("ON", Some(true)),
        ("Off", Some(false)),
        ("''", None),
        ("", None),
    ] {
        let source = MINIMAL.replace("cert: c", &format!("cert: c, auth: {written}"));
        let c =
            parse(&source, "kes.yml", &MapEnv::new()).unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(c.tls.auth, auth, "{written}");
    }
    assert!(
        errors(&MINIMAL.replace("cert: c", "cert: c, auth: maybe"))
            .ends_with("tls.auth: invalid auth 'maybe'")
    );
}

#[test]
fn skip_auth_accepts_yaml_1_1_words() {
    for (written, value) in [
        ("true", true),
        ("Yes", true),
        ("on", true),
        ("y", true),
        ("False", false),
        ("NO", false),
        ("off", false),
        ("n", false),
    ] {
        let source = format!("{MINIMAL}api: {{/v1/ready: {{skip_auth: {written}}}}}\n");
        let c =
            parse(&source, "kes.yml", &MapEnv::new()).unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(c.api[0].skip_auth, value, "{written}");
    }
}

#[test]
fn a_keystore_section_of_the_wrong_type_is_one_error() {
    let source = "admin: {identity: disabled}\ntls: {key: k, cert: c}\nkeystore: fs\n";
    assert_eq!(
        errors(source),
        "kes.yml:3:11: keystore: expected a mapping, found a string"
    );
}

#[test]
fn truncated_and_corrupted_files_never_panic() {
    for file in data_files("valid").into_iter().chain(data_files("invalid")) {
        let source = std::fs::read_to_string(&file).unwrap();
        let env = file_env(&source);
        // Every 7th position keeps the test fast; the positions differ between files.
        for (i, _) in source.char_indices().step_by(7) {
            let _ = parse(&source[..i], "t.yml", &env);
            let mut corrupted = source.clone();
            corrupted.replace_range(
                i..=i + source[i..].chars().next().unwrap().len_utf8() - 1,
                "\"",
            );
            let _ = parse(&corrupted, "t.yml", &env);
        }
    }
}

// ---- load ------------------------------------------------------------------------------------

#[test]
fn load_resolves_tls_paths_against_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yml");
    std::fs::write(
        &file,
        "admin: {identity: disabled}\n\
         tls: {key: certs/server.key, cert: /abs/server.crt, ca: ca}\n\
         keystore:\n  vault:\n    endpoint: https://v:8200\n    approle: {id: r, secret: s}\n    tls: {key: vk, cert: /abs/vc, ca: vca}\n",
    )
    .unwrap();
    let c = load(&file, &MapEnv::new()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.tls.key, dir.path().join("certs/server.key"));
    assert_eq!(c.tls.cert, PathBuf::from("/abs/server.crt"));
    assert_eq!(c.tls.ca, Some(dir.path().join("ca")));
    let KeyStoreConfig::Vault(v) = &c.keystore else {
        panic!()
    };
    assert_eq!(v.tls.key, Some(dir.path().join("vk")));
    assert_eq!(v.tls.cert, Some(PathBuf::from("/abs/vc")));
    assert_eq!(v.tls.ca, Some(dir.path().join("vca")));
}

#[test]
fn load_keeps_the_fs_keystore_path_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yml");
    std::fs::write(&file, format!("\u{feff}{MINIMAL}")).unwrap();
    let c = load(&file, &MapEnv::new()).unwrap_or_else(|e| panic!("a leading BOM is fine: {e}"));
    assert!(matches!(&c.keystore, KeyStoreConfig::Fs { path } if path == Path::new("p")));
    assert_eq!(c.tls.key, dir.path().join("k"));
}

#[test]
fn load_reports_unreadable_files_without_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yml");
    let Err(errors) = load(&missing, &MapEnv::new()) else {
        panic!()
    };
    let error = &errors.0[0];
    assert_eq!((error.line, error.column, error.path.as_str()), (0, 0, ""));
    assert!(
        errors.to_string().starts_with(&format!(
            "{}: cannot read the config file: ",
            missing.display()
        )),
        "{errors}"
    );

    let binary = dir.path().join("binary.yml");
    std::fs::write(&binary, b"admin: \xff\n").unwrap();
    let Err(errors) = load(&binary, &MapEnv::new()) else {
        panic!()
    };
    assert!(
        errors
            .to_string()
            .ends_with("the config file is not UTF-8 text (invalid byte at offset 7)"),
        "{errors}"
    );
}

#[test]
fn load_reports_errors_with_the_path_as_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kes.yml");
    std::fs::write(&file, "admin: {identity: disabled}\n").unwrap();
    let Err(errors) = load(&file, &MapEnv::new()) else {
        panic!()
    };
    assert!(errors.iter().all(|e| e.file == file.display().to_string()));
}

// ---- public types ----------------------------------------------------------------------------

#[test]
fn error_display() {
    let mut e = Error {
        file: "kes.yml".into(),
        line: 12,
        column: 7,
        path: "keystore.vault.approle.id".into(),
        message: "expected a string".into(),
    };
    assert_eq!(
        e.to_string(),
        "kes.yml:12:7: keystore.vault.approle.id: expected a string"
    );
    e.path.clear();
    assert_eq!(e.to_string(), "kes.yml:12:7: expected a string");
    e.line = 0;
    assert_eq!(e.to_string(), "kes.yml: expected a string");
    let errors = Errors(vec![e.clone(), e]);
    assert_eq!(
        errors.to_string(),
        "kes.yml: expected a string\nkes.yml: expected a string"
    );
    let _: &dyn std::error::Error = &errors;
}

#[test]
fn envs() {
    let env = MapEnv::new().with("A", "1").with("EMPTY", "");
    assert_eq!(env.var("A").as_deref(), Some("1"));
    assert_eq!(env.var("EMPTY").as_deref(), Some(""));
    assert_eq!(env.var("B"), None);
    let collected: MapEnv = [("X", "y")].into_iter().collect();
    assert_eq!(collected.var("X").as_deref(), Some("y"));

    // Reads only; the process environment is never modified by tests.
    assert_eq!(ProcessEnv.var("PATH"), std::env::var("PATH").ok());
    assert_eq!(ProcessEnv.var(""), None);
    assert_eq!(ProcessEnv.var("A=B"), None);
}
