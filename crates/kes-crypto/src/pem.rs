//! PEM blocks (RFC 1421 / RFC 7468 text armour) read and written as Go's `encoding/pem` does.
//!
//! KES's key and certificate files are read by [`decode`], which follows Go's `pem.Decode`
//! (including RFC 1421 headers such as `Proc-Type` and `DEK-Info`, which the RFC 7468 parsers
//! of the Rust ecosystem reject), and written by [`encode`], which produces Go's `pem.Encode`
//! output byte for byte. Block contents may be private keys, so they are kept in buffers that
//! are wiped when dropped, and the base64 text of an encoded block is too.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::gojson::decode_go_base64;

/// One PEM block: a label (`CERTIFICATE`, `PRIVATE KEY`, ...), optional RFC 1421 headers and
/// the decoded contents.
///
/// `Debug` shows the label, headers and content length, never the contents.
pub struct PemBlock {
    label: String,
    headers: Vec<(String, String)>,
    contents: Zeroizing<Vec<u8>>,
}

impl PemBlock {
    /// A block without headers.
    #[must_use]
    pub fn new(label: impl Into<String>, contents: Zeroizing<Vec<u8>>) -> PemBlock {
        PemBlock {
            label: label.into(),
            headers: Vec::new(),
            contents,
        }
    }

    /// Adds (or replaces) header `name` with `value`.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> PemBlock {
        self.set_header(name.into(), value.into());
        self
    }

    fn set_header(&mut self, name: String, value: String) {
        match self.headers.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.headers.push((name, value)),
        }
    }

    /// The label between `-----BEGIN ` and `-----`.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The RFC 1421 headers, in the order they first appeared.
    #[must_use]
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The value of header `name` (case-sensitive, as in Go).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The decoded contents (DER, or ciphertext for an encrypted block). They may be a private
    /// key: keep their use short.
    #[must_use]
    pub fn contents(&self) -> &[u8] {
        &self.contents
    }

    /// Hands the contents over in a buffer that still wipes them when dropped.
    #[must_use]
    pub fn into_contents(mut self) -> Zeroizing<Vec<u8>> {
        std::mem::take(&mut self.contents)
    }
}

impl fmt::Debug for PemBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .field("headers", &self.headers)
            .field("contents_len", &self.contents.len())
            .finish()
    }
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"\n-----END ";
const DASHES: &[u8] = b"-----";

/// Finds the next PEM block in `data` and returns it with the data after it.
///
/// Like Go's `pem.Decode`: text before the block is skipped, a candidate block that is not
/// well-formed (mismatched END line, invalid base64, ...) is skipped in favour of a later one,
/// and `None` means no block was found.
#[must_use]
pub fn decode(data: &[u8]) -> Option<(PemBlock, &[u8])> {
    let mut rest = data;
    loop {
        rest = if let Some(after) = rest.strip_prefix(BEGIN) {
            after
        } else {
            let at = find(rest, b"\n-----BEGIN ")?;
            rest.get(at + 1 + BEGIN.len()..)?
        };

        let (type_line, after_type) = get_line(rest);
        rest = after_type;
        let Some(label) = type_line.strip_suffix(DASHES) else {
            continue;
        };

        let mut block = PemBlock::new(String::from_utf8_lossy(label), Zeroizing::default());
        let mut body = rest;
        loop {
            if body.is_empty() {
                return None;
            }
            let (line, next) = get_line(body);
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                break;
            };
            let (key, value) = line.split_at(colon);
            let value = value.get(1..).unwrap_or_default();
            block.set_header(
                String::from_utf8_lossy(key.trim_ascii()).into_owned(),
                String::from_utf8_lossy(value.trim_ascii()).into_owned(),
            );
            body = next;
        }
        // Go keeps scanning after the headers when this candidate turns out to be malformed.
        rest = body;

        let (end_index, trailer_index) =
            if block.headers.is_empty() && body.starts_with(END.get(1..).unwrap_or_default()) {
                (0, END.len() - 1)
            } else {
                match find(body, END) {
                    Some(i) => (i, i + END.len()),
                    None => continue,
                }
            };

        let Some(trailer) = body.get(trailer_index..) else {
            continue;
        };
        let Some(after_label) = trailer.strip_prefix(label) else {
            continue;
        };
        let Some(rest_of_end_line) = after_label.strip_prefix(DASHES) else {
            continue;
        };
        let (end_line_rest, after_block) = get_line(rest_of_end_line);
        if !end_line_rest.is_empty() {
            continue;
        }

        let encoded: Zeroizing<Vec<u8>> = Zeroizing::new(
            body.get(..end_index)
                .unwrap_or_default()
                .iter()
                .copied()
                .filter(|b| *b != b' ' && *b != b'\t')
                .collect(),
        );
        let Some(contents) = decode_go_base64(&encoded) else {
            continue;
        };
        block.contents = contents;
        return Some((block, after_block));
    }
}

/// Every PEM block in `data`, in order (Go's `for { b, rest = pem.Decode(rest) ... }` loop).
#[must_use]
pub fn decode_all(data: &[u8]) -> Vec<PemBlock> {
    let mut blocks = Vec::new();
    let mut rest = data;
    while let Some((block, next)) = decode(rest) {
        blocks.push(block);
        rest = next;
    }
    blocks
}

/// Encodes `block` exactly as Go's `pem.Encode`: `Proc-Type` first, then the other headers
/// sorted by name, a blank line after headers, base64 in lines of 64 characters and a final
/// newline. The text is wiped when dropped (it may encode a private key).
///
/// Header names containing `:` cannot be represented; such headers are left out.
#[must_use]
pub fn encode(block: &PemBlock) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    out.push_str("-----BEGIN ");
    out.push_str(&block.label);
    out.push_str("-----\n");

    let mut headers: Vec<&(String, String)> = block
        .headers
        .iter()
        .filter(|(name, _)| !name.contains(':'))
        .collect();
    if !headers.is_empty() {
        headers.sort_by(|a, b| {
            let a_first = a.0 != "Proc-Type";
            let b_first = b.0 != "Proc-Type";
            (a_first, &a.0).cmp(&(b_first, &b.0))
        });
        for (name, value) in headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
        }
        out.push('\n');
    }

    let mut encoded = Zeroizing::new(String::new());
    STANDARD.encode_string(block.contents(), &mut encoded);
    let mut line_start = 0;
    while let Some(line) = encoded.get(line_start..encoded.len().min(line_start + 64)) {
        if line.is_empty() {
            break;
        }
        out.push_str(line);
        out.push('\n');
        line_start += 64;
    }

    out.push_str("-----END ");
    out.push_str(&block.label);
    out.push_str("-----\n");
    out
}

/// Go's `getLine`: the first line without its trailing spaces, tabs and `\r`, and the rest
/// after the newline.
fn get_line(data: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (
            data.get(..i).unwrap_or_default(),
            data.get(i + 1..).unwrap_or_default(),
        ),
        None => (data, &[][..]),
    };
    let trimmed_len = line
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r'))
        .map_or(0, |i| i + 1);
    (line.get(..trimmed_len).unwrap_or_default(), rest)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_blocks_with_and_without_headers() {
        let text = b"junk\n-----BEGIN A-----\nAAEC\n-----END A-----\n\
            -----BEGIN B-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: X,00\n\nAw==\n-----END B-----\n";
        let blocks = decode_all(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label(), "A");
        assert_eq!(blocks[0].contents(), &[0, 1, 2]);
        assert!(blocks[0].headers().is_empty());
        assert_eq!(blocks[1].label(), "B");
        assert_eq!(blocks[1].header("Proc-Type"), Some("4,ENCRYPTED"));
        assert_eq!(blocks[1].header("DEK-Info"), Some("X,00"));
        assert_eq!(blocks[1].contents(), &[3]);
    }

    #[test]
    fn skips_malformed_blocks() {
        // Mismatched END label, then invalid base64, then a good block.
        let text = b"-----BEGIN A-----\nAAEC\n-----END B-----\n\
            -----BEGIN C-----\n!!!!\n-----END C-----\n\
            -----BEGIN D-----\r\nAAEC\r\n-----END D-----  \r\n";
        let blocks = decode_all(text);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].label(), "D");
        assert!(decode(b"no pem here").is_none());
        assert!(decode(b"-----BEGIN A-----\nAAEC\n").is_none());
        assert!(decode(b"-----BEGIN A-----\nAAEC\n-----END A----- x\n").is_none());
    }

    #[test]
    fn empty_block() {
        let (block, rest) = decode(b"-----BEGIN E-----\n-----END E-----\ntail").unwrap();
        assert_eq!(block.label(), "E");
        assert!(block.contents().is_empty());
        assert_eq!(rest, b"tail");
        assert_eq!(
            encode(&block).as_str(),
            "-----BEGIN E-----\n-----END E-----\n"
        );
    }

    #[test]
    fn encodes_like_go() {
        let block = PemBlock::new("T", Zeroizing::new((0u8..100).collect()))
            .with_header("Zeta", "z")
            .with_header("DEK-Info", "d")
            .with_header("Proc-Type", "p");
        let text = encode(&block);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN T-----");
        assert_eq!(lines[1], "Proc-Type: p");
        assert_eq!(lines[2], "DEK-Info: d");
        assert_eq!(lines[3], "Zeta: z");
        assert_eq!(lines[4], "");
        assert_eq!(lines[5].len(), 64);
        assert_eq!(lines[6].len(), 64);
        assert_eq!(lines[7].len(), 136 - 128);
        assert_eq!(lines[8], "-----END T-----");
        assert!(text.ends_with("-----\n"));
        let (back, _) = decode(text.as_bytes()).unwrap();
        assert_eq!(back.contents(), block.contents());
        assert_eq!(back.header("Zeta"), Some("z"));
    }
}
