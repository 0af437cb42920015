//! How gen decides what to generate for a table ([`Design`]): from the target's catalog with the
//! spec's columns laid over it ([`from_catalog`]), or from a spec alone ([`from_spec`]), and how
//! `--explain` shows the result: per column the type, the generator and why.

use std::fmt::Write as _;

use crate::ddl::ClickHouseShape;
use crate::gen::catalog::{default_field, Catalog};
use crate::gen::model::{Field, Generator, ValueType};
use crate::gen::spec::{parse_type, KeyReader, Spec, SpecError};
use crate::gen::table::TablePlan;
use crate::rows::{Column, Schema, SqlType};
use crate::sql::quote_ident;

/// Why a nullable column of a type gen does not make is left out.
const UNMADE: &str = "a type gen does not make (NULL)";

/// What a load generates, and what it leaves to the server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Design {
    pub plan: TablePlan,
    /// Columns not generated, each with the reason (a default, identity, a type gen does not
    /// make in a nullable column).
    pub left_out: Vec<(String, String)>,
    /// Constraints named at the start: not understood, rows may be rejected.
    pub not_understood: Vec<String>,
}

/// The plan for a table its catalog describes: the spec's columns (which must all exist) with
/// their generators, every other column from its type and constraints, the columns the server
/// fills left out.
pub(crate) fn from_catalog(
    catalog: &Catalog,
    spec: Option<&Spec>,
    table: &str,
    keys: KeyReader<'_>,
) -> Result<Design, SpecError> {
    if let Some(missing) = spec
        .into_iter()
        .flat_map(|spec| &spec.columns)
        .find(|column| catalog.column(&column.name).is_none())
    {
        return Err(SpecError(format!(
            "spec: column `{}` is not a column of table {table}; its columns are {}",
            missing.name,
            catalog.names()
        )));
    }
    let in_spec = |name: &str| spec.and_then(|spec| spec.column(name));
    // One column of each composite key carries the uniqueness (the row id), unless one does.
    let mut unique_by_key = Vec::new();
    for key in &catalog.composite_keys {
        let unique_already = key.iter().any(|name| {
            catalog.column(name).is_some_and(|c| c.unique)
                || in_spec(name).is_some_and(|c| c.unique)
        });
        if unique_already {
            continue;
        }
        let carrier = key.iter().find(|name| {
            catalog.column(name).is_some_and(|column| {
                column.reference.is_none()
                    && matches!(
                        column.value_type,
                        Some(
                            ValueType::Int { .. }
                                | ValueType::Text { .. }
                                | ValueType::Uuid
                                | ValueType::Timestamp
                                | ValueType::Timestamptz
                        )
                    )
            })
        });
        match carrier {
            Some(name) => unique_by_key.push(name.clone()),
            None => {
                return Err(SpecError(format!(
                    "the key ({}) of table {table} has no column gen can make unique; describe \
                     one of them in the spec with a unique generator (sequence, template, uuid)",
                    key.join(", ")
                )))
            }
        }
    }
    let mut design = Design {
        plan: TablePlan {
            columns: Vec::new(),
        },
        left_out: Vec::new(),
        not_understood: catalog.not_understood.clone(),
    };
    for column in &catalog.columns {
        let described = in_spec(&column.name);
        if described.is_none() && column.server_filled {
            design.left_out.push((
                column.name.clone(),
                "filled by the server (default, identity or generated)".into(),
            ));
            continue;
        }
        let Some(value_type) = &column.value_type else {
            if column.not_null && described.is_none() {
                return Err(SpecError(format!(
                    "column `{}` of table {table} is {} NOT NULL, a type gen does not make; \
                     describe it in the spec (a `choice` of values) or give it a default",
                    column.name, column.type_name
                )));
            }
            if described.is_none() {
                design.left_out.push((
                    column.name.clone(),
                    format!("{}: {UNMADE}", column.type_name),
                ));
                continue;
            }
            return Err(SpecError(format!(
                "spec: column `{}`: its type {} is not one gen makes",
                column.name, column.type_name
            )));
        };
        let unique = column.unique || unique_by_key.contains(&column.name);
        let mut field = match described.filter(|spec| spec.generator.is_some()) {
            Some(spec) => {
                let mut field = spec.field(&column.type_name, value_type.clone(), unique, keys)?;
                field.why.push_str(" (overrides the catalog)");
                field
            }
            None => {
                let referenced = match &column.reference {
                    Some((table, key)) => {
                        let found = keys(table, &quote_ident(key))?;
                        if found.is_empty() {
                            return Err(SpecError(format!(
                                "column `{}` references {table}({key}), which holds no rows; load \
                                 {table} first",
                                column.name
                            )));
                        }
                        Some(found)
                    }
                    None => None,
                };
                let mut field = default_field(column, value_type, unique, referenced)?;
                if let Some(nulls) = described.and_then(|spec| spec.nulls) {
                    field.set_nulls(nulls);
                    field.why.push_str(", spec: nulls");
                }
                field
            }
        };
        if column.not_null && field.null_below > 0 {
            return Err(SpecError(format!(
                "spec: column `{}` is NOT NULL, and the spec gives it nulls",
                column.name
            )));
        }
        if *value_type == ValueType::Enum && field.labels.is_empty() {
            field.labels = column.labels.iter().map(|l| l.as_str().into()).collect();
        }
        design.plan.columns.push(field);
    }
    if design.plan.columns.is_empty() {
        return Err(SpecError(format!(
            "table {table} has no column to generate: every column is filled by the server; \
             name one in a spec"
        )));
    }
    Ok(design)
}

/// The plan for a table described whole by a spec (no catalog): every column needs its `type`.
pub(crate) fn from_spec(spec: &Spec, keys: KeyReader<'_>) -> Result<Design, SpecError> {
    let mut columns = Vec::new();
    for column in &spec.columns {
        let type_name = column.type_name.as_deref().ok_or_else(|| {
            SpecError(format!(
                "spec: column `{}` needs `type` (no catalog describes this table)",
                column.name
            ))
        })?;
        let value_type = parse_type(type_name).ok_or_else(|| {
            SpecError(format!(
                "spec: column `{}`: type `{type_name}` is not one gen makes",
                column.name
            ))
        })?;
        if column.generator.is_none() {
            return Err(SpecError(format!(
                "spec: column `{}` needs `gen` (no catalog describes this table)",
                column.name
            )));
        }
        columns.push(column.field(type_name, value_type, column.unique, keys)?);
    }
    if columns.is_empty() {
        return Err(SpecError("spec: no [[column]] described".into()));
    }
    Ok(Design {
        plan: TablePlan { columns },
        left_out: Vec::new(),
        not_understood: Vec::new(),
    })
}

/// The type a sink creates and types a spec column as.
pub(crate) fn sql_type(value_type: &ValueType) -> SqlType {
    match value_type {
        ValueType::Int { bytes: 2 } => SqlType::Int2,
        ValueType::Int { bytes: 4 } => SqlType::Int4,
        ValueType::Int { .. } => SqlType::Int8,
        ValueType::Float { bytes: 4, .. } => SqlType::Float4,
        ValueType::Float { .. } => SqlType::Float8,
        ValueType::Bool => SqlType::Bool,
        ValueType::Text { .. } | ValueType::Enum => SqlType::Text,
        ValueType::Json => SqlType::Json,
        ValueType::Jsonb => SqlType::Jsonb,
        ValueType::Date => SqlType::Date,
        ValueType::Timestamp => SqlType::Timestamp,
        ValueType::Timestamptz => SqlType::Timestamptz,
        ValueType::Uuid => SqlType::Uuid,
        ValueType::Bytea => SqlType::Bytea,
        ValueType::Numeric { .. } => SqlType::Numeric,
        ValueType::Time | ValueType::Interval | ValueType::Inet | ValueType::Array(_) => {
            SqlType::Other
        }
    }
}

impl Design {
    /// The columns as a schema of the types sinks know, for targets the mode types itself.
    pub(crate) fn schema(&self) -> Schema {
        Schema {
            columns: self
                .plan
                .columns
                .iter()
                .map(|field| Column {
                    name: field.name.clone().into(),
                    sql_type: sql_type(&field.value_type),
                })
                .collect::<Vec<_>>()
                .into(),
        }
    }

    /// The columns `--create` makes on ClickHouse for this plan: `Nullable(T)` where the spec
    /// gives NULLs, `Array(T)` for an array. An array with NULLs is refused: ClickHouse has no
    /// NULL array.
    pub(crate) fn clickhouse_columns(&self) -> Result<Vec<(String, ClickHouseShape)>, SpecError> {
        self.plan
            .columns
            .iter()
            .map(|field| {
                let nullable = field.null_below > 0;
                let shape = match &field.value_type {
                    ValueType::Array(_) if nullable => {
                        return Err(SpecError(format!(
                            "spec: column `{}` is an array with `nulls`, and a ClickHouse array \
                             cannot be NULL; drop `nulls` (`min = 0` gives empty arrays)",
                            field.name
                        )))
                    }
                    ValueType::Array(element) => ClickHouseShape::Array(sql_type(element)),
                    value_type if nullable => ClickHouseShape::Nullable(sql_type(value_type)),
                    value_type => ClickHouseShape::Plain(sql_type(value_type)),
                };
                Ok((field.name.clone(), shape))
            })
            .collect()
    }

    /// The columns left out because gen does not make their type, with the reason: named at
    /// the start, since the rows go without them.
    pub(crate) fn unmade(&self) -> impl Iterator<Item = &(String, String)> {
        self.left_out
            .iter()
            .filter(|(_, reason)| reason.ends_with(UNMADE))
    }

    /// The names of the generated columns, in order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.plan.columns.iter().map(|f| f.name.clone()).collect()
    }

    /// `--explain`: per column its type, its generator and why; then what is left out and what
    /// is not understood.
    pub(crate) fn explain(&self, table: &str, source: &str) -> String {
        let mut out = format!(
            "{table}: {} columns generated ({source})\n",
            self.plan.columns.len()
        );
        let width = self
            .plan
            .columns
            .iter()
            .map(|f| f.name.len())
            .max()
            .unwrap_or(0);
        let type_width = self
            .plan
            .columns
            .iter()
            .map(|f| f.type_name.len())
            .max()
            .unwrap_or(0);
        for field in &self.plan.columns {
            let mut generator = describe(field);
            if field.null_below > 0 {
                let _ = write!(generator, ", {:.1}% NULL", field.nulls() * 100.0);
            }
            let _ = writeln!(
                out,
                "  {:width$}  {:type_width$}  {generator}  [{}]",
                field.name, field.type_name, field.why
            );
        }
        for (name, reason) in &self.left_out {
            let _ = writeln!(out, "  {name:width$}  left out: {reason}");
        }
        for constraint in &self.not_understood {
            let _ = writeln!(
                out,
                "  not understood: {constraint}; rows may be rejected; describe the column in the spec"
            );
        }
        out
    }
}

/// A generator in words.
pub(crate) fn describe(field: &Field) -> String {
    let labels = |field: &Field| {
        let shown: Vec<&str> = field.labels.iter().take(5).map(|l| &**l).collect();
        let more = if field.labels.len() > 5 { ", …" } else { "" };
        format!("{}{more}", shown.join(", "))
    };
    match &field.generator {
        Generator::Sequence { start, step } => format!("sequence from {start} step {step}"),
        Generator::UniformInt { min, max } => {
            let scale = field.value_type.scale();
            let unit = 10f64.powi(i32::from(scale));
            if scale == 0 {
                format!("uniform {min}..={max}")
            } else {
                format!("uniform {}..={}", *min as f64 / unit, *max as f64 / unit)
            }
        }
        Generator::UniformFloat { min, max } => format!("uniform [{min}, {max})"),
        Generator::Normal { mean, stddev, .. } => format!("normal mean {mean} stddev {stddev}"),
        Generator::Choice { cells, cumulative } => {
            let weighted = if cumulative.is_empty() {
                "uniform"
            } else {
                "weighted"
            };
            if field.labels.is_empty() {
                format!("{weighted} choice of {} values", cells.len())
            } else {
                format!(
                    "{weighted} choice of {} values ({})",
                    cells.len(),
                    labels(field)
                )
            }
        }
        Generator::Template {
            prefix,
            width,
            suffix,
            start,
        } => {
            format!("template {prefix}{{:0{width}}}{suffix} of the row id + {start}")
        }
        Generator::Chars { min, max, alphabet } => {
            format!("{min}..={max} characters of {} letters", alphabet.len())
        }
        Generator::Words {
            min,
            max,
            sentence,
            max_chars,
        } => {
            let what = if *sentence { "sentence of" } else { "" };
            let cut = max_chars
                .map(|n| format!(", at most {n} characters"))
                .unwrap_or_default();
            format!("{what} {min}..={max} words{cut}")
                .trim()
                .to_string()
        }
        Generator::TimeStep { step, jitter, .. } => {
            format!("time from the row id, step {step} µs, jitter ±{jitter} µs")
        }
        Generator::TimeRange { start, end } => {
            format!("time uniform over {} days", (end - start) / 86_400_000_000)
        }
        Generator::Uuid => "uuid (unique by row id)".into(),
        Generator::Bool { p_true } => format!("boolean, {:.0}% true", p_true * 100.0),
        Generator::Bytes { len } => format!("{len} bytes"),
        Generator::Inet => "10.0.0.0/8 by row id".into(),
        Generator::Object { fields } => {
            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            format!("JSON object {{{}}}", names.join(", "))
        }
        Generator::Array { element, min, max } => {
            format!("array of {min}..={max}: {}", describe(element))
        }
    }
}
