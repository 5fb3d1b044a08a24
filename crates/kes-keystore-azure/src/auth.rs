//! Where the access tokens come from, in the order of the Azure SDKs' credentials:
//!
//! - `credentials`: the client-credentials grant with the client secret at
//!   `<authority>/<tenant>/oauth2/v2.0/token` (authority `AZURE_AUTHORITY_HOST`, default
//!   `https://login.microsoftonline.com`);
//! - `managed_identity`: the instance metadata service (IMDS, `IMDS_ENDPOINT`, default
//!   `http://169.254.169.254`, header `Metadata: true`), or App Service's identity endpoint when
//!   `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set;
//! - neither (DefaultAzureCredential's order): `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and
//!   `AZURE_CLIENT_SECRET`; else workload identity (`AZURE_FEDERATED_TOKEN_FILE` with
//!   `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`: the file's token as a client assertion); else the
//!   managed identity (user-assigned when `AZURE_CLIENT_ID` is set).

use std::time::Duration;

use kes_keystore::retry::RetryPolicy;
use kes_keystore_rest::{Env, Method, Op, Reply, Request, Rest, RestError, Token, secret_form};
use serde::Deserialize;
use zeroize::{Zeroize as _, Zeroizing};

use crate::NAME;
use crate::config::AzureAuth;

/// Entra ID's public cloud authority.
const AUTHORITY: &str = "https://login.microsoftonline.com";
/// The instance metadata service.
const IMDS: &str = "http://169.254.169.254";
/// The resource of Key Vault tokens.
pub(crate) const RESOURCE: &str = "https://vault.azure.net";
/// The lifetime assumed when a token answer names none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// How the store obtains its tokens.
pub(crate) struct Credentials {
    source: Source,
}

enum Source {
    Secret {
        tenant: String,
        client_id: String,
        secret: Zeroizing<String>,
        rest: Rest,
        from: &'static str,
    },
    Federated {
        tenant: String,
        client_id: String,
        file: String,
        rest: Rest,
    },
    Imds {
        client_id: Option<String>,
        rest: Rest,
    },
    AppService {
        client_id: Option<String>,
        header: Zeroizing<String>,
        rest: Rest,
        path: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The text of an Entra ID error answer: `error: error_description`.
fn oauth_message(body: &[u8]) -> String {
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

fn rest(base: &str, ca: Option<&std::path::Path>, policy: RetryPolicy) -> Result<Rest, RestError> {
    Ok(Rest::new(NAME, base.trim().trim_end_matches('/'), ca, oauth_message)?.with_policy(policy))
}

impl Credentials {
    /// The credentials `auth` names.
    pub(crate) fn new(
        auth: &AzureAuth,
        env: &Env,
        ca: Option<&std::path::Path>,
        policy: RetryPolicy,
    ) -> Result<Self, RestError> {
        let authority = env
            .var("AZURE_AUTHORITY_HOST")
            .unwrap_or_else(|| AUTHORITY.to_owned());
        let managed = |client_id: Option<String>| -> Result<Source, RestError> {
            if let (Some(endpoint), Some(header)) =
                (env.var("IDENTITY_ENDPOINT"), env.var("IDENTITY_HEADER"))
            {
                let (base, path) = split_url(endpoint.trim());
                return Ok(Source::AppService {
                    client_id,
                    header: Zeroizing::new(header),
                    rest: rest(&base, ca, policy)?,
                    path,
                });
            }
            let imds = env.var("IMDS_ENDPOINT").unwrap_or_else(|| IMDS.to_owned());
            Ok(Source::Imds {
                client_id,
                rest: rest(&imds, ca, policy)?,
            })
        };
        let source = match auth {
            AzureAuth::ClientSecret {
                tenant_id,
                client_id,
                client_secret,
            } => Source::Secret {
                tenant: tenant_id.clone(),
                client_id: client_id.clone(),
                secret: Zeroizing::new(client_secret.expose_secret().to_owned()),
                rest: rest(&authority, ca, policy)?,
                from: "credentials",
            },
            AzureAuth::ManagedIdentity { client_id } => managed(client_id.clone())?,
            AzureAuth::Default => {
                let tenant = env.var("AZURE_TENANT_ID");
                let client = env.var("AZURE_CLIENT_ID");
                match (tenant, client.clone(), env.var("AZURE_CLIENT_SECRET")) {
                    (Some(tenant), Some(client_id), Some(secret)) => Source::Secret {
                        tenant,
                        client_id,
                        secret: Zeroizing::new(secret),
                        rest: rest(&authority, ca, policy)?,
                        from: "AZURE_CLIENT_SECRET",
                    },
                    (Some(tenant), Some(client_id), None)
                        if env.var("AZURE_FEDERATED_TOKEN_FILE").is_some() =>
                    {
                        Source::Federated {
                            tenant,
                            client_id,
                            file: env.var("AZURE_FEDERATED_TOKEN_FILE").unwrap_or_default(),
                            rest: rest(&authority, ca, policy)?,
                        }
                    }
                    _ => managed(client)?,
                }
            }
        };
        Ok(Self { source })
    }

    /// Which credentials these are, for errors and Debug output (never a secret).
    pub(crate) fn describe(&self) -> String {
        match &self.source {
            Source::Secret {
                client_id, from, ..
            } => format!("client '{client_id}' ({from})"),
            Source::Federated { client_id, .. } => {
                format!("workload identity '{client_id}' (AZURE_FEDERATED_TOKEN_FILE)")
            }
            Source::Imds { client_id, .. } | Source::AppService { client_id, .. } => {
                match client_id {
                    Some(id) => format!("managed identity '{id}'"),
                    None => "the system-assigned managed identity".to_owned(),
                }
            }
        }
    }

    /// A new token.
    pub(crate) async fn token(&self, op: &Op) -> Result<Token, RestError> {
        let scope = format!("{RESOURCE}/.default");
        let refused = |reply: &Reply, redact: &[&str]| {
            let mut err = reply.error(op, redact);
            if matches!(reply.status, 400 | 401 | 403) {
                crate::hint(&mut err, &format!("{} was refused", self.describe()));
            }
            err
        };
        match &self.source {
            Source::Secret {
                tenant,
                client_id,
                secret,
                rest,
                ..
            } => {
                let body = secret_form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret),
                    ("scope", &scope),
                ]);
                let path = format!("/{}/oauth2/v2.0/token", kes_keystore_rest::segment(tenant));
                let request = Request::new(Method::POST, path).form(body);
                let reply = rest.send(op, &request, &[secret]).await?;
                if reply.status != 200 {
                    return Err(refused(&reply, &[secret]));
                }
                token(&reply, op)
            }
            Source::Federated {
                tenant,
                client_id,
                file,
                rest,
            } => {
                // Read on every renewal: the kubelet rotates the file.
                let assertion = Zeroizing::new(
                    std::fs::read_to_string(file)
                        .map_err(|e| {
                            RestError::local(
                                NAME,
                                op,
                                format!("cannot read AZURE_FEDERATED_TOKEN_FILE '{file}': {e}"),
                            )
                        })?
                        .trim()
                        .to_owned(),
                );
                let body = secret_form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                    ("scope", &scope),
                ]);
                let path = format!("/{}/oauth2/v2.0/token", kes_keystore_rest::segment(tenant));
                let request = Request::new(Method::POST, path).form(body);
                let reply = rest.send(op, &request, &[&assertion]).await?;
                if reply.status != 200 {
                    return Err(refused(&reply, &[&assertion]));
                }
                token(&reply, op)
            }
            Source::Imds { client_id, rest } => {
                let mut path = format!(
                    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}",
                    kes_keystore_rest::segment(RESOURCE)
                );
                if let Some(id) = client_id {
                    path.push_str("&client_id=");
                    path.push_str(&kes_keystore_rest::segment(id));
                }
                let request = Request::new(Method::GET, path).header("metadata", "true");
                let reply = rest.send(op, &request, &[]).await?;
                if reply.status != 200 {
                    return Err(refused(&reply, &[]));
                }
                token(&reply, op)
            }
            Source::AppService {
                client_id,
                header,
                rest,
                path,
            } => {
                let mut path = format!(
                    "{path}?api-version=2019-08-01&resource={}",
                    kes_keystore_rest::segment(RESOURCE)
                );
                if let Some(id) = client_id {
                    path.push_str("&client_id=");
                    path.push_str(&kes_keystore_rest::segment(id));
                }
                let request =
                    Request::new(Method::GET, path).auth("x-identity-header", header.as_str());
                let reply = rest.send(op, &request, &[]).await?;
                if reply.status != 200 {
                    return Err(refused(&reply, &[]));
                }
                token(&reply, op)
            }
        }
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

/// The token of a token answer (`expires_in` a number from Entra ID, a string from IMDS).
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
