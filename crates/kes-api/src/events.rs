//! Events streamed by `GET /v1/log/audit` and `GET /v1/log/error` (spec §9), one JSON
//! object per line (`application/x-ndjson`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::timestamp::{rfc3339nano, zero_time};

/// One audit record (spec §9.1):
/// `{"time","request":{"ip"?,"path","identity"?},"response":{"code","time"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditEvent {
    /// When the request was answered.
    #[serde(with = "rfc3339nano")]
    pub time: OffsetDateTime,
    /// What was asked, and by whom.
    pub request: AuditRequest,
    /// How it was answered.
    pub response: AuditResponse,
}

/// The request part of an [`AuditEvent`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditRequest {
    /// Client IP address; omitted when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Request path, e.g. `/v1/key/create/my-key`.
    pub path: String,
    /// Client identity; omitted when the client presented no certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// The response part of an [`AuditEvent`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditResponse {
    /// HTTP status code.
    pub code: u16,
    /// Time to answer, in milliseconds (the final server's unit; servers up to 2023-10-03
    /// sent nanoseconds).
    pub time: i64,
}

/// One error-log record (spec §9.2): `{"message": "<log line>"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorEvent {
    /// The formatted log line, without its trailing newline.
    pub message: String,
}

impl Default for AuditEvent {
    fn default() -> Self {
        Self {
            time: zero_time(),
            request: AuditRequest::default(),
            response: AuditResponse::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode_json;
    use time::macros::datetime;

    #[test]
    fn audit_event_matches_the_spec_shape() {
        let ev = AuditEvent {
            time: datetime!(2024-01-12 10:39:20.886816 UTC),
            request: AuditRequest {
                ip: Some("127.0.0.1".into()),
                path: "/v1/key/create/k".into(),
                identity: Some("abc".into()),
            },
            response: AuditResponse { code: 200, time: 1 },
        };
        let bytes = encode_json(&ev);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "{\"time\":\"2024-01-12T10:39:20.886816Z\",\"request\":{\"ip\":\"127.0.0.1\",\"path\":\"/v1/key/create/k\",\"identity\":\"abc\"},\"response\":{\"code\":200,\"time\":1}}\n"
        );
        assert_eq!(serde_json::from_slice::<AuditEvent>(&bytes).unwrap(), ev);

        let anon = AuditEvent {
            request: AuditRequest {
                path: "/v1/status".into(),
                ..Default::default()
            },
            ..ev
        };
        let bytes = encode_json(&anon);
        assert!(
            std::str::from_utf8(&bytes)
                .unwrap()
                .contains("\"request\":{\"path\":\"/v1/status\"}")
        );
        assert_eq!(serde_json::from_slice::<AuditEvent>(&bytes).unwrap(), anon);
    }

    #[test]
    fn old_audit_events_still_decode() {
        // Servers up to 2023-10-03 also sent `request.enclave`.
        let old = r#"{"time":"2023-08-01T10:00:00.5+02:00","request":{"enclave":"default","ip":"10.0.0.1","path":"/v1/status","identity":"x"},"response":{"code":403,"time":1500000}}"#;
        let ev: AuditEvent = serde_json::from_str(old).unwrap();
        assert_eq!(ev.response.code, 403);
        assert_eq!(ev.request.ip.as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn error_event_round_trips() {
        let ev = ErrorEvent {
            message: "time=… level=ERROR msg=\"x\"".into(),
        };
        let bytes = encode_json(&ev);
        assert_eq!(serde_json::from_slice::<ErrorEvent>(&bytes).unwrap(), ev);
    }
}
