//! `CREATE TABLE` for each SQL target from typed columns: the column type PostgreSQL, ClickHouse
//! and CrateDB give each [`SqlType`], and the statement `--create` runs there (and `loader copy
//! --sniff` prints).

use crate::rows::{Schema, SqlType};
use crate::sql::{quote_ident, TableName};

/// The SQL a target speaks for its tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// PostgreSQL and the servers on its wire.
    Postgres,
    ClickHouse,
    CrateDb,
}

/// `CREATE TABLE IF NOT EXISTS table (…)` with the columns of `schema`. `nullable` wraps
/// ClickHouse types in `Nullable(…)` (its columns refuse NULL otherwise); the other targets'
/// columns take NULL as they are.
pub(crate) fn create_table(
    flavor: Flavor,
    table: &TableName,
    schema: &Schema,
    nullable: bool,
) -> String {
    let definitions: Vec<String> = schema
        .columns
        .iter()
        .map(|column| {
            let name = match flavor {
                Flavor::ClickHouse => clickhouse_ident(&column.name),
                Flavor::Postgres | Flavor::CrateDb => quote_ident(&column.name),
            };
            format!("{name} {}", column_type(flavor, column.sql_type, nullable))
        })
        .collect();
    create_statement(flavor, table, &definitions)
}

/// A ClickHouse column's type beyond its [`SqlType`]: ClickHouse columns refuse NULL unless
/// they are `Nullable(…)`, and an array column is `Array(…)` of its elements' type (an array
/// cannot be `Nullable` there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClickHouseShape {
    Plain(SqlType),
    Nullable(SqlType),
    Array(SqlType),
}

/// `CREATE TABLE IF NOT EXISTS table (…)` on ClickHouse, each column of its own shape.
pub(crate) fn create_clickhouse_table(
    table: &TableName,
    columns: &[(String, ClickHouseShape)],
) -> String {
    let definitions: Vec<String> = columns
        .iter()
        .map(|(name, shape)| format!("{} {}", clickhouse_ident(name), clickhouse_shape(*shape)))
        .collect();
    create_statement(Flavor::ClickHouse, table, &definitions)
}

/// The statement around the column definitions.
fn create_statement(flavor: Flavor, table: &TableName, definitions: &[String]) -> String {
    let (table, engine) = match flavor {
        Flavor::ClickHouse => (
            clickhouse_table(table),
            " ENGINE = MergeTree ORDER BY tuple()",
        ),
        Flavor::Postgres | Flavor::CrateDb => (table.quoted(), ""),
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {table} ({}){engine}",
        definitions.join(", ")
    )
}

/// The type a column of `sql_type` is created with on `flavor`.
pub(crate) fn column_type(flavor: Flavor, sql_type: SqlType, nullable: bool) -> String {
    match flavor {
        Flavor::Postgres => sql_type.pg_name().to_string(),
        Flavor::CrateDb => crate_type(sql_type).to_string(),
        Flavor::ClickHouse if nullable && sql_type != SqlType::Float4Array => {
            clickhouse_shape(ClickHouseShape::Nullable(sql_type))
        }
        Flavor::ClickHouse => clickhouse_shape(ClickHouseShape::Plain(sql_type)),
    }
}

/// The ClickHouse type of a column of this shape.
fn clickhouse_shape(shape: ClickHouseShape) -> String {
    match shape {
        ClickHouseShape::Plain(sql_type) => clickhouse_type(sql_type).to_string(),
        ClickHouseShape::Nullable(sql_type) => format!("Nullable({})", clickhouse_type(sql_type)),
        ClickHouseShape::Array(element) => format!("Array({})", clickhouse_type(element)),
    }
}

/// The ClickHouse type of a column. Timestamps are `DateTime('UTC')`: whole seconds, as ClickHouse
/// 18 has no `DateTime64` (it came in 20.1); times of day and numerics, which it has no type for
/// either, are kept as their text.
fn clickhouse_type(sql_type: SqlType) -> &'static str {
    match sql_type {
        SqlType::Bool => "UInt8",
        SqlType::Int2 => "Int16",
        SqlType::Int4 => "Int32",
        SqlType::Int8 => "Int64",
        SqlType::Float4 => "Float32",
        SqlType::Float8 => "Float64",
        SqlType::Date => "Date",
        SqlType::Float4Array => "Array(Float32)",
        // Pinned to UTC: a bare DateTime is read in the server's time zone.
        SqlType::Timestamp | SqlType::Timestamptz => "DateTime('UTC')",
        SqlType::Text
        | SqlType::Bytea
        | SqlType::Json
        | SqlType::Jsonb
        | SqlType::Uuid
        | SqlType::Numeric
        | SqlType::Time
        | SqlType::Other => "String",
    }
}

/// The CrateDB type of a column.
fn crate_type(sql_type: SqlType) -> &'static str {
    match sql_type {
        SqlType::Bool => "boolean",
        SqlType::Int2 => "smallint",
        SqlType::Int4 => "integer",
        SqlType::Int8 => "bigint",
        SqlType::Float4 => "real",
        SqlType::Float4Array => "array(real)",
        SqlType::Float8 => "double precision",
        SqlType::Date => "date",
        SqlType::Timestamp => "timestamp without time zone",
        SqlType::Timestamptz => "timestamp with time zone",
        SqlType::Json | SqlType::Jsonb => "object",
        // CrateDB stores no time of day, and numerics only in its newer versions: their text.
        SqlType::Text
        | SqlType::Bytea
        | SqlType::Uuid
        | SqlType::Numeric
        | SqlType::Time
        | SqlType::Other => "text",
    }
}

/// A ClickHouse identifier in backquotes.
pub(crate) fn clickhouse_ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// A ClickHouse table name, with its database when given.
pub(crate) fn clickhouse_table(table: &TableName) -> String {
    match &table.schema {
        Some(database) => format!(
            "{}.{}",
            clickhouse_ident(database),
            clickhouse_ident(&table.name)
        ),
        None => clickhouse_ident(&table.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::Column;

    #[test]
    fn each_target_spells_the_same_columns_its_way() {
        let schema = Schema {
            columns: vec![
                Column::fixed("id", SqlType::Int8),
                Column::fixed("at", SqlType::Timestamptz),
                Column::fixed("doc", SqlType::Jsonb),
            ]
            .into(),
        };
        let table = TableName::parse("t").unwrap();
        assert_eq!(
            create_table(Flavor::Postgres, &table, &schema, true),
            "CREATE TABLE IF NOT EXISTS \"t\" (\"id\" bigint, \"at\" timestamp with time zone, \
             \"doc\" jsonb)"
        );
        assert_eq!(
            create_table(Flavor::ClickHouse, &table, &schema, true),
            "CREATE TABLE IF NOT EXISTS `t` (`id` Nullable(Int64), `at` \
             Nullable(DateTime('UTC')), `doc` Nullable(String)) ENGINE = MergeTree ORDER BY \
             tuple()"
        );
        assert_eq!(
            create_table(Flavor::CrateDb, &table, &schema, false),
            "CREATE TABLE IF NOT EXISTS \"t\" (\"id\" bigint, \"at\" timestamp with time zone, \
             \"doc\" object)"
        );
    }

    #[test]
    fn a_clickhouse_column_takes_null_or_holds_an_array_by_its_shape() {
        let table = TableName::parse("t").unwrap();
        let columns = [
            ("id".to_string(), ClickHouseShape::Plain(SqlType::Int8)),
            (
                "score".to_string(),
                ClickHouseShape::Nullable(SqlType::Float8),
            ),
            ("tags".to_string(), ClickHouseShape::Array(SqlType::Text)),
        ];
        assert_eq!(
            create_clickhouse_table(&table, &columns),
            "CREATE TABLE IF NOT EXISTS `t` (`id` Int64, `score` Nullable(Float64), `tags` \
             Array(String)) ENGINE = MergeTree ORDER BY tuple()"
        );
    }
}
