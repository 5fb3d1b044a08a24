//! Vault health: `GET /v1/sys/health` on every endpoint (no token, no namespace).
//!
//! A node is usable when it is the active node (200) or a standby that forwards or serves
//! requests (429, 473). Sealed (503) and uninitialized (501) nodes are not. The checks run
//! every `status.ping` and on every [`KeyStore::status`](kes_keystore::KeyStore::status)
//! call; each one makes the active node (or, without one, a usable standby) the endpoint that
//! calls go to first, and records whether Vault is sealed: while every node that answers is
//! sealed, key operations fail at once with "key store is sealed" instead of waiting for
//! retries.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::error::VaultError;
use crate::request;
use crate::transport::{HEALTH_TIMEOUT, Reply, Transport};
use crate::wire::HealthResponse;

/// What the health checks found out, shared with the other tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Health {
    /// Every Vault node that answered is sealed or uninitialized.
    pub sealed: bool,
}

/// The state of one Vault node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    /// The active node.
    Active,
    /// A standby that serves or forwards requests.
    Standby,
    /// Sealed.
    Sealed,
    /// Not initialized.
    Uninitialized,
    /// Another answer (a DR secondary, a proxy error, …).
    Unexpected,
}

impl Node {
    fn usable(self) -> bool {
        matches!(self, Node::Active | Node::Standby)
    }
}

/// The state of a node from its `sys/health` answer.
pub(crate) fn classify(status: u16, body: &[u8]) -> Node {
    let parsed: Option<HealthResponse> = serde_json::from_slice(body).ok();
    match status {
        200 | 429 | 473 if parsed.as_ref().is_some_and(|h| h.sealed) => Node::Sealed,
        200 if parsed.as_ref().is_some_and(|h| !h.initialized) => Node::Uninitialized,
        200 if parsed.as_ref().is_some_and(|h| h.standby) => Node::Standby,
        200 => Node::Active,
        429 | 473 => Node::Standby,
        501 => Node::Uninitialized,
        503 => Node::Sealed,
        _ => Node::Unexpected,
    }
}

/// The result of checking every endpoint.
#[derive(Debug)]
pub(crate) struct Verdict {
    /// The latency of the chosen node, or why no node is usable.
    pub result: Result<Duration, VaultError>,
    /// The endpoint calls should go to first, if any is usable.
    pub best: Option<usize>,
    /// Whether Vault counts as sealed.
    pub sealed: bool,
}

/// Picks the node to use from one check of each endpoint. `preferred` wins among equals.
pub(crate) fn verdict(
    checks: Vec<Result<(Node, Duration, Reply), VaultError>>,
    preferred: usize,
) -> Verdict {
    let mut best: Option<(usize, Node, Duration)> = None;
    let mut sealed = false;
    let mut unexpected = None;
    let mut network = None;
    for (i, check) in checks.into_iter().enumerate() {
        match check {
            Ok((node, latency, _)) if node.usable() => {
                let better = match best {
                    None => true,
                    Some((b, bnode, _)) => {
                        (node == Node::Active && bnode != Node::Active)
                            || (node == bnode && i == preferred && b != preferred)
                    }
                };
                if better {
                    best = Some((i, node, latency));
                }
            }
            Ok((Node::Sealed | Node::Uninitialized, _, _)) => sealed = true,
            Ok((_, _, reply)) => {
                unexpected.get_or_insert_with(|| reply.error(&[]));
            }
            Err(err) => {
                network.get_or_insert(err);
            }
        }
    }
    match best {
        Some((i, _, latency)) => Verdict {
            result: Ok(latency),
            best: Some(i),
            sealed: false,
        },
        None => Verdict {
            result: Err(if sealed {
                VaultError::Sealed
            } else {
                unexpected
                    .or(network)
                    .unwrap_or_else(|| VaultError::Local("no Vault endpoint".into()))
            }),
            best: None,
            sealed,
        },
    }
}

/// Checks every endpoint at once.
pub(crate) async fn check_all(
    transport: &Transport,
) -> Vec<Result<(Node, Duration, Reply), VaultError>> {
    let request = request::health();
    let checks = (0..transport.len()).map(|i| {
        let request = &request;
        async move {
            let started = Instant::now();
            let reply = transport
                .once(i, request, None, Some(HEALTH_TIMEOUT))
                .await?;
            Ok((
                classify(reply.status, &reply.body),
                started.elapsed(),
                reply,
            ))
        }
    });
    join_all(checks).await
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;
    use crate::error::Call;

    #[test]
    fn node_states() {
        let active = br#"{"initialized":true,"sealed":false,"standby":false}"#;
        assert_eq!(
            classify(200, br#"{"initialized":false}"#),
            Node::Uninitialized
        );
        let standby = br#"{"initialized":true,"sealed":false,"standby":true}"#;
        let sealed = br#"{"initialized":true,"sealed":true,"standby":true}"#;
        assert_eq!(classify(200, active), Node::Active);
        assert_eq!(
            classify(200, standby),
            Node::Standby,
            "standbyok=true answers 200"
        );
        assert_eq!(classify(429, standby), Node::Standby);
        assert_eq!(classify(473, standby), Node::Standby);
        assert_eq!(classify(503, sealed), Node::Sealed);
        assert_eq!(
            classify(200, sealed),
            Node::Sealed,
            "the body wins over the status"
        );
        assert_eq!(classify(501, b"{}"), Node::Uninitialized);
        assert_eq!(classify(472, b"{}"), Node::Unexpected);
        assert_eq!(classify(500, b"not json"), Node::Unexpected);
    }

    fn reply(status: u16) -> Reply {
        Reply {
            status,
            body: kes_secret::SecretBuf::from(Zeroizing::new(br#"{"errors":["boom"]}"#.to_vec())),
            call: Call {
                method: "GET",
                path: "/v1/sys/health".into(),
                endpoint: "http://127.0.0.1:1".into(),
            },
            retried: false,
        }
    }

    fn ok(node: Node, ms: u64) -> Result<(Node, Duration, Reply), VaultError> {
        Ok((node, Duration::from_millis(ms), reply(200)))
    }

    fn down() -> Result<(Node, Duration, Reply), VaultError> {
        Err(VaultError::Network {
            call: reply(0).call,
            cause: "connection refused".into(),
        })
    }

    #[test]
    fn the_active_node_is_preferred() {
        let v = verdict(vec![ok(Node::Standby, 1), down(), ok(Node::Active, 7)], 0);
        assert_eq!(v.best, Some(2));
        assert_eq!(v.result.unwrap(), Duration::from_millis(7));
        assert!(!v.sealed);
    }

    #[test]
    fn among_standbys_the_current_endpoint_stays() {
        let v = verdict(vec![ok(Node::Standby, 1), ok(Node::Standby, 2)], 1);
        assert_eq!(v.best, Some(1));
        let v = verdict(vec![down(), ok(Node::Standby, 2), ok(Node::Standby, 3)], 0);
        assert_eq!(v.best, Some(1));
    }

    #[test]
    fn sealed_nodes_make_the_store_sealed() {
        let v = verdict(vec![ok(Node::Sealed, 1), down()], 0);
        assert!(v.sealed);
        assert_eq!(v.best, None);
        assert_eq!(
            v.result.unwrap_err().to_string(),
            "vault: key store is sealed"
        );
        let v = verdict(vec![ok(Node::Uninitialized, 1)], 0);
        assert!(v.sealed);
    }

    #[test]
    fn unreachable_and_unexpected() {
        let v = verdict(vec![down(), down()], 0);
        assert!(!v.sealed);
        let err = v.result.unwrap_err();
        assert!(err.is_unreachable());
        assert!(err.to_string().contains("connection refused"), "{err}");

        let v = verdict(
            vec![Ok((Node::Unexpected, Duration::ZERO, reply(500))), down()],
            0,
        );
        let err = v.result.unwrap_err();
        assert!(!err.is_unreachable());
        assert_eq!(
            err.to_string(),
            "vault: GET /v1/sys/health at http://127.0.0.1:1: 500 Internal Server Error: boom"
        );
    }
}
