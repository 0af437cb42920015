//! How a [`Field`]'s values follow from `(seed, row id)`: the draws (SplitMix64 over the seed,
//! the id and the field's salt), each [`Generator`] turned into a [`Cell`], and a whole
//! column filled at once with the generator chosen once for it.

use crate::gen::model::{Cell, Field, Generator};
use crate::gen::values::json_value;

/// Where generated values go: the batch's arena (text, JSON, bytes), its array items, and a
/// scratch buffer where JSON objects are composed.
pub(crate) struct Store<'a> {
    pub arena: &'a mut Vec<u8>,
    pub items: &'a mut Vec<Cell>,
    pub json: &'a mut Vec<u8>,
}

/// SplitMix64: the standard counter-based mixer, a pure function of the state it advances.
#[inline]
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An integer in `[0, range)` from the high 32 bits of `bits`.
#[inline]
fn below(bits: u64, range: u64) -> u64 {
    ((bits >> 32) * range) >> 32
}

/// An integer in `min..=max` from `bits`.
#[inline]
fn between(bits: u64, min: i64, max: i64) -> i64 {
    let span = max.wrapping_sub(min) as u64;
    let offset = if span < u32::MAX as u64 {
        below(bits, span + 1)
    } else {
        ((u128::from(bits) * (u128::from(span) + 1)) >> 64) as u64
    };
    min.wrapping_add(offset as i64)
}

/// A float in `[0, 1)` from the high 53 bits of `bits`.
#[inline]
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Words of the text generators.
pub(crate) const WORDS: [&str; 64] = [
    "alpha", "amber", "anchor", "apple", "arrow", "autumn", "basin", "birch", "breeze", "bridge",
    "canyon", "cedar", "cloud", "coral", "copper", "crystal", "delta", "dune", "eagle", "ember",
    "falcon", "fern", "field", "forest", "garden", "glacier", "granite", "harbor", "hazel",
    "horizon", "island", "ivory", "jade", "juniper", "lagoon", "lantern", "maple", "meadow",
    "mesa", "mist", "needle", "ocean", "olive", "orchid", "pebble", "pine", "prairie", "quartz",
    "raven", "reef", "ridge", "river", "saffron", "sierra", "silver", "spruce", "summit",
    "thistle", "timber", "tundra", "valley", "willow", "winter", "zephyr",
];

/// The state of a field's draws for one row.
#[inline]
fn row_state(seed: u64, salt: u64, id: u64) -> u64 {
    seed ^ salt ^ id.wrapping_mul(0xD1B5_4A32_D192_ED03)
}

impl Field {
    /// This field's values for the rows `ids`, one into each of `cells`: the same values as
    /// [`Field::generate`] gives row by row, with the generator chosen once for the column (the
    /// fixed-width ones in loops of their own).
    pub(crate) fn fill<'c>(
        &self,
        seed: u64,
        ids: &[u64],
        cells: impl Iterator<Item = &'c mut Cell>,
        store: &mut Store<'_>,
    ) {
        let draw = |id: u64| splitmix64(&mut row_state(seed, self.salt, id));
        let rows = cells.zip(ids);
        if self.null_below > 0 {
            for (cell, &id) in rows {
                *cell = self.generate(seed, id, store);
            }
            return;
        }
        match &self.generator {
            Generator::Sequence { start, step } => {
                for (cell, &id) in rows {
                    *cell = Cell::Int(start.wrapping_add((id as i64).wrapping_mul(*step)));
                }
            }
            Generator::TimeStep {
                start,
                step,
                jitter: 0,
            } => {
                for (cell, &id) in rows {
                    *cell = Cell::Int(start.wrapping_add((id as i64).wrapping_mul(*step)));
                }
            }
            Generator::UniformInt { min, max } => {
                for (cell, &id) in rows {
                    *cell = Cell::Int(between(draw(id), *min, *max));
                }
            }
            Generator::Choice {
                cells: values,
                cumulative,
            } if cumulative.is_empty() => {
                let n = values.len() as u64;
                for (cell, &id) in rows {
                    *cell = values[below(draw(id), n) as usize];
                }
            }
            Generator::Choice {
                cells: values,
                cumulative,
            } => {
                let last = values.len() - 1;
                for (cell, &id) in rows {
                    let bound = draw(id) >> 32;
                    let index = cumulative.partition_point(|&b| b <= bound).min(last);
                    *cell = values[index];
                }
            }
            _ => {
                for (cell, &id) in rows {
                    *cell = self.generate(seed, id, store);
                }
            }
        }
    }

    /// This field's value in the row with this id, its bytes and items stored in `store`.
    #[inline]
    pub(crate) fn generate(&self, seed: u64, id: u64, store: &mut Store<'_>) -> Cell {
        let mut state = row_state(seed, self.salt, id);
        let mut first = splitmix64(&mut state);
        if self.null_below > 0 {
            if (first >> 32) < self.null_below {
                return Cell::Null;
            }
            // The value draws apart from the null decision, so the shares stay the spec's.
            first = splitmix64(&mut state);
        }
        self.value(first, &mut state, seed, id, store)
    }

    #[inline]
    fn value(
        &self,
        first: u64,
        state: &mut u64,
        seed: u64,
        id: u64,
        store: &mut Store<'_>,
    ) -> Cell {
        match &self.generator {
            Generator::Sequence { start, step } => {
                Cell::Int(start.wrapping_add((id as i64).wrapping_mul(*step)))
            }
            Generator::UniformInt { min, max } => Cell::Int(between(first, *min, *max)),
            Generator::UniformFloat { min, max } => self.number(min + unit(first) * (max - min)),
            Generator::Normal {
                mean,
                stddev,
                min,
                max,
            } => {
                let u1 = unit(first).max(f64::MIN_POSITIVE);
                let u2 = unit(splitmix64(state));
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let mut value = mean + stddev * z;
                if let Some(min) = min {
                    value = value.max(*min);
                }
                if let Some(max) = max {
                    value = value.min(*max);
                }
                self.number(value)
            }
            Generator::Choice { cells, cumulative } => {
                let draw = first >> 32;
                let index = if cumulative.is_empty() {
                    below(first, cells.len() as u64) as usize
                } else {
                    cumulative
                        .partition_point(|&bound| bound <= draw)
                        .min(cells.len() - 1)
                };
                cells[index]
            }
            Generator::Template {
                prefix,
                width,
                suffix,
                start,
            } => {
                let at = store.arena.len();
                store.arena.extend_from_slice(prefix.as_bytes());
                let number = (id as i64).wrapping_add(*start);
                let mut digits = itoa::Buffer::new();
                let digits = digits.format(number);
                store.arena.extend(std::iter::repeat_n(
                    b'0',
                    width.saturating_sub(digits.len()),
                ));
                store.arena.extend_from_slice(digits.as_bytes());
                store.arena.extend_from_slice(suffix.as_bytes());
                stored(store, at)
            }
            Generator::Chars { min, max, alphabet } => {
                let at = store.arena.len();
                let len = between(first, i64::from(*min), i64::from(*max)) as usize;
                let mut bits = 0u64;
                for i in 0..len {
                    if i % 8 == 0 {
                        bits = splitmix64(state);
                    }
                    let byte = (bits >> ((i % 8) * 8)) as u8;
                    store
                        .arena
                        .push(alphabet[(usize::from(byte) * alphabet.len()) >> 8]);
                }
                stored(store, at)
            }
            Generator::Words {
                min,
                max,
                sentence,
                max_chars,
            } => {
                let at = store.arena.len();
                let count = between(first, i64::from(*min), i64::from(*max));
                let limit = max_chars.map_or(usize::MAX, |n| n as usize);
                for i in 0..count {
                    let word = WORDS[below(splitmix64(state), WORDS.len() as u64) as usize];
                    let separator = usize::from(i > 0);
                    let room = limit.saturating_sub(store.arena.len() - at + separator);
                    if room == 0 {
                        break;
                    }
                    if i > 0 {
                        store.arena.push(b' ');
                    }
                    store
                        .arena
                        .extend_from_slice(&word.as_bytes()[..word.len().min(room)]);
                }
                if *sentence && store.arena.len() > at {
                    store.arena[at] = store.arena[at].to_ascii_uppercase();
                    if store.arena.len() - at < limit {
                        store.arena.push(b'.');
                    }
                }
                stored(store, at)
            }
            Generator::TimeStep {
                start,
                step,
                jitter,
            } => {
                let base = start.wrapping_add((id as i64).wrapping_mul(*step));
                if *jitter == 0 {
                    Cell::Int(base)
                } else {
                    Cell::Int(base + between(first, -*jitter, *jitter))
                }
            }
            Generator::TimeRange { start, end } => Cell::Int(between(first, *start, *end - 1)),
            Generator::Uuid => {
                let high = (first & !0xF000) | 0x4000;
                // A bijection of the id on 62 bits (an odd multiplier and a xor-shift, both
                // invertible modulo 2^62), keyed by the seed and the field.
                const MASK: u64 = (1 << 62) - 1;
                let key = seed ^ self.salt;
                let mut low = (id ^ key).wrapping_mul(0x9E37_79B9_7F4A_7C15 | 1) & MASK;
                low ^= low >> 31;
                low = low.wrapping_mul(0xBF58_476D_1CE4_E5B9) & MASK;
                low ^= low >> 29;
                let low = low | (0b10 << 62);
                let at = store.arena.len();
                store.arena.extend_from_slice(&high.to_be_bytes());
                store.arena.extend_from_slice(&low.to_be_bytes());
                stored(store, at)
            }
            Generator::Bool { p_true } => Cell::Int(i64::from(unit(first) < *p_true)),
            Generator::Bytes { len } => {
                let at = store.arena.len();
                let len = *len as usize;
                let id_bytes = id.to_be_bytes();
                store.arena.extend_from_slice(&id_bytes[..len.min(8)]);
                while store.arena.len() - at < len {
                    let bits = splitmix64(state).to_le_bytes();
                    let room = len - (store.arena.len() - at);
                    store.arena.extend_from_slice(&bits[..room.min(8)]);
                }
                stored(store, at)
            }
            Generator::Inet => Cell::Int((0x0A00_0000 | (id & 0x00FF_FFFF)) as i64),
            Generator::Object { fields } => {
                let start = store.json.len();
                store.json.push(b'{');
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        store.json.push(b',');
                    }
                    crate::encode::json_string(store.json, &field.name);
                    store.json.push(b':');
                    let mark = store.arena.len();
                    let cell = field.generate(seed ^ self.salt, id, store);
                    json_value(field, cell, store.arena, store.items, store.json);
                    store.arena.truncate(mark);
                }
                store.json.push(b'}');
                let at = store.arena.len();
                store.arena.extend_from_slice(&store.json[start..]);
                store.json.truncate(start);
                stored(store, at)
            }
            Generator::Array { element, min, max } => {
                let len = between(first, i64::from(*min), i64::from(*max)) as u64;
                let start = store.items.len();
                for i in 0..len {
                    let cell = element.generate(seed ^ self.salt, id.wrapping_mul(64) + i, store);
                    store.items.push(cell);
                }
                Cell::Items {
                    start: start as u32,
                    len: len as u32,
                }
            }
        }
    }

    /// A drawn number as the field holds it: units of its scale (integers, numeric, floats
    /// with decimals), else the float.
    #[inline]
    fn number(&self, value: f64) -> Cell {
        if self.value_type.holds_int() {
            let scale = 10f64.powi(i32::from(self.value_type.scale()));
            Cell::Int((value * scale).round() as i64)
        } else {
            Cell::Float(value)
        }
    }
}

/// The bytes stored since `at`, as a cell.
#[inline]
fn stored(store: &Store<'_>, at: usize) -> Cell {
    Cell::Bytes {
        start: at as u32,
        len: (store.arena.len() - at) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::model::ValueType;

    fn store_parts() -> (Vec<u8>, Vec<Cell>, Vec<u8>) {
        (Vec::new(), Vec::new(), Vec::new())
    }

    #[test]
    fn uuids_are_unique_over_many_ids() {
        let mut field = Field::new("u", "uuid", ValueType::Uuid);
        field.generator = Generator::Uuid;
        let (mut arena, mut items, mut json) = store_parts();
        let mut store = Store {
            arena: &mut arena,
            items: &mut items,
            json: &mut json,
        };
        let mut seen = std::collections::HashSet::new();
        for id in 0..200_000 {
            let Cell::Bytes { start, len } = field.generate(3, id, &mut store) else {
                panic!("bytes");
            };
            assert_eq!(len, 16);
            let bytes = &store.arena[start as usize..][..16];
            assert_eq!(bytes[6] >> 4, 4, "version 4");
            assert_eq!(bytes[8] >> 6, 0b10, "RFC 4122 variant");
            assert!(seen.insert(bytes.to_vec()));
        }
    }

    #[test]
    fn weighted_choices_and_nulls_keep_their_shares() {
        let mut field = Field::new("s", "text", ValueType::Enum);
        field.labels = vec!["a".into(), "b".into(), "c".into()];
        field.generator = Generator::choice(
            vec![Cell::Label(0), Cell::Label(1), Cell::Label(2)],
            Some(&[6.0, 3.0, 1.0]),
        );
        field.set_nulls(0.2);
        let (mut arena, mut items, mut json) = store_parts();
        let mut store = Store {
            arena: &mut arena,
            items: &mut items,
            json: &mut json,
        };
        let mut counts = [0u32; 4];
        for id in 0..100_000 {
            match field.generate(9, id, &mut store) {
                Cell::Label(i) => counts[i as usize] += 1,
                Cell::Null => counts[3] += 1,
                other => panic!("{other:?}"),
            }
        }
        let share = |n: u32| f64::from(n) / 100_000.0;
        assert!((share(counts[3]) - 0.2).abs() < 0.01, "{counts:?}");
        assert!((share(counts[0]) - 0.48).abs() < 0.01, "{counts:?}");
        assert!((share(counts[2]) - 0.08).abs() < 0.01, "{counts:?}");
    }

    #[test]
    fn words_fit_their_limit_and_ranges_hold() {
        let mut field = Field::new(
            "w",
            "varchar(8)",
            ValueType::Text {
                max_chars: Some(8),
                padded: false,
            },
        );
        field.generator = Generator::Words {
            min: 1,
            max: 5,
            sentence: true,
            max_chars: Some(8),
        };
        let mut int = Field::new("i", "int", ValueType::Int { bytes: 4 });
        int.generator = Generator::UniformInt { min: -3, max: 3 };
        let (mut arena, mut items, mut json) = store_parts();
        let mut store = Store {
            arena: &mut arena,
            items: &mut items,
            json: &mut json,
        };
        let mut seen = std::collections::BTreeSet::new();
        for id in 0..10_000 {
            let Cell::Bytes { len, .. } = field.generate(1, id, &mut store) else {
                panic!("text");
            };
            assert!((1..=8).contains(&len));
            let Cell::Int(value) = int.generate(1, id, &mut store) else {
                panic!("int");
            };
            seen.insert(value);
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            [-3, -2, -1, 0, 1, 2, 3]
        );
    }
}
