//! The column model of gen mode: what a generated column holds ([`ValueType`]), how its values
//! follow from `(seed, row id)` ([`Generator`]), and the [`Cell`]s a batch keeps them in.
//!
//! Every value is a pure function of the seed, the row's id and the column's salt (a hash of its
//! name), so the same seed gives the same rows whatever the threads, batch size, shard or resume.
//! Fixed-width values live in the cell itself; text, JSON and bytes go to the batch's reused
//! arena and array elements to its reused item list, so a refilled batch allocates nothing once
//! its buffers have grown.

/// The type of a generated column, as the encoders write it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ValueType {
    /// smallint, integer, bigint: `bytes` is 2, 4 or 8.
    Int {
        bytes: u8,
    },
    /// numeric(precision, scale): an [`Cell::Int`] of units of `10^-scale`.
    Numeric {
        precision: u8,
        scale: u8,
    },
    /// real (4) or double precision (8); with `decimals`, an [`Cell::Int`] of units of
    /// `10^-decimals`, printed without float formatting.
    Float {
        bytes: u8,
        decimals: Option<u8>,
    },
    Bool,
    /// text, varchar(n) (`max_chars`), char(n) (`padded` to `max_chars`).
    Text {
        max_chars: Option<u32>,
        padded: bool,
    },
    /// Microseconds since the Unix epoch, printed as the day.
    Date,
    Timestamp,
    Timestamptz,
    /// Microseconds since midnight.
    Time,
    /// Microseconds.
    Interval,
    Uuid,
    Json,
    Jsonb,
    Bytea,
    /// An IPv4 address, as a [`Cell::Int`].
    Inet,
    /// A PostgreSQL enum or another label type: its labels are the field's.
    Enum,
    /// A one-dimensional array of elements of this type.
    Array(Box<ValueType>),
}

impl ValueType {
    /// Whether a value of this type is a number in JSON and SQL (no quotes).
    pub(crate) fn is_number(&self) -> bool {
        matches!(
            self,
            ValueType::Int { .. } | ValueType::Numeric { .. } | ValueType::Float { .. }
        )
    }

    /// Whether the type is held as text bytes or labels.
    pub(crate) fn is_text(&self) -> bool {
        matches!(self, ValueType::Text { .. } | ValueType::Enum)
    }

    /// Whether values of this type are timestamps (micros), which the time generators fill.
    pub(crate) fn is_time(&self) -> bool {
        matches!(
            self,
            ValueType::Date
                | ValueType::Timestamp
                | ValueType::Timestamptz
                | ValueType::Time
                | ValueType::Interval
        )
    }

    /// The decimal scale of the type's [`Cell::Int`] units, for numbers held as integers.
    pub(crate) fn scale(&self) -> u8 {
        match self {
            ValueType::Numeric { scale, .. } => *scale,
            ValueType::Float {
                decimals: Some(d), ..
            } => *d,
            _ => 0,
        }
    }

    /// Whether the type's values are held as [`Cell::Int`] (integers, units, micros, addresses).
    pub(crate) fn holds_int(&self) -> bool {
        match self {
            ValueType::Float { decimals, .. } => decimals.is_some(),
            ValueType::Int { .. }
            | ValueType::Numeric { .. }
            | ValueType::Bool
            | ValueType::Inet => true,
            other => other.is_time(),
        }
    }

    /// The largest magnitude of the type's integer units: the type's range, numeric's digits.
    pub(crate) fn int_limit(&self) -> Option<i64> {
        match self {
            ValueType::Int { bytes: 2 } => Some(i64::from(i16::MAX)),
            ValueType::Int { bytes: 4 } => Some(i64::from(i32::MAX)),
            ValueType::Numeric { precision, .. } if *precision < 19 => {
                Some(10_i64.pow(u32::from(*precision)) - 1)
            }
            _ => None,
        }
    }
}

/// One generated value. What its number means follows from the column's [`ValueType`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Float(f64),
    /// The field's label of this index (choices, enums, references to text keys).
    Label(u32),
    /// Bytes of the batch's arena: text, JSON, bytea, UUIDs.
    Bytes {
        start: u32,
        len: u32,
    },
    /// Elements of the batch's item list (arrays).
    Items {
        start: u32,
        len: u32,
    },
}

/// How a column's values follow from `(seed, id)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Generator {
    /// `start + id × step`: unique when `step` is not 0.
    Sequence { start: i64, step: i64 },
    /// An integer (or units of the type's scale) in `min..=max`.
    UniformInt { min: i64, max: i64 },
    /// A float in `[min, max)`.
    UniformFloat { min: f64, max: f64 },
    /// A normal distribution (Box-Muller), clamped to `min..=max` when given.
    Normal {
        mean: f64,
        stddev: f64,
        min: Option<f64>,
        max: Option<f64>,
    },
    /// One of `cells`; `cumulative` holds the upper bounds of each one's share of `2^32`
    /// (empty: all equally likely).
    Choice {
        cells: Vec<Cell>,
        cumulative: Vec<u64>,
    },
    /// `prefix`, then `id + start` zero-padded to `width` digits, then `suffix`: unique.
    Template {
        prefix: String,
        width: usize,
        suffix: String,
        start: i64,
    },
    /// `min..=max` characters drawn from `alphabet` (ASCII).
    Chars {
        min: u32,
        max: u32,
        alphabet: Vec<u8>,
    },
    /// `min..=max` words, as a sentence (capitalised, with a full stop) or not; cut to
    /// `max_chars` characters.
    Words {
        min: u32,
        max: u32,
        sentence: bool,
        max_chars: Option<u32>,
    },
    /// `start + id × step`, moved by up to `jitter` either way (microseconds).
    TimeStep { start: i64, step: i64, jitter: i64 },
    /// A time in `[start, end)` (microseconds).
    TimeRange { start: i64, end: i64 },
    /// A version-4 UUID whose low half is a bijection of the id: unique.
    Uuid,
    /// `true` with this probability.
    Bool { p_true: f64 },
    /// `len` bytes, the first eight the id's (unique when `len` ≥ 8).
    Bytes { len: u32 },
    /// 10.0.0.0/8 + the id: unique below 16,777,216 rows.
    Inet,
    /// A JSON object with one member per field.
    Object { fields: Vec<Field> },
    /// A JSON or SQL array of `min..=max` elements.
    Array {
        element: Box<Field>,
        min: u32,
        max: u32,
    },
}

impl Generator {
    /// Whether no two rows get the same value.
    pub(crate) fn is_unique(&self) -> bool {
        match self {
            Generator::Sequence { step, .. } => *step != 0,
            Generator::TimeStep { step, jitter, .. } => *step != 0 && *jitter * 2 < step.abs(),
            Generator::Bytes { len } => *len >= 8,
            Generator::Template { .. } | Generator::Uuid | Generator::Inet => true,
            _ => false,
        }
    }

    /// The equal shares of `n` values, as [`Generator::Choice`] takes them.
    pub(crate) fn choice(cells: Vec<Cell>, weights: Option<&[f64]>) -> Generator {
        let cumulative = match weights {
            None => Vec::new(),
            Some(weights) => {
                let total: f64 = weights.iter().sum();
                let mut sum = 0.0;
                weights
                    .iter()
                    .map(|weight| {
                        sum += weight;
                        ((sum / total) * 4_294_967_296.0) as u64
                    })
                    .collect()
            }
        };
        Generator::Choice { cells, cumulative }
    }
}

/// A generated column, or a member of a generated JSON object, or an array's element.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub name: String,
    /// The type as the target names it (`numeric(10,2)`, `varchar(8)`, `Int32`).
    pub type_name: String,
    pub value_type: ValueType,
    pub generator: Generator,
    /// The texts of the field's [`Cell::Label`]s.
    pub labels: Vec<Box<str>>,
    /// The share of NULLs, in `2^-32` units: a row is NULL when its draw is below this.
    pub null_below: u64,
    /// Mixed into every draw of the field: a hash of its name, so columns draw independently.
    pub salt: u64,
    /// Why this generator: catalog, constraint, spec.
    pub why: String,
}

impl Field {
    pub(crate) fn new(name: &str, type_name: &str, value_type: ValueType) -> Field {
        Field {
            name: name.to_string(),
            type_name: type_name.to_string(),
            value_type,
            generator: Generator::UniformInt { min: 0, max: 0 },
            labels: Vec::new(),
            null_below: 0,
            salt: salt_of(name),
            why: String::new(),
        }
    }

    /// Sets the share of NULLs (0 to 1).
    pub(crate) fn set_nulls(&mut self, share: f64) {
        self.null_below = (share.clamp(0.0, 1.0) * 4_294_967_296.0) as u64;
    }

    /// The share of NULLs (0 to 1).
    pub(crate) fn nulls(&self) -> f64 {
        self.null_below as f64 / 4_294_967_296.0
    }
}

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

/// A field's salt: a stable hash of its name.
pub(crate) fn salt_of(name: &str) -> u64 {
    crate::ledger::fnv1a(name.as_bytes())
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
                    super::table::json_value(field, cell, store.arena, store.items, store.json);
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
