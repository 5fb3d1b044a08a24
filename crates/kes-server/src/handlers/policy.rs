//! `/v1/policy/*`: describe, read, list, and the runtime write, delete and assign.

use kes_crypto::names::{is_valid_name, is_valid_pattern, list_prefix};
use kes_policy::Policy;
use time::OffsetDateTime;

use super::{admin_meta, refused};
use crate::error::ApiError;
use crate::http::{Ctx, Reply, ok_empty, ok_json};

fn policy_name<'a>(ctx: &Ctx<'a>) -> Result<&'a str, ApiError> {
    if is_valid_name(ctx.resource) {
        Ok(ctx.resource)
    } else {
        Err(ApiError::invalid_policy_name(ctx.resource))
    }
}

fn policy<'a>(ctx: &Ctx<'a>) -> Result<(&'a str, &'a Policy), ApiError> {
    let name = policy_name(ctx)?;
    ctx.policies
        .set()
        .policy(name)
        .map(|p| (name, p))
        .ok_or_else(ApiError::policy_not_found)
}

pub(super) fn describe(ctx: &Ctx<'_>) -> Reply {
    let (name, _) = policy(ctx)?;
    let meta = ctx.policies.policy_meta(name);
    Ok(ok_json(kes_api::encode_json(
        &kes_api::DescribePolicyResponse {
            name: name.to_owned(),
            created_at: meta.created_at,
            created_by: meta.created_by.clone(),
        },
    )))
}

pub(super) fn read(ctx: &Ctx<'_>) -> Reply {
    let (name, policy) = policy(ctx)?;
    let meta = ctx.policies.policy_meta(name);
    Ok(ok_json(kes_api::encode_json(
        &kes_api::ReadPolicyResponse {
            name: name.to_owned(),
            allow: kes_api::pattern_map(policy.allow()),
            deny: kes_api::pattern_map(policy.deny()),
            created_at: meta.created_at,
            created_by: meta.created_by.clone(),
        },
    )))
}

pub(super) fn list(ctx: &Ctx<'_>) -> Reply {
    let pattern = ctx.resource;
    if !is_valid_pattern(pattern) {
        return Err(ApiError::invalid_pattern(pattern));
    }
    let prefix = list_prefix(pattern);
    let names = ctx
        .policies
        .set()
        .names()
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    Ok(ok_json(kes_api::encode_json(
        &kes_api::ListPoliciesResponse {
            names,
            continue_at: String::new(),
        },
    )))
}

/// Refuses a change of the policy the caller is assigned to: an identity allowed to write its
/// own policy could otherwise grant itself everything (`allow: ["*"]`).
fn not_own_policy(ctx: &Ctx<'_>, name: &str, action: &str) -> Result<(), ApiError> {
    let own = ctx
        .identity
        .and_then(|id| ctx.policies.set().policy_of(id))
        .is_some_and(|(assigned, _)| assigned == name);
    if own {
        Err(ApiError::own_policy(action))
    } else {
        Ok(())
    }
}

/// `POST /v1/policy/write/<name>` `{"allow":[…],"deny":[…]}`: creates or replaces a policy.
pub(super) fn write(ctx: &Ctx<'_>) -> Reply {
    let name = policy_name(ctx)?;
    not_own_policy(ctx, name, "write")?;
    let req =
        kes_api::decode_policy_write_request(ctx.body).map_err(|_| ApiError::invalid_body())?;
    let policy = Policy::new(req.allow, req.deny);
    let meta = admin_meta(ctx, OffsetDateTime::now_utc());
    ctx.access.change(|rt| rt.write_policy(name, policy, meta));
    Ok(ok_empty())
}

/// `DELETE /v1/policy/delete/<name>`: its identities lose it.
pub(super) fn delete(ctx: &Ctx<'_>) -> Reply {
    let name = policy_name(ctx)?;
    not_own_policy(ctx, name, "delete")?;
    ctx.access
        .change(|rt| rt.delete_policy(name))
        .map_err(refused)?;
    Ok(ok_empty())
}

/// `POST /v1/policy/assign/<policy>` `{"identity":"…"}`.
pub(super) fn assign(ctx: &Ctx<'_>) -> Reply {
    let name = policy_name(ctx)?;
    let req =
        kes_api::decode_policy_assign_request(ctx.body).map_err(|_| ApiError::invalid_body())?;
    super::identity::assign_to(ctx, &req.identity, name)
}
