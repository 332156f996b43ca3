//! `diff`'s flags, in a file of their own because flags.rs is at the 600-line limit.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct Diff {
    /// The old side: a manifest.json, a wheelhouse directory or an archive
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The new side (default: the project's wheelhouse)
    #[arg(value_name = "NEW")]
    pub new: Option<PathBuf>,
    /// How to print the differences: text, json, or markdown (for a pull-request comment)
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// The same as --format json
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
    Markdown,
}
