//! Fuzzes the handling of the certificate that a TLS proxy forwards in a header
//! (`kes_server::proxy::Proxies::forwarded`, spec §5): Go query unescaping, PEM decoding,
//! X.509 parsing for the CA flag and the identity, and `X-Forwarded-For`.
//!
//! The input is split at its `\n` bytes (never valid inside a header value): the first part
//! is the certificate header, the second (if any) `X-Forwarded-For`, and any further part a
//! repeated certificate header. Parts that are not valid header values are left out.

#![no_main]

use std::sync::{Arc, LazyLock};

use http::{HeaderMap, HeaderValue, StatusCode};
use kes_server::proxy::{DEFAULT_HEADER, Proxies};
use kes_server::tls::Peer;
use libfuzzer_sys::fuzz_target;

static PROXIES: LazyLock<Proxies> = LazyLock::new(|| {
    Proxies::new(vec!["proxy".to_owned()], None, None).expect("the default header is valid")
});

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    let mut parts = data.split(|&b| b == b'\n');
    let cert = parts.next().and_then(|p| HeaderValue::from_bytes(p).ok());
    if let Some(value) = cert {
        headers.append(DEFAULT_HEADER, value);
    }
    if let Some(value) = parts.next().and_then(|p| HeaderValue::from_bytes(p).ok()) {
        headers.append("x-forwarded-for", value);
    }
    for part in parts {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.append(DEFAULT_HEADER, value);
        }
    }
    let certificates = headers.get_all(DEFAULT_HEADER).iter().count();

    // A peer that is not a listed proxy never gets the forwarded identity.
    let client = Peer::Identity(Arc::from("client"));
    assert!(PROXIES.forwarded(&client, &headers).is_none());
    assert!(PROXIES.forwarded(&Peer::NoCertificate, &headers).is_none());

    let proxy = Peer::Identity(Arc::from("proxy"));
    let result = PROXIES
        .forwarded(&proxy, &headers)
        .expect("a listed proxy's request is resolved");
    match result {
        Ok((peer, _ip)) => {
            assert_eq!(
                certificates, 1,
                "accepted {certificates} certificate headers"
            );
            match peer {
                Peer::Identity(id) => {
                    assert_eq!(id.len(), 64, "identity is not hex SHA-256: {id}");
                    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
                }
                other => panic!("a forwarded certificate gave peer {other:?}"),
            }
        }
        Err(e) => {
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{}", e.message());
            assert!(!e.message().is_empty());
        }
    }
});
