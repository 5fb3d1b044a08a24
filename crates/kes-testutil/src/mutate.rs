//! Input mutators: small random edits of real inputs, so that a smoke test or fuzz seed gets
//! past the first syntax check and deep into the parser or matcher under test.

use crate::Rng;

/// One kind of byte-level edit a [`ByteMutator`] may draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOp {
    /// Flip one bit of one byte.
    FlipBit,
    /// Insert one of the mutator's tokens at a random position.
    InsertToken,
    /// Delete a run of 1 to `n` bytes (fewer at the end of the data); `n` must be at least 1.
    DeleteRun(usize),
    /// Cut the data at a random position (possibly its end, leaving it whole).
    Truncate,
    /// Cut the data at a random position and append the tail of the other input from a random
    /// position: the head of one input, the tail of another.
    Splice,
    /// Copy a run of 1 to `n` bytes to a random position: fields given twice, deeper nesting,
    /// longer alias chains. `n` must be at least 1.
    RepeatRun(usize),
    /// Insert one random byte at a random position.
    InsertByte,
}

impl ByteOp {
    /// Whether the edit needs a byte to work on (it cannot apply to empty data).
    fn needs_data(self) -> bool {
        matches!(
            self,
            ByteOp::FlipBit | ByteOp::DeleteRun(_) | ByteOp::RepeatRun(_)
        )
    }
}

/// A byte-level mutator: which edits it draws from, and the tokens it inserts.
///
/// Each call to [`ByteMutator::mutate`] draws one of `ops` uniformly (list an edit twice to
/// make it twice as likely), so the order of `ops` is part of the replayed stream: keep it
/// when a test's seed must keep reproducing the same cases.
#[derive(Debug, Clone, Copy)]
pub struct ByteMutator<'a, T> {
    /// The edits to draw from; must not be empty.
    pub ops: &'a [ByteOp],
    /// What [`ByteOp::InsertToken`] inserts (`&str` or `&[u8]`): syntax of the format under
    /// test, escapes, field names, odd characters. Must not be empty when `ops` holds
    /// [`ByteOp::InsertToken`].
    pub tokens: &'a [T],
}

impl<T: AsRef<[u8]>> ByteMutator<'_, T> {
    /// Applies one random edit to `data`; `other` is the input [`ByteOp::Splice`] takes its
    /// tail from (pass `&[]` when `ops` has no splice). An edit that needs a byte to work on
    /// ([`ByteOp::FlipBit`], [`ByteOp::DeleteRun`], [`ByteOp::RepeatRun`]) inserts a random
    /// byte instead when `data` is empty.
    ///
    /// # Panics
    ///
    /// If `ops` is empty, if `tokens` is empty and an insertion is drawn, or if a drawn run
    /// length is 0: these are mistakes in the test, not in the input.
    pub fn mutate(&self, rng: &mut Rng, mut data: Vec<u8>, other: &[u8]) -> Vec<u8> {
        let mut op = *rng.pick(self.ops);
        if data.is_empty() && op.needs_data() {
            op = ByteOp::InsertByte;
        }
        match op {
            ByteOp::FlipBit => {
                let i = rng.below(data.len());
                let bit = rng.below(8);
                if let Some(b) = data.get_mut(i) {
                    *b ^= 1 << bit;
                }
            }
            ByteOp::InsertToken => {
                let i = rng.below(data.len() + 1);
                let token = rng.pick(self.tokens).as_ref();
                data.splice(i..i, token.iter().copied());
            }
            ByteOp::DeleteRun(max) => {
                let i = rng.below(data.len());
                let j = (i + 1 + rng.below(max)).min(data.len());
                data.drain(i..j);
            }
            ByteOp::Truncate => data.truncate(rng.below(data.len() + 1)),
            ByteOp::Splice => {
                data.truncate(rng.below(data.len() + 1));
                let k = rng.below(other.len() + 1);
                data.extend(other.iter().skip(k));
            }
            ByteOp::RepeatRun(max) => {
                let i = rng.below(data.len());
                let j = (i + 1 + rng.below(max)).min(data.len());
                let run: Vec<u8> = data.iter().skip(i).take(j - i).copied().collect();
                let k = rng.below(data.len() + 1);
                data.splice(k..k, run);
            }
            ByteOp::InsertByte => {
                let i = rng.below(data.len() + 1);
                data.insert(i, rng.byte());
            }
        }
        data
    }
}

/// Applies one random edit to `text`, always on character boundaries (for inputs that are
/// `&str`): insert one of `pieces`, delete a run of 1 to 4 characters, replace a character by
/// the first character of one of `pieces`, truncate, splice with `other` (head of `text`, tail
/// of `other`), or flip one of the low eight bits of a character, each equally likely. An edit
/// that needs a character to work on appends `*` instead when `text` is empty (a wildcard for
/// patterns, one more character for anything else); replacing by an empty piece leaves the
/// character.
///
/// # Panics
///
/// If `pieces` is empty and an edit that uses it is drawn.
pub fn mutate_text(rng: &mut Rng, text: &str, other: &str, pieces: &[&str]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    match rng.below(6) {
        // Insert a piece.
        0 => {
            let i = rng.below(chars.len() + 1);
            let piece: Vec<char> = rng.pick(pieces).chars().collect();
            chars.splice(i..i, piece);
        }
        // Delete a run.
        1 if !chars.is_empty() => {
            let i = rng.below(chars.len());
            let j = (i + 1 + rng.below(4)).min(chars.len());
            chars.drain(i..j);
        }
        // Replace a character.
        2 if !chars.is_empty() => {
            let i = rng.below(chars.len());
            let piece = rng.pick(pieces);
            if let (Some(c), Some(new)) = (chars.get_mut(i), piece.chars().next()) {
                *c = new;
            }
        }
        // Truncate.
        3 => chars.truncate(rng.below(chars.len() + 1)),
        // Splice with the other input: head of one, tail of the other.
        4 => {
            let tail: Vec<char> = other.chars().collect();
            chars.truncate(rng.below(chars.len() + 1));
            let k = rng.below(tail.len() + 1);
            chars.extend(tail.into_iter().skip(k));
        }
        // Flip a bit of a character. The high bits stay, so the result is a scalar value
        // again (a surrogate would need them changed); `?` only keeps this total.
        _ if !chars.is_empty() => {
            let i = rng.below(chars.len());
            let bit = rng.below(8);
            if let Some(c) = chars.get_mut(i) {
                *c = char::from_u32(u32::from(*c) ^ (1 << bit)).unwrap_or('?');
            }
        }
        _ => chars.push('*'),
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &[u8] = b"{\"key\":\"value\"}";
    const OTHER: &[u8] = b"[1,2,3]";

    /// A mutator that only ever draws `op`.
    fn only(op: &[ByteOp]) -> ByteMutator<'_, &'static str> {
        ByteMutator {
            ops: op,
            tokens: &["<token>", "é"],
        }
    }

    /// `f(before, after)` for many random applications of the single edit `op` to [`DATA`].
    fn each(op: ByteOp, mut f: impl FnMut(&[u8], &[u8])) {
        let ops = [op];
        let mutator = only(&ops);
        let mut rng = Rng::new(0x6d75_7461_7465);
        for _ in 0..500 {
            let after = mutator.mutate(&mut rng, DATA.to_vec(), OTHER);
            f(DATA, &after);
        }
    }

    /// The length of the common prefix and of the common suffix of `a` and `b`.
    fn common_ends(a: &[u8], b: &[u8]) -> (usize, usize) {
        let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let tail = a
            .iter()
            .rev()
            .zip(b.iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        (head, tail)
    }

    #[test]
    fn flip_bit_changes_exactly_one_bit() {
        let mut positions = std::collections::BTreeSet::new();
        each(ByteOp::FlipBit, |before, after| {
            assert_eq!(before.len(), after.len());
            let diff: Vec<usize> = (0..before.len())
                .filter(|&i| before[i] != after[i])
                .collect();
            assert_eq!(diff.len(), 1);
            assert_eq!((before[diff[0]] ^ after[diff[0]]).count_ones(), 1);
            positions.insert(diff[0]);
        });
        assert_eq!(
            positions.len(),
            DATA.len(),
            "every byte gets flipped at some point"
        );
    }

    #[test]
    fn insert_token_inserts_one_whole_token() {
        each(ByteOp::InsertToken, |before, after| {
            let token: &[u8] = if after.len() == before.len() + "<token>".len() {
                b"<token>"
            } else {
                "é".as_bytes()
            };
            assert_eq!(after.len(), before.len() + token.len());
            let at = (0..=before.len())
                .find(|&i| after[..i] == before[..i] && after[i + token.len()..] == before[i..])
                .expect("the rest of the data is unchanged");
            assert_eq!(&after[at..at + token.len()], token);
        });
    }

    #[test]
    fn delete_run_removes_one_to_n_adjacent_bytes() {
        let mut lengths = std::collections::BTreeSet::new();
        each(ByteOp::DeleteRun(4), |before, after| {
            let removed = before.len() - after.len();
            assert!((1..=4).contains(&removed), "{removed}");
            let (head, tail) = common_ends(before, after);
            assert!(head + tail >= after.len(), "only one run is removed");
            lengths.insert(removed);
        });
        assert_eq!(lengths.into_iter().collect::<Vec<_>>(), [1, 2, 3, 4]);
    }

    #[test]
    fn truncate_keeps_a_prefix() {
        let mut whole = false;
        let mut empty = false;
        each(ByteOp::Truncate, |before, after| {
            assert!(before.starts_with(after));
            whole |= after.len() == before.len();
            empty |= after.is_empty();
        });
        assert!(whole && empty, "both ends are reachable");
    }

    #[test]
    fn splice_joins_a_head_of_the_data_and_a_tail_of_the_other_input() {
        each(ByteOp::Splice, |before, after| {
            let ok = (0..=after.len())
                .any(|i| before.starts_with(&after[..i]) && OTHER.ends_with(&after[i..]));
            assert!(ok, "{:?}", String::from_utf8_lossy(after));
        });
    }

    #[test]
    fn repeat_run_inserts_a_copy_of_a_run_of_one_to_n_bytes() {
        each(ByteOp::RepeatRun(3), |before, after| {
            let added = after.len() - before.len();
            assert!((1..=3).contains(&added), "{added}");
            let (head, tail) = common_ends(before, after);
            assert!(
                head + tail >= before.len(),
                "the data is unchanged around the copy"
            );
            // The inserted bytes are a run of the original (where the insertion point is
            // ambiguous, one of the candidates is).
            let copy = (0..=before.len()).any(|at| {
                after[..at] == before[..at]
                    && after[at + added..] == before[at..]
                    && before.windows(added).any(|w| w == &after[at..at + added])
            });
            assert!(copy, "{:?}", String::from_utf8_lossy(after));
        });
    }

    #[test]
    fn insert_byte_adds_one_byte() {
        each(ByteOp::InsertByte, |before, after| {
            assert_eq!(after.len(), before.len() + 1);
            let (head, tail) = common_ends(before, after);
            assert!(head + tail >= before.len());
        });
    }

    #[test]
    fn edits_that_need_a_byte_insert_one_into_empty_data() {
        for op in [ByteOp::FlipBit, ByteOp::DeleteRun(2), ByteOp::RepeatRun(2)] {
            let ops = [op];
            let mut rng = Rng::new(5);
            let mut replay = rng.clone();
            let after = only(&ops).mutate(&mut rng, Vec::new(), OTHER);
            // The same draws as an insertion of a random byte: the pick, the position, the byte.
            replay.below(1);
            replay.below(1);
            assert_eq!(after, [replay.byte()], "{op:?}");
        }
    }

    #[test]
    fn the_edit_is_drawn_uniformly_from_the_list() {
        let ops = [ByteOp::Truncate, ByteOp::InsertByte];
        let mutator = only(&ops);
        let mut rng = Rng::new(6);
        let grew = (0..1000)
            .filter(|_| mutator.mutate(&mut rng, DATA.to_vec(), OTHER).len() > DATA.len())
            .count();
        assert!((400..600).contains(&grew), "{grew}");
    }

    #[test]
    fn byte_tokens_work_as_well_as_text_tokens() {
        let ops = [ByteOp::InsertToken];
        let tokens: &[&[u8]] = &[b"\xff\x00"];
        let mutator = ByteMutator { ops: &ops, tokens };
        let after = mutator.mutate(&mut Rng::new(7), Vec::new(), &[]);
        assert_eq!(after, b"\xff\x00");
    }

    #[test]
    fn a_seed_replays_the_same_mutations() {
        let ops = [
            ByteOp::Splice,
            ByteOp::RepeatRun(5),
            ByteOp::InsertByte,
            ByteOp::FlipBit,
            ByteOp::Truncate,
            ByteOp::InsertToken,
            ByteOp::DeleteRun(3),
        ];
        let run = || {
            let mutator = only(&ops);
            let mut rng = Rng::new(8);
            let mut data = DATA.to_vec();
            let mut all = Vec::new();
            for _ in 0..200 {
                data = mutator.mutate(&mut rng, data, OTHER);
                all.push(data.clone());
            }
            all
        };
        let first = run();
        assert_eq!(first, run());
        assert!(first.iter().any(|d| d.is_empty()) && first.iter().any(|d| d.len() > 20));
    }

    const PIECES: &[&str] = &["*", "/", "é", "🔑", "bc"];

    #[test]
    fn text_mutations_stay_on_character_boundaries_and_use_the_inputs() {
        let mut rng = Rng::new(9);
        let mut text = String::from("/v1/key/é🔑");
        let (mut grew, mut shrank, mut spliced) = (false, false, false);
        for _ in 0..2000 {
            let next = mutate_text(&mut rng, &text, "OTHER", PIECES);
            // A `String` is valid UTF-8 by construction; what matters is the count of
            // characters moving by whole characters and the pieces showing up.
            grew |= next.chars().count() > text.chars().count();
            shrank |= next.chars().count() < text.chars().count();
            spliced |= next.ends_with("HER") && !text.ends_with("HER");
            text = if next.len() > 64 {
                String::from("/v1/key/é🔑")
            } else {
                next
            };
        }
        assert!(grew && shrank && spliced);
    }

    #[test]
    fn text_edits_that_need_a_character_append_a_star_to_empty_text() {
        let mut rng = Rng::new(10);
        let mut outcomes = std::collections::BTreeSet::new();
        for _ in 0..500 {
            outcomes.insert(mutate_text(&mut rng, "", "xy", PIECES));
        }
        // Insertions of a piece, splices with the other input, truncation (nothing) and the
        // `*` of the edits that need a character; never anything else.
        let allowed = ["", "*", "/", "é", "🔑", "bc", "xy", "y"];
        assert!(
            outcomes.iter().all(|o| allowed.contains(&o.as_str())),
            "{outcomes:?}"
        );
        assert!(outcomes.contains("*") && outcomes.contains(""));
    }

    #[test]
    fn a_flipped_character_differs_in_one_low_bit() {
        let mut rng = Rng::new(11);
        let firsts: Vec<char> = PIECES.iter().filter_map(|p| p.chars().next()).collect();
        let mut flipped = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let out: Vec<char> = mutate_text(&mut rng, "A", "", PIECES).chars().collect();
            if let [c] = out[..] {
                if c == 'A' || firsts.contains(&c) {
                    continue; // a whole truncation or splice, or a replaced character
                }
                let diff = u32::from(c) ^ u32::from('A');
                assert!(diff.count_ones() == 1 && diff < 0x100, "{c:?}");
                flipped.insert(c);
            }
        }
        assert_eq!(flipped.len(), 8, "each of the low eight bits: {flipped:?}");
    }
}
