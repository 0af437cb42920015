//! What a target's catalog says about a table ([`Catalog`]: columns, types, NOT NULL, columns the
//! server fills, keys, foreign keys, understood CHECK rules), and the generator gen chooses for a
//! column from it when the spec does not describe the column ([`default_field`]).

use crate::gen::check::Rule;
use crate::gen::model::{Cell, Field, Generator, ValueType};
use crate::gen::spec::{parse_type, SpecError};

/// A table as its target's catalog describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Catalog {
    pub columns: Vec<CatalogColumn>,
    /// Multi-column primary keys and unique constraints, by column name.
    pub composite_keys: Vec<Vec<String>>,
    /// Constraints gen does not understand, as the catalog prints them: named at the start.
    pub not_understood: Vec<String>,
}

/// One column of a [`Catalog`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CatalogColumn {
    pub name: String,
    /// The type as the catalog names it.
    pub type_name: String,
    /// `None`: a type gen does not make.
    pub value_type: Option<ValueType>,
    /// An enum's labels (also of an array's enum elements).
    pub labels: Vec<String>,
    pub not_null: bool,
    /// Filled by the server (a default, identity, serial, generated): left to it unless the
    /// spec names the column.
    pub server_filled: bool,
    /// A single-column primary key or unique constraint.
    pub unique: bool,
    /// Understood CHECK rules, the domain's included.
    pub rules: Vec<Rule>,
    /// A single-column foreign key: the referenced table (as SQL) and column (its name).
    pub reference: Option<(String, String)>,
}

impl CatalogColumn {
    pub(crate) fn new(name: &str, type_name: &str, value_type: Option<ValueType>) -> CatalogColumn {
        CatalogColumn {
            name: name.to_string(),
            type_name: type_name.to_string(),
            value_type,
            labels: Vec::new(),
            not_null: false,
            server_filled: false,
            unique: false,
            rules: Vec::new(),
            reference: None,
        }
    }
}

impl Catalog {
    pub(crate) fn column(&self, name: &str) -> Option<&CatalogColumn> {
        self.columns.iter().find(|column| column.name == name)
    }

    pub(crate) fn names(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        names.join(", ")
    }
}

/// A ClickHouse table's catalog from `system.columns` rows (name, type, default kind): types in
/// ClickHouse's names, `Nullable(…)` for the columns that may be NULL, `Enum8('a' = 1, …)` with
/// its labels, and the columns with a default, `MATERIALIZED` or `ALIAS` left to the server.
pub(crate) fn from_clickhouse(rows: &[[String; 3]]) -> Catalog {
    let columns = rows
        .iter()
        .map(|[name, type_name, default_kind]| {
            let bare = type_name
                .strip_prefix("Nullable(")
                .and_then(|inner| inner.strip_suffix(')'))
                .unwrap_or(type_name);
            let mut column = CatalogColumn::new(name, type_name, parse_type(bare));
            if bare.starts_with("Enum8(") || bare.starts_with("Enum16(") {
                column.value_type = Some(ValueType::Enum);
                column.labels = bare
                    .split('\'')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect();
            }
            column.not_null = bare.len() == type_name.len();
            column.server_filled = !default_kind.is_empty();
            column
        })
        .collect();
    Catalog {
        columns,
        ..Catalog::default()
    }
}

/// 2026-01-01T00:00:00Z in microseconds since the Unix epoch.
const START_2026: i64 = 1_767_225_600_000_000;
const DAY_MICROS: i64 = 86_400_000_000;

/// The generator for a catalog column the spec leaves alone: from its type, its key, its
/// foreign key (`keys`: the referenced table's keys, read once) and its CHECK rules.
pub(crate) fn default_field(
    column: &CatalogColumn,
    value_type: &ValueType,
    unique: bool,
    keys: Option<Vec<String>>,
) -> Result<Field, SpecError> {
    let mut field = Field::new(&column.name, &column.type_name, value_type.clone());
    let fail = |reason: String| {
        SpecError(format!(
            "column `{}` ({}): {reason}",
            column.name, column.type_name
        ))
    };
    if let Some(keys) = keys {
        let (table, key) = column.reference.clone().unwrap_or_default();
        field.why = format!("foreign key → {table}({key}): {} keys read", keys.len());
        field.generator = key_choice(&mut field, &keys).map_err(fail)?;
        return Ok(field);
    }
    let one_of = column.rules.iter().find_map(|rule| match rule {
        Rule::OneOf(values) => Some(values.clone()),
        _ => None,
    });
    if let Some(values) = one_of {
        field.why = format!("CHECK … IN: {} values", values.len());
        field.generator = key_choice(&mut field, &values).map_err(fail)?;
        return Ok(field);
    }
    if *value_type == ValueType::Enum {
        if column.labels.is_empty() {
            return Err(fail("an enum without labels".into()));
        }
        field.why = format!("enum: {} labels", column.labels.len());
        field.generator = key_choice(&mut field, &column.labels).map_err(fail)?;
        return Ok(field);
    }
    let (generator, why) = if unique {
        (unique_generator(value_type, &column.rules).ok_or_else(|| {
            fail("is a key, and gen makes no unique values of this type; describe it in the spec".into())
        })?, "key: unique by row id")
    } else {
        (typed_generator(value_type, &column.rules, column), "type")
    };
    field.generator = generator;
    field.why = if column.rules.is_empty() {
        format!("catalog {why}")
    } else {
        format!("catalog {why}, CHECK rules")
    };
    Ok(field)
}

/// A uniform choice among `texts`, as numbers for numeric types.
fn key_choice(field: &mut Field, texts: &[String]) -> Result<Generator, String> {
    let value_type = field.value_type.clone();
    let cells = if value_type.holds_int() && !value_type.is_time() && value_type != ValueType::Inet
    {
        let scale = 10f64.powi(i32::from(value_type.scale()));
        texts
            .iter()
            .map(|text| {
                text.parse::<f64>()
                    .map(|v| Cell::Int((v * scale).round() as i64))
                    .map_err(|_| format!("value {text:?} is not a number"))
            })
            .collect::<Result<Vec<_>, _>>()?
    } else if let ValueType::Float { .. } = value_type {
        texts
            .iter()
            .map(|text| {
                text.parse()
                    .map(Cell::Float)
                    .map_err(|_| format!("value {text:?} is not a number"))
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        field.labels = texts.iter().map(|t| t.as_str().into()).collect();
        (0..texts.len() as u32).map(Cell::Label).collect()
    };
    Ok(Generator::choice(cells, None))
}

/// The bounds of the CHECK rules, in the type's integer units (inclusive).
fn int_bounds(value_type: &ValueType, rules: &[Rule]) -> (Option<i64>, Option<i64>) {
    let scale = 10f64.powi(i32::from(value_type.scale()));
    let (mut low, mut high): (Option<i64>, Option<i64>) = (None, None);
    for rule in rules {
        match *rule {
            Rule::AtLeast(v) => low = low.max(Some((v * scale).ceil() as i64)),
            Rule::Above(v) => low = low.max(Some((v * scale).floor() as i64 + 1)),
            Rule::AtMost(v) => {
                high = Some(high.map_or((v * scale).floor() as i64, |h| {
                    h.min((v * scale).floor() as i64)
                }))
            }
            Rule::Below(v) => {
                let bound = (v * scale).ceil() as i64 - 1;
                high = Some(high.map_or(bound, |h| h.min(bound)));
            }
            _ => {}
        }
    }
    (low, high)
}

/// A generator that never repeats, for a key column.
fn unique_generator(value_type: &ValueType, rules: &[Rule]) -> Option<Generator> {
    Some(match value_type {
        ValueType::Int { .. } | ValueType::Numeric { .. } => {
            let (low, _) = int_bounds(value_type, rules);
            let unit = 10_i64.pow(u32::from(value_type.scale()));
            Generator::Sequence {
                start: low.unwrap_or(unit).max(0),
                step: unit,
            }
        }
        ValueType::Text { max_chars, padded } => Generator::Template {
            prefix: String::new(),
            width: if *padded {
                max_chars.unwrap_or(1) as usize
            } else {
                0
            },
            suffix: String::new(),
            start: 1,
        },
        ValueType::Uuid => Generator::Uuid,
        ValueType::Timestamp | ValueType::Timestamptz => Generator::TimeStep {
            start: START_2026,
            step: 1_000_000,
            jitter: 0,
        },
        ValueType::Date => Generator::TimeStep {
            start: 0,
            step: DAY_MICROS,
            jitter: 0,
        },
        ValueType::Bytea => Generator::Bytes { len: 16 },
        ValueType::Inet => Generator::Inet,
        _ => return None,
    })
}

/// The generator for a column by its type and CHECK rules.
fn typed_generator(value_type: &ValueType, rules: &[Rule], column: &CatalogColumn) -> Generator {
    match value_type {
        ValueType::Int { .. } | ValueType::Numeric { .. } => {
            let (low, high) = int_bounds(value_type, rules);
            let limit = value_type.int_limit().unwrap_or(i64::MAX);
            let span = (100_000 * 10_i64.pow(u32::from(value_type.scale()).min(6))).min(limit);
            let min = low.unwrap_or(match high {
                Some(high) if high < 0 => high - span,
                _ => 0,
            });
            let max = high.unwrap_or(min.saturating_add(span)).min(limit);
            Generator::UniformInt {
                min: min.max(-limit),
                max: max.max(min),
            }
        }
        ValueType::Float { .. } => {
            let (low, high) = int_bounds(value_type, rules);
            let min = low.map_or(0.0, |v| v as f64);
            let max = high.map_or(min + 1000.0, |v| v as f64);
            Generator::UniformFloat { min, max }
        }
        ValueType::Bool => Generator::Bool { p_true: 0.5 },
        ValueType::Text { max_chars, padded } => {
            let mut max = max_chars.unwrap_or(u32::MAX);
            let mut min = 0;
            for rule in rules {
                match rule {
                    Rule::MaxLength(n) => max = max.min(*n),
                    Rule::MinLength(n) => min = min.max(*n),
                    Rule::NotEmpty => min = min.max(1),
                    _ => {}
                }
            }
            if *padded || min > 1 {
                let length = if *padded { max } else { min };
                Generator::Chars {
                    min: length,
                    max: length.max(min).min(max),
                    alphabet: b"abcdefghijklmnopqrstuvwxyz".to_vec(),
                }
            } else {
                Generator::Words {
                    min: 1,
                    max: 3,
                    sentence: false,
                    max_chars: (max != u32::MAX).then_some(max),
                }
            }
        }
        ValueType::Date => Generator::TimeRange {
            start: START_2026 - 6 * 365 * DAY_MICROS,
            end: START_2026 + 365 * DAY_MICROS,
        },
        ValueType::Timestamp | ValueType::Timestamptz => Generator::TimeRange {
            start: START_2026 - 365 * DAY_MICROS,
            end: START_2026,
        },
        ValueType::Time => Generator::TimeRange {
            start: 0,
            end: DAY_MICROS,
        },
        ValueType::Interval => Generator::TimeRange {
            start: 0,
            end: 30 * DAY_MICROS,
        },
        ValueType::Uuid => Generator::Uuid,
        ValueType::Json | ValueType::Jsonb => {
            let mut number = Field::new("n", "bigint", ValueType::Int { bytes: 8 });
            number.generator = Generator::UniformInt { min: 0, max: 1000 };
            let text = ValueType::Text {
                max_chars: None,
                padded: false,
            };
            let mut tag = Field::new("tag", "text", text);
            tag.generator = Generator::Words {
                min: 1,
                max: 1,
                sentence: false,
                max_chars: None,
            };
            Generator::Object {
                fields: vec![number, tag],
            }
        }
        ValueType::Bytea => Generator::Bytes { len: 16 },
        ValueType::Inet => Generator::Inet,
        ValueType::Enum => Generator::choice(vec![Cell::Label(0)], None),
        ValueType::Array(element_type) => {
            let element_column = CatalogColumn {
                name: format!("{}[]", column.name),
                rules: Vec::new(),
                ..column.clone()
            };
            let mut element = Field::new(
                &element_column.name,
                &column.type_name,
                (**element_type).clone(),
            );
            if **element_type == ValueType::Enum {
                element.labels = column.labels.iter().map(|l| l.as_str().into()).collect();
                element.generator = Generator::choice(
                    (0..column.labels.len().max(1) as u32)
                        .map(Cell::Label)
                        .collect(),
                    None,
                );
            } else {
                element.generator = typed_generator(element_type, &[], &element_column);
            }
            Generator::Array {
                element: Box::new(element),
                min: 0,
                max: 4,
            }
        }
    }
}
