//! docs/policies.md documents the route table: every route once, with its method and default
//! authentication, and nothing that is not a route.

use kes_api::routes::{Auth, ROUTES};

#[test]
fn the_policy_docs_list_exactly_the_routes() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/policies.md"
    ))
    .expect("docs/policies.md");
    let rows: Vec<Vec<&str>> = doc
        .lines()
        .filter(|l| l.starts_with("| `/"))
        .map(|l| {
            l.split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    let mut documented: Vec<&str> = Vec::new();
    for row in &rows {
        let path = row[0].trim_matches('`');
        let route = ROUTES
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("docs/policies.md lists {path}, which is no route"));
        assert_eq!(row[1], route.method.as_str(), "method of {path}");
        let auth = match route.auth {
            Auth::None => "none",
            Auth::IdentifyOnly => "identity",
            Auth::Policy => "policy",
        };
        assert_eq!(row[2], auth, "auth of {path}");
        assert!(!documented.contains(&path), "{path} is listed twice");
        documented.push(path);
    }
    for route in ROUTES {
        assert!(
            documented.contains(&route.path),
            "docs/policies.md does not list {}",
            route.path
        );
    }
}
