//! `kes identity [<api-key|file>]` and `kes identity new|of|info|ls|assign|forget|rm`.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use kes_client::ApiKey;
use kes_client::api::SelfDescribeResponse;
use zeroize::Zeroizing;

use super::policy::print_json;
use super::{block_on, client, print_names, required};
use crate::cli::{ConnArgs, IdentityArgs, IdentityCommand, IdentityNewArgs};
use crate::duration;
use crate::fail::Failure;
use crate::term;

/// Default validity of certificates made by `kes identity new` (the original's 720h).
const DEFAULT_EXPIRY: Duration = Duration::from_secs(720 * 3600);

/// Runs `kes identity …`.
pub fn run(args: IdentityArgs) -> Result<(), Failure> {
    let Some(command) = args.command else {
        return match args.arg {
            None => new_api_key(),
            Some(arg) => of_anything(&arg),
        };
    };
    match command {
        IdentityCommand::New(args) => new(&args),
        IdentityCommand::Of { arg } => of(required(arg.as_ref(), "API key or certificate")?),
        IdentityCommand::Info {
            conn,
            json,
            identity,
        } => info(&conn, identity.as_deref(), json),
        IdentityCommand::Ls { conn, json, prefix } => {
            ls(&conn, prefix.as_deref().unwrap_or_default(), json)
        }
        IdentityCommand::Assign {
            conn,
            identity,
            policy,
        } => assign(
            &conn,
            required(identity.as_ref(), "identity")?,
            required(policy.as_ref(), "policy name")?,
        ),
        IdentityCommand::Forget { conn, identity } => forget(
            &conn,
            required(identity.as_ref(), "identity")?,
            "failed to forget identity",
            Route::Forget,
        ),
        IdentityCommand::Rm { conn, identity } => forget(
            &conn,
            required(identity.as_ref(), "identity")?,
            "failed to remove identity",
            Route::Delete,
        ),
    }
}

/// Prints a value that scripts capture: bare (no newline) into a pipe, with a newline on a
/// terminal.
fn print_bare(value: &str) -> Result<(), Failure> {
    if term::stdout_is_terminal() {
        Ok(term::print(&format!("{value}\n"))?)
    } else {
        Ok(term::print(value)?)
    }
}

fn generate_api_key() -> Result<ApiKey, Failure> {
    ApiKey::generate().map_err(|e| Failure::msg(format!("failed to generate API key: {e}")))
}

/// `kes identity` without arguments: a new API key (bare into a pipe, boxed on a terminal).
fn new_api_key() -> Result<(), Failure> {
    let key = generate_api_key()?;
    let secret = key.expose_secret();
    if !term::stdout_is_terminal() {
        return Ok(term::print(&secret)?);
    }
    let identity = key.identity();
    let rows = [
        ("API Key:  ", secret.as_str()),
        ("Identity: ", identity.as_str()),
    ];
    let inner = rows
        .iter()
        .map(|(l, v)| l.len() + v.len())
        .max()
        .unwrap_or_default();
    let line = "─".repeat(inner + 2);
    let mut text = Zeroizing::new(format!("┌{line}┐\n"));
    for (label, value) in rows {
        let pad = " ".repeat(inner - label.len() - value.len());
        text.push_str(&format!(
            "│ {}{value}{pad} │\n",
            term::paint(term::BOLD, label)
        ));
    }
    text.push_str(&format!("└{line}┘\n"));
    Ok(term::print(&text)?)
}

/// `kes identity <api-key|file>`: the identity of an API key (the `kes:v1:` prefix is
/// optional) or of the first certificate in a PEM file, or the API key of an Ed25519 PKCS #8
/// private key file.
fn of_anything(arg: &str) -> Result<(), Failure> {
    let path = Path::new(arg);
    if !path.is_file() {
        let key = ApiKey::parse(arg).map_err(|e| {
            Failure::msg(format!(
                "'{arg}' is neither a file nor a valid API key: kes: {e}"
            ))
        })?;
        return print_bare(&key.identity());
    }
    let text = Zeroizing::new(read_text(path)?);
    if let Some(identity) = certificate_identity(&text, path)? {
        return print_bare(&identity);
    }
    match kes_crypto::api_key_from_pkcs8_pem(&text) {
        Ok(key) => print_bare(&key.expose_secret()),
        Err(kes_crypto::PrivateKeyError::NoPrivateKey) => Err(Failure::msg(format!(
            "'{arg}' contains neither a certificate nor a private key"
        ))),
        Err(e) => Err(Failure::msg(format!(
            "cannot read the private key in '{arg}': {e}"
        ))),
    }
}

/// `kes identity of <kes:v1:…|file>`.
fn of(arg: &str) -> Result<(), Failure> {
    if arg.starts_with("kes:v1:") {
        let key = ApiKey::parse(arg).map_err(|e| Failure::msg(format!("kes: {e}")))?;
        return print_bare(&key.identity());
    }
    let path = Path::new(arg);
    let text = read_text(path)?;
    match certificate_identity(&text, path)? {
        Some(identity) => print_bare(&identity),
        None => Err(Failure::msg(format!("'{arg}' contains no certificate"))),
    }
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::msg(format!("cannot read '{}': {e}", path.display())))
}

/// The identity of the first `CERTIFICATE` block of `text`, if there is one.
fn certificate_identity(text: &str, path: &Path) -> Result<Option<String>, Failure> {
    let Some(block) = kes_crypto::pem::decode_all(text.as_bytes())
        .into_iter()
        .find(|b| b.label() == "CERTIFICATE")
    else {
        return Ok(None);
    };
    kes_crypto::identity_of_certificate(block.contents())
        .map(Some)
        .map_err(|e| Failure::msg(format!("invalid certificate in '{}': {e}", path.display())))
}

/// `kes identity new`.
fn new(args: &IdentityNewArgs) -> Result<(), Failure> {
    let files = match (&args.key, &args.cert) {
        (Some(key), Some(cert)) => Some((key.as_path(), cert.as_path())),
        (None, None) => None,
        _ => return Err(Failure::msg("'--key' and '--cert' must be used together")),
    };
    if files.is_none() {
        let needs_files = [
            ("--ip", !args.ip.is_empty()),
            ("--dns", !args.dns.is_empty()),
            ("--expiry", args.expiry.is_some()),
            ("--encrypt", args.encrypt),
            ("--force", args.force),
        ];
        if let Some((flag, _)) = needs_files.iter().find(|(_, set)| *set) {
            return Err(Failure::msg(format!(
                "'{flag}' requires '--key' and '--cert'"
            )));
        }
    }
    let ips = args
        .ip
        .iter()
        .map(|ip| {
            ip.trim()
                .parse::<IpAddr>()
                .map_err(|_| Failure::msg(format!("invalid IP address '{ip}'")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dns: Vec<String> = args.dns.iter().map(|d| d.trim().to_owned()).collect();
    let expiry = match &args.expiry {
        None => DEFAULT_EXPIRY,
        Some(text) => duration::parse(text).map_err(Failure::msg)?,
    };
    if expiry.is_zero() {
        return Err(Failure::msg("'--expiry' must be longer than zero"));
    }

    if let Some((key_path, cert_path)) = files
        && !args.force
    {
        for path in [key_path, cert_path] {
            if path.exists() {
                return Err(Failure::with_hint(
                    format!("'{}' already exists", path.display()),
                    "use -f/--force to overwrite it.",
                ));
            }
        }
    }
    let password = if args.encrypt {
        Some(crate::password::read_new()?)
    } else {
        None
    };

    let key = generate_api_key()?;
    if let Some((key_path, cert_path)) = files {
        let pem = kes_crypto::generate_identity_certificate(
            &key,
            args.subject.as_deref(),
            &ips,
            &dns,
            expiry,
        )
        .map_err(|e| Failure::msg(format!("failed to create certificate: {e}")))?;
        let key_pem = match &password {
            Some(password) => Zeroizing::new(
                kes_crypto::legacy_pem::encrypt(
                    "PRIVATE KEY",
                    &key.private_key_pkcs8_der(),
                    password.as_bytes(),
                )
                .map_err(|e| Failure::msg(format!("failed to encrypt private key: {e}")))?,
            ),
            None => pem.key_pem.clone(),
        };
        write_file(key_path, key_pem.as_bytes(), 0o600, "private key")?;
        write_file(cert_path, pem.cert_pem.as_bytes(), 0o644, "certificate")?;
    }

    let secret = key.expose_secret();
    let identity = key.identity();
    let bold = |s: &str| term::paint(term::BOLD, s);
    let mut text = Zeroizing::new(format!(
        "{}\n\n   {}\n\n\
         This is the only time it is shown. Keep it secret, like a password.\n\n\
         {}\n\n   {identity}\n\n\
         The identity is not a secret. Use it in the server's policies\n\
         (kes policy assign <policy> <identity>) or as its admin identity.\n\
         'kes identity of <api-key>' computes it again.\n",
        bold("Your API key:"),
        secret.as_str(),
        bold("Your Identity:"),
    ));
    if let Some((key_path, cert_path)) = files {
        text.push_str(&format!(
            "\nThe certificate '{}' and private key '{}' belong to the same identity.\n",
            cert_path.display(),
            key_path.display()
        ));
    }
    Ok(term::print(&text)?)
}

/// Writes `data` to `path` with `mode` (on Unix), replacing an existing file.
fn write_file(path: &Path, data: &[u8], mode: u32, what: &str) -> Result<(), Failure> {
    let fail = |e: std::io::Error| {
        Failure::msg(format!("failed to write {what} '{}': {e}", path.display()))
    };
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(mode);
        let mut file = options.open(path).map_err(fail)?;
        // `mode` applies only to new files: an overwritten one gets it here.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(fail)?;
        file.write_all(data)
            .and_then(|()| file.sync_all())
            .map_err(fail)
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        let mut file = options.open(path).map_err(fail)?;
        file.write_all(data)
            .and_then(|()| file.sync_all())
            .map_err(fail)
    }
}

fn info(conn: &ConnArgs, identity: Option<&str>, json: bool) -> Result<(), Failure> {
    let client = client(conn)?;
    block_on(async {
        let described = match identity {
            None => client
                .describe_self()
                .await
                .map_err(|e| Failure::request("failed to describe identity", e))?,
            Some(id) => {
                let d = client.describe_identity(id).await.map_err(|e| {
                    Failure::request(format!("failed to describe identity '{id}'"), e)
                })?;
                SelfDescribeResponse {
                    identity: id.to_owned(),
                    admin: d.admin,
                    created_at: d.created_at,
                    created_by: d.created_by,
                    policy: d.policy,
                    ..SelfDescribeResponse::default()
                }
            }
        };
        if json {
            return print_json(&described, term::stdout_is_terminal());
        }
        let label = |l: &str| term::paint(term::BOLD, &format!("{l:<11}"));
        let mut text = format!(
            "{} {}\n{} {}\n{} {}\n",
            label("Identity"),
            term::paint(term::CYAN, &described.identity),
            label("Created At"),
            term::local_date(described.created_at),
            label("Role"),
            if described.admin { "Admin" } else { "User" },
        );
        if let Some(by) = described.created_by.as_deref().filter(|s| !s.is_empty()) {
            text.push_str(&format!("{} {by}\n", label("Created By")));
        }
        if let Some(policy) = described.policy.as_deref().filter(|s| !s.is_empty()) {
            text.push_str(&format!("{} {policy}\n", label("Policy")));
        }
        for (title, rules, style) in [
            ("Allow", &described.allow, term::GREEN),
            ("Deny", &described.deny, term::RED),
        ] {
            for (i, pattern) in rules.keys().enumerate() {
                let title = if i == 0 { title } else { "" };
                text.push_str(&format!(
                    "{} {}\n",
                    label(title),
                    term::paint(style, pattern)
                ));
            }
        }
        Ok(term::print(&text)?)
    })
}

fn ls(conn: &ConnArgs, prefix: &str, json: bool) -> Result<(), Failure> {
    let client = client(conn)?;
    block_on(async {
        let list = client
            .list_identities(prefix)
            .await
            .map_err(|e| Failure::request("failed to list identities", e))?;
        let mut identities = list.identities;
        identities.sort();
        print_names("Identity", &identities, json)?;
        super::warn_partial(Some(&list.continue_at));
        Ok(())
    })
}

fn assign(conn: &ConnArgs, identity: &str, policy: &str) -> Result<(), Failure> {
    let client = client(conn)?;
    block_on(async {
        client.assign_identity(policy, identity).await.map_err(|e| {
            Failure::request(
                format!("failed to assign policy '{policy}' to '{identity}'"),
                e,
            )
        })
    })
}

/// Which server route removes an identity's policy.
enum Route {
    /// `DELETE /v1/identity/forget/<id>` (`kes identity forget`, KES ≤ v0.17).
    Forget,
    /// `DELETE /v1/identity/delete/<id>` (`kes identity rm`, KES v0.18+).
    Delete,
}

fn forget(conn: &ConnArgs, identity: &str, context: &str, route: Route) -> Result<(), Failure> {
    let client = client(conn)?;
    block_on(async {
        let result = match route {
            Route::Forget => client.forget_identity(identity).await,
            Route::Delete => client.delete_identity(identity).await,
        };
        result.map_err(|e| Failure::request(format!("{context} '{identity}'"), e))
    })
}
