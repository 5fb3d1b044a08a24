//! `/version`, `/v1/ready`, `/v1/status`, `/v1/metrics`, `/v1/api`.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use kes_keystore::cache::CacheError;

use crate::error::ApiError;
use crate::http::{Ctx, Reply, full, ok_empty, ok_json};
use crate::logs::level;
use crate::metrics::SystemStats;
use crate::routes::ROUTES;

/// The version reported by `/version` and `/v1/status`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the binary was built from, when the build knew it.
pub const COMMIT: &str = match option_env!("KES_COMMIT") {
    Some(c) => c,
    None => "",
};

pub(super) fn version(_ctx: &Ctx<'_>) -> Reply {
    Ok(ok_json(kes_api::encode_json(&kes_api::VersionResponse {
        version: VERSION.to_owned(),
        commit: COMMIT.to_owned(),
    })))
}

pub(super) async fn ready(ctx: &Ctx<'_>) -> Reply {
    match ctx.state.keys.status().await {
        Ok(_) => Ok(ok_empty()),
        Err(CacheError::Unreachable(_)) => {
            ctx.telemetry
                .logs()
                .error(level::WARN, None, "kes: key store is not reachable");
            Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "key store is not reachable",
            ))
        }
        Err(err) => {
            ctx.telemetry.logs().error(
                level::WARN,
                None,
                &format!("kes: key store is unavailable: {err}"),
            );
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "key store is unavailable",
            ))
        }
    }
}

pub(super) async fn status(ctx: &Ctx<'_>) -> Reply {
    let stats = SystemStats::read(ctx.telemetry.uptime());
    let store = ctx.state.keys.status().await;
    let (latency, unreachable) = match store {
        Ok(latency) => (
            Some(
                u64::try_from(latency.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            ),
            false,
        ),
        Err(_) => (None, true),
    };
    Ok(ok_json(kes_api::encode_json(&kes_api::StatusResponse {
        version: VERSION.to_owned(),
        os: std::env::consts::OS.to_owned(),
        arch: go_arch().to_owned(),
        uptime: ctx.telemetry.uptime().as_secs(),
        num_cpu: u32::try_from(stats.num_cpu).unwrap_or(u32::MAX),
        num_cpu_used: u32::try_from(stats.num_cpu_used).unwrap_or(u32::MAX),
        mem_heap_used: stats.heap_used,
        mem_stack_used: stats.stack_used,
        keystore_latency: latency,
        // Both flags together: the Go SDK refuses "unreachable but not unavailable".
        keystore_unreachable: unreachable,
        keystore_unavailable: unreachable,
    })))
}

/// The architecture name as Go spells it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

pub(super) fn metrics(ctx: &Ctx<'_>) -> Reply {
    let stats = SystemStats::read(ctx.telemetry.uptime());
    let text = ctx
        .telemetry
        .metrics()
        .render(&stats, ctx.telemetry.logs().counters());
    let mut res = Response::new(full(text));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8; escaping=underscores"),
    );
    Ok(res)
}

pub(super) fn api(ctx: &Ctx<'_>) -> Reply {
    let routes: Vec<kes_api::ApiRoute> = ROUTES
        .iter()
        .enumerate()
        .map(|(i, r)| kes_api::ApiRoute {
            method: r.method.as_str().to_owned(),
            path: r.path.to_owned(),
            max_body: i64::try_from(r.max_body).unwrap_or(i64::MAX),
            timeout: i64::try_from(ctx.state.route(i).timeout.as_secs()).unwrap_or(i64::MAX),
        })
        .collect();
    Ok(ok_json(kes_api::encode_json(&routes)))
}
