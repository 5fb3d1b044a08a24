//! Bounded randomized smoke test of the forwarded-certificate header of TLS proxies
//! (`Proxies::forwarded`, spec §5), the stable counterpart of the `proxy_header` fuzz target
//! (fuzz/fuzz_targets/proxy_header.rs).
//!
//! A fixed, seeded stream of mutated headers (escaped text, and certificates mutated at the
//! DER level before being PEM-encoded and escaped) goes through Go query unescaping, PEM
//! decoding and X.509 parsing. A listed proxy's request always resolves to a 400 error or to
//! one well-formed identity, never a panic; anyone else's request ignores the header. A failure
//! prints the seed and the header.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, StatusCode};
use kes_server::proxy::{DEFAULT_HEADER, Proxies};
use kes_server::tls::Peer;
use kes_testutil::{ByteMutator, ByteOp, Rng};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, PublicKeyData};

const SEED: u64 = 0x6b65_735f_7072_7879;
const CASES: usize = 4000;

/// A test certificate: its DER and the KES identity of its key.
struct Cert {
    der: Vec<u8>,
    identity: String,
}

fn certificate(ca: bool) -> Cert {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["client".to_owned()]).unwrap();
    params.is_ca = if ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    let cert = params.self_signed(&key).unwrap();
    Cert {
        der: cert.der().to_vec(),
        identity: kes_crypto::identity_of_spki(&key.subject_public_key_info()),
    }
}

fn pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Go's `url.QueryEscape`, as proxies (nginx's `$ssl_client_escaped_cert`) send the PEM.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn headers(cert: &[&[u8]], forwarded_for: Option<&[u8]>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in cert {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(DEFAULT_HEADER, value);
        }
    }
    if let Some(value) = forwarded_for.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.append("x-forwarded-for", value);
    }
    headers
}

fn proxies() -> Proxies {
    Proxies::new(vec!["proxy".to_owned()], None, None).unwrap()
}

fn proxy() -> Peer {
    Peer::Identity(Arc::from("proxy"))
}

#[test]
fn forwarded_certificate_gives_its_identity() {
    let proxies = proxies();
    let leaf = certificate(false);
    let escaped = query_escape(&pem(&leaf.der));

    let h = headers(&[escaped.as_bytes()], Some(b"203.0.113.7:4711, 10.0.0.1"));
    let (peer, ip) = proxies.forwarded(&proxy(), &h).unwrap().unwrap();
    match peer {
        Peer::Identity(id) => assert_eq!(&*id, leaf.identity),
        other => panic!("{other:?}"),
    }
    assert_eq!(ip, Some("203.0.113.7".parse::<IpAddr>().unwrap()));

    // Someone who is not a listed proxy keeps their own identity: the header is not read.
    let client = Peer::Identity(Arc::from("client"));
    assert!(proxies.forwarded(&client, &h).is_none());

    // A CA certificate is no client certificate; two headers are refused.
    let ca = query_escape(&pem(&certificate(true).der));
    let err = proxies
        .forwarded(&proxy(), &headers(&[ca.as_bytes()], None))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    let two = headers(&[escaped.as_bytes(), escaped.as_bytes()], None);
    let err = proxies.forwarded(&proxy(), &two).unwrap().unwrap_err();
    assert_eq!(err.message(), "too many client certificates are present");
}

/// The edits of a header or a DER certificate (the order is part of the seeded stream).
const OPS: &[ByteOp] = &[
    ByteOp::FlipBit,
    ByteOp::InsertToken,
    ByteOp::DeleteRun(16),
    ByteOp::Truncate,
    ByteOp::RepeatRun(32),
    ByteOp::InsertByte,
];

/// Edits of the escaped text a proxy sends.
const TEXT: ByteMutator<'static, &[u8]> = ByteMutator {
    ops: OPS,
    tokens: TEXT_TOKENS,
};

/// Escaped-text pieces: escapes (valid, short, non-hex, non-UTF-8), PEM armour, separators.
const TEXT_TOKENS: &[&[u8]] = &[
    b"%",
    b"%2",
    b"%zz",
    b"%0A",
    b"%2D%2D%2D%2D%2D",
    b"%FF",
    b"%C3%A9",
    b"+",
    b"-----",
    b"BEGIN+CERTIFICATE",
    b"END+CERTIFICATE",
    b"BEGIN+PRIVATE+KEY",
    b"%3D",
    b"=",
    b"\t",
    b" ",
    b"\x80",
    b"\x7f",
];

/// Edits of a certificate's DER.
const DER: ByteMutator<'static, &[u8]> = ByteMutator {
    ops: OPS,
    tokens: DER_TOKENS,
};

/// DER pieces: tags and lengths (long forms, indefinite, oversized).
const DER_TOKENS: &[&[u8]] = &[
    b"\x30\x80",
    b"\x30\x82\xff\xff",
    b"\x30\x84\xff\xff\xff\xff",
    b"\x02\x01\x00",
    b"\x05\x00",
    b"\x06\x03\x55\x1d\x13",
    b"\x01\x01\xff",
    b"\xa3\x00",
    b"\x00",
    b"\xff",
];

#[test]
fn forwarded_header_never_panics() {
    let proxies = proxies();
    let (leaf, ca) = (certificate(false), certificate(true));
    let mut rng = Rng::new(SEED);
    let (mut identities, mut refused) = (0, 0);
    for case in 0..CASES {
        let cert = if rng.below(4) == 0 { &ca } else { &leaf };
        // A quarter of the headers are left intact, to keep the successful path in the mix.
        let mutations = rng.below(4);
        let value = if rng.below(2) == 0 {
            // Mutate the DER, then send it as a proxy would.
            let mut der = cert.der.clone();
            for _ in 0..mutations {
                der = DER.mutate(&mut rng, der, &[]);
            }
            query_escape(&pem(&der)).into_bytes()
        } else {
            let mut text = query_escape(&pem(&cert.der)).into_bytes();
            for _ in 0..mutations {
                text = TEXT.mutate(&mut rng, text, &[]);
            }
            text
        };
        let count = 1 + usize::from(rng.below(16) == 0);
        let values = vec![value.as_slice(); count];
        let forwarded_for: Option<&[u8]> = match rng.below(4) {
            0 => None,
            1 => Some(b"203.0.113.7, 10.0.0.1"),
            2 => Some(b"[2001:db8::1]:443"),
            _ => Some(&value[..value.len().min(24)]),
        };
        let h = headers(&values, forwarded_for);
        let sent = h.get_all(DEFAULT_HEADER).iter().count();

        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let client = Peer::Identity(Arc::from("client"));
            assert!(proxies.forwarded(&client, &h).is_none());
            proxies
                .forwarded(&proxy(), &h)
                .expect("a proxy's request resolves")
        }));
        let describe = || {
            format!(
                "seed {SEED:#x} case {case}: header {:?}",
                String::from_utf8_lossy(&value)
            )
        };
        match outcome {
            Ok(Ok((Peer::Identity(id), _))) => {
                assert_eq!(sent, 1, "{}", describe());
                assert_eq!(id.len(), 64, "{}", describe());
                assert!(
                    id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                    "{}",
                    describe()
                );
                identities += 1;
            }
            Ok(Ok((other, _))) => panic!("{}: peer {other:?}", describe()),
            Ok(Err(e)) => {
                assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{}", describe());
                assert!(!e.message().is_empty());
                refused += 1;
            }
            Err(_) => panic!("{}", describe()),
        }
    }
    // Both outcomes occur: the stream gets through the unescaping and the PEM armour to the
    // certificate parser, and the parser refuses damaged certificates.
    assert!(
        identities > CASES / 20 && refused > CASES / 20,
        "{identities} identities, {refused} refused"
    );
}
