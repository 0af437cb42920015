//! `loader gen`'s flags into a [`GenConfig`].

use super::{positive, rate, A_CENTURY};
use crate::cli::GenArgs;
use crate::gen::{GenConfig, Shard};
use crate::run::LoadConfig;
use crate::sink::stream::OutputFormat;
use crate::target::Target;
use crate::usage::EnvLookup;
use crate::usage::{invalid, ConfigError};

/// The fastest `--rate` of gen mode: a billion rows a second.
const MAX_GEN_RATE: f64 = 1e9;

impl GenConfig {
    /// Validates `loader gen` arguments, reading the environment through `env`.
    pub(crate) fn from_args(args: &GenArgs, env: EnvLookup<'_>) -> Result<GenConfig, ConfigError> {
        let load = LoadConfig::from_args(&args.load, env)?;
        let shard = match (&args.shard, &args.shard_from_env) {
            (Some(text), _) => Shard::parse(text)?,
            (None, Some(variable)) => Shard::from_env(variable, args.shards, env)?,
            (None, None) => Shard::WHOLE,
        };
        if args.rows == Some(0) {
            return Err(invalid("rows", 0, "must be at least 1"));
        }
        let duration = args
            .duration
            .map(|duration| positive("duration", duration, A_CENTURY))
            .transpose()?;
        let output_format = match (&load.target, args.output_format) {
            (_, Some(format)) => format,
            (Target::File(path), None) => match path.extension().and_then(|e| e.to_str()) {
                Some("ndjson" | "jsonl" | "json") => OutputFormat::Ndjson,
                _ => OutputFormat::Csv,
            },
            _ => OutputFormat::Csv,
        };
        Ok(GenConfig {
            load,
            rows: args.rows,
            duration,
            rate: rate(args.rate, MAX_GEN_RATE, "rows")?,
            seed: args.seed,
            shard,
            output_format,
            spec: args.spec.clone(),
            explain: args.explain,
            run_id: args.run_id.clone(),
            resume: args.resume,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::pg::Method;
    use clap::Parser;

    fn gen_config(args: &[&str]) -> Result<GenConfig, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("loader").chain(args.iter().copied()))
            .expect("arguments parse");
        GenConfig::from_args(&cli.gen, &|_| None)
    }

    #[test]
    fn rejects_zero_and_oversized_settings() {
        for args in [
            &["--threads", "0"][..],
            &["--batch", "0"],
            &["--batch", "2M"],
            &["--rows", "0"],
            &["--duration", "0s"],
            &["--shard", "2/2"],
            &["--shard", "x"],
            &["--progress-every", "1ms"],
            &["--table", "a."],
            &["--keep", "--target", "null"],
            &["--rate", "0"],
            &["--rate", "inf"],
            &[
                "--password-file",
                "/nonexistent",
                "--target",
                "postgres://h/db",
            ],
            &["--user", "app", "--target", "null"],
            &["--gzip", "--target", "postgres://h/db"],
            &["--commit-every", "0"],
            &["--commit-every", "1001", "--batch", "1000"],
            &["--commit-every", "2", "--target", "null"],
            &["--commit-every", "2", "--target", "http://127.0.0.1:9/x"],
        ] {
            assert!(gen_config(args).is_err(), "{args:?} must be rejected");
        }
    }

    #[test]
    fn commit_every_takes_up_to_a_million_rows_per_postgres_transaction() {
        for (args, expected) in [
            (&["--target", "postgres://h/db"][..], 1),
            (&["--commit-every", "10"], 10),
            (&["--commit-every", "1000", "--batch", "1000"], 1000),
        ] {
            assert_eq!(gen_config(args).unwrap().load.commit_every, expected);
        }
    }

    #[test]
    fn user_and_password_file_fill_a_postgres_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "from-the-file\nsecond line ignored\n").unwrap();
        let config = gen_config(&[
            "--target",
            "postgres://bob:from-the-url@h/db",
            "--user",
            "app",
            "--password-file",
            path.to_str().unwrap(),
        ])
        .unwrap();
        let Target::Postgres(pg) = &config.load.target else {
            panic!("a PostgreSQL target");
        };
        assert_eq!(pg.user(), "app");
        assert_eq!(pg.config().get_password(), Some(&b"from-the-file"[..]));
    }

    #[test]
    fn defaults_are_local_target_and_binary_copy() {
        let config = gen_config(&["--rows", "10"]).unwrap();
        assert!(matches!(config.load.target, Target::Local));
        assert_eq!(config.load.method, Method::CopyBinary);
        assert_eq!(config.load.batch, 1000);
        assert!(config.load.pin);
        assert_eq!(config.shard, Shard::WHOLE);
    }

    #[test]
    fn output_format_follows_the_file_extension() {
        let config = gen_config(&["--target", "file:/tmp/r.ndjson"]).unwrap();
        assert_eq!(config.output_format, OutputFormat::Ndjson);
        let config = gen_config(&["--target", "file:/tmp/r.csv"]).unwrap();
        assert_eq!(config.output_format, OutputFormat::Csv);
    }
}
