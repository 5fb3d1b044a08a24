//! `/v1/policy/*`: describe, read, list.

use kes_crypto::names::is_valid_name;

use crate::error::ApiError;
use crate::http::{Ctx, Reply, ok_json};

fn policy<'a>(ctx: &Ctx<'a>) -> Result<(&'a str, &'a kes_policy::Policy), ApiError> {
    let name = ctx.resource;
    if !is_valid_name(name) {
        return Err(ApiError::invalid_policy_name(name));
    }
    ctx.state.policies.policy(name).map(|p| (name, p)).ok_or_else(ApiError::policy_not_found)
}

pub(super) fn describe(ctx: &Ctx<'_>) -> Reply {
    let (name, _) = policy(ctx)?;
    Ok(ok_json(kes_api::encode_json(&kes_api::DescribePolicyResponse {
        name: name.to_owned(),
        created_at: ctx.state.policies_created_at,
        created_by: ctx.state.admin.to_string(),
    })))
}

pub(super) fn read(ctx: &Ctx<'_>) -> Reply {
    let (name, policy) = policy(ctx)?;
    Ok(ok_json(kes_api::encode_json(&kes_api::ReadPolicyResponse {
        name: name.to_owned(),
        allow: kes_api::pattern_map(policy.allow()),
        deny: kes_api::pattern_map(policy.deny()),
        created_at: ctx.state.policies_created_at,
        created_by: ctx.state.admin.to_string(),
    })))
}

pub(super) fn list(ctx: &Ctx<'_>) -> Reply {
    let pattern = ctx.resource;
    if !super::is_valid_list_pattern(pattern) {
        return Err(ApiError::invalid_pattern(pattern));
    }
    let prefix = super::list_prefix(pattern);
    let names = ctx
        .state
        .policies
        .names()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    Ok(ok_json(kes_api::encode_json(&kes_api::ListPoliciesResponse {
        names,
        continue_at: String::new(),
    })))
}
