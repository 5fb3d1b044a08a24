//! Fuzzes the HTTP/1.1 request-head parser of the server (`kes-h1`): any bytes give a head
//! length within the input, "need more", or a refusal with a 4xx/5xx status; never a panic.
//! A head that parses keeps parsing when bytes are appended after it (the parser looks only at
//! the head).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match kes_h1::fuzzing::parse_head(data) {
        Ok(Some(len)) => {
            assert!(len > 0 && len <= data.len(), "head of {len} bytes in {}", data.len());
            let mut longer = data.to_vec();
            longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
            assert_eq!(kes_h1::fuzzing::parse_head(&longer), Ok(Some(len)));
        }
        Ok(None) => {}
        Err(status) => assert!((400..600).contains(&status), "status {status}"),
    }
});
