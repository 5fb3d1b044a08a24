//! `/v1/key/*`: create, import, describe, list, delete, generate, encrypt, decrypt, hmac, and
//! the versions of a key: rotate and remove a version.
//!
//! A key holds one or more versions ([`KeyRing`]); the newest encrypts, generates and computes
//! HMACs, every kept one decrypts. Replies name the version they used once a key has been
//! rotated; a key never rotated answers exactly as the original server does.

use std::sync::Arc;

use kes_crypto::names::{is_valid_name, is_valid_pattern, list_prefix};
use kes_crypto::{
    HmacKey, KeyRing, KeyType, KeyVersion, SecretKey, parse_version_name, version_name,
};
use kes_keystore::cache::CacheError;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::http::{Ctx, Reply, ok_empty, ok_json, ok_secret_json};
use crate::logs::level;

fn name<'a>(ctx: &Ctx<'a>) -> Result<&'a str, ApiError> {
    if is_valid_name(ctx.resource) {
        Ok(ctx.resource)
    } else {
        Err(ApiError::invalid_key_name(ctx.resource))
    }
}

/// Reads a key through the cache, mapping keystore failures to the original's replies.
async fn key(ctx: &Ctx<'_>, name: &str) -> Result<Arc<KeyRing>, ApiError> {
    ctx.state
        .keys
        .get(name)
        .await
        .map_err(|err| read_error(ctx, name, err))
}

/// The key read again from the keystore (at most once a second per key): for a request that
/// names a version, or a ciphertext, that the cached key does not know, because another server
/// rotated the key since this one cached it.
async fn refreshed(ctx: &Ctx<'_>, name: &str) -> Result<Arc<KeyRing>, ApiError> {
    ctx.state
        .keys
        .refresh(name)
        .await
        .map_err(|err| read_error(ctx, name, err))
}

/// The version a request names, or `None` for the newest; refreshes the key once when the
/// cached key does not have it.
async fn version_of(
    ctx: &Ctx<'_>,
    name: &str,
    ring: Arc<KeyRing>,
    version: &str,
) -> Result<(Arc<KeyRing>, Option<u32>), ApiError> {
    if version.is_empty() {
        return Ok((ring, None));
    }
    let number = parse_version_name(version).ok_or_else(ApiError::invalid_key_version)?;
    if ring.get(number).is_some() {
        return Ok((ring, Some(number)));
    }
    let ring = refreshed(ctx, name).await?;
    if ring.get(number).is_some() {
        Ok((ring, Some(number)))
    } else {
        Err(ApiError::key_version_not_found())
    }
}

/// The `version` of a reply: the version's name once the key has been rotated.
fn reply_version(ring: &KeyRing, number: u32) -> Option<String> {
    ring.is_rotated().then(|| version_name(number))
}

fn read_error(ctx: &Ctx<'_>, name: &str, err: CacheError) -> ApiError {
    match err {
        CacheError::NotFound => ApiError::key_not_found(),
        other => {
            ctx.telemetry.logs().error(
                level::ERROR,
                None,
                &format!("kes: failed to read key '{name}': {other}"),
            );
            ApiError::read_failed()
        }
    }
}

async fn store(ctx: &Ctx<'_>, name: &str, version: &KeyVersion) -> Result<(), ApiError> {
    let record = version
        .encode()
        .map_err(|_| ApiError::create_failed_locally())?;
    ctx.state
        .keys
        .create(name, record.as_bytes())
        .await
        .map_err(|err| match err {
            CacheError::Exists => ApiError::key_exists(),
            other => {
                ctx.telemetry.logs().error(
                    level::ERROR,
                    None,
                    &format!("kes: failed to create key '{name}': {other}"),
                );
                ApiError::create_failed()
            }
        })
}

pub(super) async fn create(ctx: &Ctx<'_>) -> Reply {
    let name = name(ctx)?;
    let version = KeyVersion::generate(
        KeyType::default_for_new_keys(),
        ctx.identity.unwrap_or_default().to_owned(),
        OffsetDateTime::now_utc(),
    )
    .map_err(|_| ApiError::generate_failed())?;
    store(ctx, name, &version).await?;
    Ok(ok_empty())
}

pub(super) async fn import(ctx: &Ctx<'_>) -> Reply {
    let name = name(ctx)?;
    let req =
        kes_api::decode_import_request(ctx.body).map_err(|_| ApiError::invalid_import_body())?;
    let Some(ty) = KeyType::from_cipher_name(&req.cipher) else {
        return Err(ApiError::new(
            http::StatusCode::NOT_ACCEPTABLE,
            format!("algorithm '{}' is not supported", req.cipher),
        ));
    };
    let key = SecretKey::from_slice(ty, &req.key).map_err(|_| {
        ApiError::new(
            http::StatusCode::NOT_ACCEPTABLE,
            format!("invalid key size for '{}'", req.cipher),
        )
    })?;
    let hmac = HmacKey::generate().map_err(|_| ApiError::create_failed_locally())?;
    let version = KeyVersion::new(
        key,
        hmac,
        OffsetDateTime::now_utc(),
        ctx.identity.unwrap_or_default().to_owned(),
    );
    store(ctx, name, &version).await?;
    Ok(ok_empty())
}

pub(super) async fn describe(ctx: &Ctx<'_>) -> Reply {
    let name = name(ctx)?;
    let ring = key(ctx, name).await?;
    let (number, key) = ring.newest();
    let created_by = |v: &KeyVersion| {
        let by = v.created_by();
        (!by.is_empty()).then(|| by.to_owned())
    };
    let versions = if ring.is_rotated() {
        ring.versions()
            .map(|(n, v)| kes_api::KeyVersionInfo {
                version: version_name(n),
                algorithm: v.algorithm().as_str().to_owned(),
                created_at: v.created_at(),
                created_by: created_by(v),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(ok_json(kes_api::encode_json(
        &kes_api::DescribeKeyResponse {
            name: name.to_owned(),
            algorithm: key.algorithm().as_str().to_owned(),
            created_at: key.created_at(),
            created_by: created_by(key),
            version: reply_version(&ring, number),
            versions,
        },
    )))
}

pub(super) async fn list(ctx: &Ctx<'_>) -> Reply {
    let pattern = ctx.resource;
    if !is_valid_pattern(pattern) {
        return Err(ApiError::invalid_pattern(pattern));
    }
    let names = ctx
        .state
        .keys
        .list(list_prefix(pattern))
        .await
        .map_err(|err| {
            ctx.telemetry.logs().error(
                level::ERROR,
                None,
                &format!("kes: failed to list keys: {err}"),
            );
            ApiError::list_failed()
        })?;
    Ok(ok_json(kes_api::encode_json(&kes_api::ListKeysResponse {
        names,
        continue_at: None,
    })))
}

pub(super) async fn delete(ctx: &Ctx<'_>) -> Reply {
    let name = name(ctx)?;
    ctx.state.keys.delete(name).await.map_err(|err| match err {
        CacheError::NotFound => ApiError::key_not_found(),
        other => {
            ctx.telemetry.logs().error(
                level::ERROR,
                None,
                &format!("kes: failed to delete key '{name}': {other}"),
            );
            ApiError::delete_failed()
        }
    })?;
    Ok(ok_empty())
}

pub(super) async fn generate(ctx: &Ctx<'_>) -> Reply {
    let name = name(ctx)?;
    let req = if ctx.body.is_empty() {
        kes_api::GenerateRequest::default()
    } else {
        kes_api::decode_generate_request(ctx.body).map_err(|_| ApiError::invalid_body())?
    };
    let ring = key(ctx, name).await?;
    let (number, key) = ring.newest();
    let (dek, ciphertext) = key
        .key()
        .generate_data_key(&req.context)
        .map_err(|_| ApiError::generate_failed())?;
    Ok(ok_secret_json(kes_api::encode_json_secret(
        &kes_api::GenerateResponse {
            plaintext: dek.into_inner(),
            ciphertext,
            version: reply_version(&ring, number),
        },
    )))
}

pub(super) async fn encrypt(ctx: &Ctx<'_>) -> Reply {
    let name = name(ctx)?;
    let req = kes_api::decode_encrypt_request(ctx.body).map_err(|_| ApiError::invalid_body())?;
    let ring = key(ctx, name).await?;
    let (number, key) = ring.newest();
    let ciphertext = key
        .key()
        .encrypt(&req.plaintext, &req.context)
        .map_err(|_| ApiError::encrypt_failed())?;
    Ok(ok_json(kes_api::encode_json(&kes_api::EncryptResponse {
        ciphertext,
        version: reply_version(&ring, number),
    })))
}

/// Decrypts with the version the request names, or else with each kept version, newest first:
/// at most [`kes_crypto::MAX_VERSIONS`] attempts, each an AEAD tag check that fails fast. When
/// no cached version opens the ciphertext, the key is read again once (another server may have
/// rotated it) and its versions the cache did not have are tried.
pub(super) async fn decrypt(ctx: &Ctx<'_>) -> Reply {
    let name = name(ctx)?;
    let req = kes_api::decode_decrypt_request(ctx.body).map_err(|_| ApiError::invalid_body())?;
    let ring = key(ctx, name).await?;
    let (ring, version) = version_of(ctx, name, ring, &req.version).await?;
    let open = |v: &KeyVersion| v.key().decrypt(&req.ciphertext, &req.context).ok();
    let plaintext = match version {
        Some(number) => ring.get(number).and_then(open),
        None => match ring.decrypt(&req.ciphertext, &req.context) {
            Some((_, pt)) => Some(pt),
            None => {
                let newer = refreshed(ctx, name).await?;
                if Arc::ptr_eq(&newer, &ring) {
                    None
                } else {
                    newer
                        .versions()
                        .filter(|(n, _)| ring.get(*n).is_none())
                        .find_map(|(_, v)| open(v))
                }
            }
        },
    };
    let plaintext = plaintext.ok_or_else(ApiError::decrypt_failed)?;
    Ok(ok_secret_json(kes_api::encode_json_secret(
        &kes_api::DecryptResponse {
            plaintext: plaintext.into_inner(),
        },
    )))
}

pub(super) async fn hmac(ctx: &Ctx<'_>) -> Reply {
    let name = name(ctx)?;
    let req = kes_api::decode_hmac_request(ctx.body).map_err(|_| ApiError::invalid_body())?;
    let ring = key(ctx, name).await?;
    let (ring, version) = version_of(ctx, name, ring, &req.version).await?;
    let number = version.unwrap_or(ring.newest().0);
    let key = ring
        .get(number)
        .ok_or_else(ApiError::key_version_not_found)?;
    let sum = key
        .hmac(&req.message)
        .map_err(|_| ApiError::hmac_unsupported())?;
    Ok(ok_json(kes_api::encode_json(&kes_api::HmacResponse {
        hmac: sum.to_vec(),
        version: reply_version(&ring, number),
    })))
}

/// How often a rotation or version removal reads the key again after another server changed
/// it in between (compare-and-swap lost).
const UPDATE_ROUNDS: usize = 8;

/// `PUT|POST /v1/key/rotate/<name>`, with no body (a random new version of the newest
/// version's algorithm) or an import body `{"key": b64, "cipher": "AES256"|"ChaCha20"}`: adds a
/// new newest version; old versions are kept unchanged.
pub(super) async fn rotate(ctx: &Ctx<'_>) -> Reply {
    let name = name(ctx)?;
    let imported = if ctx.body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let req = kes_api::decode_import_request(ctx.body)
            .map_err(|_| ApiError::invalid_import_body())?;
        let ty = import_type(&req.cipher)?;
        // Checked once here, so that the update below cannot fail on it.
        SecretKey::from_slice(ty, &req.key).map_err(|_| invalid_size(&req.cipher))?;
        Some((ty, req))
    };
    let by = ctx.identity.unwrap_or_default().to_owned();
    let number = update(ctx, name, |ring| {
        let version = match &imported {
            None => KeyVersion::generate(
                ring.newest().1.algorithm(),
                by.clone(),
                OffsetDateTime::now_utc(),
            )
            .map_err(|_| ApiError::generate_failed())?,
            Some((ty, req)) => {
                let key =
                    SecretKey::from_slice(*ty, &req.key).map_err(|_| invalid_size(&req.cipher))?;
                let hmac = HmacKey::generate().map_err(|_| ApiError::create_failed_locally())?;
                KeyVersion::new(key, hmac, OffsetDateTime::now_utc(), by.clone())
            }
        };
        let ring = ring
            .rotate(version)
            .map_err(|why| ApiError::versions_refused(&why))?;
        let number = ring.newest().0;
        Ok((ring, number))
    })
    .await?;
    Ok(ok_json(kes_api::encode_json(&kes_api::RotateKeyResponse {
        version: version_name(number),
    })))
}

/// `DELETE /v1/key/version/delete/<name>/<version>`: removes an old version; ciphertexts of it
/// no longer decrypt. The newest version cannot be removed.
pub(super) async fn delete_version(ctx: &Ctx<'_>) -> Reply {
    let (name, version) = ctx
        .resource
        .rsplit_once('/')
        .ok_or_else(ApiError::invalid_key_version)?;
    if !is_valid_name(name) {
        return Err(ApiError::invalid_key_name(name));
    }
    let number = parse_version_name(version).ok_or_else(ApiError::invalid_key_version)?;
    update(ctx, name, |ring| {
        let ring = ring.remove(number).map_err(|why| match why {
            kes_crypto::RingError::NoSuchVersion => ApiError::key_version_not_found(),
            other => ApiError::versions_refused(&other),
        })?;
        Ok((ring, ()))
    })
    .await?;
    Ok(ok_empty())
}

/// Changes a key's versions with `change`, atomically: the stored record is read from the
/// keystore (not the cache, which may be behind), changed, and written back only if it is still
/// what was read (compare-and-swap); when another server changed it in between, again, up to
/// [`UPDATE_ROUNDS`] times with a growing pause. This server's own updates of the key wait for
/// each other ([`State::key_update_lock`](crate::state::State::key_update_lock)).
async fn update<T>(
    ctx: &Ctx<'_>,
    name: &str,
    mut change: impl FnMut(KeyRing) -> Result<(KeyRing, T), ApiError>,
) -> Result<T, ApiError> {
    let store = ctx.state.keys.store();
    let log = |what: &str, err: &dyn std::fmt::Display| {
        ctx.telemetry.logs().error(
            level::ERROR,
            None,
            &format!("kes: failed to {what} key '{name}': {err}"),
        );
    };
    let _serialized = match ctx.state.key_update_lock(name) {
        Some(lock) => Some(lock.lock().await),
        None => None,
    };
    for round in 0..UPDATE_ROUNDS {
        if round > 0 {
            // Another server changed the key meanwhile: let it finish before reading again.
            tokio::time::sleep(std::time::Duration::from_millis(1 << round)).await;
        }
        let stored = match store.get(name).await {
            Ok(stored) => stored,
            Err(kes_keystore::Error::NotFound) => return Err(ApiError::key_not_found()),
            Err(err) => {
                log("read", &err);
                return Err(ApiError::read_failed());
            }
        };
        let ring = KeyRing::parse(&stored).map_err(|err| {
            log("read", &err);
            ApiError::read_failed()
        })?;
        let (ring, result) = change(ring)?;
        let record = ring
            .encode()
            .map_err(|_| ApiError::create_failed_locally())?;
        match ctx
            .state
            .keys
            .replace(name, &stored, record.as_bytes())
            .await
        {
            Ok(()) => return Ok(result),
            Err(CacheError::Changed) => {}
            Err(CacheError::NotFound) => return Err(ApiError::key_not_found()),
            Err(CacheError::Unsupported(_)) => return Err(ApiError::rotation_unsupported()),
            Err(err) => {
                log("update", &err);
                return Err(ApiError::rotate_failed());
            }
        }
    }
    Err(ApiError::key_busy())
}

fn import_type(cipher: &str) -> Result<KeyType, ApiError> {
    KeyType::from_cipher_name(cipher).ok_or_else(|| {
        ApiError::new(
            http::StatusCode::NOT_ACCEPTABLE,
            format!("algorithm '{cipher}' is not supported"),
        )
    })
}

fn invalid_size(cipher: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::NOT_ACCEPTABLE,
        format!("invalid key size for '{cipher}'"),
    )
}
