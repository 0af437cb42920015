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

    /// A choice among `cells`, by `weights` (one per cell) or equally likely without.
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

/// A field's salt: a stable hash of its name.
pub(crate) fn salt_of(name: &str) -> u64 {
    crate::ledger::fnv1a(name.as_bytes())
}
