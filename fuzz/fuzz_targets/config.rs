//! Fuzzes `kes_config::parse`, the parser of the server's YAML configuration file (spec §7).
//!
//! The input is read as text (bytes that are not UTF-8 become U+FFFD). Beyond "no panic, no hang" (libFuzzer's `-timeout`, set by
//! `run.sh`, catches runaway alias expansion or backtracking), it checks that a failed parse
//! reports at least one error and that every error has a message, a non-empty display and a
//! line inside the text.
//!
//! `${NAME}` references are looked up in an environment taken from the input itself: its
//! `# env: NAME=value` comment lines, the convention of the crate's test files (the seeds).

#![no_main]

use kes_config::{Backend, FsConfig, MapEnv};
use kes_keystore_vault::VaultConfig;
use libfuzzer_sys::fuzz_target;

/// What the keystore sections of these inputs parse into.
#[derive(Debug)]
#[allow(dead_code)]
enum KeyStore {
    Fs(FsConfig),
    Vault(VaultConfig),
}

/// The built-in `fs` section and the Vault backend's; the others are refused as in a slim build.
const BACKENDS: &[Backend<KeyStore>] = &[
    Backend {
        section: "fs",
        name: "filesystem",
        keys: FsConfig::KEYS,
        parse: |r, s| FsConfig::parse(r, s).map(KeyStore::Fs),
    },
    Backend {
        section: "vault",
        name: "HashiCorp Vault",
        keys: VaultConfig::KEYS,
        parse: |r, s| VaultConfig::parse(r, s).map(KeyStore::Vault),
    },
];

/// The environment the text declares in `# env: NAME=value` lines.
fn declared_env(source: &str) -> MapEnv {
    source
        .lines()
        .filter_map(|line| line.strip_prefix("# env: "))
        .filter_map(|line| line.split_once('='))
        .collect()
}

fn check(source: &str) {
    match kes_config::parse(source, "fuzz.yml", &declared_env(source), BACKENDS) {
        Ok(config) => {
            // Formatting a parsed config (as `kes server` logs it on errors) must not panic.
            let _ = format!("{config:?}");
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a failed parse reports no error");
            for error in errors.iter() {
                assert!(
                    !error.message.is_empty(),
                    "error without message: {error:?}"
                );
                assert_eq!(error.file, "fuzz.yml");
                assert!(!error.to_string().is_empty());
                // Positions point into the text: YAML breaks lines at `\n`, `\r` and `\r\n`.
                let breaks = source
                    .bytes()
                    .filter(|b| matches!(b, b'\n' | b'\r'))
                    .count();
                assert!(
                    error.line <= breaks + 1,
                    "line {} is past the end: {error}",
                    error.line
                );
            }
            assert!(!errors.to_string().is_empty());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Identical to the input when it is UTF-8.
    check(&String::from_utf8_lossy(data));
});
