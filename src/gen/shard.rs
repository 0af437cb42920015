//! `--shard K/N`: which part of the id space this process loads, so that N processes on N machines
//! load disjoint rows.

use std::fmt;

use serde::Serialize;

use crate::usage::EnvLookup;
use crate::usage::{invalid, ConfigError};

/// `--shard K/N`: this process loads the ids `i` with `i % N == K`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The whole id space: one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `K/N` with `0 <= K < N`.
    pub fn parse(text: &str) -> Result<Shard, ConfigError> {
        let parsed = text
            .split_once('/')
            .and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if count > 0 && index < count => Ok(Shard { index, count }),
            Some(_) => Err(invalid(
                "shard",
                text,
                "K must be below N (shards are 0-based)",
            )),
            None => Err(invalid("shard", text, "expected K/N, as in 0/4")),
        }
    }

    /// The shard named by the environment variable `variable`: `K/N`, or `K` with `shards` = N.
    pub fn from_env(
        variable: &str,
        shards: Option<u64>,
        env: EnvLookup<'_>,
    ) -> Result<Shard, ConfigError> {
        let flag = "shard-from-env";
        let value =
            env(variable).ok_or_else(|| invalid(flag, variable, "the variable is not set"))?;
        let text = match (value.contains('/'), shards) {
            (true, None) => value.clone(),
            (true, Some(_)) => {
                return Err(ConfigError::Conflict(format!(
                    "--shards: {variable}={value} already names the number of shards"
                )))
            }
            (false, Some(count)) => format!("{}/{count}", value.trim()),
            (false, None) => {
                return Err(invalid(
                    flag,
                    variable,
                    format!("holds `{value}`: give the number of shards with --shards N"),
                ))
            }
        };
        Shard::parse(&text).map_err(|err| match err {
            ConfigError::Invalid { reason, .. } => {
                invalid(flag, format!("{variable}={value}"), reason)
            }
            other => other,
        })
    }

    /// How many of the ids `0..total` fall in this shard.
    pub fn rows_of(&self, total: u64) -> u64 {
        if total > self.index {
            (total - self.index - 1) / self.count + 1
        } else {
            0
        }
    }

    /// The global id of this shard's `local`-th id.
    pub fn global_id(&self, local: u64) -> u64 {
        local * self.count + self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_ids() {
        let shards: Vec<Shard> = (0..3).map(|k| Shard { index: k, count: 3 }).collect();
        for total in [0, 1, 2, 3, 10, 1_000_000] {
            assert_eq!(shards.iter().map(|s| s.rows_of(total)).sum::<u64>(), total);
        }
        assert_eq!(Shard::parse("1/3").unwrap().global_id(4), 13);
    }

    #[test]
    fn a_shard_comes_from_the_environment_as_k_with_shards_or_as_k_over_n() {
        let env = |value: &'static str| move |name: &str| (name == "IDX").then(|| value.into());
        let shard = |value, shards| Shard::from_env("IDX", shards, &env(value));
        assert_eq!(shard("2", Some(3)).unwrap(), Shard { index: 2, count: 3 });
        assert_eq!(shard("1/4", None).unwrap(), Shard { index: 1, count: 4 });
        for (value, shards, expected) in [
            ("2", None, "give the number of shards with --shards N"),
            ("1/4", Some(4), "already names the number of shards"),
            ("3", Some(3), "--shard-from-env IDX=3: K must be below N"),
            ("x", Some(3), "--shard-from-env IDX=x: expected K/N"),
        ] {
            let err = shard(value, shards).unwrap_err().to_string();
            assert!(err.contains(expected), "{value}: {err}");
        }
        let unset = Shard::from_env("UNSET", Some(3), &env("1")).unwrap_err();
        assert_eq!(
            unset.to_string(),
            "--shard-from-env UNSET: the variable is not set"
        );
    }
}
