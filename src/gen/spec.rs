//! The spec file (`--spec FILE`, TOML): columns described by a generator and its parameters,
//! overriding the catalog's or describing a whole table, and the built-in `readings` spec.
//! [`Spec::field`] turns one described column into a [`Field`], checking every parameter: a bad
//! spec is one [`SpecError`] line naming the column and the fix.

use serde::Deserialize;

use crate::encode::days_from_civil;
use crate::gen::model::{Cell, Field, Generator, ValueType};

/// The `readings` table as a spec: the reference workload every benchmark loads.
pub(crate) const READINGS_SPEC: &str = include_str!("readings.toml");

/// A spec that cannot be used: one line, exit 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SpecError(pub String);

/// A parsed spec file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Spec {
    #[serde(default, rename = "column")]
    pub columns: Vec<ColumnSpec>,
}

/// One `[[column]]` of a spec (or a member of an `object`, or an `array`'s `element`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ColumnSpec {
    #[serde(default)]
    pub name: String,
    /// The column's type (the target's name for it); needed where there is no catalog.
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    /// The generator; without one, the catalog's choice for the type.
    #[serde(rename = "gen")]
    pub generator: Option<String>,
    /// The share of NULLs, 0 to 1.
    pub nulls: Option<f64>,
    /// Whether values must be unique (the catalog says so for keys).
    #[serde(default)]
    pub unique: bool,
    /// The generator's parameters.
    #[serde(flatten)]
    pub params: toml::Table,
}

/// The generators a spec can name.
pub(crate) const GENERATORS: &str = "sequence, uniform, normal, choice, zipf, template, string, \
     words, sentence, timestamp, uuid, bool, bytes, inet, object, array, reference";

impl Spec {
    /// Parses a spec's text; `origin` names it in errors.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<Spec, SpecError> {
        let spec: Spec = toml::from_str(text).map_err(|err| {
            let message = err.message().replace('\n', " ");
            SpecError(format!("spec {origin}: {message}"))
        })?;
        let mut seen = std::collections::BTreeSet::new();
        for column in &spec.columns {
            if column.name.is_empty() {
                return Err(SpecError(format!(
                    "spec {origin}: a [[column]] has no name; give it `name = \"…\"`"
                )));
            }
            if !seen.insert(column.name.as_str()) {
                return Err(SpecError(format!(
                    "spec {origin}: column `{}` is described twice",
                    column.name
                )));
            }
        }
        Ok(spec)
    }

    /// Reads and parses a spec file.
    pub(crate) fn read(path: &std::path::Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| SpecError(format!("cannot read spec {}: {err}", path.display())))?;
        Spec::parse(&text, &path.display().to_string())
    }

    /// The built-in `readings` spec.
    pub(crate) fn readings() -> Spec {
        Spec::parse(READINGS_SPEC, "readings").expect("the built-in spec parses")
    }

    /// The column named `name`.
    pub(crate) fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|column| column.name == name)
    }
}

/// The keys another table (as SQL) holds in one column (as SQL), read once at the start: what
/// a `reference` or a foreign key draws from.
pub(crate) type KeyReader<'a> = &'a mut dyn FnMut(&str, &str) -> Result<Vec<String>, SpecError>;

impl ColumnSpec {
    /// The field this spec describes, of type `value_type` (named `type_name` by the target):
    /// its generator built and checked. `unique` asks for a generator that never repeats.
    pub(crate) fn field(
        &self,
        type_name: &str,
        value_type: ValueType,
        unique: bool,
        keys: KeyReader<'_>,
    ) -> Result<Field, SpecError> {
        let mut field = Field::new(&self.name, type_name, value_type);
        let mut params = Params {
            column: &self.name,
            table: &self.params,
            used: Vec::new(),
        };
        let name = self.generator.as_deref().unwrap_or("");
        if let ValueType::Float { bytes, .. } = field.value_type {
            if let Some(decimals) = params.int_opt("decimals")? {
                field.value_type = ValueType::Float {
                    bytes,
                    decimals: Some(params.in_range("decimals", decimals, 0, 9)? as u8),
                };
            }
        }
        field.generator = generator(name, &mut params, &mut field, keys)?;
        field.why = format!("spec: {name}");
        if let Some(nulls) = self.nulls {
            if !(0.0..=1.0).contains(&nulls) {
                return Err(params.error(format!("nulls = {nulls} must be between 0 and 1")));
            }
            if unique && nulls > 0.0 {
                return Err(params.error("a unique column cannot have nulls".into()));
            }
            field.set_nulls(nulls);
        }
        if (unique || self.unique) && !field.generator.is_unique() {
            return Err(params.error(format!(
                "is unique, but `{name}` can repeat a value; use sequence, template with {{}}, \
                 uuid, or a timestamp with a step"
            )));
        }
        params.no_others()?;
        Ok(field)
    }
}

/// A column's parameters, each taken once; any left over is a typo.
struct Params<'a> {
    column: &'a str,
    table: &'a toml::Table,
    used: Vec<&'static str>,
}

impl Params<'_> {
    fn error(&self, reason: String) -> SpecError {
        SpecError(format!("spec: column `{}`: {reason}", self.column))
    }

    fn get(&mut self, key: &'static str) -> Option<&toml::Value> {
        self.used.push(key);
        self.table.get(key)
    }

    fn float_opt(&mut self, key: &'static str) -> Result<Option<f64>, SpecError> {
        match self.get(key).cloned() {
            None => Ok(None),
            Some(toml::Value::Integer(v)) => Ok(Some(v as f64)),
            Some(toml::Value::Float(v)) if v.is_finite() => Ok(Some(v)),
            Some(other) => Err(self.error(format!("`{key}` must be a number, not {other}"))),
        }
    }

    fn float(&mut self, key: &'static str) -> Result<f64, SpecError> {
        self.float_opt(key)?
            .ok_or_else(|| self.error(format!("needs `{key}`")))
    }

    fn int_opt(&mut self, key: &'static str) -> Result<Option<i64>, SpecError> {
        match self.get(key).cloned() {
            None => Ok(None),
            Some(toml::Value::Integer(v)) => Ok(Some(v)),
            Some(other) => Err(self.error(format!("`{key}` must be an integer, not {other}"))),
        }
    }

    fn in_range(&self, key: &str, value: i64, min: i64, max: i64) -> Result<i64, SpecError> {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(self.error(format!("`{key}` = {value} must be in {min}..={max}")))
        }
    }

    fn text_opt(&mut self, key: &'static str) -> Result<Option<String>, SpecError> {
        match self.get(key).cloned() {
            None => Ok(None),
            Some(toml::Value::String(v)) => Ok(Some(v)),
            Some(other) => Err(self.error(format!("`{key}` must be a string, not {other}"))),
        }
    }

    fn text(&mut self, key: &'static str) -> Result<String, SpecError> {
        self.text_opt(key)?
            .ok_or_else(|| self.error(format!("needs `{key}`")))
    }

    /// `min` and `max` as integers (lengths, counts), `min` ≤ `max`.
    fn length_range(&mut self, default: (i64, i64)) -> Result<(u32, u32), SpecError> {
        let min = self.int_opt("min")?.unwrap_or(default.0);
        let max = self.int_opt("max")?.unwrap_or(default.1.max(min));
        self.ordered(min as f64, max as f64)?;
        let min = self.in_range("min", min, 0, 1_000_000)?;
        let max = self.in_range("max", max, 0, 1_000_000)?;
        Ok((min as u32, max as u32))
    }

    fn ordered(&self, min: f64, max: f64) -> Result<(), SpecError> {
        if min > max {
            return Err(self.error(format!("min {min} is greater than max {max}")));
        }
        Ok(())
    }

    fn no_others(&self) -> Result<(), SpecError> {
        match self
            .table
            .keys()
            .find(|key| !self.used.contains(&key.as_str()))
        {
            Some(key) => Err(self.error(format!("unknown parameter `{key}`"))),
            None => Ok(()),
        }
    }
}

/// The generator `name` with its parameters, for `field`'s type.
fn generator(
    name: &str,
    params: &mut Params<'_>,
    field: &mut Field,
    keys: KeyReader<'_>,
) -> Result<Generator, SpecError> {
    let value_type = field.value_type.clone();
    let cannot = |params: &Params<'_>, what: &str| {
        params.error(format!(
            "`{name}` makes {what}, which a column of type {} cannot hold",
            field.type_name
        ))
    };
    let scale = 10f64.powi(i32::from(value_type.scale()));
    Ok(match name {
        "sequence" => {
            if !value_type.holds_int() || value_type.scale() > 0 || value_type.is_time() {
                if !value_type.is_text() {
                    return Err(cannot(params, "integers"));
                }
                let start = params.int_opt("start")?.unwrap_or(1);
                return Ok(Generator::Template {
                    prefix: String::new(),
                    width: 0,
                    suffix: String::new(),
                    start,
                });
            }
            Generator::Sequence {
                start: params.int_opt("start")?.unwrap_or(1),
                step: params.int_opt("step")?.unwrap_or(1),
            }
        }
        "uniform" => {
            let (min, max) = (params.float("min")?, params.float("max")?);
            params.ordered(min, max)?;
            if value_type.holds_int() && !value_type.is_time() && value_type != ValueType::Bool {
                let (min, max) = ((min * scale).round() as i64, (max * scale).round() as i64);
                check_limit(params, &value_type, min, max)?;
                Generator::UniformInt { min, max }
            } else if matches!(value_type, ValueType::Float { .. }) {
                Generator::UniformFloat { min, max }
            } else {
                return Err(cannot(params, "numbers"));
            }
        }
        "normal" => {
            let mean = params.float("mean")?;
            let stddev = params.float("stddev")?;
            if stddev <= 0.0 {
                return Err(params.error(format!("stddev {stddev} must be above 0")));
            }
            let (min, max) = (params.float_opt("min")?, params.float_opt("max")?);
            if let (Some(min), Some(max)) = (min, max) {
                params.ordered(min, max)?;
            }
            if !value_type.is_number() {
                return Err(cannot(params, "numbers"));
            }
            Generator::Normal {
                mean,
                stddev,
                min,
                max,
            }
        }
        "choice" | "zipf" => {
            let values = match params.get("values").cloned() {
                Some(toml::Value::Array(values)) if !values.is_empty() => values,
                None if name == "zipf" => {
                    let n = params.int_opt("n")?.ok_or_else(|| {
                        params.error("zipf needs `values` or `n` (values 1..=n)".into())
                    })?;
                    let n = params.in_range("n", n, 1, 10_000_000)?;
                    (1..=n).map(toml::Value::Integer).collect()
                }
                _ => return Err(params.error(format!("`{name}` needs `values`, a non-empty list"))),
            };
            let weights = if name == "zipf" {
                let exponent = params.float_opt("s")?.unwrap_or(1.0);
                if exponent <= 0.0 {
                    return Err(params.error(format!("s = {exponent} must be above 0")));
                }
                Some(
                    (1..=values.len())
                        .map(|rank| 1.0 / (rank as f64).powf(exponent))
                        .collect::<Vec<f64>>(),
                )
            } else {
                match params.get("weights").cloned() {
                    None => None,
                    Some(toml::Value::Array(weights)) => {
                        let weights: Vec<f64> = weights
                            .iter()
                            .map(|w| match w {
                                toml::Value::Integer(v) => Some(*v as f64),
                                toml::Value::Float(v) => Some(*v),
                                _ => None,
                            })
                            .collect::<Option<_>>()
                            .filter(|w: &Vec<f64>| w.iter().all(|w| *w >= 0.0 && w.is_finite()))
                            .ok_or_else(|| {
                                params.error("`weights` must be numbers of at least 0".into())
                            })?;
                        if weights.len() != values.len() || weights.iter().sum::<f64>() <= 0.0 {
                            return Err(params.error(format!(
                                "{} weights for {} values; give one weight per value, not all 0",
                                weights.len(),
                                values.len()
                            )));
                        }
                        Some(weights)
                    }
                    Some(other) => {
                        return Err(params.error(format!("`weights` must be a list, not {other}")))
                    }
                }
            };
            let texts: Vec<String> = values
                .iter()
                .map(|value| match value {
                    toml::Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect();
            let cells = choice_cells(&texts, field, params)?;
            Generator::choice(cells, weights.as_deref())
        }
        "reference" => {
            let table = params.text("table")?;
            let column = params.text("column")?;
            let table_sql = crate::sql::TableName::parse(&table)
                .map_err(|err| params.error(err.to_string()))?
                .quoted();
            let texts = keys(&table_sql, &crate::sql::quote_ident(&column))?;
            if texts.is_empty() {
                return Err(params.error(format!(
                    "references {table}({column}), which holds no rows; load {table} first"
                )));
            }
            let cells = choice_cells(&texts, field, params)?;
            Generator::choice(cells, None)
        }
        "template" => {
            if !value_type.is_text() {
                return Err(cannot(params, "text"));
            }
            let template = params.text("template")?;
            parse_template(&template, params.int_opt("start")?.unwrap_or(1))
                .map_err(|reason| params.error(reason))?
        }
        "string" => {
            if !value_type.is_text() {
                return Err(cannot(params, "text"));
            }
            let (min, max) = params.length_range((8, 8))?;
            let alphabet = params.text_opt("alphabet")?.unwrap_or_else(|| {
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".into()
            });
            if alphabet.is_empty() || !alphabet.is_ascii() {
                return Err(params.error("`alphabet` must be non-empty ASCII".into()));
            }
            Generator::Chars {
                min,
                max,
                alphabet: alphabet.into_bytes(),
            }
        }
        "words" | "sentence" => {
            if !value_type.is_text() && value_type != ValueType::Json {
                return Err(cannot(params, "text"));
            }
            let (min, max) = params.length_range(if name == "words" { (1, 3) } else { (4, 12) })?;
            let max_chars = match value_type {
                ValueType::Text { max_chars, .. } => max_chars,
                _ => None,
            };
            Generator::Words {
                min: min.max(1),
                max: max.max(1),
                sentence: name == "sentence",
                max_chars,
            }
        }
        "timestamp" => {
            if !value_type.is_time() {
                return Err(cannot(params, "times"));
            }
            let at = |params: &mut Params<'_>,
                      key: &'static str|
             -> Result<Option<i64>, SpecError> {
                match params.text_opt(key)? {
                    None => Ok(None),
                    Some(text) => parse_time(&text).map(Some).ok_or_else(|| {
                        params.error(format!(
                            "`{key}` = {text:?} is not a time like 2026-01-01T00:00:00Z or 2026-01-01"
                        ))
                    }),
                }
            };
            let start = at(params, "start")?.unwrap_or(1_767_225_600_000_000);
            let end = at(params, "end")?;
            let step = duration(params, "step")?;
            let jitter = duration(params, "jitter")?.unwrap_or(0);
            match (end, step) {
                (Some(_), Some(_)) => {
                    return Err(params.error("give `step` or `end`, not both".into()))
                }
                (Some(end), None) => {
                    if end <= start {
                        return Err(params.error("`end` must come after `start`".into()));
                    }
                    Generator::TimeRange { start, end }
                }
                (None, step) => Generator::TimeStep {
                    start,
                    step: step.unwrap_or(1_000_000),
                    jitter,
                },
            }
        }
        "uuid" => match value_type {
            ValueType::Uuid
            | ValueType::Text {
                max_chars: None, ..
            } => Generator::Uuid,
            _ => return Err(cannot(params, "UUIDs")),
        },
        "bool" => {
            if value_type != ValueType::Bool {
                return Err(cannot(params, "booleans"));
            }
            let p_true = params.float_opt("p")?.unwrap_or(0.5);
            if !(0.0..=1.0).contains(&p_true) {
                return Err(params.error(format!("p = {p_true} must be between 0 and 1")));
            }
            Generator::Bool { p_true }
        }
        "bytes" => {
            if value_type != ValueType::Bytea {
                return Err(cannot(params, "bytes"));
            }
            let len = params.int_opt("len")?.unwrap_or(16);
            Generator::Bytes {
                len: params.in_range("len", len, 0, 1_000_000)? as u32,
            }
        }
        "inet" => {
            if value_type != ValueType::Inet {
                return Err(cannot(params, "addresses"));
            }
            Generator::Inet
        }
        "object" => {
            if !matches!(
                value_type,
                ValueType::Json
                    | ValueType::Jsonb
                    | ValueType::Text {
                        max_chars: None,
                        ..
                    }
            ) {
                return Err(cannot(params, "JSON objects"));
            }
            let members = match params.get("fields").cloned() {
                Some(toml::Value::Array(members)) => members,
                _ => return Err(params.error("`object` needs `fields`, a list of columns".into())),
            };
            let mut fields = Vec::new();
            for member in members {
                let member: ColumnSpec = member
                    .try_into()
                    .map_err(|err: toml::de::Error| params.error(err.message().to_string()))?;
                let (type_name, value_type) = member_type(&member);
                fields.push(member.field(&type_name, value_type, member.unique, keys)?);
            }
            Generator::Object { fields }
        }
        "array" => {
            let ValueType::Array(element_type) = &value_type else {
                return Err(cannot(params, "arrays"));
            };
            let (min, max) = params.length_range((0, 4))?;
            let element = match params.get("element").cloned() {
                Some(value @ toml::Value::Table(_)) => value,
                _ => return Err(params.error("`array` needs `element`, a column table".into())),
            };
            let mut element: ColumnSpec = element
                .try_into()
                .map_err(|err: toml::de::Error| params.error(err.message().to_string()))?;
            element.name = format!("{}[]", params.column);
            let element = element.field(&field.type_name, (**element_type).clone(), false, keys)?;
            Generator::Array {
                element: Box::new(element),
                min,
                max,
            }
        }
        "" => return Err(params.error(format!("needs `gen`, one of: {GENERATORS}"))),
        other => {
            return Err(params.error(format!(
                "unknown generator `{other}`; the generators are {GENERATORS}"
            )))
        }
    })
}

/// A check that integer units fit the column's type.
fn check_limit(
    params: &Params<'_>,
    value_type: &ValueType,
    min: i64,
    max: i64,
) -> Result<(), SpecError> {
    if let Some(limit) = value_type.int_limit() {
        if min < -limit || max > limit {
            return Err(params.error(format!(
                "the range {min}..={max} (in units of the type) does not fit; the type holds \
                 -{limit}..={limit}"
            )));
        }
    }
    Ok(())
}

/// The cells of a choice among `texts`: numbers for numeric columns, labels otherwise.
fn choice_cells(
    texts: &[String],
    field: &mut Field,
    params: &Params<'_>,
) -> Result<Vec<Cell>, SpecError> {
    let value_type = &field.value_type;
    if value_type.holds_int() && !value_type.is_time() && *value_type != ValueType::Inet {
        let scale = 10f64.powi(i32::from(value_type.scale()));
        return texts
            .iter()
            .map(|text| match text.as_str() {
                "true" if *value_type == ValueType::Bool => Ok(Cell::Int(1)),
                "false" if *value_type == ValueType::Bool => Ok(Cell::Int(0)),
                _ => text
                    .parse::<f64>()
                    .map(|v| Cell::Int((v * scale).round() as i64))
                    .map_err(|_| {
                        params.error(format!(
                            "value {text:?} is not a number for type {}",
                            field.type_name
                        ))
                    }),
            })
            .collect();
    }
    if let ValueType::Float { .. } = value_type {
        return texts
            .iter()
            .map(|text| {
                text.parse::<f64>().map(Cell::Float).map_err(|_| {
                    params.error(format!(
                        "value {text:?} is not a number for type {}",
                        field.type_name
                    ))
                })
            })
            .collect();
    }
    if let ValueType::Text {
        max_chars: Some(max),
        ..
    } = value_type
    {
        if let Some(long) = texts.iter().find(|t| t.chars().count() > *max as usize) {
            return Err(params.error(format!(
                "value {long:?} is longer than the {max} characters of {}",
                field.type_name
            )));
        }
    }
    field.labels = texts.iter().map(|t| t.as_str().into()).collect();
    Ok((0..texts.len() as u32).map(Cell::Label).collect())
}

/// The type of an object's member: its `type`, else what its generator makes.
fn member_type(member: &ColumnSpec) -> (String, ValueType) {
    if let Some(value_type) = member.type_name.as_deref().and_then(parse_type) {
        return (member.type_name.clone().unwrap_or_default(), value_type);
    }
    let value_type = match member.generator.as_deref() {
        Some("sequence" | "zipf") => ValueType::Int { bytes: 8 },
        Some("uniform" | "normal") => ValueType::Float {
            bytes: 8,
            decimals: None,
        },
        Some("timestamp") => ValueType::Timestamptz,
        Some("uuid") => ValueType::Uuid,
        Some("bool") => ValueType::Bool,
        Some("object") => ValueType::Json,
        Some("inet") => ValueType::Inet,
        _ => ValueType::Text {
            max_chars: None,
            padded: false,
        },
    };
    (String::from("json"), value_type)
}

/// `SKU-{:06}` → prefix, width, suffix; `{}` is the id unpadded.
fn parse_template(template: &str, start: i64) -> Result<Generator, String> {
    let open = template.find('{').ok_or_else(|| {
        format!(
            "template {template:?} has no {{}} placeholder, so every row gets the same text and \
             it cannot be unique; add {{}} or {{:06}} where the row's number goes"
        )
    })?;
    let close = template[open..]
        .find('}')
        .map(|i| open + i)
        .ok_or_else(|| format!("template {template:?} has an unclosed {{"))?;
    let inside = &template[open + 1..close];
    let width = match inside {
        "" => 0,
        _ => inside
            .strip_prefix(":0")
            .and_then(|w| w.parse::<usize>().ok())
            .filter(|w| *w <= 30)
            .ok_or_else(|| format!("template placeholder {{{inside}}}: write {{}} or {{:0N}}"))?,
    };
    let suffix = &template[close + 1..];
    if suffix.contains('{') {
        return Err(format!(
            "template {template:?} has more than one placeholder"
        ));
    }
    Ok(Generator::Template {
        prefix: template[..open].to_string(),
        width,
        suffix: suffix.to_string(),
        start,
    })
}

/// A duration parameter (`10ms`, `1h`) in microseconds.
fn duration(params: &mut Params<'_>, key: &'static str) -> Result<Option<i64>, SpecError> {
    match params.text_opt(key)? {
        None => Ok(None),
        Some(text) => humantime::parse_duration(&text)
            .map(|d| Some(d.as_micros().min(i64::MAX as u128) as i64))
            .map_err(|err| params.error(format!("`{key}` = {text:?}: {err}"))),
    }
}

/// `YYYY-MM-DD`, optionally `THH:MM:SS[.ffffff]` and `Z`, as microseconds since the Unix epoch (UTC).
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00:00"));
    let mut parts = date.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts
        .next()?
        .parse()
        .ok()
        .filter(|m| (1..=12).contains(m))?;
    let day: u32 = parts
        .next()?
        .parse()
        .ok()
        .filter(|d| (1..=31).contains(d))?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock = clock.splitn(3, ':');
    let hour: i64 = clock.next()?.parse().ok().filter(|h| *h < 24)?;
    let minute: i64 = clock.next()?.parse().ok().filter(|m| *m < 60)?;
    let second: i64 = clock
        .next()
        .unwrap_or("0")
        .parse()
        .ok()
        .filter(|s| *s < 60)?;
    let micros: i64 = format!("{fraction:0<6}").get(..6)?.parse().ok()?;
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000) + micros)
}

/// A type by the names PostgreSQL, ClickHouse, CrateDB and Elasticsearch give it: what a spec's
/// `type` and the catalogs' type names are read with. `None`: a type gen does not make.
pub(crate) fn parse_type(name: &str) -> Option<ValueType> {
    // ClickHouse's Int8 is one byte (a smallint here); PostgreSQL's int8 is a bigint.
    if name.trim() == "Int8" {
        return Some(ValueType::Int { bytes: 2 });
    }
    let lower = name.trim().to_ascii_lowercase();
    let text = |max_chars, padded| Some(ValueType::Text { max_chars, padded });
    if let Some(element) = lower.strip_suffix("[]") {
        return Some(ValueType::Array(Box::new(parse_type(element)?)));
    }
    if let Some(inner) = wrapped(&lower, "array") {
        return Some(ValueType::Array(Box::new(parse_type(inner)?)));
    }
    if let Some(inner) = wrapped(&lower, "nullable").or_else(|| wrapped(&lower, "lowcardinality")) {
        return parse_type(inner);
    }
    let (base, args) = match lower.split_once('(') {
        Some((base, rest)) => (base.trim(), rest.trim_end_matches(')')),
        None => (lower.as_str(), ""),
    };
    let numbers: Vec<u32> = args
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    match base {
        "smallint" | "int2" | "int16" | "short" | "uint8" => Some(ValueType::Int { bytes: 2 }),
        "integer" | "int" | "int4" | "int32" | "uint16" | "serial" => {
            Some(ValueType::Int { bytes: 4 })
        }
        "bigint" | "int8" | "int64" | "uint32" | "long" | "bigserial" => {
            Some(ValueType::Int { bytes: 8 })
        }
        "numeric" | "decimal" => {
            let precision = numbers.first().copied().unwrap_or(18).min(18) as u8;
            let scale = numbers
                .get(1)
                .copied()
                .unwrap_or(2)
                .min(u32::from(precision)) as u8;
            Some(ValueType::Numeric { precision, scale })
        }
        "real" | "float4" | "float32" | "float" => Some(ValueType::Float {
            bytes: 4,
            decimals: None,
        }),
        "double precision" | "float8" | "float64" | "double" => Some(ValueType::Float {
            bytes: 8,
            decimals: None,
        }),
        "boolean" | "bool" => Some(ValueType::Bool),
        "text" | "string" | "keyword" => text(None, false),
        "varchar" | "character varying" => text(numbers.first().copied(), false),
        "char" | "character" | "bpchar" | "fixedstring" => text(
            Some(numbers.first().copied().unwrap_or(1)),
            base != "fixedstring",
        ),
        "date" | "date32" => Some(ValueType::Date),
        "timestamp" | "timestamp without time zone" => Some(ValueType::Timestamp),
        "timestamptz" | "timestamp with time zone" | "datetime" | "datetime64" => {
            Some(ValueType::Timestamptz)
        }
        "time" | "time without time zone" => Some(ValueType::Time),
        "interval" => Some(ValueType::Interval),
        "uuid" => Some(ValueType::Uuid),
        "json" | "object" => Some(ValueType::Json),
        "jsonb" => Some(ValueType::Jsonb),
        "bytea" => Some(ValueType::Bytea),
        "inet" | "ip" | "ipv4" => Some(ValueType::Inet),
        _ => None,
    }
}

/// `inner` of `name(inner)`.
fn wrapped<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_keys(_: &str, _: &str) -> Result<Vec<String>, SpecError> {
        Ok(Vec::new())
    }

    fn field_of(spec: &str, type_name: &str, unique: bool) -> Result<Field, SpecError> {
        let spec = Spec::parse(&format!("[[column]]\nname = \"c\"\n{spec}"), "t.toml")?;
        let value_type = parse_type(type_name).expect("a known type");
        spec.columns[0].field(type_name, value_type, unique, &mut no_keys)
    }

    #[test]
    fn bad_specs_name_the_column_and_the_cause() {
        for (spec, type_name, unique, expected) in [
            ("gen = \"nope\"", "int", false, "unknown generator `nope`"),
            (
                "gen = \"uniform\"\nmin = 5\nmax = 1",
                "int",
                false,
                "min 5 is greater than max 1",
            ),
            (
                "gen = \"template\"\ntemplate = \"SKU\"",
                "text",
                true,
                "cannot be unique",
            ),
            (
                "gen = \"choice\"\nvalues = [\"a\"]",
                "text",
                true,
                "can repeat a value",
            ),
            ("gen = \"uuid\"", "integer", false, "cannot hold"),
            (
                "gen = \"uniform\"\nmin = 0\nmax = 100000",
                "smallint",
                false,
                "does not fit",
            ),
            (
                "gen = \"uniform\"\nmin = 0\nmax = 1\nmxa = 3",
                "int",
                false,
                "unknown parameter `mxa`",
            ),
            (
                "gen = \"reference\"\ntable = \"t\"\ncolumn = \"k\"",
                "int",
                false,
                "holds no rows",
            ),
        ] {
            let err = field_of(spec, type_name, unique).unwrap_err().0;
            assert!(err.contains(expected), "{spec}: {err}");
            assert!(err.contains("column `c`"), "{err}");
        }
        let err = Spec::parse("[[column]]\nname = 3", "t.toml").unwrap_err().0;
        assert!(err.starts_with("spec t.toml: "), "{err}");
    }

    #[test]
    fn templates_and_times_parse() {
        assert_eq!(
            parse_template("SKU-{:06}", 0),
            Ok(Generator::Template {
                prefix: "SKU-".into(),
                width: 6,
                suffix: String::new(),
                start: 0
            })
        );
        assert_eq!(
            parse_time("2026-01-01T00:00:00Z"),
            Some(1_767_225_600_000_000)
        );
        assert_eq!(parse_time("2026-01-01"), Some(1_767_225_600_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Some(1_500_000));
        assert_eq!(parse_time("2026-13-01"), None);
    }

    #[test]
    fn type_names_of_every_catalog_parse() {
        for (name, expected) in [
            (
                "numeric(10,2)",
                ValueType::Numeric {
                    precision: 10,
                    scale: 2,
                },
            ),
            (
                "character varying(8)",
                ValueType::Text {
                    max_chars: Some(8),
                    padded: false,
                },
            ),
            ("Nullable(Int32)", ValueType::Int { bytes: 4 }),
            ("Int8", ValueType::Int { bytes: 2 }),
            ("int8", ValueType::Int { bytes: 8 }),
            (
                "integer[]",
                ValueType::Array(Box::new(ValueType::Int { bytes: 4 })),
            ),
            (
                "Array(String)",
                ValueType::Array(Box::new(ValueType::Text {
                    max_chars: None,
                    padded: false,
                })),
            ),
            ("timestamp with time zone", ValueType::Timestamptz),
        ] {
            assert_eq!(parse_type(name), Some(expected), "{name}");
        }
        assert_eq!(parse_type("point"), None);
    }
}
