//! `/v1/metrics`: the original's metric names, counting every route.

use std::collections::HashMap;

use crate::harness::{Kes, Who, client, config, send};

/// Parses the Prometheus text format into `name{labels}` → value.
fn scrape(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn request_counters_and_latency_histogram_move() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), ""));
    let admin = client(Who::Admin);
    let get = || async {
        let r = send(&admin, "GET", &kes.url("/v1/metrics"), None).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.content_type,
            "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
        );
        scrape(&String::from_utf8(r.body).unwrap())
    };
    let before = get().await;
    send(&admin, "POST", &kes.url("/v1/key/create/m"), None).await;
    send(&admin, "POST", &kes.url("/v1/key/generate/m"), None).await;
    send(&admin, "GET", &kes.url("/v1/key/describe/missing"), None).await;
    send(&client(Who::Other), "GET", &kes.url("/v1/status"), None).await;
    let after = get().await;
    let val = |m: &HashMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    let ok = "kes_http_request_success{code=\"200\"}";
    // create + generate + the first scrape itself.
    assert_eq!(val(&after, ok) - val(&before, ok), 3.0);
    assert_eq!(
        val(&after, "kes_http_request_error{code=\"404\"}")
            - val(&before, "kes_http_request_error{code=\"404\"}"),
        1.0
    );
    assert_eq!(
        val(&after, "kes_http_request_error{code=\"403\"}")
            - val(&before, "kes_http_request_error{code=\"403\"}"),
        1.0
    );
    let count = "kes_http_response_time_count";
    assert_eq!(val(&after, count) - val(&before, count), 5.0);
    assert_eq!(
        val(&after, "kes_http_response_time_bucket{le=\"+Inf\"}"),
        val(&after, count)
    );
    assert!(val(&after, "kes_http_response_time_sum") > val(&before, "kes_http_response_time_sum"));
    for name in [
        "kes_http_request_active",
        "kes_system_up_time",
        "kes_system_num_cpu",
        "kes_system_num_cpu_used",
        "kes_system_num_threads",
        "kes_system_mem_heap_used",
        "kes_system_mem_stack_used",
        "kes_system_mem_heap_objects",
        "kes_log_audit_events",
        "kes_log_error_events",
    ] {
        assert!(after.contains_key(name), "{name} missing");
    }
    assert!(val(&after, "kes_system_up_time") >= 0.0);
}
