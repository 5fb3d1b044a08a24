//! Stage two: the positioned YAML tree to a validated [`Config`].
//!
//! Walks the tree along the KES schema, expanding `${VAR}` references, converting values with Go
//! KES semantics and checking cross-field rules. Every problem is recorded with its position and
//! key path and the walk goes on, so that one run reports all of them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::config::{
    ApiConfig, CacheConfig, Config, LimitsConfig, LogConfig, MlockMode, PolicyConfig, ProxyConfig,
    RotationConfig, TlsConfig,
};
use crate::keystore::{Backend, GO_KES_BACKENDS, Optional};
use kes_crypto::names::check_identity;

use crate::values::{LogLevel, check_name, parse_address, parse_bool, parse_go_duration};
use crate::yaml::{Entry, Kind, Node, Pos, Value, join};
use crate::{Env, Error, SecretString};

mod section;
pub use section::Section;

/// Keystore sections of Go KES that Go KES itself removed, with their names for humans.
const REMOVED_KEYSTORES: &[(&str, &str)] = &[
    (
        "generic",
        "the generic KES plugin keystore (removed in KES 2023)",
    ),
    ("kes", "the KES-server keystore (removed in KES 2023)"),
];

/// Builds the configuration from the tree. Returns the errors found; the `Config` is only
/// returned when there are none.
pub(crate) fn build<K>(
    root: Option<&Node>,
    file: &str,
    base: Option<&std::path::Path>,
    env: &dyn Env,
    backends: &[Backend<K>],
    mut errors: Vec<Error>,
) -> Result<Config<K>, Vec<Error>> {
    let mut walker = Reader {
        file,
        env,
        base,
        errors: Vec::new(),
        unreadable: Vec::new(),
    };
    let config = walker.config(root, backends);
    errors.append(&mut walker.errors);
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => {
            if errors.is_empty() {
                // Unreachable in practice: a missing keystore is always reported.
                errors.push(Error {
                    file: file.to_owned(),
                    line: Pos::START.line,
                    column: Pos::START.column,
                    path: "keystore".to_owned(),
                    message: "no keystore specified".to_owned(),
                });
            }
            errors.sort_by_key(|e| (e.line, e.column));
            Err(errors)
        }
    }
}

/// A mapping node seen through the schema: its entries and where it is.
#[derive(Clone, Copy)]
struct Mapping<'n> {
    entries: &'n [Entry],
    /// Where to report a missing key: the key of this section, or the document start.
    pos: Pos,
}

impl<'n> Mapping<'n> {
    fn get(&self, key: &str) -> Option<&'n Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    fn node(&self, key: &str) -> Option<&'n Node> {
        self.get(key).map(|e| &e.value)
    }

    /// The position of `key`'s value, or of this section when the key is absent.
    fn pos_of(&self, key: &str) -> Pos {
        self.get(key).map_or(self.pos, |e| e.value.pos)
    }
}

/// A string value (a scalar after `${VAR}` expansion) and where it is.
struct Text {
    value: Zeroizing<String>,
    /// The YAML kind of the scalar; `Str` for a value taken from the environment.
    kind: Kind,
    pos: Pos,
}

/// An identity with where it was written, for the cross-section checks.
struct Located {
    value: String,
    pos: Pos,
    path: String,
}

/// Reads a configuration tree along the schema, collecting located errors. Keystore backends
/// read their own sections through it (see [`Section`]).
pub struct Reader<'a> {
    file: &'a str,
    env: &'a dyn Env,
    /// The directory of the configuration file, for relative file paths in backend sections.
    base: Option<&'a std::path::Path>,
    errors: Vec<Error>,
    /// Paths of values reported as unreadable.
    unreadable: Vec<String>,
}

impl Reader<'_> {
    fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.errors.push(Error {
            file: self.file.to_owned(),
            line: pos.line,
            column: pos.column,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// Reports a value that could not be read at all (wrong YAML type, unset variable), and
    /// remembers its path for [`reported`](Self::reported).
    fn bad_value(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.unreadable.push(path.to_owned());
        self.error(pos, path, message);
    }

    /// Whether the value at `path`, a section containing it or a value inside it could not be
    /// read; used to avoid a "missing" error on top of a "wrong type" one.
    fn reported(&self, path: &str) -> bool {
        let within = |outer: &str, inner: &str| {
            inner == outer
                || inner
                    .strip_prefix(outer)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        };
        self.unreadable
            .iter()
            .any(|bad| within(bad, path) || within(path, bad))
    }

    // ---- generic accessors ------------------------------------------------------------------

    /// `node` as a mapping, reporting keys not in `known`. Null is an empty mapping; any other
    /// kind of node is reported and treated as empty.
    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        key_pos: Pos,
        path: &str,
        known: &[&str],
    ) -> Mapping<'n> {
        match &node.value {
            Value::Map(entries) => {
                for entry in entries {
                    if !known.contains(&entry.key.as_str()) {
                        self.error(entry.key_pos, path, format!("unknown key '{}'", entry.key));
                    }
                }
                Mapping {
                    entries,
                    pos: key_pos,
                }
            }
            _ if node.is_null() => Mapping {
                entries: &[],
                pos: key_pos,
            },
            _ => {
                self.bad_value(
                    node.pos,
                    path,
                    format!("expected a mapping, found {}", node.describe()),
                );
                Mapping {
                    entries: &[],
                    pos: key_pos,
                }
            }
        }
    }

    /// The sub-section `key` of `parent` (empty when absent).
    fn section<'n>(
        &mut self,
        parent: &Mapping<'n>,
        parent_path: &str,
        key: &str,
        known: &[&str],
    ) -> Mapping<'n> {
        let path = join(parent_path, key);
        match parent.get(key) {
            Some(entry) => self.mapping(&entry.value, entry.key_pos, &path, known),
            None => Mapping {
                entries: &[],
                pos: parent.pos,
            },
        }
    }

    /// The text of a scalar, with `${NAME}` replaced by the variable (when `expand`). `None` for
    /// null, and for errors (reported).
    fn text(&mut self, node: &Node, path: &str, expected: &str, expand: bool) -> Option<Text> {
        let Value::Scalar(scalar) = &node.value else {
            self.bad_value(
                node.pos,
                path,
                format!("expected {expected}, found {}", node.describe()),
            );
            return None;
        };
        if scalar.kind == Kind::Null {
            return None;
        }
        if expand {
            let trimmed = scalar.text.trim();
            if let Some(name) = trimmed.strip_prefix("${").and_then(|t| t.strip_suffix('}')) {
                let name = name.trim();
                return match self.env.var(name) {
                    Some(value) => Some(Text {
                        value: Zeroizing::new(value),
                        kind: Kind::Str,
                        pos: node.pos,
                    }),
                    None => {
                        self.bad_value(
                            node.pos,
                            path,
                            format!("referenced environment variable '{name}' not found"),
                        );
                        None
                    }
                };
            }
        }
        Some(Text {
            value: scalar.text.clone(),
            kind: scalar.kind,
            pos: node.pos,
        })
    }

    /// A string field (expanded); empty when null or invalid.
    fn string(&mut self, node: Option<&Node>, path: &str) -> String {
        node.and_then(|n| self.text(n, path, "a string", true))
            .map(|t| t.value.as_str().to_owned())
            .unwrap_or_default()
    }

    /// An optional string field: `None` when absent, null, empty or invalid.
    fn opt_string(&mut self, node: Option<&Node>, path: &str) -> Option<String> {
        Some(self.string(node, path)).filter(|s| !s.is_empty())
    }

    /// An optional secret field: `None` when absent, null, empty or invalid.
    fn secret(&mut self, node: Option<&Node>, path: &str) -> Option<SecretString> {
        let text = node.and_then(|n| self.text(n, path, "a string", true))?;
        if text.value.is_empty() {
            return None;
        }
        Some(SecretString::new(text.value.as_str().to_owned()))
    }

    /// An optional path field.
    fn path(&mut self, node: Option<&Node>, path: &str) -> Option<PathBuf> {
        self.opt_string(node, path).map(PathBuf::from)
    }

    /// A required string: reports `missing` (at `key`'s value, or at the section) when absent
    /// or empty, unless the value was already reported as invalid.
    fn required(
        &mut self,
        section: &Mapping<'_>,
        section_path: &str,
        key: &str,
        missing: &str,
    ) -> String {
        let path = join(section_path, key);
        let value = self.string(section.node(key), &path);
        if value.is_empty() && !self.reported(&path) {
            self.error(section.pos_of(key), &path, missing);
        }
        value
    }

    /// A boolean field (YAML 1.1 words accepted, as by yaml.v3 into a Go `bool`).
    fn bool(&mut self, node: Option<&Node>, path: &str) -> Option<bool> {
        let text = self.text(node?, path, "a boolean", true)?;
        let value = parse_bool(&text.value);
        if value.is_none() {
            self.error(
                text.pos,
                path,
                format!(
                    "expected a boolean (true or false), found '{}'",
                    text.value.as_str()
                ),
            );
        }
        value
    }

    /// A Go duration field. Returns the nanoseconds (possibly negative) and the text as written.
    /// A plain YAML number is refused as yaml.v3 refuses it: a duration needs a unit.
    fn duration(&mut self, node: Option<&Node>, path: &str) -> Option<(i64, Text)> {
        let text = self.text(node?, path, "a duration", true)?;
        let value = text.value.as_str();
        match text.kind {
            Kind::Int | Kind::Float => {
                let found = if text.kind == Kind::Int {
                    "the integer"
                } else {
                    "the number"
                };
                self.error(
                    text.pos,
                    path,
                    format!("expected a duration with a unit (e.g. '30s', '5m', '1h'), found {found} {value}"),
                );
                None
            }
            _ => match parse_go_duration(value) {
                Ok(nanos) => Some((nanos, text)),
                Err(e) => {
                    self.error(text.pos, path, format!("invalid duration '{value}': {e}"));
                    None
                }
            },
        }
    }

    /// A non-negative duration; `0` and absent are `None`. `negative` builds the message for a
    /// negative value from the text as written.
    fn positive_duration(
        &mut self,
        node: Option<&Node>,
        path: &str,
        negative: impl FnOnce(&str) -> String,
    ) -> Option<Duration> {
        let (nanos, text) = self.duration(node, path)?;
        if nanos < 0 {
            self.error(text.pos, path, negative(&text.value));
            return None;
        }
        u64::try_from(nanos)
            .ok()
            .filter(|&n| n > 0)
            .map(Duration::from_nanos)
    }

    /// A list of strings. Null is empty; null items are skipped; a single scalar is an error
    /// (as in yaml.v3). `expand` selects `${VAR}` expansion of the items.
    fn strings(&mut self, node: Option<&Node>, path: &str, expand: bool) -> Vec<Located> {
        let Some(node) = node else { return Vec::new() };
        let items = match &node.value {
            Value::Seq(items) => items,
            _ if node.is_null() => return Vec::new(),
            _ => {
                self.bad_value(
                    node.pos,
                    path,
                    format!("expected a list of strings, found {}", node.describe()),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            if let Some(text) = self.text(item, &item_path, "a string", expand) {
                out.push(Located {
                    value: text.value.as_str().to_owned(),
                    pos: text.pos,
                    path: item_path,
                });
            }
        }
        out
    }

    // ---- the schema -------------------------------------------------------------------------

    fn config<K>(&mut self, root: Option<&Node>, backends: &[Backend<K>]) -> Option<Config<K>> {
        const TOP: &[&str] = &[
            "version", "address", "admin", "root", "tls", "policy", "cache", "api", "log", "keys",
            "keystore", "limits", "mlock", "rotation",
        ];
        let top = match root {
            Some(
                node @ Node {
                    value: Value::Map(_),
                    ..
                },
            ) => self.mapping(node, Pos::START, "", TOP),
            Some(node) if !node.is_null() => {
                let found = node.describe();
                self.error(
                    node.pos,
                    "",
                    format!("expected a mapping of configuration sections, found {found}"),
                );
                return None;
            }
            _ => Mapping {
                entries: &[],
                pos: Pos::START,
            },
        };

        if let Some(node) = top.node("version") {
            let version = self.string(Some(node), "version");
            if !version.is_empty() && version != "v1" {
                self.error(
                    node.pos,
                    "version",
                    format!("invalid server config version '{version}': expected 'v1'"),
                );
            }
        }
        let address = top.node("address").and_then(|node| {
            let text = self.string(Some(node), "address");
            if text.is_empty() {
                return None;
            }
            parse_address(&text)
                .map_err(|e| self.error(node.pos, "address", e))
                .ok()
        });
        let admin = self.admin(&top);
        let tls = self.tls(&top);
        let policies = self.policies(&top, &admin, &tls.proxy_identities);
        let cache = self.cache(&top);
        let api = self.api(&top);
        let log = self.log(&top);
        let keys = self.keys(&top);
        let keystore = self.keystore(&top, backends);
        let limits = self.limits(&top);
        let mlock = self.mlock(&top);
        let rotation = self.rotation(&top);

        Some(Config {
            address,
            admin,
            tls: tls.config,
            policies,
            cache,
            api,
            log,
            keys,
            keystore: keystore?,
            limits,
            mlock,
            rotation,
        })
    }

    /// `rotation` (not in Go KES): `<key name or pattern>: <period>` entries.
    fn rotation(&mut self, top: &Mapping<'_>) -> Vec<RotationConfig> {
        let entries = self.named_entries(top, "rotation", "key names or patterns to periods");
        let mut rules: Vec<RotationConfig> = Vec::with_capacity(entries.len());
        for entry in entries {
            let pattern = entry.key.as_str();
            let path = format!("rotation.{pattern}");
            if pattern.is_empty() || !kes_crypto::names::is_valid_pattern(pattern) {
                self.error(
                    entry.key_pos,
                    &path,
                    format!("invalid key name or pattern '{pattern}': a key name, or a prefix followed by '*'"),
                );
                continue;
            }
            let Some((nanos, text)) = self.duration(Some(&entry.value), &path) else {
                continue;
            };
            if nanos < 1_000_000_000 {
                self.error(
                    text.pos,
                    &path,
                    format!(
                        "invalid rotation period '{}': must be at least 1s",
                        text.value.as_str()
                    ),
                );
                continue;
            }
            rules.push(RotationConfig {
                pattern: pattern.to_owned(),
                period: std::time::Duration::from_nanos(nanos.unsigned_abs()),
            });
        }
        rules
    }

    /// `limits` (not in Go KES): resource limits of the server.
    fn limits(&mut self, top: &Mapping<'_>) -> LimitsConfig {
        let limits = self.section(
            top,
            "",
            "limits",
            &[
                "max_connections",
                "max_connections_per_address",
                "idle_timeout",
            ],
        );
        let mut config = LimitsConfig {
            max_connections: self.positive(
                &limits,
                "max_connections",
                "maximum number of connections",
            ),
            max_connections_per_address: self.positive(
                &limits,
                "max_connections_per_address",
                "maximum number of connections per address",
            ),
            idle_timeout: None,
        };
        if let Some(node) = limits.node("idle_timeout") {
            let path = "limits.idle_timeout";
            if let Some(text) = self.text(node, path, "a duration", true) {
                match parse_go_duration(text.value.trim()) {
                    Ok(ns) if ns > 0 => {
                        config.idle_timeout =
                            Some(std::time::Duration::from_nanos(ns.unsigned_abs()));
                    }
                    _ => self.error(
                        text.pos,
                        path,
                        format!(
                            "invalid idle timeout '{}': expected a positive duration such as 90s or 5m",
                            text.value.as_str()
                        ),
                    ),
                }
            }
        }
        config
    }

    /// A positive integer of the `limits` section.
    fn positive(&mut self, limits: &Mapping<'_>, key: &str, what: &str) -> Option<usize> {
        let node = limits.node(key)?;
        let path = format!("limits.{key}");
        let text = self.text(node, &path, "a number", true)?;
        match text.value.trim().parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                self.error(
                    text.pos,
                    &path,
                    format!(
                        "invalid {what} '{}': expected a positive integer",
                        text.value.as_str()
                    ),
                );
                None
            }
        }
    }

    /// `mlock` (not in Go KES): `auto` (lock memory where permitted), `required` (refuse to start
    /// without), `off`.
    fn mlock(&mut self, top: &Mapping<'_>) -> MlockMode {
        let Some(node) = top.node("mlock") else {
            return MlockMode::Auto;
        };
        let Some(text) = self.text(node, "mlock", "auto, required or off", true) else {
            return MlockMode::Auto;
        };
        match text.value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => MlockMode::Auto,
            "required" => MlockMode::Required,
            "off" | "false" | "no" => MlockMode::Off,
            other => {
                let message =
                    format!("invalid mlock mode '{other}': expected auto, required or off");
                self.error(text.pos, "mlock", message);
                MlockMode::Auto
            }
        }
    }

    fn admin(&mut self, top: &Mapping<'_>) -> String {
        let admin = self.section(top, "", "admin", &["identity"]);
        let identity = self.string(admin.node("identity"), "admin.identity");
        // `root:` is how KES v0.14 – v0.17.2 named the admin identity.
        let root = self.string(top.node("root"), "root");
        let check = |this: &mut Self, value: &str, key: &str, pos: Pos| {
            // A word that cannot be an identity (`disabled`) turns admin access off, as in the
            // original; a hex string that is not one (upper case, wrong length) is a mistake.
            let hex_like = value.bytes().all(|b| b.is_ascii_hexdigit());
            if hex_like && let Err(why) = check_identity(value) {
                this.error(pos, key, format!("invalid identity '{value}': {why}"));
            }
        };
        match (identity.is_empty(), root.is_empty()) {
            (false, true) => {
                check(self, &identity, "admin.identity", admin.pos_of("identity"));
                identity
            }
            (true, false) => {
                let pos = top.pos_of("root");
                check(self, &root, "root", pos);
                root
            }
            (false, false) => {
                let pos = top.get("root").map_or(Pos::START, |e| e.key_pos);
                self.error(
                    pos,
                    "root",
                    "'root' (the admin identity of KES before v0.17.3) and 'admin.identity' are both set; remove 'root'",
                );
                identity
            }
            (true, true) => {
                if !self.reported("admin.identity") && !self.reported("root") {
                    self.error(
                        admin.pos_of("identity"),
                        "admin.identity",
                        "no admin identity",
                    );
                }
                identity
            }
        }
    }

    fn tls(&mut self, top: &Mapping<'_>) -> Tls {
        const KEYS: &[&str] = &["key", "cert", "password", "auth", "ca", "proxy"];
        let tls = self.section(top, "", "tls", KEYS);
        let key = self.required(&tls, "tls", "key", "no private key");
        let cert = self.required(&tls, "tls", "cert", "no certificate");
        let password = self.secret(tls.node("password"), "tls.password");
        let auth = tls.node("auth").and_then(|node| {
            let text = self.text(node, "tls.auth", "a string", true)?;
            match text.value.trim().to_ascii_lowercase().as_str() {
                "" => None,
                "on" => Some(true),
                "off" => Some(false),
                _ => {
                    self.error(
                        text.pos,
                        "tls.auth",
                        format!("invalid auth '{}'", text.value.as_str()),
                    );
                    None
                }
            }
        });
        let ca = self.path(tls.node("ca"), "tls.ca");

        let proxy = self.section(&tls, "tls", "proxy", &["identities", "header"]);
        let header = self.section(&proxy, "tls.proxy", "header", &["cert"]);
        let header_cert = self.opt_string(header.node("cert"), "tls.proxy.header.cert");
        let mut proxy_identities: Vec<Located> = Vec::new();
        for id in self.strings(proxy.node("identities"), "tls.proxy.identities", true) {
            if id.value.is_empty() || proxy_identities.iter().any(|p| p.value == id.value) {
                continue;
            }
            if let Err(why) = check_identity(&id.value) {
                self.error(
                    id.pos,
                    &id.path,
                    format!("invalid identity '{}': {why}", id.value),
                );
                continue;
            }
            proxy_identities.push(id);
        }

        Tls {
            config: TlsConfig {
                key: PathBuf::from(key),
                cert: PathBuf::from(cert),
                password,
                auth,
                ca,
                proxy: ProxyConfig {
                    identities: proxy_identities.iter().map(|id| id.value.clone()).collect(),
                    header_cert,
                },
            },
            proxy_identities,
        }
    }

    fn policies(
        &mut self,
        top: &Mapping<'_>,
        admin: &str,
        proxies: &[Located],
    ) -> Vec<PolicyConfig> {
        for proxy in proxies {
            if proxy.value == admin {
                self.error(
                    proxy.pos,
                    &proxy.path,
                    format!(
                        "invalid tls proxy: identity '{}' is already admin",
                        proxy.value
                    ),
                );
            }
        }
        let entries = self.named_entries(top, "policy", "policies");

        let mut policies = Vec::with_capacity(entries.len());
        // identity → policy it is assigned to
        let mut assigned: HashMap<String, String> = HashMap::new();
        for entry in entries {
            let name = entry.key.as_str();
            let path = join("policy", name);
            if let Err(why) = check_name(name) {
                self.error(
                    entry.key_pos,
                    "policy",
                    format!("invalid policy name '{name}': {why}"),
                );
            }
            let policy = self.mapping(
                &entry.value,
                entry.key_pos,
                &path,
                &["allow", "deny", "identities", "paths"],
            );
            let mut allow: Vec<String> = self
                .strings(policy.node("allow"), &join(&path, "allow"), false)
                .into_iter()
                .map(|p| p.value)
                .collect();
            // `paths:` is the allow list of KES v0.14 – v0.16.
            if let Some(paths) = policy.get("paths") {
                if policy.node("allow").is_some_and(|n| !n.is_null()) && !paths.value.is_null() {
                    self.error(
                        paths.key_pos,
                        &path,
                        "'paths' (the allow list of KES before v0.17) and 'allow' are both set; move the 'paths' patterns to 'allow'",
                    );
                }
                let legacy = self.strings(Some(&paths.value), &join(&path, "paths"), false);
                allow.extend(legacy.into_iter().map(|p| p.value));
            }
            allow.retain(|p| !p.is_empty());
            let mut deny: Vec<String> = self
                .strings(policy.node("deny"), &join(&path, "deny"), false)
                .into_iter()
                .map(|p| p.value)
                .collect();
            deny.retain(|p| !p.is_empty());

            let mut identities: Vec<String> = Vec::new();
            for id in self.strings(policy.node("identities"), &join(&path, "identities"), true) {
                // An empty identity (e.g. from a variable set to "") matches no client.
                if id.value.is_empty() || identities.contains(&id.value) {
                    continue;
                }
                let message = if let Err(why) = check_identity(&id.value) {
                    Some(format!("invalid identity '{}': {why}", id.value))
                } else if id.value == admin {
                    Some(format!(
                        "invalid policy '{name}': identity '{}' is already admin",
                        id.value
                    ))
                } else if proxies.iter().any(|p| p.value == id.value) {
                    Some(format!(
                        "invalid policy '{name}': identity '{}' is already a TLS proxy",
                        id.value
                    ))
                } else {
                    assigned.get(&id.value).map(|other| {
                        format!(
                            "identity '{}' is already assigned to policy '{other}'",
                            id.value
                        )
                    })
                };
                match message {
                    Some(message) => self.error(id.pos, &id.path, message),
                    None => {
                        assigned.insert(id.value.clone(), name.to_owned());
                        identities.push(id.value);
                    }
                }
            }
            policies.push(PolicyConfig {
                name: name.to_owned(),
                allow,
                deny,
                identities,
            });
        }
        policies
    }

    fn cache(&mut self, top: &Mapping<'_>) -> CacheConfig {
        let cache = self.section(top, "", "cache", &["expiry"]);
        let expiry = self.section(&cache, "cache", "expiry", &["any", "unused", "offline"]);
        CacheConfig {
            any: self.positive_duration(expiry.node("any"), "cache.expiry.any", |d| {
                format!("invalid cache expiry '{d}': must not be negative")
            }),
            unused: self.positive_duration(expiry.node("unused"), "cache.expiry.unused", |d| {
                format!("invalid cache unused expiry '{d}': must not be negative")
            }),
            offline: self.positive_duration(expiry.node("offline"), "cache.expiry.offline", |d| {
                format!("invalid offline cache expiry '{d}': must not be negative")
            }),
        }
    }

    /// The entries of a top-level section whose keys are names chosen by the user (`policy`,
    /// `api`): empty when the section is absent or null; an error when it is not a mapping.
    fn named_entries<'n>(&mut self, top: &Mapping<'n>, key: &str, what: &str) -> &'n [Entry] {
        let Some(entry) = top.get(key) else {
            return &[];
        };
        match &entry.value.value {
            Value::Map(entries) => entries.as_slice(),
            _ if entry.value.is_null() => &[],
            _ => {
                let found = entry.value.describe();
                self.error(
                    entry.value.pos,
                    key,
                    format!("expected a mapping of {what}, found {found}"),
                );
                &[]
            }
        }
    }

    fn api(&mut self, top: &Mapping<'_>) -> Vec<ApiConfig> {
        let entries = self.named_entries(top, "api", "API paths");
        let mut api = Vec::with_capacity(entries.len());
        for entry in entries {
            let route = entry.key.as_str();
            let path = join("api", route);
            if kes_api::routes::index_of(route).is_none() {
                let other = match route.strip_suffix('/') {
                    Some(without) => without.to_owned(),
                    None => format!("{route}/"),
                };
                let hint = if kes_api::routes::index_of(&other).is_some() {
                    format!("; did you mean '{other}'?")
                } else {
                    String::new()
                };
                self.error(
                    entry.key_pos,
                    "api",
                    format!("unknown API path '{route}'{hint}"),
                );
            }
            let settings = self.mapping(
                &entry.value,
                entry.key_pos,
                &path,
                &["skip_auth", "timeout"],
            );
            let skip_auth = self
                .bool(settings.node("skip_auth"), &join(&path, "skip_auth"))
                .unwrap_or(false);
            let timeout =
                self.positive_duration(settings.node("timeout"), &join(&path, "timeout"), |d| {
                    format!("invalid timeout '{d}' for API '{route}': must not be negative")
                });
            api.push(ApiConfig {
                path: route.to_owned(),
                skip_auth,
                timeout,
            });
        }
        api
    }

    fn log(&mut self, top: &Mapping<'_>) -> LogConfig {
        let log = self.section(top, "", "log", &["error", "audit"]);
        let mut config = LogConfig::default();
        for (key, level) in [("error", &mut config.error), ("audit", &mut config.audit)] {
            let path = join("log", key);
            let Some(node) = log.node(key) else { continue };
            let Some(text) = self.text(node, &path, "a log level", true) else {
                continue;
            };
            match LogLevel::parse(&text.value) {
                Ok(parsed) => *level = parsed,
                Err(message) => self.error(text.pos, &path, message),
            }
        }
        config
    }

    fn keys(&mut self, top: &Mapping<'_>) -> Vec<String> {
        let Some(entry) = top.get("keys") else {
            return Vec::new();
        };
        let items = match &entry.value.value {
            Value::Seq(items) => items,
            _ if entry.value.is_null() => return Vec::new(),
            Value::Map(_) => {
                self.error(
                    entry.key_pos,
                    "keys",
                    "a mapping here is the keystore section of KES v0.13 and older: rename 'keys:' to 'keystore:' (in this version 'keys' is a list of keys to create, e.g. '- name: my-key')",
                );
                return Vec::new();
            }
            Value::Scalar(_) => {
                let found = entry.value.describe();
                self.error(
                    entry.value.pos,
                    "keys",
                    format!("expected a list of keys ('- name: <key>'), found {found}"),
                );
                return Vec::new();
            }
        };
        let mut keys: Vec<String> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("keys[{i}]");
            if matches!(item.value, Value::Scalar(_)) && !item.is_null() {
                self.error(
                    item.pos,
                    &path,
                    format!(
                        "expected a mapping ('name: <key>'), found {}",
                        item.describe()
                    ),
                );
                continue;
            }
            let key = self.mapping(item, item.pos, &path, &["name"]);
            let before = self.errors.len();
            let name = self.required(&key, &path, "name", "no key name");
            if self.errors.len() != before {
                continue;
            }
            let name_path = join(&path, "name");
            let pos = key.pos_of("name");
            if let Err(why) = check_name(&name) {
                self.error(pos, &name_path, format!("invalid key name '{name}': {why}"));
            } else if keys.contains(&name) {
                self.error(
                    pos,
                    &name_path,
                    format!("key '{name}' is defined multiple times"),
                );
            } else {
                keys.push(name);
            }
        }
        keys
    }

    fn keystore<K>(&mut self, top: &Mapping<'_>, backends: &[Backend<K>]) -> Option<K> {
        // The sections known: those of the table, of the original's that the table leaves
        // out, and of the ones the original removed.
        let mut outer: Vec<&str> = Vec::new();
        let names = backends
            .iter()
            .map(Backend::outer)
            .chain(GO_KES_BACKENDS.iter().map(Optional::outer))
            .chain(REMOVED_KEYSTORES.iter().map(|(key, _)| *key));
        for name in names {
            if !outer.contains(&name) {
                outer.push(name);
            }
        }
        let section = self.section(top, "", "keystore", &outer);
        let present: Vec<&Entry> = section
            .entries
            .iter()
            .filter(|e| outer.contains(&e.key.as_str()))
            .collect();
        if present.len() > 1 {
            let names: Vec<&str> = present.iter().map(|e| e.key.as_str()).collect();
            self.error(
                section.pos,
                "keystore",
                format!("more than one keystore specified ({})", names.join(", ")),
            );
        }
        let mut result = None;
        for entry in &present {
            let backend = self.backend(entry, backends);
            if result.is_none() {
                result = backend;
            }
        }
        // A v0.13 `keys:` keystore section was already reported with a hint to rename it.
        let legacy_keys = top
            .node("keys")
            .is_some_and(|n| matches!(n.value, Value::Map(_)));
        if present.is_empty()
            && !self.reported("keystore")
            && !(legacy_keys && top.get("keystore").is_none())
        {
            self.error(section.pos, "keystore", "no keystore specified");
        }
        result
    }

    /// One `keystore.<name>` entry: read by the backend of the table that owns it, or an error
    /// saying why there is none.
    fn backend<K>(&mut self, entry: &Entry, backends: &[Backend<K>]) -> Option<K> {
        let path = join("keystore", &entry.key);
        if let Some((_, what)) = REMOVED_KEYSTORES.iter().find(|(key, _)| *key == entry.key) {
            self.error(
                entry.key_pos,
                &path,
                format!("{what} is not available in this version of kes"),
            );
            return None;
        }
        let ours: Vec<&Backend<K>> = backends.iter().filter(|b| b.outer() == entry.key).collect();
        if ours.is_empty() {
            let (name, feature) = GO_KES_BACKENDS
                .iter()
                .find(|o| o.outer() == entry.key)
                .map_or((entry.key.as_str(), entry.key.as_str()), |o| {
                    (o.name, o.feature)
                });
            self.error(
                entry.key_pos,
                &path,
                format!(
                    "the {name} keystore is not available in this build of kes (it was built \
                     without the cargo feature '{feature}')"
                ),
            );
            return None;
        }
        // `aws: {secretsmanager: …}`: the backend's block is nested in the vendor's section.
        let (backend, node, key_pos, path) = if ours.iter().any(|b| b.inner().is_some()) {
            let inner: Vec<&str> = ours.iter().filter_map(|b| b.inner()).collect();
            let vendor = self.mapping(&entry.value, entry.key_pos, &path, &inner);
            let found = ours
                .iter()
                .find_map(|b| b.inner().and_then(|i| vendor.get(i)).map(|e| (*b, e)));
            let Some((backend, block)) = found else {
                if !self.reported(&path) {
                    let expected: Vec<String> = inner.iter().map(|i| format!("'{i}'")).collect();
                    let message = format!("expected a {} section", expected.join(" or "));
                    self.error(entry.key_pos, &path, message);
                }
                return None;
            };
            (
                backend,
                &block.value,
                block.key_pos,
                join(&path, &block.key),
            )
        } else {
            (*ours.first()?, &entry.value, entry.key_pos, path)
        };
        let map = self.mapping(node, key_pos, &path, backend.keys);
        let before = self.errors.len();
        let config = (backend.parse)(self, &Section { map, path });
        if self.errors.len() != before {
            return None;
        }
        config
    }
}

/// The `tls` section plus the proxy identities with their positions.
struct Tls {
    config: TlsConfig,
    proxy_identities: Vec<Located>,
}
