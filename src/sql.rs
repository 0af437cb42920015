//! SQL text: table names (optionally schema-qualified) and the quoting of identifiers and string
//! literals, for every target that speaks SQL (PostgreSQL, CrateDB, ClickHouse).

use std::fmt;

use crate::usage::{invalid, ConfigError};

/// A table name, optionally schema-qualified; always rendered quoted in SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName {
    pub schema: Option<String>,
    pub name: String,
}

impl TableName {
    /// Parses `table` or `schema.table`.
    pub(crate) fn parse(text: &str) -> Result<TableName, ConfigError> {
        let (schema, name) = match text.split_once('.') {
            Some((schema, name)) => (Some(schema.to_string()), name.to_string()),
            None => (None, text.to_string()),
        };
        if name.is_empty() || schema.as_deref() == Some("") {
            return Err(invalid("table", text, "expected NAME or SCHEMA.NAME"));
        }
        if text.contains('\0') {
            return Err(invalid("table", text.escape_debug(), "contains a NUL byte"));
        }
        Ok(TableName { schema, name })
    }

    /// The name as SQL: each part double-quoted, inner quotes doubled.
    pub(crate) fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&self.name)),
            None => quote_ident(&self.name),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Quotes an SQL identifier.
pub(crate) fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_quoted() {
        assert_eq!(
            TableName::parse("readings").unwrap().quoted(),
            "\"readings\""
        );
        assert_eq!(
            TableName::parse("s.My \"T\"").unwrap().quoted(),
            "\"s\".\"My \"\"T\"\"\""
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
