//! `/v1/key/*`: create, import, describe, list, delete, generate, encrypt, decrypt, hmac.

use kes_crypto::names::{is_valid_name, is_valid_pattern, list_prefix};
use kes_crypto::{HmacKey, KeyType, KeyVersion, SecretKey};
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
async fn key(ctx: &Ctx<'_>, name: &str) -> Result<std::sync::Arc<KeyVersion>, ApiError> {
    ctx.state.keys.get(name).await.map_err(|err| match err {
        CacheError::NotFound => ApiError::key_not_found(),
        other => {
            ctx.telemetry.logs().error(
                level::ERROR,
                None,
                &format!("kes: failed to read key '{name}': {other}"),
            );
            ApiError::read_failed()
        }
    })
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
    let key = key(ctx, name).await?;
    let created_by = key.created_by();
    Ok(ok_json(kes_api::encode_json(
        &kes_api::DescribeKeyResponse {
            name: name.to_owned(),
            algorithm: key.algorithm().as_str().to_owned(),
            created_at: key.created_at(),
            created_by: (!created_by.is_empty()).then(|| created_by.to_owned()),
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
    let key = key(ctx, name).await?;
    let (dek, ciphertext) = key
        .key()
        .generate_data_key(&req.context)
        .map_err(|_| ApiError::generate_failed())?;
    Ok(ok_secret_json(kes_api::encode_json_secret(
        &kes_api::GenerateResponse {
            plaintext: dek.into_inner(),
            ciphertext,
            version: None,
        },
    )))
}

pub(super) async fn encrypt(ctx: &Ctx<'_>) -> Reply {
    let name = name(ctx)?;
    let req = kes_api::decode_encrypt_request(ctx.body).map_err(|_| ApiError::invalid_body())?;
    let key = key(ctx, name).await?;
    let ciphertext = key
        .key()
        .encrypt(&req.plaintext, &req.context)
        .map_err(|_| ApiError::encrypt_failed())?;
    Ok(ok_json(kes_api::encode_json(&kes_api::EncryptResponse {
        ciphertext,
        version: None,
    })))
}

pub(super) async fn decrypt(ctx: &Ctx<'_>) -> Reply {
    let name = name(ctx)?;
    let req = kes_api::decode_decrypt_request(ctx.body).map_err(|_| ApiError::invalid_body())?;
    let key = key(ctx, name).await?;
    let plaintext = key
        .key()
        .decrypt(&req.ciphertext, &req.context)
        .map_err(|_| ApiError::decrypt_failed())?;
    Ok(ok_secret_json(kes_api::encode_json_secret(
        &kes_api::DecryptResponse {
            plaintext: plaintext.into_inner(),
        },
    )))
}

pub(super) async fn hmac(ctx: &Ctx<'_>) -> Reply {
    let name = name(ctx)?;
    let req = kes_api::decode_hmac_request(ctx.body).map_err(|_| ApiError::invalid_body())?;
    let key = key(ctx, name).await?;
    let sum = key
        .hmac(&req.message)
        .map_err(|_| ApiError::hmac_unsupported())?;
    Ok(ok_json(kes_api::encode_json(&kes_api::HmacResponse {
        hmac: sum.to_vec(),
        version: None,
    })))
}
