//! The connection settings of the client commands: servers, credentials and server
//! certificate verification, from the environment (spec §10) and `kes ls`'s flags.
//!
//! | what | variables, first set wins (even when empty) |
//! |---|---|
//! | servers (comma-separated) | `MINIO_KES_SERVER`, `KES_SERVER`, `MINIO_KMS_KES_ENDPOINT`; default `127.0.0.1:7373` |
//! | API key | `MINIO_KES_API_KEY`, `KES_API_KEY`, `MINIO_KMS_KES_API_KEY` |
//! | client certificate | `MINIO_KES_CERT_FILE`, `KES_CLIENT_CERT`, `MINIO_KES_CLIENT_CERT` |
//! | its private key | `MINIO_KES_KEY_FILE`, `KES_CLIENT_KEY`, `MINIO_KES_CLIENT_KEY` |
//! | extra CA certificates (ours) | `KES_CAPATH`, `MINIO_KMS_KES_CAPATH` |

use std::path::Path;

use kes_client::{ApiKey, Client};
use zeroize::Zeroizing;

use crate::fail::Failure;

/// Server list variables, in precedence order.
pub const SERVER_VARS: [&str; 3] = ["MINIO_KES_SERVER", "KES_SERVER", "MINIO_KMS_KES_ENDPOINT"];
/// API key variables, in precedence order.
pub const API_KEY_VARS: [&str; 3] = ["MINIO_KES_API_KEY", "KES_API_KEY", "MINIO_KMS_KES_API_KEY"];
/// Client certificate variables, in precedence order.
pub const CERT_VARS: [&str; 3] = [
    "MINIO_KES_CERT_FILE",
    "KES_CLIENT_CERT",
    "MINIO_KES_CLIENT_CERT",
];
/// Client private key variables, in precedence order.
pub const KEY_VARS: [&str; 3] = [
    "MINIO_KES_KEY_FILE",
    "KES_CLIENT_KEY",
    "MINIO_KES_CLIENT_KEY",
];
/// CA certificate variables, in precedence order.
pub const CA_VARS: [&str; 2] = ["KES_CAPATH", "MINIO_KMS_KES_CAPATH"];
/// The server when no variable names one.
pub const DEFAULT_SERVER: &str = "127.0.0.1:7373";

/// How to reach the server.
#[derive(Debug, Default)]
pub struct Settings<'a> {
    /// `-k/--insecure`.
    pub insecure: bool,
    /// `kes ls -s`: replaces the server variables.
    pub server: Option<&'a str>,
    /// `kes ls -a`: replaces the credential variables.
    pub api_key: Option<&'a str>,
}

/// The value of the first variable of `names` that is set, with its name.
fn first_var(names: &[&'static str]) -> Option<(&'static str, String)> {
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().map(|value| (*name, value)))
}

/// The servers of the environment (or `-s`), split at commas and trimmed.
pub fn servers(flag: Option<&str>) -> Vec<String> {
    let list = match flag {
        Some(s) => s.to_owned(),
        None => first_var(&SERVER_VARS).map_or_else(|| DEFAULT_SERVER.to_owned(), |(_, v)| v),
    };
    list.split(',').map(|s| s.trim().to_owned()).collect()
}

/// Builds a client for the server(s) and credentials of the environment.
pub fn client(settings: &Settings<'_>) -> Result<Client, Failure> {
    let mut builder = Client::builder()
        .endpoints(servers(settings.server))
        .danger_accept_invalid_certs(settings.insecure);

    if let Some((_, path)) = first_var(&CA_VARS).filter(|(_, v)| !v.is_empty()) {
        builder = builder.ca_file(path);
    }

    let api_key = match settings.api_key {
        Some(key) => Some(Zeroizing::new(key.to_owned())),
        None => first_var(&API_KEY_VARS).map(|(_, v)| Zeroizing::new(v)),
    };
    let cert = first_var(&CERT_VARS).filter(|(_, v)| !v.is_empty());
    let key = first_var(&KEY_VARS).filter(|(_, v)| !v.is_empty());
    let api_key = api_key.filter(|k| !k.is_empty());

    builder = match (api_key, cert, key) {
        (Some(_), Some((cert_var, _)), _) if settings.api_key.is_none() => {
            return Err(Failure::with_hint(
                format!("both an API key and a client certificate ({cert_var}) are set"),
                "use either an API key or a certificate and private key, not both.",
            ));
        }
        (Some(text), _, _) => {
            let api_key = ApiKey::parse(text.trim())
                .map_err(|e| Failure::msg(format!("parsing API key: kes: {e}")))?;
            builder.api_key(api_key)
        }
        (None, Some((_, cert)), Some((_, key))) => {
            let cert_pem = read_file("client certificate", Path::new(&cert))?;
            let key_pem = read_private_key(Path::new(&key))?;
            builder.certificate(cert_pem, key_pem.as_bytes())
        }
        (None, Some(_), None) => {
            return Err(Failure::msg(
                "no private key specified for the client certificate. Consider setting KES_CLIENT_KEY",
            ));
        }
        (None, None, Some(_)) => {
            return Err(Failure::msg(
                "no client certificate specified for the private key. Consider setting KES_CLIENT_CERT",
            ));
        }
        (None, None, None) => {
            return Err(Failure::msg(
                "no API key specified. Consider setting MINIO_KES_API_KEY",
            ));
        }
    };
    builder
        .build()
        .map_err(|e| Failure::request("cannot set up the client", e))
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|e| Failure::msg(format!("cannot read {what} '{}': {e}", path.display())))
}

/// Reads a PEM private key; a key encrypted with legacy PEM encryption (as `kes identity new
/// --encrypt` writes it) is decrypted with a password asked for on the terminal.
fn read_private_key(path: &Path) -> Result<Zeroizing<String>, Failure> {
    let bytes = Zeroizing::new(read_file("private key", path)?);
    let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
    if !kes_crypto::legacy_pem::is_encrypted(&text) {
        return Ok(text);
    }
    let password = crate::password::read(&format!(
        "Enter password for private key {}: ",
        path.display()
    ))?;
    let (label, der) = kes_crypto::legacy_pem::decrypt_private_key(&text, password.as_bytes())
        .map_err(|e| {
            Failure::msg(format!(
                "cannot decrypt private key '{}': {e}",
                path.display()
            ))
        })?;
    let block = kes_crypto::pem::PemBlock::new(label, der);
    Ok(kes_crypto::pem::encode(&block))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_flag_is_split_and_trimmed() {
        assert_eq!(servers(Some(" a:1 , https://b:2")), ["a:1", "https://b:2"]);
        assert_eq!(servers(Some("")), [""]);
    }
}
