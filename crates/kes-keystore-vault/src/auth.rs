//! Logging in to Vault and keeping the token alive.
//!
//! # Login
//!
//! AppRole: `POST /v1/auth/<engine>/login` with `{"role_id","secret_id"}`. Kubernetes: the same
//! path with `{"role","jwt"}`, where a `jwt` containing `/` is the path of a file that is read
//! again at every login (service-account tokens are rotated on disk). Each login method has its
//! own namespace: unset = the key store's namespace, `/` = the root namespace. A token given
//! directly ([`ConnectOptions::token`](crate::ConnectOptions)) is never replaced.
//!
//! # Renewal (kes-spec §8.2)
//!
//! After a login or renewal that granted `ttl`:
//!
//! * `ttl` = 0 at login: the token never expires; nothing is scheduled.
//! * Vault counts TTLs in whole seconds and may report up to a second more than a token has
//!   left, so the schedule takes the token to live `ttl − 1 s` (at least `ttl / 2`).
//! * At 80 % of that the token is renewed (`renew-self`, up to 3 tries, none after a 4xx) if it
//!   is renewable and its last renewal was not cut short, otherwise a new login is made. A
//!   renewal is *cut short* when it granted less than the login did: the token is running into
//!   its max TTL, and renewing again would only shorten the remaining time further. (The
//!   original logged in again whenever the TTL was below 30 s, which made roles with short
//!   TTLs log in on every cycle and pile up tokens, kes#427/#504; this rule renews them.)
//! * A failed renewal, or one that granted no time at all, falls back to a new login at once.
//! * A failed login is retried every 3 s until it works or the store is closed.
//! * After a new login the old token, still valid for the rest of its TTL, stays in use for
//!   `min(remaining / 2, 30 s)`, so that the new token has reached Vault's standbys and
//!   replicas before it is used (kes#501: `403 invalid token` right after a login).
//! * While Vault is sealed nothing is renewed; the schedule resumes when it is unsealed.
//! * When a call is refused with 403, the token is looked up (at most every 5 s); if Vault no
//!   longer knows it (revoked, expired while Vault was down), a new login is made at once.

use std::sync::Arc;
use std::time::Duration;

use kes_config::SecretString;

use crate::config::VaultConfig;
use parking_lot::RwLock;
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::request::{self, Request};
use crate::retry::RetryPolicy;
use crate::transport::Transport;
use crate::wire::{AuthResponse, LookupResponse};
use crate::{Health, LogFn};

/// Renew at this fraction (in percent) of the TTL.
const RENEW_AT_PERCENT: u32 = 80;
/// The longest time a new token waits before it replaces the old one.
const MAX_SWITCH_DELAY: Duration = Duration::from_secs(30);
/// How long a failed login waits before the next one.
pub(crate) const RELOGIN_RETRY: Duration = Duration::from_secs(3);
/// How often a refused call may trigger a token check.
const CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// Tries of one renewal.
const RENEW_TRIES: u32 = 3;
/// The rounding of Vault's TTLs.
const ROUNDING: Duration = Duration::from_secs(1);

/// How the key store logs in.
pub(crate) enum Login {
    /// A token given by the caller; it is renewed when renewable, never replaced.
    Token(SecretString),
    /// AppRole login.
    AppRole {
        engine: String,
        namespace: Option<String>,
        id: String,
        secret: SecretString,
    },
    /// Kubernetes service-account login.
    Kubernetes {
        engine: String,
        namespace: Option<String>,
        role: String,
        /// The JWT, or (when it contains `/`) the path of the file holding it.
        jwt: SecretString,
    },
}

impl Login {
    /// The login method of `config`, or the given `token`.
    pub fn new(config: &VaultConfig, token: Option<SecretString>) -> Result<Self, VaultError> {
        let vault_ns = config.namespace.as_deref();
        // A login method's own namespace replaces the store's; `/` means the root namespace.
        let ns = |own: &Option<String>| request::namespace(own.as_deref().or(vault_ns));
        if let Some(token) = token {
            return Ok(Self::Token(token));
        }
        if let Some(a) = &config.approle {
            return Ok(Self::AppRole {
                engine: a.engine.clone(),
                namespace: ns(&a.namespace)?,
                id: a.id.clone(),
                secret: a.secret.clone(),
            });
        }
        if let Some(k) = &config.kubernetes {
            return Ok(Self::Kubernetes {
                engine: k.engine.clone(),
                namespace: ns(&k.namespace)?,
                role: k.role.clone(),
                jwt: k.jwt.clone(),
            });
        }
        Err(VaultError::Local(
            "no authentication method: configure approle or kubernetes".into(),
        ))
    }

    /// The namespace the token lives in (for renew-self and lookup-self).
    pub fn namespace(&self, vault_ns: Option<&str>) -> Option<String> {
        match self {
            Self::Token(_) => vault_ns.map(str::to_owned),
            Self::AppRole { namespace, .. } | Self::Kubernetes { namespace, .. } => {
                namespace.clone()
            }
        }
    }

    /// Whether a new token can be obtained by logging in.
    pub fn can_login(&self) -> bool {
        !matches!(self, Self::Token(_))
    }

    /// The login request; reads the Kubernetes JWT file if there is one. `None` for a token.
    pub fn request(&self) -> Result<Option<Request>, VaultError> {
        match self {
            Self::Token(_) => Ok(None),
            Self::AppRole {
                engine,
                namespace,
                id,
                secret,
            } => {
                #[derive(Serialize)]
                struct Body<'a> {
                    role_id: &'a str,
                    secret_id: &'a str,
                }
                let body = Body {
                    role_id: id,
                    secret_id: secret.expose_secret(),
                };
                request::login(engine, namespace.as_deref(), &body).map(Some)
            }
            Self::Kubernetes {
                engine,
                namespace,
                role,
                jwt,
            } => {
                #[derive(Serialize)]
                struct Body<'a> {
                    role: &'a str,
                    jwt: &'a str,
                }
                let jwt = kubernetes_jwt(jwt)?;
                let body = Body { role, jwt: &jwt };
                request::login(engine, namespace.as_deref(), &body).map(Some)
            }
        }
    }

    /// Secrets of this login method that must not appear in errors.
    fn secrets(&self) -> Vec<&str> {
        match self {
            Self::Token(t) => vec![t.expose_secret()],
            Self::AppRole { secret, .. } => vec![secret.expose_secret()],
            Self::Kubernetes { jwt, .. } if !jwt.expose_secret().contains('/') => {
                vec![jwt.expose_secret()]
            }
            Self::Kubernetes { .. } => vec![],
        }
    }
}

/// The Kubernetes JWT: the value itself, or the trimmed content of the file it names.
fn kubernetes_jwt(jwt: &SecretString) -> Result<Zeroizing<String>, VaultError> {
    let value = jwt.expose_secret();
    if !value.contains('/') {
        return Ok(Zeroizing::new(value.to_owned()));
    }
    let content = std::fs::read_to_string(value)
        .map(Zeroizing::new)
        .map_err(|e| {
            VaultError::Local(format!(
                "cannot read the Kubernetes JWT file '{value}': {e}"
            ))
        })?;
    let trimmed = Zeroizing::new(content.trim().to_owned());
    if trimmed.is_empty() {
        return Err(VaultError::Local(format!(
            "the Kubernetes JWT file '{value}' is empty"
        )));
    }
    Ok(trimmed)
}

/// What Vault said about a token's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    /// The TTL granted; zero for a token that never expires.
    pub ttl: Duration,
    /// Whether `renew-self` may extend it.
    pub renewable: bool,
    /// The TTL the login granted; a renewal granting less was cut short by the max TTL.
    pub full: Duration,
}

impl Lease {
    /// The lease of a fresh login.
    pub fn login(ttl: Duration, renewable: bool) -> Self {
        Self {
            ttl,
            renewable,
            full: ttl,
        }
    }

    /// The lease after a renewal that granted `ttl`.
    pub fn renewed(self, ttl: Duration, renewable: bool) -> Self {
        Self {
            ttl,
            renewable,
            full: self.full,
        }
    }
}

/// The next step of the token lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// `renew-self`.
    Renew,
    /// Log in again.
    Login,
}

/// When (after the lease was granted) and how the token must be refreshed, or `None` when
/// nothing needs to be done.
pub(crate) fn schedule(lease: &Lease, can_login: bool) -> Option<(Duration, Action)> {
    if lease.full.is_zero() {
        // The login granted no TTL: the token never expires.
        return None;
    }
    if lease.ttl.is_zero() {
        // A renewal granted nothing more: the token is at its max TTL.
        return can_login.then_some((Duration::ZERO, Action::Login));
    }
    let at = lifetime(lease.ttl) * RENEW_AT_PERCENT / 100;
    let cut_short = lease.ttl < lease.full;
    if lease.renewable && !(cut_short && can_login) {
        return Some((at, Action::Renew));
    }
    can_login.then_some((at, Action::Login))
}

/// How long a token granted `ttl` can be relied on. Vault counts TTLs in whole seconds and
/// may report up to a second more than the token has left (near the max TTL especially), so
/// a second is taken off — at most half of the TTL, for very short ones.
pub(crate) fn lifetime(ttl: Duration) -> Duration {
    ttl - ROUNDING.min(ttl / 2)
}

/// How long a freshly logged-in token waits before it replaces the old one, which is still
/// valid for `remaining`.
pub(crate) fn switch_delay(remaining: Duration) -> Duration {
    (remaining / 2).min(MAX_SWITCH_DELAY)
}

/// The current token.
pub(crate) struct Auth {
    pub login: Login,
    /// The namespace of token requests.
    namespace: Option<String>,
    token: RwLock<Option<Arc<Zeroizing<String>>>>,
    /// Woken when a call was refused with 403.
    refused: Notify,
}

impl Auth {
    pub fn new(login: Login, vault_ns: Option<&str>) -> Self {
        let namespace = login.namespace(vault_ns);
        let token = match &login {
            Login::Token(t) => Some(Arc::new(Zeroizing::new(t.expose_secret().to_owned()))),
            _ => None,
        };
        Self {
            login,
            namespace,
            token: RwLock::new(token),
            refused: Notify::new(),
        }
    }

    /// The token to send, if logged in.
    pub fn token(&self) -> Option<Arc<Zeroizing<String>>> {
        self.token.read().clone()
    }

    fn set(&self, token: Zeroizing<String>) {
        *self.token.write() = Some(Arc::new(token));
    }

    /// Tells the renewal task that Vault refused a call with 403.
    pub fn refused(&self) {
        self.refused.notify_one();
    }

    /// Logs in (for a given token: looks it up) and returns the new token's lease. The token
    /// is not installed.
    async fn obtain(
        &self,
        transport: &Transport,
        policy: &RetryPolicy,
    ) -> Result<(Option<Zeroizing<String>>, Lease), VaultError> {
        let Some(request) = self.login.request()? else {
            let lease = self.lookup(transport, policy).await?;
            return Ok((None, lease));
        };
        let secrets = self.login.secrets();
        let reply = transport.send(&request, None, policy, &secrets).await?;
        if reply.status != 200 {
            return Err(reply.error(&secrets));
        }
        let auth: AuthResponse = reply.json()?;
        let auth = auth
            .auth
            .ok_or_else(|| reply.invalid("the login answer has no 'auth'"))?;
        if auth.client_token.0.is_empty() {
            return Err(reply.invalid("the login answer has an empty token"));
        }
        let lease = Lease::login(Duration::from_secs(auth.lease_duration), auth.renewable);
        Ok((Some(auth.client_token.0), lease))
    }

    /// Logs in and installs the token at once (at startup).
    pub async fn login_now(
        &self,
        transport: &Transport,
        policy: &RetryPolicy,
    ) -> Result<Lease, VaultError> {
        let (token, lease) = self.obtain(transport, policy).await?;
        if let Some(token) = token {
            self.set(token);
        }
        Ok(lease)
    }

    /// `lookup-self` with the current token: its remaining lease.
    async fn lookup(
        &self,
        transport: &Transport,
        policy: &RetryPolicy,
    ) -> Result<Lease, VaultError> {
        let token = self.token();
        let token = token.as_ref().map(|t| t.as_str());
        let request = request::lookup_self(self.namespace.as_deref());
        let reply = transport.send(&request, token, policy, &[]).await?;
        if reply.status != 200 {
            return Err(reply.error(&token.into_iter().collect::<Vec<_>>()));
        }
        let lookup: LookupResponse = reply.json()?;
        Ok(Lease::login(
            Duration::from_secs(lookup.data.ttl),
            lookup.data.renewable,
        ))
    }

    /// `renew-self` with the current token.
    async fn renew(&self, transport: &Transport, lease: Lease) -> Result<Lease, VaultError> {
        let token = self.token();
        let token = token.as_ref().map(|t| t.as_str());
        let request = request::renew_self(self.namespace.as_deref());
        let redact: Vec<&str> = token.into_iter().collect();
        // Up to three tries; a 4xx is final (transport only retries transient answers).
        let policy = RetryPolicy::with_rounds(RENEW_TRIES);
        let reply = transport.send(&request, token, &policy, &redact).await?;
        if reply.status != 200 {
            return Err(reply.error(&redact));
        }
        let auth: AuthResponse = reply.json()?;
        let auth = auth
            .auth
            .ok_or_else(|| reply.invalid("the renewal answer has no 'auth'"))?;
        Ok(lease.renewed(Duration::from_secs(auth.lease_duration), auth.renewable))
    }

    /// Whether Vault still accepts the current token (`false` only when Vault says so).
    async fn token_is_valid(&self, transport: &Transport) -> bool {
        match self.lookup(transport, &RetryPolicy::with_rounds(1)).await {
            Err(err) => err.http_status() != Some(403),
            Ok(_) => true,
        }
    }
}

/// Keeps the token alive until the task is aborted (see the module documentation).
pub(crate) async fn renew_task(
    auth: Arc<Auth>,
    transport: Arc<Transport>,
    policy: RetryPolicy,
    mut health: watch::Receiver<Health>,
    mut lease: Lease,
    log: LogFn,
) {
    let mut granted = Instant::now();
    let mut last_check: Option<Instant> = None;
    loop {
        let planned = schedule(&lease, auth.login.can_login());
        let due = planned.map(|(after, _)| granted + after);
        // Wait for the planned time, or for a refused call that shows the token is gone.
        let forced = tokio::select! {
            () = sleep_until(due) => false,
            () = auth.refused.notified() => {
                if !auth.login.can_login()
                    || last_check.is_some_and(|t| t.elapsed() < CHECK_INTERVAL)
                {
                    continue;
                }
                last_check = Some(Instant::now());
                if auth.token_is_valid(&transport).await {
                    continue;
                }
                log("vault: Vault no longer accepts the token: logging in again");
                true
            }
        };
        // Nothing is renewed while Vault is sealed.
        if health.borrow().sealed {
            let _ = health.wait_for(|h| !h.sealed).await;
        }
        let action = if forced {
            Action::Login
        } else {
            match planned {
                Some((_, action)) => action,
                None => continue,
            }
        };
        if action == Action::Renew {
            match auth.renew(&transport, lease).await {
                Ok(renewed) => {
                    lease = renewed;
                    granted = Instant::now();
                    continue;
                }
                Err(err) if auth.login.can_login() => {
                    log(&format!(
                        "vault: cannot renew the token: {err}: logging in again"
                    ));
                }
                Err(err) => {
                    log(&format!("vault: cannot renew the token: {err}"));
                    lease = Lease::login(Duration::ZERO, false);
                    continue;
                }
            }
        }
        // A new login, retried every 3 s.
        let old_expiry = granted + lifetime(lease.ttl);
        let (token, new_lease, login_time) = loop {
            let started = Instant::now();
            match auth.obtain(&transport, &policy).await {
                Ok((Some(token), new_lease)) => break (token, new_lease, started),
                Ok((None, _)) => return,
                Err(err) => {
                    log(&format!(
                        "vault: login failed: {err}: retrying in {}s",
                        RELOGIN_RETRY.as_secs()
                    ));
                    tokio::time::sleep(RELOGIN_RETRY).await;
                }
            }
        };
        if !forced {
            let remaining = old_expiry.saturating_duration_since(Instant::now());
            tokio::time::sleep(switch_delay(remaining)).await;
        }
        auth.set(token);
        lease = new_lease;
        granted = login_time;
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{VaultKubernetes, VaultKvVersion};

    use super::*;
    use crate::request::tests::config;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn body(request: &Request) -> serde_json::Value {
        serde_json::from_slice(request.body.as_ref().unwrap()).unwrap()
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn a_token_without_ttl_is_never_renewed() {
        assert_eq!(schedule(&Lease::login(Duration::ZERO, true), true), None);
        assert_eq!(schedule(&Lease::login(Duration::ZERO, false), false), None);
    }

    #[test]
    fn a_second_of_rounding_is_taken_off_the_ttl() {
        assert_eq!(lifetime(secs(3600)), secs(3599));
        assert_eq!(lifetime(secs(2)), secs(1));
        assert_eq!(lifetime(secs(1)), ms(500));
        assert_eq!(lifetime(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn renewable_tokens_are_renewed_at_80_percent() {
        let lease = Lease::login(secs(3600), true);
        assert_eq!(schedule(&lease, true), Some((ms(2_879_200), Action::Renew)));
        // Short TTLs are renewed too (no login churn).
        let lease = Lease::login(secs(11), true);
        assert_eq!(schedule(&lease, true), Some((secs(8), Action::Renew)));
        // A renewal that granted the full TTL again keeps renewing.
        let lease = lease.renewed(secs(11), true);
        assert_eq!(schedule(&lease, true), Some((secs(8), Action::Renew)));
    }

    #[test]
    fn a_renewal_cut_short_by_the_max_ttl_leads_to_a_login() {
        let lease = Lease::login(secs(11), true).renewed(secs(6), true);
        assert_eq!(schedule(&lease, true), Some((secs(4), Action::Login)));
        // A given token cannot log in: it is renewed for as long as Vault allows.
        assert_eq!(schedule(&lease, false), Some((secs(4), Action::Renew)));
        // A renewal that granted nothing: log in now (or, for a given token, give up).
        let lease = Lease::login(secs(11), true).renewed(Duration::ZERO, true);
        assert_eq!(
            schedule(&lease, true),
            Some((Duration::ZERO, Action::Login))
        );
        assert_eq!(schedule(&lease, false), None);
    }

    #[test]
    fn non_renewable_tokens_lead_to_a_login_or_to_nothing() {
        let lease = Lease::login(secs(101), false);
        assert_eq!(schedule(&lease, true), Some((secs(80), Action::Login)));
        assert_eq!(schedule(&lease, false), None);
    }

    #[test]
    fn the_new_token_waits_half_the_remaining_time_at_most_30s() {
        // Logged in again at 80 % of a 100 s TTL: 20 s remain, switch after 10 s.
        assert_eq!(switch_delay(secs(20)), secs(10));
        // 80 % of an hour: 720 s remain, the wait is capped at 30 s.
        assert_eq!(switch_delay(secs(720)), secs(30));
        assert_eq!(switch_delay(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn approle_login_request() {
        let cfg = config(VaultKvVersion::V1);
        let login = Login::new(&cfg, None).unwrap();
        assert!(login.can_login());
        let request = login.request().unwrap().unwrap();
        assert_eq!(request.path, "/v1/auth/approle/login");
        assert_eq!(request.namespace, None);
        assert!(!request.authenticated);
        assert_eq!(
            body(&request),
            serde_json::json!({"role_id": "role", "secret_id": "secret"})
        );
    }

    #[test]
    fn login_namespaces() {
        let mut cfg = config(VaultKvVersion::V1);
        cfg.namespace = Some("kes".into());
        // Unset: the store's namespace.
        let login = Login::new(&cfg, None).unwrap();
        assert_eq!(
            login.request().unwrap().unwrap().namespace.as_deref(),
            Some("kes")
        );
        assert_eq!(login.namespace(Some("kes")).as_deref(), Some("kes"));
        // Its own.
        cfg.approle.as_mut().unwrap().namespace = Some("auth-ns".into());
        let login = Login::new(&cfg, None).unwrap();
        assert_eq!(
            login.request().unwrap().unwrap().namespace.as_deref(),
            Some("auth-ns")
        );
        assert_eq!(login.namespace(Some("kes")).as_deref(), Some("auth-ns"));
        // `/`: the root namespace, no header.
        cfg.approle.as_mut().unwrap().namespace = Some("/".into());
        let login = Login::new(&cfg, None).unwrap();
        assert_eq!(login.request().unwrap().unwrap().namespace, None);
        // A given token lives in the store's namespace.
        let login = Login::new(&cfg, Some(SecretString::new("t".into()))).unwrap();
        assert!(!login.can_login());
        assert!(login.request().unwrap().is_none());
        assert_eq!(login.namespace(Some("kes")).as_deref(), Some("kes"));
    }

    #[test]
    fn kubernetes_login_rereads_the_jwt_file_at_every_login() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "jwt-one\n").unwrap();
        let mut cfg = config(VaultKvVersion::V2);
        cfg.approle = None;
        cfg.namespace = Some("kes".into());
        cfg.kubernetes = Some(VaultKubernetes {
            engine: "k8s".into(),
            namespace: Some("/".into()),
            role: "kes-role".into(),
            jwt: SecretString::new(file.display().to_string()),
        });
        let login = Login::new(&cfg, None).unwrap();
        let request = login.request().unwrap().unwrap();
        assert_eq!(request.path, "/v1/auth/k8s/login");
        assert_eq!(request.namespace, None);
        assert_eq!(
            body(&request),
            serde_json::json!({"role": "kes-role", "jwt": "jwt-one"})
        );
        std::fs::write(&file, "jwt-two").unwrap();
        let request = login.request().unwrap().unwrap();
        assert_eq!(body(&request)["jwt"], "jwt-two");

        std::fs::remove_file(&file).unwrap();
        let err = login.request().unwrap_err().to_string();
        assert!(err.contains("cannot read the Kubernetes JWT file"), "{err}");

        // A literal JWT (no '/') is sent as it is.
        cfg.kubernetes.as_mut().unwrap().jwt = SecretString::new("eyJliteral".into());
        let login = Login::new(&cfg, None).unwrap();
        assert_eq!(
            body(&login.request().unwrap().unwrap())["jwt"],
            "eyJliteral"
        );
    }

    #[test]
    fn no_login_method_is_an_error() {
        let mut cfg = config(VaultKvVersion::V1);
        cfg.approle = None;
        assert!(Login::new(&cfg, None).is_err());
    }
}
