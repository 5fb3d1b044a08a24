//! `kes key create|import|info|ls|rm|encrypt|decrypt|dek|rotate|rm-version`.

use serde::Serialize;
use zeroize::Zeroizing;

use super::{b64, base64, block_on, client, print_names, required, warn_partial};
use crate::cli::{ConnArgs, KeyArgs, KeyCommand};
use crate::fail::Failure;
use crate::help;
use crate::term;

/// Runs `kes key <command>`.
pub fn run(args: KeyArgs) -> Result<(), Failure> {
    let Some(command) = args.command else {
        return Err(Failure::Usage(help::text(&["key"])));
    };
    match command {
        KeyCommand::Create { conn, names } => create(&conn, &names),
        KeyCommand::Import {
            insecure,
            color,
            name,
            key,
        } => {
            let conn = ConnArgs {
                insecure,
                color,
                enclave: None,
            };
            import(&conn, name.as_ref(), key.as_ref())
        }
        KeyCommand::Info { conn, json, name } => {
            info(&conn, required(name.as_ref(), "key name")?, json)
        }
        KeyCommand::Ls {
            conn,
            json,
            pattern,
        } => ls(&conn, pattern.as_deref().unwrap_or("*"), json),
        KeyCommand::Rm { conn, names } => rm(&conn, &names),
        KeyCommand::Encrypt {
            conn,
            name,
            message,
        } => encrypt(
            &conn,
            required(name.as_ref(), "key name")?,
            required(message.as_ref(), "message")?,
        ),
        KeyCommand::Decrypt {
            conn,
            name,
            ciphertext,
            context,
        } => decrypt(
            &conn,
            required(name.as_ref(), "key name")?,
            required(ciphertext.as_ref(), "ciphertext")?,
            context.as_deref(),
        ),
        KeyCommand::Dek {
            conn,
            name,
            context,
        } => dek(
            &conn,
            required(name.as_ref(), "key name")?,
            context.as_deref(),
        ),
        KeyCommand::Rotate { conn, name, key } => {
            rotate(&conn, required(name.as_ref(), "key name")?, key.as_ref())
        }
        KeyCommand::RmVersion {
            conn,
            name,
            version,
        } => rm_version(
            &conn,
            required(name.as_ref(), "key name")?,
            required(version.as_ref(), "key version")?,
        ),
    }
}

fn rotate(conn: &ConnArgs, name: &str, key: Option<&String>) -> Result<(), Failure> {
    let key = match key {
        Some(key) => Some(Zeroizing::new(base64(key, "key")?)),
        None => None,
    };
    let client = client(conn)?;
    block_on(async {
        let import = key
            .as_ref()
            .map(|k| (k.as_slice(), kes_client::api::algorithm::AES256));
        let version = client
            .rotate_key(name, import)
            .await
            .map_err(|e| Failure::request(format!("failed to rotate key \"{name}\""), e))?;
        Ok(term::print(&format!("{version}\n"))?)
    })
}

fn rm_version(conn: &ConnArgs, name: &str, version: &str) -> Result<(), Failure> {
    let client = client(conn)?;
    block_on(async {
        client.delete_key_version(name, version).await.map_err(|e| {
            Failure::request(
                format!("failed to remove version {version} of key \"{name}\""),
                e,
            )
        })
    })
}

fn create(conn: &ConnArgs, names: &[String]) -> Result<(), Failure> {
    if names.is_empty() {
        return Err(Failure::msg("no key name specified"));
    }
    let client = client(conn)?;
    block_on(async {
        for name in names {
            client
                .create_key(name)
                .await
                .map_err(|e| Failure::request(format!("failed to create key \"{name}\""), e))?;
        }
        Ok(())
    })
}

fn import(conn: &ConnArgs, name: Option<&String>, key: Option<&String>) -> Result<(), Failure> {
    let name = required(name, "key name")?;
    let key = Zeroizing::new(base64(required(key, "key")?, "key")?);
    let client = client(conn)?;
    block_on(async {
        client
            .import_key(name, &key, kes_client::api::algorithm::AES256)
            .await
            .map_err(|e| Failure::request(format!("failed to import \"{name}\""), e))
    })
}

/// `kes key info --json`: the Go SDK's `KeyInfo` (its algorithm enum's zero value, AES256,
/// is omitted).
#[derive(Serialize)]
struct KeyInfoJson<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithm: Option<&'a str>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_by: Option<&'a str>,
    /// The newest version, once the key has been rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    /// Every kept version, newest first, once the key has been rotated.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    versions: &'a [kes_client::api::KeyVersionInfo],
}

fn info(conn: &ConnArgs, name: &str, json: bool) -> Result<(), Failure> {
    let client = client(conn)?;
    block_on(async {
        let key = client
            .describe_key(name)
            .await
            .map_err(|e| Failure::request("failed to describe keys", e))?;
        let created_by = key.created_by.as_deref().filter(|s| !s.is_empty());
        if json {
            let algorithm = Some(key.algorithm.as_str())
                .filter(|a| !a.is_empty() && *a != kes_client::api::algorithm::AES256);
            let out = KeyInfoJson {
                name: &key.name,
                algorithm,
                created_at: kes_client::api::format_time(key.created_at),
                created_by,
                version: key.version.as_deref(),
                versions: &key.versions,
            };
            let text = serde_json::to_string(&out)
                .map_err(|e| Failure::msg(format!("cannot encode JSON: {e}")))?;
            return Ok(term::print(&format!("{text}\n"))?);
        }
        let label = |l: &str| term::paint(term::BOLD, &format!("{l:<11}"));
        let mut text = format!(
            "{} {}\n{} {}\n{} {}\n{} {}",
            label("Name"),
            term::paint(term::CYAN, &key.name),
            label("Algorithm"),
            key.algorithm,
            label("Date"),
            term::date(key.created_at),
            label("Owner"),
            created_by.unwrap_or_default(),
        );
        if let Some(version) = &key.version {
            text.push_str(&format!("\n{} {version}", label("Version")));
            for (i, v) in key.versions.iter().enumerate() {
                let head = if i == 0 { label("Versions") } else { label("") };
                text.push_str(&format!(
                    "\n{head} {:<5} {:<9} {}",
                    v.version,
                    v.algorithm,
                    term::date(v.created_at)
                ));
            }
        }
        // The original ends without a newline (pinned for pipes); a prompt should not follow
        // the owner on the same line of a terminal.
        if term::stdout_is_terminal() {
            text.push('\n');
        }
        Ok(term::print(&text)?)
    })
}

fn ls(conn: &ConnArgs, pattern: &str, json: bool) -> Result<(), Failure> {
    let client = client(conn)?;
    block_on(async {
        let list = client
            .list_keys(pattern)
            .await
            .map_err(|e| Failure::request("failed to list keys", e))?;
        let mut names = list.names;
        names.sort();
        print_names("Key", &names, json)?;
        warn_partial(list.continue_at.as_deref());
        Ok(())
    })
}

fn rm(conn: &ConnArgs, names: &[String]) -> Result<(), Failure> {
    if names.is_empty() {
        return Err(Failure::msg("no key name specified"));
    }
    let client = client(conn)?;
    block_on(async {
        for name in names {
            client
                .delete_key(name)
                .await
                .map_err(|e| Failure::request(format!("failed to remove key \"{name}\""), e))?;
        }
        Ok(())
    })
}

fn encrypt(conn: &ConnArgs, name: &str, message: &str) -> Result<(), Failure> {
    let client = client(conn)?;
    block_on(async {
        let ciphertext = client
            .encrypt(name, message.as_bytes(), &[])
            .await
            .map_err(|e| Failure::request("failed to encrypt message", e))?;
        let ciphertext = b64(&ciphertext);
        let text = if term::stdout_is_terminal() {
            format!(
                "\n{} {ciphertext}\n",
                term::paint(term::BOLD, "ciphertext:")
            )
        } else {
            format!("{{\"ciphertext\":\"{ciphertext}\"}}")
        };
        Ok(term::print(&text)?)
    })
}

fn decrypt(
    conn: &ConnArgs,
    name: &str,
    ciphertext: &str,
    context: Option<&str>,
) -> Result<(), Failure> {
    let ciphertext = base64(ciphertext, "ciphertext")?;
    let context = context
        .map(|c| base64(c, "context"))
        .transpose()?
        .unwrap_or_default();
    let client = client(conn)?;
    block_on(async {
        let plaintext = client
            .decrypt(name, &ciphertext, &context)
            .await
            .map_err(|e| Failure::request("failed to decrypt ciphertext", e))?;
        let plaintext = Zeroizing::new(b64(&plaintext));
        let text = Zeroizing::new(if term::stdout_is_terminal() {
            format!(
                "\n{} {}\n",
                term::paint(term::BOLD, "plaintext:"),
                plaintext.as_str()
            )
        } else {
            format!("{{\"plaintext\":\"{}\"}}", plaintext.as_str())
        });
        Ok(term::print(&text)?)
    })
}

fn dek(conn: &ConnArgs, name: &str, context: Option<&str>) -> Result<(), Failure> {
    let context = context
        .map(|c| base64(c, "context"))
        .transpose()?
        .unwrap_or_default();
    let client = client(conn)?;
    block_on(async {
        let dek = client
            .generate_key(name, &context)
            .await
            .map_err(|e| Failure::request("failed to generate data encryption key", e))?;
        let plaintext = Zeroizing::new(b64(&dek.plaintext));
        let ciphertext = b64(&dek.ciphertext);
        let text = Zeroizing::new(if term::stdout_is_terminal() {
            format!(
                "\n{}  {}\n{} {ciphertext}\n",
                term::paint(term::BOLD, "plaintext:"),
                plaintext.as_str(),
                term::paint(term::BOLD, "ciphertext:"),
            )
        } else {
            format!(
                "{{\"plaintext\":\"{}\",\"ciphertext\":\"{ciphertext}\"}}",
                plaintext.as_str()
            )
        });
        Ok(term::print(&text)?)
    })
}
