//! Bounded randomized smoke test of `kes_config::parse`, the stable counterpart of the `config`
//! fuzz target (fuzz/fuzz_targets/config.rs): a fixed, seeded stream of random bytes and
//! mutated configuration files (the files of `tests/data` and the sample). Parsing never
//! panics, finishes quickly, reports at least one error on failure, and every error has a
//! message, the file name and a line inside the text. A failure prints the seed and the input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::time::{Duration, Instant};

use kes_config::{MapEnv, sample};
use kes_testutil::{ByteMutator, ByteOp, Rng};

mod backends;
use backends::BACKENDS;

const SEED: u64 = 0x6b65_735f_636f_6e66;
const CASES: usize = 3000;
/// A generous bound for one parse in a debug build; a runaway alias expansion or a
/// backtracking parser would take far longer.
const SLOW: Duration = Duration::from_secs(2);

/// YAML syntax to insert: anchors, aliases, merge keys, tags, flow and block collections,
/// quoting, block scalars, directives, `${NAME}` references, and odd characters.
const TOKENS: &[&str] = &[
    "\n",
    "\r\n",
    "\r",
    "\t",
    " ",
    "  ",
    "- ",
    ": ",
    ":",
    "? ",
    "#",
    "&a ",
    "*a",
    "&b [*a,*a,*a]",
    "<<: ",
    "<<: *a",
    "!!str ",
    "!!int ",
    "!!binary ",
    "!tag ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "\\",
    "|",
    ">-",
    "|+",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "%TAG ! x\n",
    "${",
    "}",
    "${KES_ADMIN}",
    "${EMPTY}",
    "${UNSET}",
    "$${X}",
    "~",
    "null",
    "true",
    "off",
    "0x1F",
    "1e3",
    "-1",
    "9999999999999999999999",
    "10m",
    "1h2m3.5s",
    "-5s",
    "\u{feff}",
    "\u{0}",
    "\u{85}",
    "é",
    "\u{2028}",
    "0.0.0.0:7373",
    "[::1]:7373",
    "admin:",
    "identity:",
    "policy:",
    "keystore:",
    "fs:",
    "path:",
    "vault:",
    "tls:",
    "log:",
    "cache:",
    "api:",
    "keys:",
];

/// The edits of a file (the order is part of the seeded stream).
const MUTATOR: ByteMutator<'static, &str> = ByteMutator {
    ops: &[
        ByteOp::FlipBit,
        ByteOp::InsertToken,
        ByteOp::DeleteRun(32),
        ByteOp::Truncate,
        ByteOp::Splice,
        // Repeated keys, deeper nesting, longer alias chains.
        ByteOp::RepeatRun(64),
        ByteOp::InsertByte,
    ],
    tokens: TOKENS,
};

/// The `.yml` files of `tests/data/{valid,invalid}` and the sample configuration.
fn seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut seeds = vec![sample().as_bytes().to_vec()];
    for kind in ["valid", "invalid"] {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(kind))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yml"))
            .collect();
        files.sort();
        seeds.extend(files.iter().map(|f| std::fs::read(f).unwrap()));
    }
    assert!(seeds.len() > 20, "the test data is missing");
    seeds
}

/// The environment a file declares in `# env: NAME=value` lines (the test data convention).
fn declared_env(source: &str) -> MapEnv {
    source
        .lines()
        .filter_map(|line| line.strip_prefix("# env: "))
        .filter_map(|line| line.split_once('='))
        .collect()
}

/// Parses `data` as text; returns whether it parsed.
fn check(data: &[u8]) -> bool {
    let source = String::from_utf8_lossy(data);
    let started = Instant::now();
    let result = kes_config::parse(&source, "smoke.yml", &declared_env(&source), BACKENDS);
    let took = started.elapsed();
    assert!(took < SLOW, "parsing took {took:?}");
    match result {
        Ok(_) => true,
        Err(errors) => {
            assert!(!errors.is_empty(), "a failed parse reports no error");
            let breaks = source
                .bytes()
                .filter(|b| matches!(b, b'\n' | b'\r'))
                .count();
            for error in errors.iter() {
                assert!(
                    !error.message.is_empty(),
                    "error without message: {error:?}"
                );
                assert_eq!(error.file, "smoke.yml");
                assert!(
                    error.line <= breaks + 1,
                    "line {} is past the end of the text: {error}",
                    error.line
                );
            }
            assert!(!errors.to_string().is_empty());
            false
        }
    }
}

#[test]
fn parse_never_panics_on_mutated_files() {
    let seeds = seeds();
    // The valid files parse as they are: mutations start from configurations that get deep
    // into the schema, not only from syntax errors.
    assert!(seeds.iter().filter(|s| check(s)).count() >= 5);

    let mut rng = Rng::new(SEED);
    let (mut parsed, mut failed) = (0, 0);
    for case in 0..CASES {
        let data = if rng.below(10) == 0 {
            let n = rng.below(256);
            rng.bytes(n)
        } else {
            let mut data = rng.pick(&seeds).clone();
            for _ in 0..=rng.below(4) {
                let other = rng.pick(&seeds).clone();
                data = MUTATOR.mutate(&mut rng, data, &other);
            }
            data
        };
        match std::panic::catch_unwind(|| check(&data)) {
            Ok(true) => parsed += 1,
            Ok(false) => failed += 1,
            Err(_) => panic!(
                "seed {SEED:#x} case {case}: input {:?}",
                String::from_utf8_lossy(&data)
            ),
        }
    }
    // Both outcomes occur, so the stream reaches the schema checks as well as the errors.
    assert!(
        parsed > CASES / 100 && failed > 0,
        "{parsed} parsed, {failed} failed"
    );
}
