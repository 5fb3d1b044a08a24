//! The AWS Secrets Manager keystore (kes-spec §8.4): one secret per key, named as the key, whose
//! `SecretString` is the key record — exactly as the original stores them, so that secrets the
//! original wrote are read unchanged and the other way round.
//!
//! | operation | Secrets Manager action                                                          |
//! |-----------|---------------------------------------------------------------------------------|
//! | status    | a plain `GET` of the endpoint: any HTTP answer means reachable (as the original) |
//! | create    | `CreateSecret {Name, SecretString, KmsKeyId?, ClientRequestToken}`               |
//! | get       | `GetSecretValue {SecretId, VersionStage: AWSCURRENT}`: `SecretString`, else `SecretBinary` |
//! | delete    | `DeleteSecret {SecretId, ForceDeleteWithoutRecovery: true}`                      |
//! | replace   | `GetSecretValue` (the value and its `VersionId`), `PutSecretValue {VersionStages: [AWSPENDING]}`, then `UpdateSecretVersionStage {AWSCURRENT, MoveToVersionId: new, RemoveFromVersionId: read}` |
//! | list      | `ListSecrets {Filters: name prefix, MaxResults: 100}`, page by page              |
//!
//! Requests go through the official SDK: SigV4 signing, the standard credential chain when the
//! config names no credentials (environment, web identity, ECS container credentials, EC2
//! instance metadata, profiles), and the SDK's retry rules — bounded attempts with jittered
//! exponential backoff on throttling (`ThrottlingException`, 429), 5xx and transient network
//! errors. Where this departs from the original:
//!
//! - A record that is not UTF-8 is stored as `SecretBinary` (the original would have mangled
//!   it into a `SecretString`); every UTF-8 record — all the original writes — is a
//!   `SecretString`, as there.
//! - `create` sends its own `ClientRequestToken`, which the SDK repeats on a retry: a create
//!   whose answer was lost is not reported as "key exists" when it is retried.
//! - A secret scheduled for deletion is "not found" (as `ListSecrets` already hides it); a
//!   create of its name waits a few seconds for a forced deletion to finish before it fails
//!   with an error that says why.
//! - A listing is bounded, filtered by the service and again here, and sorted.
//! - `replace` (key rotation; the original has none) is a compare-and-swap on the `AWSCURRENT`
//!   staging label: the new value is added as a version that is not current yet, and the
//!   label moves to it only from the version that was read, which the service refuses when
//!   another server moved the label in between (told apart from other failures by reading
//!   where the label is). Readers, the original among them, read
//!   `AWSCURRENT`, so they see the old value or the new one, never a half-done replace.

#![deny(unsafe_code)]

mod config;
mod error;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{Credentials, Region};
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use kes_keystore::retry::RetryPolicy;
use kes_keystore::{Error, KeyStore, Locator};
use zeroize::Zeroizing;

pub use config::{AwsConfig, AwsCredentials, BACKEND};
pub use error::AwsError;
use error::Op;

/// Names per page of a listing.
const PAGE: i32 = 100;
/// The most pages one listing reads (10,000,000 secrets): a bound, so that a service that keeps
/// answering with a next token never keeps a listing going forever.
const MAX_PAGES: usize = 100_000;
/// How long one attempt of a call may take (connect, send, answer).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the status check and the connect check wait for an answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a create waits for a forced deletion of the same name to finish.
const DELETION_WAITS: u32 = 5;
/// The staging label of the version readers read.
const CURRENT: &str = "AWSCURRENT";
/// The staging label of a new version while a replace moves `AWSCURRENT` to it.
const PENDING: &str = "AWSPENDING";

/// An AWS Secrets Manager keystore.
pub struct AwsKeyStore {
    client: Client,
    endpoint: String,
    region: String,
    kms_key: Option<String>,
    http: reqwest::Client,
    policy: RetryPolicy,
    closed: AtomicBool,
}

impl std::fmt::Debug for AwsKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKeyStore")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("kms_key", &self.kms_key)
            .finish_non_exhaustive()
    }
}

impl AwsKeyStore {
    /// Connects as `config` says and checks that the endpoint answers (as the original does).
    pub async fn connect(config: &AwsConfig) -> Result<Self, AwsError> {
        Self::connect_with(config, RetryPolicy::default()).await
    }

    /// [`connect`](Self::connect) with another retry policy: `rounds` attempts per call, the
    /// backoff starting at `base_delay` and capped at `max_delay`, and no call longer than
    /// `max_elapsed` plus one attempt.
    pub async fn connect_with(config: &AwsConfig, policy: RetryPolicy) -> Result<Self, AwsError> {
        let op = Op::new("connect");
        let endpoint = config.endpoint_url();
        let retry = RetryConfig::standard()
            .with_max_attempts(policy.rounds.max(1))
            .with_initial_backoff(policy.base_delay)
            .with_max_backoff(policy.max_delay);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(ATTEMPT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(policy.max_elapsed.saturating_add(ATTEMPT_TIMEOUT))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Some(c) = &config.credentials {
            loader = loader.credentials_provider(Credentials::new(
                c.access_key.clone(),
                c.secret_key.expose_secret().to_owned(),
                c.session_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned()),
                None,
                "kes-config",
            ));
        }
        let shared = loader.load().await;
        let service = aws_sdk_secretsmanager::config::Builder::from(&shared)
            .endpoint_url(endpoint.clone())
            .build();
        let http = reqwest::Client::builder()
            .timeout(STATUS_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AwsError::local(&op, format!("cannot build an HTTP client: {e}")))?;
        let store = Self {
            client: Client::from_conf(service),
            endpoint,
            region: config.region.clone(),
            kms_key: config.kms_key.clone(),
            http,
            policy,
            closed: AtomicBool::new(false),
        };
        store.ping(&op).await?;
        Ok(store)
    }

    /// `CreateSecret at <endpoint>`, as errors name a call.
    fn call(&self, action: &str) -> String {
        format!("{action} at {}", self.endpoint)
    }

    fn check_open(&self, op: &Op) -> Result<(), AwsError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AwsError::local(op, "the keystore is closed"));
        }
        Ok(())
    }

    /// A plain `GET` of the endpoint: any HTTP answer means the service is reachable.
    async fn ping(&self, op: &Op) -> Result<(), AwsError> {
        let call = format!("GET {}", self.endpoint);
        let mut last = None;
        // The status check retries transient failures as the SDK's calls do.
        for round in 1..=self.policy.rounds.max(1) {
            match self.http.get(&self.endpoint).send().await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let cause = if e.is_timeout() {
                        "timed out".to_owned()
                    } else {
                        error_chain(&e)
                    };
                    last = Some(AwsError::network(op, call.clone(), cause));
                }
            }
            if round < self.policy.rounds.max(1) {
                tokio::time::sleep(self.policy.backoff(round, kes_keystore::retry::jitter())).await;
            }
            if round >= 2 {
                // A check should be quick: two tries tell "down" from "a blip".
                break;
            }
        }
        Err(last.unwrap_or_else(|| AwsError::local(op, "no status check was made")))
    }

    async fn create_once(
        &self,
        op: &Op,
        name: &str,
        value: &[u8],
        token: &str,
    ) -> Result<(), CreateFailure> {
        let mut request = self
            .client
            .create_secret()
            .name(name)
            .client_request_token(token);
        request = match std::str::from_utf8(value) {
            Ok(text) => request.secret_string(text),
            Err(_) => request.secret_binary(Blob::new(value.to_vec())),
        };
        if let Some(key) = &self.kms_key {
            request = request.kms_key_id(key);
        }
        let redact = String::from_utf8_lossy(value);
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = AwsError::sdk(op, self.call("CreateSecret"), &e, &[&redact]);
                Err(match err.code() {
                    Some("ResourceExistsException") => CreateFailure::Exists,
                    // The service's answer while a secret of the name is scheduled for
                    // deletion, or its forced deletion is still running.
                    Some("InvalidRequestException") if self.deleted(name).await != Some(false) => {
                        CreateFailure::BeingDeleted(err)
                    }
                    _ => CreateFailure::Failed(err),
                })
            }
        }
    }

    /// The current value of the secret `name` (`AWSCURRENT`) and the `VersionId` that holds it.
    async fn current(
        &self,
        op: &Op,
        name: &str,
    ) -> Result<(Option<String>, Zeroizing<Vec<u8>>), Error> {
        // `AWSCURRENT` is the service's default; naming it keeps emulators that track a
        // default version apart from the label (moto) right after a replace moved the label.
        let request = self
            .client
            .get_secret_value()
            .secret_id(name)
            .version_stage(CURRENT);
        let mut out = match request.send().await {
            Ok(out) => out,
            Err(e) => {
                let err = AwsError::sdk(op, self.call("GetSecretValue"), &e, &[]);
                return Err(self.missing_or(name, err).await);
            }
        };
        let version = out.version_id.take();
        if let Some(text) = out.secret_string.take() {
            return Ok((version, Zeroizing::new(text.into_bytes())));
        }
        if let Some(blob) = out.secret_binary.take() {
            return Ok((version, Zeroizing::new(blob.into_inner())));
        }
        Err(AwsError::invalid(
            op,
            self.call("GetSecretValue"),
            "the secret has neither a SecretString nor a SecretBinary",
        )
        .into())
    }

    /// [`Error::NotFound`] when `err` says the secret does not exist or is scheduled for
    /// deletion (gone for KES, as `ListSecrets` hides it too), `err` otherwise.
    async fn missing_or(&self, name: &str, err: AwsError) -> Error {
        match err.code() {
            Some("ResourceNotFoundException") => Error::NotFound,
            Some("InvalidRequestException") if self.deleted(name).await == Some(true) => {
                Error::NotFound
            }
            _ => err.into(),
        }
    }

    /// Whether the secret `name` is scheduled for deletion (`DescribeSecret` names a
    /// `DeletedDate`): `Some(true)` if so or if it is gone already, `Some(false)` if it is not,
    /// `None` when the service does not say (no `DescribeSecret` permission, say).
    async fn deleted(&self, name: &str) -> Option<bool> {
        match self.client.describe_secret().secret_id(name).send().await {
            Ok(described) => Some(described.deleted_date().is_some()),
            Err(e) => {
                let err = AwsError::sdk(&Op::key("describe", name), String::new(), &e, &[]);
                (err.code() == Some("ResourceNotFoundException")).then_some(true)
            }
        }
    }
}

/// Why one `CreateSecret` failed.
enum CreateFailure {
    Exists,
    /// A secret of the name is scheduled for deletion (or a forced deletion is still running).
    BeingDeleted(AwsError),
    Failed(AwsError),
}

/// `err` and its sources, joined by `: `.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    for _ in 0..16 {
        let Some(s) = source else { break };
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    error::clean(&text, &[])
}

/// A fresh `ClientRequestToken` (32 hex digits from the OS's random source).
fn request_token(op: &Op) -> Result<String, AwsError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| AwsError::local(op, format!("no randomness for a request token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[async_trait::async_trait]
impl KeyStore for AwsKeyStore {
    async fn status(&self) -> Result<Duration, Error> {
        let op = Op::new("status");
        self.check_open(&op)?;
        let started = Instant::now();
        self.ping(&op).await?;
        Ok(started.elapsed())
    }

    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        let op = Op::key("create", name);
        self.check_open(&op)?;
        let token = request_token(&op)?;
        let mut round = 0;
        loop {
            round += 1;
            match self.create_once(&op, name, value, &token).await {
                Ok(()) => return Ok(()),
                Err(CreateFailure::Exists) => return Err(Error::Exists),
                Err(CreateFailure::Failed(err)) => return Err(err.into()),
                Err(CreateFailure::BeingDeleted(err)) if round > DELETION_WAITS => {
                    return Err(AwsError::local(
                        &op,
                        format!(
                            "{err} (a secret of this name is scheduled for deletion: restore it \
                             with RestoreSecret, or delete it for good with DeleteSecret \
                             ForceDeleteWithoutRecovery)"
                        ),
                    )
                    .into());
                }
                Err(CreateFailure::BeingDeleted(_)) => {
                    // A forced deletion finishes within seconds.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        let op = Op::key("get", name);
        self.check_open(&op)?;
        Ok(self.current(&op, name).await?.1)
    }

    async fn replace(&self, name: &str, old: &[u8], new: &[u8]) -> Result<(), Error> {
        let op = Op::key("replace", name);
        self.check_open(&op)?;
        let (read, value) = self.current(&op, name).await?;
        if value.as_slice() != old {
            return Err(Error::Changed);
        }
        let read = read.ok_or_else(|| {
            AwsError::invalid(
                &op,
                self.call("GetSecretValue"),
                "the answer names no VersionId",
            )
        })?;
        // The new value as a version of its own that is not current yet: readers still see
        // the one just read. Its request token becomes its VersionId.
        let token = request_token(&op)?;
        let mut put = self
            .client
            .put_secret_value()
            .secret_id(name)
            .client_request_token(&token)
            .version_stages(PENDING);
        put = match std::str::from_utf8(new) {
            Ok(text) => put.secret_string(text),
            Err(_) => put.secret_binary(Blob::new(new.to_vec())),
        };
        if let Err(e) = put.send().await {
            let redact = String::from_utf8_lossy(new);
            let err = AwsError::sdk(&op, self.call("PutSecretValue"), &e, &[&redact]);
            return Err(self.missing_or(name, err).await);
        }
        // The compare-and-swap: AWSCURRENT moves to the new version only from the version read.
        let moved = self
            .client
            .update_secret_version_stage()
            .secret_id(name)
            .version_stage(CURRENT)
            .move_to_version_id(&token)
            .remove_from_version_id(&read)
            .send()
            .await;
        let result = match moved {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = AwsError::sdk(&op, self.call("UpdateSecretVersionStage"), &e, &[]);
                // The service refuses the move when AWSCURRENT is no longer on the version read
                // (moto: InvalidParameterException; AWS documents only that the call fails), so
                // the label itself decides: moved means another server changed the key.
                match self.current(&op, name).await {
                    // A retried move whose first attempt landed.
                    Ok((now, _)) if now.as_deref() == Some(token.as_str()) => Ok(()),
                    Ok((now, _)) if now.as_deref() != Some(read.as_str()) => Err(Error::Changed),
                    Err(Error::NotFound) => Err(Error::NotFound),
                    _ => Err(self.missing_or(name, err).await),
                }
            }
        };
        // AWSPENDING off the new version, current or not (tidiness only: nothing reads it).
        let _ = self
            .client
            .update_secret_version_stage()
            .secret_id(name)
            .version_stage(PENDING)
            .remove_from_version_id(&token)
            .send()
            .await;
        result
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        let op = Op::key("delete", name);
        self.check_open(&op)?;
        let result = self
            .client
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = AwsError::sdk(&op, self.call("DeleteSecret"), &e, &[]);
                match err.code() {
                    Some("ResourceNotFoundException") => Err(Error::NotFound),
                    _ => Err(err.into()),
                }
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let op = Op::new("list");
        self.check_open(&op)?;
        let mut names = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut request = self.client.list_secrets().max_results(PAGE);
            if !prefix.is_empty() {
                // The service's name filter is a case-insensitive prefix match: a superset of
                // ours, narrowed below.
                request = request.filters(
                    Filter::builder()
                        .key(FilterNameStringType::Name)
                        .values(prefix)
                        .build(),
                );
            }
            if let Some(token) = &next {
                request = request.next_token(token);
            }
            let page = match request.send().await {
                Ok(page) => page,
                Err(e) => return Err(AwsError::sdk(&op, self.call("ListSecrets"), &e, &[]).into()),
            };
            names.extend(
                page.secret_list()
                    .iter()
                    .filter_map(|s| s.name())
                    .filter(|n| n.starts_with(prefix))
                    .map(str::to_owned),
            );
            match page.next_token() {
                Some(token) if !token.is_empty() && next.as_deref() != Some(token) => {
                    next = Some(token.to_owned());
                }
                _ => {
                    names.sort_unstable();
                    names.dedup();
                    return Ok(names);
                }
            }
        }
        Err(AwsError::local(
            &op,
            format!("the listing did not end after {MAX_PAGES} pages"),
        )
        .into())
    }

    async fn close(&self) -> Result<(), Error> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    fn locator(&self) -> Locator {
        Locator::new(format!("aws:{}#{}", self.endpoint, self.region))
    }
}
