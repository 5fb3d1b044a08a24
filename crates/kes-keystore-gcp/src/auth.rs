//! Where the access tokens come from (Google's "application default credentials" order):
//!
//! 1. the config's `credentials`: a JWT signed with the service account's key (RS256) is
//!    exchanged at the token URI (RFC 7523 JWT-bearer grant, as golang.org/x/oauth2/jwt does);
//! 2. else the key file named by `GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's
//!    `application_default_credentials.json`: a `service_account` key (as 1., at the file's
//!    `token_uri`) or an `authorized_user` refresh token (RFC 6749 refresh grant);
//! 3. else the metadata server of the VM or pod (`GCE_METADATA_HOST`, default
//!    `metadata.google.internal`), with `Metadata-Flavor: Google`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use kes_keystore::retry::RetryPolicy;
use kes_keystore_rest::{Env, Method, Op, Reply, Request, Rest, RestError, Token, secret_form};
use serde::Deserialize;
use zeroize::{Zeroize as _, Zeroizing};

use crate::NAME;
use crate::config::ServiceAccount;

/// The metadata server's host on GCE, GKE and Cloud Run.
const METADATA_HOST: &str = "metadata.google.internal";
/// Where refresh tokens of gcloud's `authorized_user` files are redeemed, when the file says
/// nowhere.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// How long a signed assertion is valid (the library's and Google's maximum).
const ASSERTION_LIFETIME: u64 = 3600;
/// Clock skew allowed for: the assertion says it was issued this much earlier (as the library).
const SKEW: u64 = 10;
/// The lifetime assumed when a token answer names none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// How the store obtains its tokens.
pub(crate) struct Credentials {
    source: Source,
    scopes: Vec<String>,
}

enum Source {
    /// A service-account key: signed JWTs exchanged at `uri`.
    Key {
        email: String,
        key_id: String,
        key: RsaKeyPair,
        uri: String,
        rest: Rest,
        path: String,
        from: &'static str,
    },
    /// A gcloud user's refresh token.
    User {
        client_id: String,
        client_secret: Zeroizing<String>,
        refresh_token: Zeroizing<String>,
        rest: Rest,
        path: String,
    },
    /// The metadata server.
    Metadata { rest: Rest, host: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The text of an OAuth 2.0 error answer (RFC 6749 §5.2), or of a Google JSON error.
pub(crate) fn oauth_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct OAuth {
        error: Option<serde_json::Value>,
        error_description: Option<String>,
    }
    let Ok(answer) = serde_json::from_slice::<OAuth>(body) else {
        return String::new();
    };
    match answer.error {
        Some(serde_json::Value::String(code)) => match answer.error_description {
            Some(text) if !text.is_empty() => format!("{code}: {text}"),
            _ => code,
        },
        Some(other) => crate::vendor_message(&serde_json::to_vec(&other).unwrap_or_default()),
        None => String::new(),
    }
}

/// `https://host:port/a/b` → (`https://host:port`, `/a/b`).
fn split_url(url: &str) -> (String, String) {
    let start = url.find("://").map_or(0, |i| i + 3);
    match url.get(start..).and_then(|rest| rest.find('/')) {
        Some(i) => {
            let (base, path) = url.split_at(start + i);
            (base.to_owned(), path.to_owned())
        }
        None => (url.to_owned(), "/".to_owned()),
    }
}

/// The fields of a credentials file that this store reads.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    token_uri: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        for secret in [
            &mut self.private_key,
            &mut self.client_secret,
            &mut self.refresh_token,
        ]
        .into_iter()
        .flatten()
        {
            secret.zeroize();
        }
    }
}

/// A token answer: `{"access_token", "expires_in", "token_type"}`.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
}

impl Drop for TokenAnswer {
    fn drop(&mut self) {
        if let Some(token) = &mut self.access_token {
            token.zeroize();
        }
    }
}

impl Credentials {
    /// The credentials `account` gives, or (when `None`) the application default credentials.
    pub(crate) fn new(
        account: Option<&ServiceAccount>,
        scopes: Vec<String>,
        env: &Env,
        ca: Option<&std::path::Path>,
        policy: &RetryPolicy,
    ) -> Result<Self, RestError> {
        let op = Op::new("connect");
        let source = match account {
            Some(account) => key_source(
                &account.client_email,
                &account.private_key_id,
                account.private_key.expose_secret(),
                &account.token_uri,
                "credentials",
                ca,
                policy,
                &op,
            )?,
            None => match adc_file(env) {
                Some((path, from)) => file_source(&path, from, ca, policy, &op)?,
                None => {
                    let host = env
                        .var("GCE_METADATA_HOST")
                        .unwrap_or_else(|| METADATA_HOST.to_owned());
                    let host = host.trim().trim_end_matches('/').to_owned();
                    let rest = Rest::new(NAME, &format!("http://{host}"), ca, oauth_message)?
                        .with_policy(*policy);
                    Source::Metadata { rest, host }
                }
            },
        };
        Ok(Self { source, scopes })
    }

    /// Which credentials these are, for errors and Debug output (never a secret).
    pub(crate) fn describe(&self) -> String {
        match &self.source {
            Source::Key { email, from, .. } => {
                format!("service account '{email}' ({from})")
            }
            Source::User { client_id, .. } => {
                format!("gcloud user credentials of client '{client_id}'")
            }
            Source::Metadata { host, .. } => format!("the metadata server '{host}'"),
        }
    }

    /// A new token.
    pub(crate) async fn token(&self, op: &Op) -> Result<Token, RestError> {
        let refused = |reply: &Reply, what: &str, redact: &[&str]| {
            let mut err = reply.error(op, redact);
            if matches!(reply.status, 400 | 401 | 403) {
                crate::hint(&mut err, &format!("{what} was refused"));
            }
            err
        };
        let scope = self.scopes.join(" ");
        match &self.source {
            Source::Key {
                email,
                key_id,
                key,
                uri,
                rest,
                path,
                from,
            } => {
                let assertion = Zeroizing::new(sign(email, key_id, key, uri, &scope, op)?);
                let body = secret_form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &assertion),
                ]);
                let request = Request::new(Method::POST, path.clone()).form(body);
                let reply = rest.send(op, &request, &[&assertion]).await?;
                if reply.status != 200 {
                    let what = format!("the service account key ({from})");
                    return Err(refused(&reply, &what, &[&assertion]));
                }
                token(&reply, op)
            }
            Source::User {
                client_id,
                client_secret,
                refresh_token,
                rest,
                path,
            } => {
                let body = secret_form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", client_id),
                    ("client_secret", client_secret),
                    ("refresh_token", refresh_token),
                ]);
                let request = Request::new(Method::POST, path.clone()).form(body);
                let hide = [client_secret.as_str(), refresh_token.as_str()];
                let reply = rest.send(op, &request, &hide).await?;
                if reply.status != 200 {
                    return Err(refused(&reply, "the gcloud user's refresh token", &hide));
                }
                token(&reply, op)
            }
            Source::Metadata { rest, .. } => {
                let mut path =
                    "/computeMetadata/v1/instance/service-accounts/default/token".to_owned();
                if !self.scopes.is_empty() {
                    let scopes: Vec<String> = self
                        .scopes
                        .iter()
                        .map(|s| kes_keystore_rest::segment(s))
                        .collect();
                    path.push_str("?scopes=");
                    path.push_str(&scopes.join(","));
                }
                let request = Request::new(Method::GET, path).header("metadata-flavor", "Google");
                let reply = rest.send(op, &request, &[]).await?;
                if reply.status != 200 {
                    return Err(refused(
                        &reply,
                        "the metadata server's service account",
                        &[],
                    ));
                }
                token(&reply, op)
            }
        }
    }
}

/// The credentials file of the application default credentials, if there is one.
fn adc_file(env: &Env) -> Option<(PathBuf, &'static str)> {
    if let Some(path) = env.var("GOOGLE_APPLICATION_CREDENTIALS") {
        return Some((PathBuf::from(path), "GOOGLE_APPLICATION_CREDENTIALS"));
    }
    let dir = match env.var("CLOUDSDK_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env.var("HOME")?).join(".config/gcloud"),
    };
    let file = dir.join("application_default_credentials.json");
    file.is_file()
        .then_some((file, "gcloud application_default_credentials.json"))
}

fn file_source(
    path: &std::path::Path,
    from: &'static str,
    ca: Option<&std::path::Path>,
    policy: &RetryPolicy,
    op: &Op,
) -> Result<Source, RestError> {
    let local = |why: String| RestError::local(NAME, op, why);
    let text = Zeroizing::new(std::fs::read(path).map_err(|e| {
        local(format!(
            "cannot read the credentials file '{}' ({from}): {e}",
            path.display()
        ))
    })?);
    let file: KeyFile = serde_json::from_slice(&text).map_err(|e| {
        local(format!(
            "the credentials file '{}' ({from}) is not JSON (line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    let field = |value: &Option<String>, name: &str| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                local(format!(
                    "the credentials file '{}' ({from}) has no {name}",
                    path.display()
                ))
            })
    };
    match file.kind.as_deref() {
        Some("service_account") => {
            let key = Zeroizing::new(field(&file.private_key, "private_key")?);
            let uri = file
                .token_uri
                .clone()
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_owned());
            key_source(
                &field(&file.client_email, "client_email")?,
                file.private_key_id.as_deref().unwrap_or_default(),
                &key,
                &uri,
                from,
                ca,
                policy,
                op,
            )
        }
        Some("authorized_user") => {
            let uri = file
                .token_uri
                .clone()
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_owned());
            let (base, path) = split_url(uri.trim());
            let rest = Rest::new(NAME, &base, ca, oauth_message)?.with_policy(*policy);
            Ok(Source::User {
                client_id: field(&file.client_id, "client_id")?,
                client_secret: Zeroizing::new(field(&file.client_secret, "client_secret")?),
                refresh_token: Zeroizing::new(field(&file.refresh_token, "refresh_token")?),
                rest,
                path,
            })
        }
        other => Err(local(format!(
            "the credentials file '{}' ({from}) is of type '{}': only service_account and authorized_user are supported",
            path.display(),
            other.unwrap_or_default().escape_debug()
        ))),
    }
}

#[allow(clippy::too_many_arguments)]
fn key_source(
    email: &str,
    key_id: &str,
    pem: &str,
    uri: &str,
    from: &'static str,
    ca: Option<&std::path::Path>,
    policy: &RetryPolicy,
    op: &Op,
) -> Result<Source, RestError> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject as _;
    let local = |why: &str| RestError::local(NAME, op, format!("the private key ({from}) {why}"));
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| local("is not a PEM private key"))?;
    let key = match &der {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        _ => return Err(local("is not an RSA key")),
    }
    .map_err(|_| local("is not a usable RSA key"))?;
    let uri = uri.trim().to_owned();
    let (base, path) = split_url(&uri);
    let rest = Rest::new(NAME, &base, ca, oauth_message)?.with_policy(*policy);
    Ok(Source::Key {
        email: email.to_owned(),
        key_id: key_id.trim().to_owned(),
        key,
        uri,
        rest,
        path,
        from,
    })
}

/// The signed assertion: `base64url(header).base64url(claims).base64url(RS256 signature)`.
fn sign(
    email: &str,
    key_id: &str,
    key: &RsaKeyPair,
    aud: &str,
    scope: &str,
    op: &Op,
) -> Result<String, RestError> {
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if !key_id.is_empty()
        && let Some(header) = header.as_object_mut()
    {
        header.insert("kid".into(), key_id.into());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let iat = now.saturating_sub(SKEW);
    let mut claims = serde_json::json!({
        "iss": email,
        "aud": aud,
        "iat": iat,
        "exp": iat + ASSERTION_LIFETIME,
    });
    if !scope.is_empty()
        && let Some(claims) = claims.as_object_mut()
    {
        claims.insert("scope".into(), scope.into());
    }
    let mut text = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        text.as_bytes(),
        &mut signature,
    )
    .map_err(|_| RestError::local(NAME, op, "cannot sign the token request"))?;
    text.push('.');
    text.push_str(&B64URL.encode(&signature));
    Ok(text)
}

/// The token of a token answer.
fn token(reply: &Reply, op: &Op) -> Result<Token, RestError> {
    let mut answer: TokenAnswer = reply.json(op)?;
    let secret = answer
        .access_token
        .take()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| reply.invalid(op, "no access_token in the answer"))?;
    let seconds = match &answer.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let lifetime = seconds.map_or(DEFAULT_LIFETIME, |s| Duration::from_secs(s.max(2)));
    Ok(Token::new(secret, lifetime))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split() {
        assert_eq!(
            split_url("https://oauth2.googleapis.com/token"),
            ("https://oauth2.googleapis.com".into(), "/token".into())
        );
        assert_eq!(
            split_url("http://127.0.0.1:80"),
            ("http://127.0.0.1:80".into(), "/".into())
        );
    }

    #[test]
    fn oauth_errors() {
        assert_eq!(
            oauth_message(br#"{"error":"invalid_grant","error_description":"Invalid JWT"}"#),
            "invalid_grant: Invalid JWT"
        );
        assert_eq!(oauth_message(b"<html>"), "");
    }
}
