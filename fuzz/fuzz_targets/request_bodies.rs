//! Fuzzes every request body decoder of the API (`kes_api::decode_*_request`, Go
//! `encoding/json` semantics, spec §2.1 and §2.5).
//!
//! Beyond "no panic", every body that decodes is encoded again with the client's serializer
//! (`encode_json` / `encode_json_secret`), and that encoding must decode to the same request:
//! the server and the client agree on every value the server accepts.

#![no_main]

use kes_api::{
    DecodeError, decode_decrypt_request, decode_encrypt_request, decode_generate_request,
    decode_hmac_request, decode_import_request, decode_policy_assign_request,
    decode_policy_write_request, encode_json, encode_json_secret,
};
use libfuzzer_sys::fuzz_target;

/// A decoding error has a message.
fn check_error(result: &Result<impl Sized, DecodeError>) {
    if let Err(e) = result {
        assert!(!e.to_string().is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    let import = decode_import_request(data);
    check_error(&import);
    if let Ok(req) = import {
        let body = encode_json_secret(&req);
        let again = decode_import_request(&body).expect("an encoded import request decodes");
        assert_eq!(*again.key, *req.key);
        assert_eq!(again.cipher, req.cipher);
    }

    let encrypt = decode_encrypt_request(data);
    check_error(&encrypt);
    if let Ok(req) = encrypt {
        let body = encode_json_secret(&req);
        let again = decode_encrypt_request(&body).expect("an encoded encrypt request decodes");
        assert_eq!(*again.plaintext, *req.plaintext);
        assert_eq!(again.context, req.context);
        assert_eq!(again.version, req.version);
    }

    let generate = decode_generate_request(data);
    check_error(&generate);
    if let Ok(req) = generate {
        let body = encode_json(&req);
        let again = decode_generate_request(&body).expect("an encoded generate request decodes");
        assert_eq!(again, req);
    }

    let decrypt = decode_decrypt_request(data);
    check_error(&decrypt);
    if let Ok(req) = decrypt {
        let body = encode_json(&req);
        let again = decode_decrypt_request(&body).expect("an encoded decrypt request decodes");
        assert_eq!(again, req);
    }

    let hmac = decode_hmac_request(data);
    check_error(&hmac);
    if let Ok(req) = hmac {
        let body = encode_json_secret(&req);
        let again = decode_hmac_request(&body).expect("an encoded hmac request decodes");
        assert_eq!(*again.message, *req.message);
        assert_eq!(again.version, req.version);
    }

    let write = decode_policy_write_request(data);
    check_error(&write);
    if let Ok(req) = write {
        let body = encode_json(&req);
        let again =
            decode_policy_write_request(&body).expect("an encoded policy write request decodes");
        assert_eq!(again, req);
    }

    let assign = decode_policy_assign_request(data);
    check_error(&assign);
    if let Ok(req) = assign {
        let body = encode_json(&req);
        let again =
            decode_policy_assign_request(&body).expect("an encoded policy assign request decodes");
        assert_eq!(again, req);
    }
});
