//! Name patterns of `kes migrate`: the syntax and matching rules of Go's `filepath.Match` (on
//! Unix), which the original `kes migrate` used, with one addition: `[!…]` negates a class like
//! `[^…]`, as in shells (Go reads `!` there as a literal, and no key name contains `!`).
//!
//! * `*` matches any sequence of characters except `/`;
//! * `?` matches one character except `/`;
//! * `[abc]`, `[a-z]`, `[^a-z]`, `[!a-z]` match one character in (or not in) the class; inside
//!   a class `\` escapes the next character, and an unescaped `-` or `]` where a class member is
//!   expected is an error (`[]a]`, `[-a]`, `[a-]`, `[a-b-c]`), as in Go;
//! * `\c` matches `c` literally;
//! * everything else matches itself.
//!
//! Unlike Go, which finds a syntax error only while it matches a name, [`Pattern::parse`]
//! checks the whole pattern at once, so a bad pattern is reported before any keystore is read.

use std::fmt;

/// A parsed, valid pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The pattern as written.
    text: String,
    /// Pieces between the `*` runs, in Go's "chunk" form: each optionally preceded by a star.
    chunks: Vec<Chunk>,
}

/// A run of `*` (possibly none) followed by the atoms up to the next `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chunk {
    star: bool,
    atoms: Vec<Atom>,
}

/// What matches exactly one character.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    /// The character itself (also an escaped one).
    Literal(char),
    /// `?`: any character but `/`.
    Any,
    /// `[…]`: a character in one of the inclusive ranges, or in none of them when negated.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Why a pattern is invalid (Go's `filepath.ErrBadPattern`, with the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// The pattern ends with a `\` that escapes nothing.
    TrailingEscape,
    /// A `[` without its closing `]`.
    UnterminatedClass,
    /// `[]…` or `[^]…`: a class must have a member before its `]`.
    EmptyClass,
    /// A `-` where a class member is expected (`[-a]`, `[a-b-c]`, `[a--]`).
    UnescapedDash,
    /// A range without its end (`[a-]`).
    OpenRange,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PatternError::TrailingEscape => "it ends with '\\', which escapes nothing",
            PatternError::UnterminatedClass => "a character class '[' is not closed with ']'",
            PatternError::EmptyClass => {
                "a character class is empty (write '[\\]]' for a literal ']')"
            }
            PatternError::UnescapedDash => {
                "a '-' in a character class that is not part of a range such as 'a-z' (write '\\-' for a literal '-')"
            }
            PatternError::OpenRange => {
                "a range in a character class has no end (write '\\-' for a literal '-')"
            }
        })
    }
}

impl std::error::Error for PatternError {}

impl Pattern {
    /// Parses `text`.
    ///
    /// # Errors
    ///
    /// A [`PatternError`] for a pattern Go's `filepath.Match` rejects with `ErrBadPattern`.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let mut chunks = Vec::new();
        let mut chars = text.chars().peekable();
        let mut current = Chunk {
            star: false,
            atoms: Vec::new(),
        };
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if current.star || !current.atoms.is_empty() {
                        chunks.push(current);
                    }
                    current = Chunk {
                        star: true,
                        atoms: Vec::new(),
                    };
                    while chars.next_if_eq(&'*').is_some() {}
                }
                '?' => current.atoms.push(Atom::Any),
                '\\' => {
                    let escaped = chars.next().ok_or(PatternError::TrailingEscape)?;
                    current.atoms.push(Atom::Literal(escaped));
                }
                '[' => current.atoms.push(parse_class(&mut chars)?),
                other => current.atoms.push(Atom::Literal(other)),
            }
        }
        if current.star || !current.atoms.is_empty() {
            chunks.push(current);
        }
        Ok(Pattern {
            text: text.to_owned(),
            chunks,
        })
    }

    /// The characters every matching name starts with (the literal characters before the first
    /// wildcard or class): a listing prefix that finds every match.
    pub fn literal_prefix(&self) -> String {
        match self.chunks.first() {
            Some(chunk) if !chunk.star => chunk
                .atoms
                .iter()
                .map_while(|atom| match atom {
                    Atom::Literal(c) => Some(*c),
                    _ => None,
                })
                .collect(),
            _ => String::new(),
        }
    }

    /// Whether `name` matches, with the rules of Go's `filepath.Match`: each chunk is matched
    /// at the leftmost position its star allows, and the last chunk must end the name.
    pub fn matches(&self, name: &str) -> bool {
        let mut name = name;
        let mut chunks = self.chunks.iter().peekable();
        'chunks: while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            if chunk.star && chunk.atoms.is_empty() {
                // A trailing star: the rest of the name, unless it crosses a '/'.
                return !name.contains('/');
            }
            if let Some(rest) = match_atoms(&chunk.atoms, name)
                && (rest.is_empty() || !last)
            {
                name = rest;
                continue;
            }
            if chunk.star {
                // Let the star take one more character each time; it cannot take a '/'.
                for (i, c) in name.char_indices() {
                    if c == '/' {
                        break;
                    }
                    let Some(after) = name.get(i + c.len_utf8()..) else {
                        break;
                    };
                    if let Some(rest) = match_atoms(&chunk.atoms, after) {
                        if last && !rest.is_empty() {
                            continue;
                        }
                        name = rest;
                        continue 'chunks;
                    }
                }
            }
            return false;
        }
        name.is_empty()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses a class after its `[`, up to and including its `]`.
fn parse_class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Atom, PatternError> {
    let negated = chars.next_if(|&c| c == '^' || c == '!').is_some();
    let mut ranges = Vec::new();
    loop {
        match chars.peek() {
            Some(']') if !ranges.is_empty() => {
                chars.next();
                return Ok(Atom::Class { negated, ranges });
            }
            Some(']') => return Err(PatternError::EmptyClass),
            _ => {}
        }
        let lo = class_member(chars, PatternError::UnescapedDash)?;
        let hi = if chars.next_if_eq(&'-').is_some() {
            class_member(chars, PatternError::OpenRange)?
        } else {
            lo
        };
        ranges.push((lo, hi));
    }
}

/// One character of a class (`\` escapes the next one): the start of a range (`misplaced` is
/// [`PatternError::UnescapedDash`]) or its end ([`PatternError::OpenRange`]), which is then
/// the error for an unescaped `-` (or, at a range's end, `]`) in its place.
fn class_member(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    misplaced: PatternError,
) -> Result<char, PatternError> {
    let c = match chars.next() {
        None => return Err(PatternError::UnterminatedClass),
        Some('-' | ']') => return Err(misplaced),
        Some('\\') => chars.next().ok_or(PatternError::UnterminatedClass)?,
        Some(c) => c,
    };
    // As in Go, every member must be followed by more pattern: at least the closing ']'.
    if chars.peek().is_none() {
        return Err(PatternError::UnterminatedClass);
    }
    Ok(c)
}

/// Matches `atoms` at the start of `s`; what is left of `s`.
fn match_atoms<'a>(atoms: &[Atom], s: &'a str) -> Option<&'a str> {
    let mut rest = s.chars();
    for atom in atoms {
        let c = rest.next()?;
        let ok = match atom {
            Atom::Literal(l) => c == *l,
            Atom::Any => c != '/',
            Atom::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        };
        if !ok {
            return None;
        }
    }
    Some(rest.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `path/filepath` match table (pattern, name, match, bad pattern), and a few more.
    const CASES: &[(&str, &str, bool, bool)] = &[
        ("abc", "abc", true, false),
        ("*", "abc", true, false),
        ("*c", "abc", true, false),
        ("a*", "a", true, false),
        ("a*", "abc", true, false),
        ("a*", "ab/c", false, false),
        ("a*/b", "abc/b", true, false),
        ("a*/b", "a/c/b", false, false),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", true, false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true, false),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false, false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false, false),
        ("a*b?c*x", "abxbbxdbxebxczzx", true, false),
        ("a*b?c*x", "abxbbxdbxebxczzy", false, false),
        ("ab[c]", "abc", true, false),
        ("ab[b-d]", "abc", true, false),
        ("ab[e-g]", "abc", false, false),
        ("ab[^c]", "abc", false, false),
        ("ab[^b-d]", "abc", false, false),
        ("ab[^e-g]", "abc", true, false),
        ("a\\*b", "a*b", true, false),
        ("a\\*b", "ab", false, false),
        ("a?b", "a☺b", true, false),
        ("a[^a]b", "a☺b", true, false),
        ("a???b", "a☺b", false, false),
        ("a[^a][^a][^a]b", "a☺b", false, false),
        ("[a-ζ]*", "α", true, false),
        ("*[a-ζ]", "A", false, false),
        ("a?b", "a/b", false, false),
        ("a*b", "a/b", false, false),
        ("[\\]a]", "]", true, false),
        ("[\\-]", "-", true, false),
        ("[x\\-]", "x", true, false),
        ("[x\\-]", "-", true, false),
        ("[x\\-]", "z", false, false),
        ("[\\-x]", "x", true, false),
        ("[\\-x]", "-", true, false),
        ("[\\-x]", "a", false, false),
        ("[]a]", "]", false, true),
        ("[-]", "-", false, true),
        ("[x-]", "x", false, true),
        ("[x-]", "-", false, true),
        ("[x-]", "z", false, true),
        ("[-x]", "x", false, true),
        ("[-x]", "-", false, true),
        ("[-x]", "a", false, true),
        ("\\", "a", false, true),
        ("[a-b-c]", "a", false, true),
        ("[", "a", false, true),
        ("[^", "a", false, true),
        ("[^bc", "a", false, true),
        ("a[", "a", false, true),
        ("a[", "ab", false, true),
        ("a[", "x", false, true),
        ("a/b[", "x", false, true),
        ("*x", "xxx", true, false),
        // Ours: `!` negates like `^`; empty patterns; more bad patterns.
        ("ab[!c]", "abc", false, false),
        ("ab[!e-g]", "abc", true, false),
        ("[!]", "!", false, true),
        ("", "", true, false),
        ("", "a", false, false),
        ("*", "", true, false),
        ("**", "abc", true, false),
        ("a**c", "abc", true, false),
        ("my-app-*", "my-app-1", true, false),
        ("my-app-*", "my-app", false, false),
        ("my-app-?", "my-app-12", false, false),
        ("key-[0-9][0-9]", "key-42", true, false),
        ("key-[0-9][0-9]", "key-4x", false, false),
        ("*-backup", "a-backup-backup", true, false),
        ("*-backup", "a-backup-x", false, false),
        ("a\\", "a", false, true),
        ("[a\\", "a", false, true),
        ("[a-\\", "a", false, true),
        ("[a-", "a", false, true),
        ("[a", "a", false, true),
        ("[^]a]", "b", false, true),
        ("x*[", "xyz", false, true),
    ];

    #[test]
    fn go_filepath_match_cases() {
        for &(pattern, name, want, bad) in CASES {
            match Pattern::parse(pattern) {
                Ok(p) => {
                    assert!(!bad, "{pattern:?} should be a bad pattern");
                    assert_eq!(p.matches(name), want, "{pattern:?} on {name:?}");
                }
                Err(err) => assert!(bad, "{pattern:?} rejected: {err}"),
            }
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = |p: &str| Pattern::parse(p).unwrap_err();
        assert_eq!(err("["), PatternError::UnterminatedClass);
        assert_eq!(err("abc[d-f"), PatternError::UnterminatedClass);
        assert_eq!(err("a\\"), PatternError::TrailingEscape);
        assert_eq!(err("[]a]"), PatternError::EmptyClass);
        assert_eq!(err("[^]a]"), PatternError::EmptyClass);
        assert_eq!(err("[-a]"), PatternError::UnescapedDash);
        assert_eq!(err("[a-b-c]"), PatternError::UnescapedDash);
        assert_eq!(err("[a-]"), PatternError::OpenRange);
        assert_eq!(
            err("[").to_string(),
            "a character class '[' is not closed with ']'"
        );
    }

    #[test]
    fn literal_prefixes_find_every_match() {
        let prefix = |p: &str| Pattern::parse(p).unwrap().literal_prefix();
        assert_eq!(prefix("*"), "");
        assert_eq!(prefix(""), "");
        assert_eq!(prefix("my-app-*"), "my-app-");
        assert_eq!(prefix("my\\-app?x"), "my-app");
        assert_eq!(prefix("key-[0-9]"), "key-");
        assert_eq!(prefix("exact"), "exact");
        for &(pattern, name, want, bad) in CASES {
            if !bad && want {
                assert!(name.starts_with(&prefix(pattern)), "{pattern:?} {name:?}");
            }
        }
    }

    #[test]
    fn arbitrary_patterns_never_panic() {
        // Every pattern over a small alphabet up to length 4, against a few names.
        let alphabet = ['a', '*', '?', '[', ']', '^', '!', '-', '\\', '/'];
        let names = ["", "a", "-", "a/a", "]", "a-a", "!a"];
        let mut patterns = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for p in &patterns {
                for c in alphabet {
                    next.push(format!("{p}{c}"));
                }
            }
            for p in &patterns {
                if let Ok(parsed) = Pattern::parse(p) {
                    for name in names {
                        let _ = parsed.matches(name);
                    }
                }
            }
            patterns = next;
        }
    }
}
