//! Test support: moto servers ([`moto`]) and IAM users in them.
#![allow(dead_code)]

pub mod moto;

use moto::{ACCESS_KEY, Moto, REGION};

/// The IAM policy docs/aws.md gives for a keystore without `kmskey` (keep the two in sync): the
/// tests sign in with exactly the rights the documentation asks for.
pub const DOCUMENTED_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "secretsmanager:CreateSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "secretsmanager:DeleteSecret",
        "secretsmanager:ListSecrets",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage"
      ],
      "Resource": "*"
    }
  ]
}"#;

fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One IAM query-API call; the XML answer.
fn iam(moto: &Moto, pairs: &[(&str, &str)]) -> String {
    let headers = vec![
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        (
            "authorization".to_owned(),
            format!(
                "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/iam/aws4_request, SignedHeaders=host, Signature=00"
            ),
        ),
    ];
    let moto::Reply { status, body, .. } =
        moto::http(moto.addr, "POST", "/", &headers, form(pairs).as_bytes()).unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{pairs:?}: {body}");
    body
}

fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no {tag} in {xml}"))
        + open.len();
    let end = start + xml[start..].find('<').unwrap();
    xml[start..end].to_owned()
}

/// An IAM user `kes` with `policy` inline and an access key (three unauthenticated actions);
/// its access key id and secret key.
pub fn iam_user(moto: &Moto, policy: &str) -> (String, String) {
    let v = ("Version", "2010-05-08");
    iam(moto, &[("Action", "CreateUser"), ("UserName", "kes"), v]);
    let key = iam(
        moto,
        &[("Action", "CreateAccessKey"), ("UserName", "kes"), v],
    );
    iam(
        moto,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "kes"),
            ("PolicyName", "kes"),
            ("PolicyDocument", policy),
            v,
        ],
    );
    (
        xml_value(&key, "AccessKeyId"),
        xml_value(&key, "SecretAccessKey"),
    )
}
