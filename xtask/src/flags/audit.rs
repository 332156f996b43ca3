//! `audit`'s flags, in a file of their own because flags.rs is at the 600-line limit.

use std::path::PathBuf;

use clap::Args;
use xtask::model::audit_render::Format;

#[derive(Debug, Args)]
pub struct Audit {
    /// The OSV advisory database: a directory of `*.json` records, or the `.zip` the OSV project
    /// publishes for the PyPI ecosystem (default: `database` under [audit] in wheelhouse.toml)
    #[arg(long, value_name = "PATH")]
    pub database: Option<PathBuf>,
    /// Accept an advisory, by its id or any alias, and do not count it (repeatable)
    #[arg(long = "ignore", value_name = "ID")]
    pub ignores: Vec<String>,
    /// Warn when the newest record of the database is older than this (default: 7)
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u64).range(0..=36_500))]
    pub max_age_days: Option<u64>,
    /// The report's format: text, json, sarif (SARIF 2.1.0) or cyclonedx-vex (CycloneDX 1.6)
    #[arg(long, value_enum, default_value_t = Format::Text, conflicts_with = "json")]
    pub format: Format,
    /// The report as JSON (the same as --format json)
    #[arg(long)]
    pub json: bool,
    /// Write the report to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The wheelhouse (default: from wheelhouse.toml, else `wheelhouse`)
    #[arg(long, value_name = "DIR")]
    pub wheelhouse: Option<PathBuf>,
    /// Write Prometheus metrics (textfile collector format) to this file
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}
