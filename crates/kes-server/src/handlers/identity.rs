//! `/v1/identity/*`: describe, list, self-describe, and the runtime assign, forget and delete.

use http::StatusCode;
use kes_crypto::names::{is_valid_identity, is_valid_name, is_valid_pattern, list_prefix};
use time::OffsetDateTime;

use super::{admin_meta, refused};
use crate::error::ApiError;
use crate::http::{Ctx, Reply, ok_empty, ok_json};

/// An identity named by a request: what the original refused keeps its message; a name that
/// is not 64 lower-case hex characters (an upper-case form of a real identity) is refused too,
/// since no client can ever have it.
fn identity(identity: &str) -> Result<&str, ApiError> {
    if !is_valid_name(identity) {
        Err(ApiError::invalid_identity(identity))
    } else if !is_valid_identity(identity) {
        Err(ApiError::not_an_identity(identity))
    } else {
        Ok(identity)
    }
}

pub(super) fn describe(ctx: &Ctx<'_>) -> Reply {
    let id = identity(ctx.resource)?;
    let reply = if id == &*ctx.state.admin {
        kes_api::DescribeIdentityResponse {
            admin: true,
            policy: None,
            created_at: ctx.policies.identity_meta(id).created_at,
            created_by: None,
        }
    } else {
        let (policy, _) = ctx
            .policies
            .set()
            .policy_of(id)
            .ok_or_else(ApiError::identity_not_found)?;
        let meta = ctx.policies.identity_meta(id);
        kes_api::DescribeIdentityResponse {
            admin: false,
            policy: Some(policy.to_owned()),
            created_at: meta.created_at,
            created_by: Some(meta.created_by.clone()),
        }
    };
    Ok(ok_json(kes_api::encode_json(&reply)))
}

pub(super) fn list(ctx: &Ctx<'_>) -> Reply {
    let pattern = ctx.resource;
    if !is_valid_pattern(pattern) {
        return Err(ApiError::invalid_pattern(pattern));
    }
    let prefix = list_prefix(pattern);
    let mut identities: Vec<String> = ctx
        .policies
        .set()
        .identities()
        .map(|(id, _)| id)
        .chain(std::iter::once(&*ctx.state.admin))
        .filter(|id| id.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    identities.sort();
    identities.dedup();
    Ok(ok_json(kes_api::encode_json(
        &kes_api::ListIdentitiesResponse {
            identities,
            continue_at: String::new(),
        },
    )))
}

/// Describes the caller. Unlike the original (which answered 404 to every non-admin), a caller
/// with a policy learns its policy and rules, in the shape the Go SDK decodes.
pub(super) fn describe_self(ctx: &Ctx<'_>) -> Reply {
    let id = ctx.identity.ok_or_else(ApiError::certificate_required)?;
    let reply = if id == &*ctx.state.admin {
        kes_api::SelfDescribeResponse {
            identity: id.to_owned(),
            admin: true,
            created_at: ctx.policies.identity_meta(id).created_at,
            created_by: None,
            policy: None,
            allow: Default::default(),
            deny: Default::default(),
        }
    } else {
        let (name, policy) = ctx
            .policies
            .set()
            .policy_of(id)
            .ok_or_else(ApiError::identity_not_found)?;
        let meta = ctx.policies.identity_meta(id);
        kes_api::SelfDescribeResponse {
            identity: id.to_owned(),
            admin: false,
            created_at: meta.created_at,
            created_by: Some(meta.created_by.clone()),
            policy: Some(name.to_owned()),
            allow: kes_api::pattern_map(policy.allow()),
            deny: kes_api::pattern_map(policy.deny()),
        }
    };
    Ok(ok_json(kes_api::encode_json(&reply)))
}

/// Assigns `policy` to `target` on behalf of the caller, with the original's checks.
pub(super) fn assign_to(ctx: &Ctx<'_>, target: &str, policy: &str) -> Reply {
    if target.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "identity is unknown",
        ));
    }
    let target = identity(target)?;
    if target == &*ctx.state.admin {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "cannot assign policy to system admin",
        ));
    }
    if Some(target) == ctx.identity {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "identity cannot assign policy to itself",
        ));
    }
    let meta = admin_meta(ctx, OffsetDateTime::now_utc());
    ctx.access
        .change(|rt| rt.assign(target, policy, meta))
        .map_err(refused)?;
    Ok(ok_empty())
}

/// `POST /v1/identity/assign/<policy>/<identity>` (KES ≤ v0.17).
pub(super) fn assign(ctx: &Ctx<'_>) -> Reply {
    let Some((policy, target)) = ctx.resource.split_once('/') else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "identity is unknown",
        ));
    };
    if !is_valid_name(policy) {
        return Err(ApiError::invalid_policy_name(policy));
    }
    assign_to(ctx, target, policy)
}

/// `DELETE /v1/identity/forget/<identity>` and `DELETE /v1/identity/delete/<identity>`: the
/// identity loses its policy.
pub(super) fn forget(ctx: &Ctx<'_>) -> Reply {
    let target = identity(ctx.resource)?;
    if target == &*ctx.state.admin {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "cannot delete system admin",
        ));
    }
    ctx.access.change(|rt| rt.forget(target)).map_err(refused)?;
    Ok(ok_empty())
}
