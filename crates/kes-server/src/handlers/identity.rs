//! `/v1/identity/*`: describe, list and self-describe.

use kes_crypto::names::is_valid_name;

use crate::error::ApiError;
use crate::http::{Ctx, Reply, ok_json};

pub(super) fn describe(ctx: &Ctx<'_>) -> Reply {
    let identity = ctx.resource;
    if !is_valid_name(identity) {
        return Err(ApiError::invalid_identity(identity));
    }
    let state = ctx.state;
    let reply = if identity == &*state.admin {
        kes_api::DescribeIdentityResponse {
            admin: true,
            policy: None,
            created_at: state.policies_created_at,
            created_by: None,
        }
    } else {
        let (policy, _) = state.policies.policy_of(identity).ok_or_else(ApiError::identity_not_found)?;
        kes_api::DescribeIdentityResponse {
            admin: false,
            policy: Some(policy.to_owned()),
            created_at: state.policies_created_at,
            created_by: Some(state.admin.to_string()),
        }
    };
    Ok(ok_json(kes_api::encode_json(&reply)))
}

pub(super) fn list(ctx: &Ctx<'_>) -> Reply {
    let pattern = ctx.resource;
    if !super::is_valid_list_pattern(pattern) {
        return Err(ApiError::invalid_pattern(pattern));
    }
    let prefix = super::list_prefix(pattern);
    let state = ctx.state;
    let mut identities: Vec<String> = state
        .policies
        .identities()
        .into_iter()
        .map(|(id, _)| id)
        .chain(std::iter::once(&*state.admin))
        .filter(|id| id.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    identities.sort();
    identities.dedup();
    Ok(ok_json(kes_api::encode_json(&kes_api::ListIdentitiesResponse {
        identities,
        continue_at: String::new(),
    })))
}

/// Describes the caller. Unlike the original (which answered 404 to every non-admin), a caller
/// with a policy learns its policy and rules, in the shape the Go SDK decodes.
pub(super) fn describe_self(ctx: &Ctx<'_>) -> Reply {
    let identity = ctx.identity.ok_or_else(ApiError::certificate_required)?;
    let state = ctx.state;
    let reply = if identity == &*state.admin {
        kes_api::SelfDescribeResponse {
            identity: identity.to_owned(),
            admin: true,
            created_at: state.policies_created_at,
            created_by: None,
            policy: None,
            allow: Default::default(),
            deny: Default::default(),
        }
    } else {
        let (name, policy) =
            state.policies.policy_of(identity).ok_or_else(ApiError::identity_not_found)?;
        kes_api::SelfDescribeResponse {
            identity: identity.to_owned(),
            admin: false,
            created_at: state.policies_created_at,
            created_by: Some(state.admin.to_string()),
            policy: Some(name.to_owned()),
            allow: kes_api::pattern_map(policy.allow()),
            deny: kes_api::pattern_map(policy.deny()),
        }
    };
    Ok(ok_json(kes_api::encode_json(&reply)))
}
