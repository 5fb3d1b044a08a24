//! Stage one: YAML text to a tree that remembers where every key and value was.
//!
//! This is the only module that sees the YAML parser. It reads the first document only (as Go's
//! yaml.v3 `Unmarshal` does), resolves aliases (with a cap on how much they may expand, against
//! "billion laughs" documents), applies `<<` merge keys, and reports a key repeated in one
//! mapping the way yaml.v3 does (`mapping key "x" already defined at line N`). It knows nothing
//! of the KES schema: that is stage two (`schema.rs`).
//!
//! A syntax error ends stage one (the parser cannot go on); repeated keys and unsupported tags
//! are collected and the tree is still built, so that stage two can report its errors too.

use std::collections::HashMap;

use granit_parser::{Event, Options, Parser, ScalarStyle, Span, Tag};
use zeroize::Zeroizing;

use crate::Error;

/// Upper bound on the text (bytes plus one per node) that aliases may copy into the tree.
/// A configuration file never comes close; a "billion laughs" document hits it quickly.
const MAX_ALIAS_WEIGHT: usize = 1 << 20;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Pos {
    /// The start of the document, used for errors about keys that are missing altogether.
    pub(crate) const START: Pos = Pos { line: 1, column: 1 };
}

/// A YAML node with the position of its first character.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) pos: Pos,
    pub(crate) value: Value,
    /// Size of the subtree (one per node plus the text bytes), for the alias cap.
    weight: usize,
}

#[derive(Clone, Debug)]
pub(crate) enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A scalar: its text after YAML escape processing, and what YAML resolves it to.
#[derive(Clone, Debug)]
pub(crate) struct Scalar {
    /// Wiped on drop: scalars include passwords and other credentials.
    pub(crate) text: Zeroizing<String>,
    pub(crate) kind: Kind,
}

/// What a scalar resolves to under the YAML core schema, as yaml.v3 resolves it: plain scalars
/// by their text, quoted and block scalars are strings, explicit core tags win.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
}

/// One `key: value` pair of a mapping.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_pos: Pos,
    pub(crate) value: Node,
}

impl Node {
    /// Whether this is a null scalar (`~`, `null`, an empty value).
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.kind == Kind::Null)
    }

    /// A short description of the node for "expected X, found Y" messages. Never includes the
    /// text of a string scalar, which may be a secret.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.value {
            Value::Map(_) => "a mapping",
            Value::Seq(_) => "a list",
            Value::Scalar(s) => match s.kind {
                Kind::Null => "null",
                Kind::Bool => "a boolean",
                Kind::Int => "an integer",
                Kind::Float => "a number",
                Kind::Str => "a string",
            },
        }
    }
}

/// The result of stage one.
pub(crate) struct Tree {
    /// The root node of the first document; `None` for an empty file.
    pub(crate) root: Option<Node>,
    /// Problems that did not stop the parse (repeated keys, unsupported tags).
    pub(crate) errors: Vec<Error>,
}

/// Parses the first YAML document of `source`.
///
/// `Err` holds the one syntax error that ended the parse.
pub(crate) fn parse(source: &str, file: &str) -> Result<Tree, Error> {
    let mut options = Options::default();
    options.emit_comments = false;
    let mut builder = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        alias_weight: 0,
        root: None,
        errors: Vec::new(),
    };
    for event in Parser::new_from_str_with_options(source, options) {
        let (event, span) = event.map_err(|e| {
            let marker = e.marker();
            error(
                file,
                Pos {
                    line: marker.line(),
                    column: marker.col() + 1,
                },
                "",
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        match event {
            // Only the first document is read; what follows is not even scanned.
            Event::DocumentEnd | Event::StreamEnd => break,
            Event::Scalar(text, style, anchor, tag) => {
                let pos = pos(&span);
                let kind = builder.resolve(&text, style, tag.as_deref(), pos);
                let weight = 1 + text.len();
                let node = Node {
                    pos,
                    value: Value::Scalar(Scalar {
                        text: Zeroizing::new(text.into_owned()),
                        kind,
                    }),
                    weight,
                };
                builder.finish_node(node, anchor);
            }
            Event::Alias(id) => builder.alias(id, pos(&span))?,
            Event::SequenceStart(_, anchor, tag) => {
                builder.check_collection_tag(tag.as_deref(), "seq", pos(&span));
                let path = builder.child_path();
                builder.stack.push(Frame::Seq {
                    pos: pos(&span),
                    anchor,
                    path,
                    items: Vec::new(),
                    weight: 1,
                });
            }
            Event::MappingStart(_, anchor, tag) => {
                builder.check_collection_tag(tag.as_deref(), "map", pos(&span));
                let path = builder.child_path();
                builder.stack.push(Frame::Map(MapFrame {
                    pos: pos(&span),
                    anchor,
                    path,
                    entries: Vec::new(),
                    seen: HashMap::new(),
                    key: None,
                    merges: Vec::new(),
                    weight: 1,
                }));
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq {
                    pos,
                    anchor,
                    items,
                    weight,
                    ..
                }) = builder.stack.pop()
                {
                    builder.finish_node(
                        Node {
                            pos,
                            value: Value::Seq(items),
                            weight,
                        },
                        anchor,
                    );
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(frame)) = builder.stack.pop() {
                    let anchor = frame.anchor;
                    let node = builder.close_map(frame);
                    builder.finish_node(node, anchor);
                }
            }
            _ => {}
        }
    }
    Ok(Tree {
        root: builder.root,
        errors: builder.errors,
    })
}

/// Where a node starts: at its tag when it has one, else at its content.
fn pos(span: &Span) -> Pos {
    let start = span.tag_start().unwrap_or(span.start);
    Pos {
        line: start.line(),
        column: start.col() + 1,
    }
}

fn error(file: &str, pos: Pos, path: &str, message: String) -> Error {
    Error {
        file: file.to_owned(),
        line: pos.line,
        column: pos.column,
        path: path.to_owned(),
        message,
    }
}

/// Joins a key onto a dotted path.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

struct Builder<'a> {
    file: &'a str,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    alias_weight: usize,
    root: Option<Node>,
    errors: Vec<Error>,
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        path: String,
        items: Vec<Node>,
        weight: usize,
    },
    Map(MapFrame),
}

struct MapFrame {
    pos: Pos,
    anchor: usize,
    path: String,
    entries: Vec<Entry>,
    /// Key text → line of its first occurrence.
    seen: HashMap<String, usize>,
    /// The key whose value comes next; `Some(None)` for a key that was not a scalar.
    key: Option<Option<(String, Pos)>>,
    /// Values of `<<` merge keys, applied when the mapping ends.
    merges: Vec<Node>,
    weight: usize,
}

impl Builder<'_> {
    /// The path of a collection that starts now, for messages about repeated keys in it.
    fn child_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq { path, items, .. }) => format!("{path}[{}]", items.len()),
            Some(Frame::Map(frame)) => match &frame.key {
                Some(Some((key, _))) => join(&frame.path, key),
                // A collection used as a key (reported when it ends) or as the value of one.
                _ => frame.path.clone(),
            },
        }
    }

    fn resolve(&mut self, text: &str, style: ScalarStyle, tag: Option<&Tag>, pos: Pos) -> Kind {
        let Some(tag) = tag else {
            return if style == ScalarStyle::Plain {
                resolve_plain(text)
            } else {
                Kind::Str
            };
        };
        match tag.core_suffix() {
            Some("str") => Kind::Str,
            Some("null") => Kind::Null,
            Some("bool") => Kind::Bool,
            Some("int") => Kind::Int,
            Some("float") => Kind::Float,
            _ if tag.handle() == "!" && tag.suffix().is_empty() => Kind::Str, // `! text`
            _ => {
                let path = self.child_path();
                self.errors.push(error(
                    self.file,
                    pos,
                    &path,
                    format!("unsupported YAML tag '{}' on a scalar", tag.original()),
                ));
                Kind::Str
            }
        }
    }

    fn check_collection_tag(&mut self, tag: Option<&Tag>, expected: &str, pos: Pos) {
        let Some(tag) = tag else { return };
        if tag.core_suffix() == Some(expected) {
            return;
        }
        let path = self.child_path();
        self.errors.push(error(
            self.file,
            pos,
            &path,
            format!("unsupported YAML tag '{}'", tag.original()),
        ));
    }

    fn alias(&mut self, id: usize, at: Pos) -> Result<(), Error> {
        let Some(target) = self.anchors.get(&id) else {
            // The parser rejects aliases to unknown anchors itself; be safe anyway.
            return Err(error(
                self.file,
                at,
                "",
                "invalid YAML: unknown anchor".to_owned(),
            ));
        };
        self.alias_weight = self.alias_weight.saturating_add(target.weight);
        if self.alias_weight > MAX_ALIAS_WEIGHT {
            return Err(error(
                self.file,
                at,
                "",
                "invalid YAML: document contains excessive aliasing".to_owned(),
            ));
        }
        let mut node = target.clone();
        node.pos = at;
        self.finish_node(node, 0);
        Ok(())
    }

    /// Records a completed node under its anchor and hands it to its parent.
    fn finish_node(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, weight, .. }) => {
                *weight = weight.saturating_add(node.weight);
                items.push(node);
            }
            Some(Frame::Map(frame)) => match frame.key.take() {
                None => {
                    if let Value::Scalar(s) = &node.value {
                        frame.key = Some(Some((s.text.as_str().to_owned(), node.pos)));
                    } else {
                        frame.key = Some(None);
                        let message = format!("unsupported mapping key: {}", node.describe());
                        self.errors
                            .push(error(self.file, node.pos, &frame.path, message));
                    }
                }
                Some(None) => {}
                Some(Some((key, key_pos))) => {
                    frame.weight = frame.weight.saturating_add(node.weight + key.len());
                    if key == "<<" {
                        frame.merges.push(node);
                    } else if let Some(line) = frame.seen.get(&key) {
                        let message =
                            format!("mapping key \"{key}\" already defined at line {line}");
                        self.errors
                            .push(error(self.file, key_pos, &frame.path, message));
                    } else {
                        frame.seen.insert(key.clone(), key_pos.line);
                        frame.entries.push(Entry {
                            key,
                            key_pos,
                            value: node,
                        });
                    }
                }
            },
        }
    }

    /// Applies `<<` merge keys (explicit keys win, then earlier merged mappings) and builds the
    /// mapping node.
    fn close_map(&mut self, mut frame: MapFrame) -> Node {
        for merge in std::mem::take(&mut frame.merges) {
            let sources = match merge.value {
                Value::Map(entries) => vec![entries],
                Value::Seq(items) => {
                    let mut sources = Vec::with_capacity(items.len());
                    for item in items {
                        match item.value {
                            Value::Map(entries) => sources.push(entries),
                            _ => self.bad_merge(item.pos, &frame.path),
                        }
                    }
                    sources
                }
                Value::Scalar(_) => {
                    self.bad_merge(merge.pos, &frame.path);
                    Vec::new()
                }
            };
            for entry in sources.into_iter().flatten() {
                if !frame.seen.contains_key(&entry.key) {
                    frame.seen.insert(entry.key.clone(), entry.key_pos.line);
                    frame.entries.push(entry);
                }
            }
        }
        Node {
            pos: frame.pos,
            value: Value::Map(frame.entries),
            weight: frame.weight,
        }
    }

    fn bad_merge(&mut self, pos: Pos, path: &str) {
        self.errors.push(error(
            self.file,
            pos,
            path,
            "invalid merge ('<<'): expected a mapping or a list of mappings".to_owned(),
        ));
    }
}

/// Resolves a plain (unquoted, untagged) scalar the way yaml.v3 does.
fn resolve_plain(text: &str) -> Kind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Kind::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => Kind::Bool,
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => Kind::Float,
        _ if is_int(text) => Kind::Int,
        _ if is_float(text) => Kind::Float,
        _ => Kind::Str,
    }
}

/// An integer as Go's `strconv.ParseInt(s, 0, 64)` reads it after yaml.v3 removed `_`
/// (decimal, `0x`, `0o`, `0b`, leading-zero octal), ignoring the 64-bit range.
fn is_int(text: &str) -> bool {
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    let digits = plain.strip_prefix(['+', '-']).unwrap_or(&plain);
    let lower = digits.to_ascii_lowercase();
    let (body, radix) = if let Some(rest) = lower.strip_prefix("0x") {
        (rest, 16)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (rest, 8)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (rest, 2)
    } else {
        (lower.as_str(), 10)
    };
    !body.is_empty() && body.chars().all(|c| c.is_digit(radix))
}

/// yaml.v3's float form: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn is_float(text: &str) -> bool {
    let s = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (s.get(..i).unwrap_or(""), s.get(i + 1..)),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => digits(e.strip_prefix(['+', '-']).unwrap_or(e)),
    };
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(src: &str) -> Tree {
        parse(src, "t.yml").unwrap()
    }

    fn map(node: &Node) -> &[Entry] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("not a map: {other:?}"),
        }
    }

    fn text(node: &Node) -> &str {
        match &node.value {
            Value::Scalar(s) => s.text.as_str(),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn positions_are_one_based() {
        let t = tree("a: 1\nbb:\n  c: x\n");
        let root = t.root.unwrap();
        let entries = map(&root);
        assert_eq!(entries[0].key_pos, Pos { line: 1, column: 1 });
        assert_eq!(entries[0].value.pos, Pos { line: 1, column: 4 });
        let inner = map(&entries[1].value);
        assert_eq!(inner[0].key_pos, Pos { line: 3, column: 3 });
        assert_eq!(inner[0].value.pos, Pos { line: 3, column: 6 });
    }

    #[test]
    fn resolves_plain_scalars_like_yaml_v3() {
        for (s, kind) in [
            ("0", Kind::Int),
            ("-12", Kind::Int),
            ("1_000", Kind::Int),
            ("0x1F", Kind::Int),
            ("0o17", Kind::Int),
            ("1.5", Kind::Float),
            (".5", Kind::Float),
            ("1e3", Kind::Float),
            ("-.inf", Kind::Float),
            ("5m", Kind::Str),
            ("1.5h", Kind::Str),
            ("on", Kind::Str),
            ("true", Kind::Bool),
            ("~", Kind::Null),
            ("", Kind::Null),
            ("0x", Kind::Str),
            ("1e", Kind::Str),
            ("+", Kind::Str),
            (".", Kind::Str),
        ] {
            assert_eq!(resolve_plain(s), kind, "{s:?}");
        }
    }

    #[test]
    fn quoting_and_tags_decide_the_kind() {
        let t = tree("a: \"0\"\nb: '1'\nc: !!str 2\nd: !!int \"3\"\ne: |\n  4\n");
        let root = t.root.unwrap();
        let kinds: Vec<Kind> = map(&root)
            .iter()
            .map(|e| match &e.value.value {
                Value::Scalar(s) => s.kind,
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            kinds,
            [Kind::Str, Kind::Str, Kind::Str, Kind::Int, Kind::Str]
        );
    }

    #[test]
    fn repeated_key_is_reported_and_first_value_kept() {
        let t = tree("a:\n  b: 1\n  b: 2\n");
        assert_eq!(t.errors.len(), 1);
        assert_eq!(
            t.errors[0].to_string(),
            "t.yml:3:3: a: mapping key \"b\" already defined at line 2"
        );
        let root = t.root.unwrap();
        let inner = map(&map(&root)[0].value);
        assert_eq!(inner.len(), 1);
        assert_eq!(text(&inner[0].value), "1");
    }

    #[test]
    fn only_the_first_document_is_read() {
        let t = tree("a: 1\n---\nb: [unclosed\n");
        assert!(t.errors.is_empty());
        let root = t.root.unwrap();
        assert_eq!(map(&root).len(), 1);
    }

    #[test]
    fn syntax_error_is_located() {
        let Err(e) = parse("a: b\n  c: d\n", "t.yml") else {
            panic!()
        };
        assert_eq!((e.line, e.column), (2, 4));
        assert!(e.message.starts_with("invalid YAML: "), "{e}");
    }

    #[test]
    fn aliases_and_merge_keys() {
        let t = tree("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\nlist: [*b]\n");
        assert!(t.errors.is_empty(), "{:?}", t.errors);
        let root = t.root.unwrap();
        let entries = map(&root);
        let merged = map(&entries[1].value);
        let pairs: Vec<(&str, &str)> = merged
            .iter()
            .map(|e| (e.key.as_str(), text(&e.value)))
            .collect();
        assert_eq!(pairs, [("y", "3"), ("x", "1")]);
        // An aliased node is positioned at the alias.
        match &entries[2].value.value {
            Value::Seq(items) => assert_eq!(items[0].pos, Pos { line: 5, column: 8 }),
            _ => panic!(),
        }
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut doc = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let mut prev = 'a';
        for name in 'b'..='j' {
            doc.push_str(&format!("{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
            prev = name;
        }
        let Err(e) = parse(&doc, "t.yml") else {
            panic!("accepted")
        };
        assert!(e.message.contains("excessive aliasing"), "{e}");
    }

    #[test]
    fn non_scalar_keys_and_unknown_tags_are_reported() {
        let t = tree("? [a]\n: b\nc: !vault x\n");
        let messages: Vec<String> = t.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "t.yml:1:3: unsupported mapping key: a list",
                "t.yml:3:4: c: unsupported YAML tag '!vault' on a scalar",
            ]
        );
    }

    #[test]
    fn empty_document_has_no_root() {
        assert!(tree("").root.is_none());
        assert!(tree("# only a comment\n").root.is_none());
    }
}
