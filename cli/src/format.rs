//! Tables as plain text or markdown; JSON goes straight through serde.

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

/// Renders `rows` under `headers`. Numeric-looking cells are right-aligned.
pub fn table(format: Format, headers: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..headers.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([headers[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let numeric = |c: usize| {
        rows.iter().all(|r| {
            r[c].trim_end_matches(['%', ' '])
                .replace(',', "")
                .parse::<f64>()
                .is_ok()
        })
    };
    let pad = |s: &str, c: usize| {
        let fill = " ".repeat(widths[c] - s.chars().count());
        if numeric(c) {
            format!("{fill}{s}")
        } else {
            format!("{s}{fill}")
        }
    };
    let line = |cells: Vec<String>| match format {
        Format::Markdown => format!("| {} |", cells.join(" | ")),
        _ => cells.join("  ").trim_end().to_string(),
    };
    let mut out = vec![line(
        headers.iter().enumerate().map(|(c, h)| pad(h, c)).collect(),
    )];
    match format {
        Format::Markdown => out.push(line(
            (0..headers.len())
                .map(|c| {
                    let dashes = "-".repeat(widths[c].max(3));
                    if numeric(c) {
                        format!("{}:", &dashes[1..])
                    } else {
                        dashes
                    }
                })
                .collect(),
        )),
        _ => out.push(
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        ),
    }
    for r in rows {
        out.push(line(r.iter().enumerate().map(|(c, s)| pad(s, c)).collect()));
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_plain_tables() {
        let rows = vec![
            vec!["conv1".to_string(), "0.5".to_string()],
            vec!["fc1".to_string(), "12.25".to_string()],
        ];
        let md = table(Format::Markdown, &["layer", "mae"], &rows);
        assert_eq!(
            md,
            "| layer |   mae |\n| ----- | ----: |\n| conv1 |   0.5 |\n| fc1   | 12.25 |\n"
        );
        let plain = table(Format::Table, &["layer", "mae"], &rows);
        assert_eq!(plain.lines().nth(2), Some("conv1    0.5"));
    }
}
