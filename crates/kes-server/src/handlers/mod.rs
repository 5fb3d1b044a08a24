//! Route handlers, one module per resource.

mod identity;
mod key;
mod policy;
mod sys;

use crate::error::ApiError;
use crate::http::{Ctx, Reply};
use crate::policies::{Meta, Refused};
use crate::routes::Endpoint;

/// Runs the handler of `endpoint`.
pub(crate) async fn call(endpoint: Endpoint, ctx: &Ctx<'_>) -> Reply {
    match endpoint {
        Endpoint::Version => sys::version(ctx),
        Endpoint::Ready => sys::ready(ctx).await,
        Endpoint::Status => sys::status(ctx).await,
        Endpoint::Metrics => sys::metrics(ctx),
        Endpoint::Api => sys::api(ctx),
        Endpoint::KeyCreate => key::create(ctx).await,
        Endpoint::KeyImport => key::import(ctx).await,
        Endpoint::KeyDescribe => key::describe(ctx).await,
        Endpoint::KeyList => key::list(ctx).await,
        Endpoint::KeyDelete => key::delete(ctx).await,
        Endpoint::KeyGenerate => key::generate(ctx).await,
        Endpoint::KeyEncrypt => key::encrypt(ctx).await,
        Endpoint::KeyDecrypt => key::decrypt(ctx).await,
        Endpoint::KeyHmac => key::hmac(ctx).await,
        Endpoint::KeyRotate => key::rotate(ctx).await,
        Endpoint::KeyVersionDelete => key::delete_version(ctx).await,
        Endpoint::PolicyDescribe => policy::describe(ctx),
        Endpoint::PolicyRead => policy::read(ctx),
        Endpoint::PolicyList => policy::list(ctx),
        Endpoint::IdentityDescribe => identity::describe(ctx),
        Endpoint::IdentityList => identity::list(ctx),
        Endpoint::SelfDescribe => identity::describe_self(ctx),
        Endpoint::PolicyWrite => policy::write(ctx),
        Endpoint::PolicyDelete => policy::delete(ctx),
        Endpoint::PolicyAssign => policy::assign(ctx),
        Endpoint::IdentityAssign => identity::assign(ctx),
        Endpoint::IdentityForget | Endpoint::IdentityDelete => identity::forget(ctx),
        // The log streams are answered by the dispatcher before a timeout applies.
        Endpoint::LogError | Endpoint::LogAudit => Err(ApiError::new(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "log stream routed to a handler",
        )),
    }
}

/// Who made a runtime change, and when.
pub(crate) fn admin_meta(ctx: &Ctx<'_>, now: time::OffsetDateTime) -> Meta {
    Meta {
        created_at: now,
        created_by: ctx.identity.unwrap_or_default().to_owned(),
    }
}

/// The reply to a refused runtime change.
pub(crate) fn refused(r: Refused) -> ApiError {
    match r {
        Refused::NoPolicy => ApiError::policy_not_found(),
        Refused::NoIdentity => ApiError::identity_not_found(),
    }
}
