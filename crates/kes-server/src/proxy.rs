//! TLS proxies (`tls.proxy.identities`, `tls.proxy.header.cert`): a TLS-terminating proxy in
//! front of KES forwards its client's certificate in a header. A request from a listed proxy
//! takes the identity of that certificate; from anyone else the header is ignored. The final
//! open-source KES parsed these settings but ignored them; this restores the behaviour of the
//! releases up to 2023-10-03 (spec §5).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, StatusCode};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;

use crate::error::ApiError;
use crate::tls::Peer;

/// The default header carrying the forwarded certificate.
pub const DEFAULT_HEADER: &str = "x-tls-client-cert";

/// The proxy settings of one configuration snapshot.
pub struct Proxies {
    identities: HashSet<String>,
    header: HeaderName,
    /// Verifies forwarded certificates when the server verifies client certificates.
    verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl std::fmt::Debug for Proxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxies")
            .field("identities", &self.identities.len())
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl Proxies {
    /// Proxy settings; `header` is the config's `tls.proxy.header.cert` (or the default).
    pub fn new(
        identities: impl IntoIterator<Item = String>,
        header: Option<&str>,
        verifier: Option<Arc<dyn ClientCertVerifier>>,
    ) -> Result<Proxies, ProxyError> {
        let name = header.filter(|h| !h.is_empty()).unwrap_or(DEFAULT_HEADER);
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ProxyError::InvalidHeader(name.to_owned()))?;
        Ok(Proxies {
            identities: identities.into_iter().collect(),
            header,
            verifier,
        })
    }

    /// Whether there are no proxies.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// If `peer` is a listed proxy, the peer of the forwarded certificate and the client address
    /// from `X-Forwarded-For`; otherwise `None`.
    pub fn forwarded(
        &self,
        peer: &Peer,
        headers: &HeaderMap,
    ) -> Option<Result<(Peer, Option<IpAddr>), ApiError>> {
        let Peer::Identity(id) = peer else {
            return None;
        };
        if !self.identities.contains(&**id) {
            return None;
        }
        Some(self.resolve(headers))
    }

    fn resolve(&self, headers: &HeaderMap) -> Result<(Peer, Option<IpAddr>), ApiError> {
        let bad = |m: &'static str| ApiError::new(StatusCode::BAD_REQUEST, m);
        let mut values = headers.get_all(&self.header).iter();
        let value = values
            .next()
            .ok_or_else(|| bad("no client certificate is present"))?;
        if values.next().is_some() {
            return Err(bad("too many client certificates are present"));
        }
        let text = value
            .to_str()
            .map_err(|_| bad("invalid client certificate"))?;
        let pem = query_unescape(text).ok_or_else(|| bad("invalid client certificate"))?;
        let block = kes_crypto::pem::decode(pem.as_bytes())
            .map(|(block, _)| block)
            .filter(|b| b.label() == "CERTIFICATE")
            .ok_or_else(|| bad("invalid client certificate"))?;
        let der = CertificateDer::from(block.contents().to_vec());
        if let Some(verifier) = &self.verifier {
            verifier
                .verify_client_cert(&der, &[], UnixTime::now())
                .map_err(|_| ApiError::not_allowed())?;
        }
        let peer = Peer::from_certificates(Some(std::slice::from_ref(&der)));
        if matches!(peer, Peer::NoCertificate) {
            return Err(bad("invalid client certificate"));
        }
        let ip = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(parse_forwarded_ip);
        Ok((peer, ip))
    }
}

/// An address from `X-Forwarded-For` (`ip`, `ip:port`, `[v6]:port`; `unknown` is ignored).
fn parse_forwarded_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(addr) = s.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    None
}

/// Go's `url.QueryUnescape`: `%XX` escapes and `+` for a space.
fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_like_go() {
        assert_eq!(query_unescape("a%20b+c").unwrap(), "a b c");
        assert_eq!(query_unescape("%2D%2D%2D").unwrap(), "---");
        assert!(query_unescape("%zz").is_none());
        assert!(query_unescape("%2").is_none());
    }

    #[test]
    fn forwarded_for() {
        assert_eq!(
            parse_forwarded_ip("10.1.2.3"),
            Some("10.1.2.3".parse().unwrap())
        );
        assert_eq!(
            parse_forwarded_ip(" 10.1.2.3:8080"),
            Some("10.1.2.3".parse().unwrap())
        );
        assert_eq!(parse_forwarded_ip("[::1]:80"), Some("::1".parse().unwrap()));
        assert_eq!(parse_forwarded_ip("unknown"), None);
    }

    #[test]
    fn requests_from_others_keep_their_identity() {
        let proxies = Proxies::new(vec!["proxy".to_owned()], None, None).unwrap();
        let peer = Peer::Identity(Arc::from("client"));
        assert!(proxies.forwarded(&peer, &HeaderMap::new()).is_none());
        let proxy = Peer::Identity(Arc::from("proxy"));
        let err = proxies
            .forwarded(&proxy, &HeaderMap::new())
            .unwrap()
            .unwrap_err();
        assert_eq!(err.message(), "no client certificate is present");
    }
}

/// Invalid TLS proxy settings.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// `tls.proxy.header.cert` is no HTTP header name.
    #[error("invalid TLS proxy header name '{0}'")]
    InvalidHeader(String),
}
