//! `kes policy add|rm|assign|info|ls|show`.

use std::collections::BTreeMap;
use std::io::Read as _;

use kes_client::api::{PolicyWriteRequest, Rules};
use serde::Serialize;
use serde_json::Value;

use super::{block_on, client, print_names, required};
use crate::cli::{ConnArgs, PolicyArgs, PolicyCommand};
use crate::fail::Failure;
use crate::help;
use crate::term;

/// Runs `kes policy <command>`.
pub fn run(args: PolicyArgs) -> Result<(), Failure> {
    let Some(command) = args.command else {
        return Err(Failure::Usage(help::text(&["policy"])));
    };
    match command {
        PolicyCommand::Add { conn, name, file } => add(
            &conn,
            required(name.as_ref(), "policy name")?,
            required(file.as_ref(), "policy file")?,
        ),
        PolicyCommand::Rm { conn, names } => rm(&conn, &names),
        PolicyCommand::Assign {
            conn,
            policy,
            identities,
        } => assign(
            &conn,
            required(policy.as_ref(), "policy name")?,
            &identities,
        ),
        PolicyCommand::Info { conn, json, name } => {
            info(&conn, required(name.as_ref(), "policy name")?, json)
        }
        PolicyCommand::Ls {
            conn,
            json,
            pattern,
        } => ls(&conn, pattern.as_deref().unwrap_or("*"), json),
        PolicyCommand::Show { conn, json, name } => {
            show(&conn, required(name.as_ref(), "policy name")?, json)
        }
    }
}

fn add(conn: &ConnArgs, name: &str, file: &str) -> Result<(), Failure> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Failure::msg(format!("cannot read the policy from standard input: {e}"))
        })?;
        text
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| Failure::msg(format!("cannot read policy file '{file}': {e}")))?
    };
    let source = if file == "-" { "standard input" } else { file };
    let policy = parse_policy(&text)
        .map_err(|e| Failure::msg(format!("invalid policy in {source}: {e}")))?;
    let client = client(conn)?;
    block_on(async {
        client
            .write_policy(name, &policy)
            .await
            .map_err(|e| Failure::request(format!("failed to add policy '{name}'"), e))
    })
}

/// Parses a policy: `{"allow": [...], "deny": [...]}`, where each list may also be the
/// object form that `kes policy show --json` prints (`{"<pattern>": {}}`). The fields that
/// `show` adds (`name`, `created_at`, `created_by`) are ignored; any other field is refused,
/// so that a typo does not silently drop rules.
fn parse_policy(text: &str) -> Result<PolicyWriteRequest, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Value::Object(object) = value else {
        return Err("expected a JSON object with 'allow' and 'deny' lists".into());
    };
    let mut policy = PolicyWriteRequest::default();
    for (field, value) in object {
        match field.as_str() {
            "allow" => policy.allow = patterns(&field, value)?,
            "deny" => policy.deny = patterns(&field, value)?,
            "name" | "created_at" | "created_by" => {}
            "identities" => {
                return Err("'identities' cannot be set here: use 'kes policy assign'".into());
            }
            other => return Err(format!("unknown field '{other}'")),
        }
    }
    Ok(policy)
}

fn patterns(field: &str, value: Value) -> Result<Vec<String>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(format!("'{field}' must list strings")),
            })
            .collect(),
        Value::Object(map) => Ok(map.into_iter().map(|(pattern, _)| pattern).collect()),
        _ => Err(format!("'{field}' must be a list of path patterns")),
    }
}

fn rm(conn: &ConnArgs, names: &[String]) -> Result<(), Failure> {
    if names.is_empty() {
        return Err(Failure::msg("no policy name specified"));
    }
    let client = client(conn)?;
    block_on(async {
        for name in names {
            client
                .delete_policy(name)
                .await
                .map_err(|e| Failure::request(format!("failed to remove policy '{name}'"), e))?;
        }
        Ok(())
    })
}

fn assign(conn: &ConnArgs, policy: &str, identities: &[String]) -> Result<(), Failure> {
    if identities.is_empty() {
        return Err(Failure::msg("no identity specified"));
    }
    let client = client(conn)?;
    block_on(async {
        for identity in identities {
            client.assign_policy(policy, identity).await.map_err(|e| {
                Failure::request(
                    format!("failed to assign policy '{policy}' to '{identity}'"),
                    e,
                )
            })?;
        }
        Ok(())
    })
}

/// `kes policy info --json`.
#[derive(Serialize)]
struct PolicyInfoJson<'a> {
    name: &'a str,
    created_at: String,
    created_by: &'a str,
}

fn info(conn: &ConnArgs, name: &str, json: bool) -> Result<(), Failure> {
    let client = client(conn)?;
    block_on(async {
        let policy = client
            .describe_policy(name)
            .await
            .map_err(|e| Failure::request(format!("failed to describe policy '{name}'"), e))?;
        if json {
            let out = PolicyInfoJson {
                name: &policy.name,
                created_at: kes_client::api::format_time(policy.created_at),
                created_by: &policy.created_by,
            };
            return print_json(&out, term::stdout_is_terminal());
        }
        let label = |l: &str| term::paint(term::BOLD, &format!("{l:<11}"));
        let text = format!(
            "{} {}\n{} {}\n{} {}\n",
            label("Name"),
            term::paint(term::CYAN, &policy.name),
            label("Date"),
            term::local_date(policy.created_at),
            label("Created by"),
            policy.created_by,
        );
        Ok(term::print(&text)?)
    })
}

fn ls(conn: &ConnArgs, pattern: &str, json: bool) -> Result<(), Failure> {
    let client = client(conn)?;
    block_on(async {
        let list = client
            .list_policies(pattern)
            .await
            .map_err(|e| Failure::request("failed to list policies", e))?;
        // The original's header says "Key" (a bug); this lists policies.
        print_names("Policy", &list.names, json)?;
        super::warn_partial(Some(&list.continue_at));
        Ok(())
    })
}

/// `kes policy show` as JSON (the Go SDK's `Policy`).
#[derive(Serialize)]
struct PolicyJson<'a> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    allow: &'a Rules,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    deny: &'a Rules,
    created_at: String,
    created_by: &'a str,
}

fn show(conn: &ConnArgs, name: &str, json: bool) -> Result<(), Failure> {
    let client = client(conn)?;
    block_on(async {
        let policy = client
            .read_policy(name)
            .await
            .map_err(|e| Failure::request(format!("failed to show policy '{name}'"), e))?;
        let terminal = term::stdout_is_terminal();
        if json || !terminal {
            let out = PolicyJson {
                allow: &policy.allow,
                deny: &policy.deny,
                created_at: kes_client::api::format_time(policy.created_at),
                created_by: &policy.created_by,
            };
            return print_json(&out, terminal);
        }
        let mut text = String::new();
        for (title, rules, style) in [
            ("Allow:", &policy.allow, term::GREEN),
            ("Deny:", &policy.deny, term::RED),
        ] {
            if rules.is_empty() {
                continue;
            }
            text.push_str(&format!("{}\n", term::paint(term::BOLD, title)));
            for pattern in rules.keys() {
                text.push_str(&format!("  {} {pattern}\n", term::paint(style, "·")));
            }
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "{} {}\n{} {}\n",
            term::paint(term::BOLD, "Created at:"),
            term::local_date(policy.created_at),
            term::paint(term::BOLD, "Created by:"),
            policy.created_by
        ));
        Ok(term::print(&text)?)
    })
}

/// Prints a JSON value and a newline, indented when `pretty`.
pub(super) fn print_json<T: Serialize>(value: &T, pretty: bool) -> Result<(), Failure> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(|e| Failure::msg(format!("cannot encode JSON: {e}")))?;
    Ok(term::print(&format!("{text}\n"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_in_both_forms() {
        let p = parse_policy(r#"{"allow":["/v1/key/generate/a*"],"deny":["/v1/key/delete/*"]}"#)
            .unwrap();
        assert_eq!(p.allow, ["/v1/key/generate/a*"]);
        assert_eq!(p.deny, ["/v1/key/delete/*"]);
        let p = parse_policy(
            r#"{"allow":{"/a":{},"/b":{}},"created_at":"2024-01-01T00:00:00Z","created_by":"x"}"#,
        )
        .unwrap();
        assert_eq!(p.allow, ["/a", "/b"]);
        assert!(p.deny.is_empty());
    }

    #[test]
    fn mistakes_are_refused() {
        assert!(parse_policy("[]").is_err());
        assert!(parse_policy("{").is_err());
        assert!(
            parse_policy(r#"{"allows":["/a"]}"#)
                .unwrap_err()
                .contains("allows")
        );
        assert!(parse_policy(r#"{"allow":[1]}"#).is_err());
        assert!(parse_policy(r#"{"allow":["/a"],"identities":["x"]}"#).is_err());
    }
}
