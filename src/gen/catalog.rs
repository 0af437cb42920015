//! What a target's catalog says about a table ([`Catalog`]: columns, types, NOT NULL, columns the
//! server fills, keys, foreign keys, understood CHECK rules), and the generator gen chooses for a
//! column from it when the spec does not describe the column ([`default_field`]).

use serde_json::Value;

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
    /// An object's members, as columns of their own (CrateDB's `obj['x']`, a mapping's
    /// `properties`): gen fills those; empty for a free-form object.
    pub fields: Vec<CatalogColumn>,
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
            fields: Vec::new(),
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

/// A CrateDB table's catalog from its `information_schema.columns` rows (`column_name`,
/// `data_type`, `is_nullable`, `column_default`, `generation_expression`,
/// `character_maximum_length`; in ordinal order) and its primary key's columns (`key`): a
/// sub-column `obj['x']` becomes a member of its object, a column with a default or a generation
/// expression is left to the server, and a one-column key is unique (a composite one has one
/// column carry the row id).
pub(crate) fn from_cratedb(rows: &[Vec<Value>], key: &[String]) -> Catalog {
    let mut columns = Vec::new();
    for row in rows {
        let text = |i: usize| row.get(i).and_then(Value::as_str).unwrap_or_default();
        let given = |i: usize| row.get(i).is_some_and(|value| !value.is_null());
        let name = text(0);
        let path = cratedb_path(name);
        let (value_type, rules) = cratedb_type(text(1), row.get(5).and_then(Value::as_u64));
        let leaf = path.last().map_or(name, String::as_str);
        let mut column = CatalogColumn::new(leaf, text(1), value_type);
        column.rules = rules;
        // CrateDB answers a boolean; other servers of information_schema `YES`/`NO`.
        column.not_null = row.get(2) == Some(&Value::Bool(false)) || text(2) == "NO";
        column.server_filled = given(3) || given(4);
        column.unique = key.len() == 1 && key[0] == name;
        attach(&mut columns, &path, column);
    }
    Catalog {
        columns,
        composite_keys: if key.len() > 1 {
            vec![key.to_vec()]
        } else {
            Vec::new()
        },
        ..Catalog::default()
    }
}

/// The path of a CrateDB column name: `obj['a']['b']` → `obj`, `a`, `b`.
fn cratedb_path(name: &str) -> Vec<String> {
    let Some((top, rest)) = name.split_once("['") else {
        return vec![name.to_string()];
    };
    let mut path = vec![top.to_string()];
    path.extend(
        rest.trim_end_matches("']")
            .split("']['")
            .map(|member| member.replace("''", "'")),
    );
    path
}

/// Adds `column` at `path` (its own name last): a top-level column, or a member of the object
/// the path leads through. A member whose object is not listed is dropped.
fn attach(columns: &mut Vec<CatalogColumn>, path: &[String], column: CatalogColumn) {
    match path {
        [_] | [] => columns.push(column),
        [parent, rest @ ..] => {
            if let Some(object) = columns.iter_mut().find(|c| &c.name == parent) {
                attach(&mut object.fields, rest, column);
            }
        }
    }
}

/// A CrateDB `data_type`: `text_array` (and `array(text)`) an array, `character varying` with
/// its `character_maximum_length`, `byte` a one-byte integer; the rest as [`parse_type`] reads
/// them (`geo_point`, `geo_shape`, `float_vector(n)`: none).
fn cratedb_type(type_name: &str, max_chars: Option<u64>) -> (Option<ValueType>, Vec<Rule>) {
    if let Some(element) = type_name.strip_suffix("_array") {
        let (element, _) = cratedb_type(element, None);
        return (element.map(|e| ValueType::Array(Box::new(e))), Vec::new());
    }
    if type_name == "byte" {
        return one_byte_integer();
    }
    let value_type = match parse_type(type_name) {
        Some(ValueType::Text {
            max_chars: None,
            padded,
        }) => Some(ValueType::Text {
            max_chars: max_chars.and_then(|n| u32::try_from(n).ok()),
            padded,
        }),
        other => other,
    };
    (value_type, Vec::new())
}

/// A one-byte integer (CrateDB's and Elasticsearch's `byte`): a smallint within -128..=127.
fn one_byte_integer() -> (Option<ValueType>, Vec<Rule>) {
    (
        Some(ValueType::Int { bytes: 2 }),
        vec![Rule::AtLeast(-128.0), Rule::AtMost(127.0)],
    )
}

/// An Elasticsearch or OpenSearch index's catalog from its `GET /INDEX/_mapping` answer
/// (`{"index": {"mappings": {"properties": …}}}`, or through the one type of an Elasticsearch 6
/// mapping): every field a nullable column in its mapping type's terms, an object's or nested
/// field's `properties` its members, an `alias` left to the server.
pub(crate) fn from_elastic(answer: &Value) -> Catalog {
    let mappings = answer
        .as_object()
        .and_then(|indices| indices.values().next())
        .and_then(|index| index.get("mappings"));
    let properties = mappings.and_then(|mappings| {
        mappings.get("properties").or_else(|| {
            mappings
                .as_object()?
                .values()
                .find_map(|typed| typed.get("properties"))
        })
    });
    Catalog {
        columns: elastic_columns(properties),
        ..Catalog::default()
    }
}

/// The columns of a mapping's `properties`.
fn elastic_columns(properties: Option<&Value>) -> Vec<CatalogColumn> {
    properties
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, mapping)| elastic_column(name, mapping))
        .collect()
}

/// The date formats whose text gen writes (RFC 3339): the default and its spellings.
const ELASTIC_DATE_FORMATS: [&str; 3] = [
    "strict_date_optional_time",
    "date_optional_time",
    "strict_date_optional_time_nanos",
];

/// One mapped field: keyword and text fields as text, the integer and float kinds, boolean,
/// date (in a format that reads RFC 3339), ip, and object, nested or flattened as JSON.
fn elastic_column(name: &str, mapping: &Value) -> CatalogColumn {
    let properties = mapping.get("properties");
    // A field with `properties` and no `type` is an object.
    let kind = mapping
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object");
    let format = mapping.get("format").and_then(Value::as_str);
    let int = |bytes| (Some(ValueType::Int { bytes }), Vec::new());
    let float = |bytes| {
        let float = ValueType::Float {
            bytes,
            decimals: None,
        };
        (Some(float), Vec::new())
    };
    let (value_type, rules) = match kind {
        "keyword" | "text" | "wildcard" | "match_only_text" | "search_as_you_type" => (
            Some(ValueType::Text {
                max_chars: None,
                padded: false,
            }),
            Vec::new(),
        ),
        "long" => int(8),
        "integer" => int(4),
        "short" => int(2),
        "byte" => one_byte_integer(),
        "unsigned_long" => (Some(ValueType::Int { bytes: 8 }), vec![Rule::AtLeast(0.0)]),
        "double" | "scaled_float" => float(8),
        "float" | "half_float" => float(4),
        "boolean" => (Some(ValueType::Bool), Vec::new()),
        "date" | "date_nanos"
            if format.is_none_or(|format| {
                format
                    .split("||")
                    .any(|one| ELASTIC_DATE_FORMATS.contains(&one))
            }) =>
        {
            (Some(ValueType::Timestamptz), Vec::new())
        }
        "ip" => (Some(ValueType::Inet), Vec::new()),
        "object" | "nested" | "flattened" => (Some(ValueType::Json), Vec::new()),
        _ => (None, Vec::new()),
    };
    let type_name = match format {
        Some(format) if value_type.is_none() => format!("{kind} (format {format})"),
        _ => kind.to_string(),
    };
    let mut column = CatalogColumn::new(name, &type_name, value_type);
    column.rules = rules;
    column.server_filled = kind == "alias";
    if kind != "flattened" {
        column.fields = elastic_columns(properties);
    }
    column
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
        ValueType::Json | ValueType::Jsonb if !column.fields.is_empty() => Generator::Object {
            // The object's own members, each by its type; a member gen does not make is left
            // out of the object, as a nullable column is left out of a row.
            fields: column
                .fields
                .iter()
                .filter(|member| !member.server_filled)
                .filter_map(|member| {
                    default_field(member, member.value_type.as_ref()?, false, None).ok()
                })
                .collect(),
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::plan;
    use serde_json::json;

    fn rows(value: Value) -> Vec<Vec<Value>> {
        serde_json::from_value(value).unwrap()
    }

    fn text() -> ValueType {
        ValueType::Text {
            max_chars: None,
            padded: false,
        }
    }

    #[test]
    fn clickhouse_columns_tell_nullable_enums_and_defaults() {
        let row = |name: &str, type_name: &str, default_kind: &str| {
            [
                name.to_string(),
                type_name.to_string(),
                default_kind.to_string(),
            ]
        };
        let catalog = from_clickhouse(&[
            row("id", "Int64", ""),
            row("note", "Nullable(String)", ""),
            row("kind", "Enum8('view' = 1, 'buy' = 2)", ""),
            row("made", "DateTime", "DEFAULT"),
        ]);
        let column = |name| catalog.column(name).unwrap();
        assert!(column("id").not_null && !column("note").not_null);
        assert_eq!(column("note").value_type, Some(text()));
        assert_eq!(column("kind").value_type, Some(ValueType::Enum));
        assert_eq!(column("kind").labels, ["view", "buy"]);
        assert!(column("made").server_filled && !column("id").server_filled);
    }

    #[test]
    fn cratedb_columns_become_typed_columns_with_objects_keys_and_server_filled_ones() {
        let catalog = from_cratedb(
            &rows(json!([
                ["id", "bigint", false, null, null, null],
                ["name", "text", true, null, null, null],
                ["code", "character varying", false, null, null, 8],
                ["small", "byte", true, null, null, null],
                ["tags", "text_array", true, null, null, null],
                ["obj", "object", true, null, null, null],
                ["obj['n']", "integer", true, null, null, null],
                ["obj['in''ner']", "object", true, null, null, null],
                [
                    "obj['in''ner']['at']",
                    "timestamp with time zone",
                    true,
                    null,
                    null,
                    null
                ],
                [
                    "made",
                    "timestamp with time zone",
                    true,
                    "CURRENT_TIMESTAMP",
                    null,
                    null
                ],
                ["twice", "bigint", true, null, "id * 2", null],
                ["spot", "geo_point", true, null, null, null],
                ["addr", "ip", true, null, null, null],
            ])),
            &["id".to_string()],
        );
        let names: Vec<&str> = catalog.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["id", "name", "code", "small", "tags", "obj", "made", "twice", "spot", "addr"]
        );
        let column = |name| catalog.column(name).unwrap();
        assert!(column("id").unique && column("id").not_null);
        assert!(!column("name").unique && !column("name").not_null);
        assert_eq!(column("id").value_type, Some(ValueType::Int { bytes: 8 }));
        assert_eq!(
            column("code").value_type,
            Some(ValueType::Text {
                max_chars: Some(8),
                padded: false
            })
        );
        assert_eq!(
            column("small").rules,
            [Rule::AtLeast(-128.0), Rule::AtMost(127.0)]
        );
        assert_eq!(
            column("tags").value_type,
            Some(ValueType::Array(Box::new(text())))
        );
        let obj = column("obj");
        assert_eq!(obj.value_type, Some(ValueType::Json));
        let members: Vec<&str> = obj.fields.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(members, ["n", "in'ner"]);
        assert_eq!(obj.fields[1].fields[0].name, "at");
        assert!(column("made").server_filled && column("twice").server_filled);
        assert_eq!(column("spot").value_type, None);
        assert_eq!(column("addr").value_type, Some(ValueType::Inet));
        assert!(catalog.composite_keys.is_empty());

        let design = plan::from_catalog(&catalog, None, "t", &mut |_, _| Ok(Vec::new())).unwrap();
        let generated = design.names();
        assert_eq!(
            generated,
            ["id", "name", "code", "small", "tags", "obj", "addr"]
        );
        let small = &design.plan.columns[3];
        assert_eq!(
            small.generator,
            Generator::UniformInt {
                min: -128,
                max: 127
            }
        );
        let Generator::Object { fields } = &design.plan.columns[5].generator else {
            panic!("obj is an object of its members")
        };
        assert_eq!(fields[0].value_type, ValueType::Int { bytes: 4 });
        assert!(
            matches!(&fields[1].generator, Generator::Object { fields } if fields[0].name == "at")
        );
        let unmade: Vec<&str> = design.unmade().map(|(name, _)| name.as_str()).collect();
        assert_eq!(unmade, ["spot"]);
    }

    #[test]
    fn a_cratedb_composite_key_and_a_not_null_unknown_type() {
        let catalog = from_cratedb(
            &rows(json!([
                ["region", "integer", false, null, null, null],
                ["serial", "bigint", false, null, null, null],
                ["shape", "geo_shape", false, null, null, null],
            ])),
            &["region".to_string(), "serial".to_string()],
        );
        assert_eq!(catalog.composite_keys, [["region", "serial"]]);
        let err = plan::from_catalog(&catalog, None, "t", &mut |_, _| Ok(Vec::new())).unwrap_err();
        assert!(
            err.0.contains("`shape`") && err.0.contains("geo_shape NOT NULL"),
            "{}",
            err.0
        );
    }

    #[test]
    fn an_elastic_mapping_becomes_nullable_columns_of_its_field_types() {
        let properties = json!({
            "name": {"type": "keyword"},
            "body": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
            "count": {"type": "long"},
            "level": {"type": "byte"},
            "ratio": {"type": "half_float"},
            "price": {"type": "scaled_float", "scaling_factor": 100},
            "ok": {"type": "boolean"},
            "at": {"type": "date"},
            "day": {"type": "date", "format": "yyyy-MM-dd"},
            "seen": {"type": "date", "format": "strict_date_optional_time||epoch_millis"},
            "from": {"type": "ip"},
            "user": {"properties": {"id": {"type": "integer"}, "where": {"type": "geo_point"}}},
            "items": {"type": "nested", "properties": {"sku": {"type": "keyword"}}},
            "named": {"type": "alias", "path": "name"},
            "spot": {"type": "geo_point"},
        });
        for answer in [
            json!({"idx": {"mappings": {"properties": properties}}}),
            // Elasticsearch 6: the mapping's one type in between.
            json!({"idx": {"mappings": {"_doc": {"properties": properties}}}}),
        ] {
            let catalog = from_elastic(&answer);
            assert_eq!(catalog.columns.len(), 15);
            let column = |name| catalog.column(name).unwrap();
            assert!(catalog.columns.iter().all(|c| !c.not_null && !c.unique));
            assert_eq!(column("name").value_type, Some(text()));
            assert_eq!(
                column("count").value_type,
                Some(ValueType::Int { bytes: 8 })
            );
            assert_eq!(
                column("level").rules,
                [Rule::AtLeast(-128.0), Rule::AtMost(127.0)]
            );
            assert_eq!(
                column("ratio").value_type,
                Some(ValueType::Float {
                    bytes: 4,
                    decimals: None
                })
            );
            assert_eq!(column("at").value_type, Some(ValueType::Timestamptz));
            assert_eq!(column("seen").value_type, Some(ValueType::Timestamptz));
            assert_eq!(column("day").value_type, None);
            assert_eq!(column("day").type_name, "date (format yyyy-MM-dd)");
            assert_eq!(column("from").value_type, Some(ValueType::Inet));
            assert_eq!(column("user").type_name, "object");
            assert_eq!(column("user").fields.len(), 2);
            assert_eq!(column("items").fields[0].name, "sku");
            assert!(column("named").server_filled);
            assert_eq!(column("spot").value_type, None);
        }
        assert!(from_elastic(&json!({"idx": {"mappings": {}}}))
            .columns
            .is_empty());
    }
}
