//! PostgreSQL's catalog as gen reads it: a table's columns with their types resolved (domains to
//! their base type and checks, enums to their labels, arrays to their element), NOT NULL,
//! defaults, identity and generated columns, primary keys, unique constraints, foreign keys and
//! CHECK constraints; the keys a foreign key draws from; and `CREATE TABLE` from a spec.

use postgres::Client;

use crate::failure::Failure;
use crate::gen::catalog::{Catalog, CatalogColumn};
use crate::gen::check;
use crate::gen::model::ValueType;
use crate::gen::spec::parse_type;
use crate::pg::{self, PgTarget};
use crate::sql::{quote_ident, TableName};

/// At most this many distinct keys are read from a referenced table.
pub(crate) const MAX_KEYS: i64 = 1_000_000;

/// A connection to read the catalog on.
pub(crate) struct CatalogReader {
    client: Client,
    target: PgTarget,
}

impl CatalogReader {
    pub(crate) fn connect(target: &PgTarget) -> Result<CatalogReader, Failure> {
        Ok(CatalogReader {
            client: pg::connect(target)?,
            target: target.clone(),
        })
    }

    fn failed(&self, err: &postgres::Error, table: Option<&TableName>) -> Failure {
        pg::classify(err, &self.target, table)
    }

    /// The table's catalog, or `None` when it does not exist.
    pub(crate) fn table(&mut self, table: &TableName) -> Result<Option<Catalog>, Failure> {
        let rows = self
            .client
            .query(
                "SELECT a.attnum, a.attname::text, a.atttypid, a.atttypmod, \
                 format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                 a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' \
                 FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 \
                 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&table.quoted()],
            )
            .map_err(|err| self.failed(&err, Some(table)))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut catalog = Catalog::default();
        let mut numbers = Vec::new();
        for row in &rows {
            let (oid, typmod): (u32, i32) = (row.get(2), row.get(3));
            let type_name: String = row.get(4);
            let mut column = CatalogColumn::new(row.get(1), &type_name, None);
            column.not_null = row.get(5);
            column.server_filled = row.get(6);
            let mut domain_checks = Vec::new();
            column.value_type = self.resolve(
                oid,
                typmod,
                &mut column.labels,
                &mut domain_checks,
                &mut column.not_null,
            )?;
            for definition in domain_checks {
                match check::parse(&definition) {
                    Some(rules) => column.rules.extend(rules.into_iter().map(|(_, rule)| rule)),
                    None => catalog
                        .not_understood
                        .push(format!("{definition} (domain of column `{}`)", column.name)),
                }
            }
            numbers.push(row.get::<_, i16>(0));
            catalog.columns.push(column);
        }
        let constraints = self
            .client
            .query(
                "SELECT c.contype::text, c.conkey, pg_get_constraintdef(c.oid), \
                 CASE WHEN c.confrelid = 0 THEN NULL ELSE c.confrelid::regclass::text END, \
                 (SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(c.confkey) \
                  WITH ORDINALITY k(attnum, i) JOIN pg_attribute a ON a.attrelid = c.confrelid \
                  AND a.attnum = k.attnum) \
                 FROM pg_constraint c WHERE c.conrelid = to_regclass($1) ORDER BY c.conname",
                &[&table.quoted()],
            )
            .map_err(|err| self.failed(&err, Some(table)))?;
        for row in &constraints {
            let kind: String = row.get(0);
            let keys: Vec<i16> = row.get::<_, Option<Vec<i16>>>(1).unwrap_or_default();
            let definition: String = row.get(2);
            let columns: Vec<usize> = keys
                .iter()
                .filter_map(|key| numbers.iter().position(|n| n == key))
                .collect();
            match kind.as_str() {
                "p" | "u" if columns.len() == 1 => catalog.columns[columns[0]].unique = true,
                "p" | "u" => catalog.composite_keys.push(
                    columns
                        .iter()
                        .map(|&i| catalog.columns[i].name.clone())
                        .collect(),
                ),
                "f" => {
                    let referenced: Option<String> = row.get(3);
                    let referenced_columns: Vec<String> =
                        row.get::<_, Option<Vec<String>>>(4).unwrap_or_default();
                    match (
                        columns.as_slice(),
                        referenced,
                        referenced_columns.as_slice(),
                    ) {
                        ([column], Some(table), [key]) => {
                            catalog.columns[*column].reference = Some((table, key.clone()));
                        }
                        _ => catalog.not_understood.push(definition),
                    }
                }
                "c" => match check::parse(&definition) {
                    Some(rules) => {
                        for (name, rule) in rules {
                            match catalog.columns.iter_mut().find(|c| c.name == name) {
                                Some(column) => column.rules.push(rule),
                                None => {
                                    catalog.not_understood.push(definition.clone());
                                    break;
                                }
                            }
                        }
                    }
                    None => catalog.not_understood.push(definition),
                },
                // Exclusion constraints and triggers: the server judges.
                _ => catalog.not_understood.push(definition),
            }
        }
        Ok(Some(catalog))
    }

    /// A type by OID: a domain's base type (its checks and NOT NULL collected), an enum (its
    /// labels), an array's element, or a base type by name.
    fn resolve(
        &mut self,
        oid: u32,
        typmod: i32,
        labels: &mut Vec<String>,
        checks: &mut Vec<String>,
        not_null: &mut bool,
    ) -> Result<Option<ValueType>, Failure> {
        let row = self
            .client
            .query_one(
                "SELECT t.typtype::text, t.typelem, t.typbasetype, t.typtypmod, t.typcategory::text, \
                 format_type($1, $2), t.typnotnull, t.typlen FROM pg_type t WHERE t.oid = $1",
                &[&oid, &typmod],
            )
            .map_err(|err| self.failed(&err, None))?;
        let (kind, element, base, base_typmod, category, name): (
            String,
            u32,
            u32,
            i32,
            String,
            String,
        ) = (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
        );
        match kind.as_str() {
            "d" => {
                *not_null |= row.get::<_, bool>(6);
                let domain_checks = self
                    .client
                    .query(
                        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = $1 \
                         AND contype = 'c' ORDER BY conname",
                        &[&oid],
                    )
                    .map_err(|err| self.failed(&err, None))?;
                checks.extend(domain_checks.iter().map(|row| row.get::<_, String>(0)));
                self.resolve(base, base_typmod, labels, checks, not_null)
            }
            "e" => {
                let rows = self
                    .client
                    .query(
                        "SELECT enumlabel::text FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder",
                        &[&oid],
                    )
                    .map_err(|err| self.failed(&err, None))?;
                labels.extend(rows.iter().map(|row| row.get::<_, String>(0)));
                Ok(Some(ValueType::Enum))
            }
            _ if category == "A" && element != 0 && row.get::<_, i16>(7) == -1 => {
                let mut element_not_null = false;
                Ok(self
                    .resolve(element, typmod, labels, checks, &mut element_not_null)?
                    .map(|element| ValueType::Array(Box::new(element))))
            }
            _ => Ok(parse_type(&name)),
        }
    }

    /// Up to [`MAX_KEYS`] distinct values of `column` in `table` (both as SQL), as text.
    pub(crate) fn keys(&mut self, table: &str, column: &str) -> Result<Vec<String>, Failure> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT DISTINCT {column}::text FROM {table} WHERE {column} IS NOT NULL \
                     ORDER BY 1 LIMIT {MAX_KEYS}"
                ),
                &[],
            )
            .map_err(|err| self.failed(&err, None))?;
        Ok(rows.iter().map(|row| row.get::<_, String>(0)).collect())
    }

    /// Creates `table` with these columns (name, type as the spec gives it) unless it exists.
    pub(crate) fn create(
        &mut self,
        table: &TableName,
        columns: &[(String, String)],
    ) -> Result<(), Failure> {
        let definitions: Vec<String> = columns
            .iter()
            .map(|(name, type_name)| format!("{} {type_name}", quote_ident(name)))
            .collect();
        self.client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} ({})",
                table.quoted(),
                definitions.join(", ")
            ))
            .map_err(|err| self.failed(&err, Some(table)))
    }
}
