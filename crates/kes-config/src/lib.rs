//! kes-config: the KES server configuration file.
//!
//! Reads the YAML file of `kes server --config` (kes-spec §7) into a validated [`Config`] of
//! plain data: the final schema of Go KES, plus the older layouts its documentation still shows
//! (`root:`, `policy.<name>.paths`, `log.audit: on|off`, Vault `retry`). Parsing happens in two
//! stages, as STYLE.md "Config" asks: `yaml` turns the text into a tree that remembers the line
//! and column of every key and value, `schema` walks that tree into a [`Config`], collecting every
//! problem as an [`Error`] located as `file:line:column: key.path: message`.
//!
//! Differences from Go KES, on purpose: unknown keys (and unknown `api` paths) are errors, not
//! ignored; all errors are reported at once; policy names, identities and key names are checked
//! against KES's name rule here rather than at server start; keystore sections of backends that
//! this build does not include are errors naming the section.
//!
//! Keystore backends are not known here (but for `fs`): the caller passes a table of
//! [`Backend`]s, each with the parser of its section, which reads its block through
//! [`Section`]. Each backend's config type lives in the backend's own crate.
//!
//! This crate must never: open a network connection or a keystore (it only describes them),
//! read any file but the configuration file itself (in [`load`]), touch the process environment
//! except through [`ProcessEnv`], or put a secret value (TLS password, Vault credentials) into an
//! error message or a `Debug` output.

#![forbid(unsafe_code)]

mod config;
mod env;
mod error;
mod keystore;
mod schema;
mod secret;
mod values;
mod yaml;

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

pub use crate::config::{
    ApiConfig, CacheConfig, Config, LimitsConfig, LogConfig, MlockMode, PolicyConfig, ProxyConfig,
    RotationConfig, TlsConfig,
};
pub use crate::env::{Env, MapEnv, ProcessEnv};
pub use crate::error::{Error, Errors};
pub use crate::keystore::{Backend, FsConfig, GO_KES_BACKENDS, Optional};
pub use crate::schema::{Reader, Section};
pub use crate::secret::SecretString;
pub use crate::values::LogLevel;

/// Parses and validates a configuration file's text.
///
/// `file_name` is only used in error messages. `${NAME}` references are looked up in `env`.
/// Relative paths are returned as written (see [`load`]). The `keystore` section is read by the
/// entry of `backends` that names it.
///
/// # Errors
///
/// Every problem in the file, ordered by position: a YAML syntax error (then only that one),
/// keys repeated in a mapping, unknown keys, values of the wrong type, bad durations, booleans,
/// log levels or addresses, references to unset variables, and the cross-field rules of
/// kes-spec §7.1 (admin identity and TLS files required, the admin is in no policy and is no
/// proxy, an identity is in one policy only, durations are not negative, key names are unique,
/// exactly one available keystore is configured).
pub fn parse<K>(
    source: &str,
    file_name: &str,
    env: &dyn Env,
    backends: &[Backend<K>],
) -> Result<Config<K>, Errors> {
    parse_in(source, file_name, None, env, backends)
}

fn parse_in<K>(
    source: &str,
    file_name: &str,
    base: Option<&Path>,
    env: &dyn Env,
    backends: &[Backend<K>],
) -> Result<Config<K>, Errors> {
    let tree = yaml::parse(source, file_name).map_err(|e| Errors(vec![e]))?;
    schema::build(
        tree.root.as_ref(),
        file_name,
        base,
        env,
        backends,
        tree.errors,
    )
    .map_err(Errors)
}

/// Reads the configuration file at `path` and parses it with [`parse`].
///
/// Relative TLS file paths (`tls.key`, `tls.cert`, `tls.ca`, and the files that keystore
/// backends read with [`Section::file`]) are resolved against the directory of `path`. The `fs` keystore directory is left as written
/// (relative to the working directory, as in Go KES), since moving it would silently point the
/// server at a different set of keys.
///
/// # Errors
///
/// An [`Error`] without position (line 0) when the file cannot be read or is not UTF-8, else
/// the errors of [`parse`].
pub fn load<K>(path: &Path, env: &dyn Env, backends: &[Backend<K>]) -> Result<Config<K>, Errors> {
    let file = path.display().to_string();
    let file_error = |message: String| {
        Errors(vec![Error {
            file: file.clone(),
            line: 0,
            column: 0,
            path: String::new(),
            message,
        }])
    };
    let bytes = Zeroizing::new(
        std::fs::read(path).map_err(|e| file_error(format!("cannot read the config file: {e}")))?,
    );
    let source = std::str::from_utf8(&bytes).map_err(|e| {
        file_error(format!(
            "the config file is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut config = parse_in(source, &file, Some(dir), env, backends)?;

    let resolve = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    };
    resolve(&mut config.tls.key);
    resolve(&mut config.tls.cert);
    if let Some(ca) = &mut config.tls.ca {
        resolve(ca);
    }
    Ok(config)
}

/// A commented sample configuration covering every section, like Go KES's
/// `server-config.yaml`. It parses (with an empty environment) as it is.
pub fn sample() -> &'static str {
    include_str!("sample.yml")
}
