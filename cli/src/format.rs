//! Output formats: tables (plain or markdown, drawn by `quant_core::fmt::table`) or JSON via serde.

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// A GitHub-flavoured markdown table to paste into a post.
    Markdown,
    /// One JSON document; numbers as numbers.
    Json,
}

impl Format {
    pub fn markdown(self) -> bool {
        self == Format::Markdown
    }
}
