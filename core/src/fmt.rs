//! Number formatting shared by the CLI and the web app, so both print a figure the same way.

/// Six significant digits, switching to scientific notation for very small or large values.
pub fn sig(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return v.to_string();
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&mag) {
        format!("{v:.4e}")
    } else {
        let decimals = (5 - mag).max(0) as usize;
        format!("{v:.decimals$}")
    }
}

/// An accuracy with the precision it has: exact once every digit is counted ("98.95%", the
/// exact share of the set), else an estimate with its 95 % margin from the digits seen so far
/// ("≈ 96% ± 8, from 25 of 2,000 digits"), rounded to the margin's first digit so that no
/// figure claims more than it knows. The margin is the normal approximation with the finite
/// population correction (the digits are drawn without replacement from the `total`), and at
/// the rule of three's 3/n when every or no digit so far was right (where it gives 0).
pub fn accuracy(correct: usize, count: usize, total: usize) -> String {
    if count == 0 {
        return "…".into();
    }
    let p = correct as f64 / count as f64;
    if count >= total {
        return format!("{:.2}%", 100.0 * p);
    }
    let n = count as f64;
    let fpc = ((total as f64 - n) / (total as f64 - 1.0).max(1.0)).sqrt();
    let half_width = if correct == 0 || correct == count {
        3.0 / n
    } else {
        1.96 * (p * (1.0 - p) / n).sqrt()
    };
    let margin = 100.0 * half_width * fpc;
    // One significant digit of the margin sets the decimals of both.
    let decimals = if margin >= 1.0 {
        0
    } else {
        (-margin.log10().floor()) as usize
    };
    let unit = 10f64.powi(-(decimals as i32));
    let margin = (margin / unit).ceil() * unit;
    format!(
        "≈ {:.decimals$}% ± {margin:.decimals$}, from {} of {} digits",
        (100.0 * p).min(100.0),
        thousands(count),
        thousands(total)
    )
}

/// `1686568` → `1,686,568`
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Renders `rows` under `headers` as aligned plain text or as a GitHub-flavoured markdown table. Numeric-looking cells are right-aligned.
pub fn table(markdown: bool, headers: &[&str], rows: &[Vec<String>]) -> String {
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
    let line = |cells: Vec<String>| {
        if markdown {
            format!("| {} |", cells.join(" | "))
        } else {
            cells.join("  ").trim_end().to_string()
        }
    };
    let mut out = vec![line(
        headers.iter().enumerate().map(|(c, h)| pad(h, c)).collect(),
    )];
    if markdown {
        out.push(line(
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
        ));
    } else {
        out.push(
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        );
    }
    for r in rows {
        out.push(line(r.iter().enumerate().map(|(c, s)| pad(s, c)).collect()));
    }
    out.join("\n") + "\n"
}

/// Comma-separated values with RFC 4180 quoting, for spreadsheets.
pub fn csv(headers: &[&str], rows: &[Vec<String>]) -> String {
    let cell = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = headers
        .iter()
        .map(|h| cell(h))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for r in rows {
        out += &(r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",") + "\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(sig(0.007293542), "0.00729354");
        assert_eq!(sig(-0.8433799), "-0.843380");
        assert_eq!(sig(1.25e-7), "1.2500e-7");
        assert_eq!(sig(127.5), "127.500");
        assert_eq!(thousands(1_686_568), "1,686,568");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
    }

    #[test]
    fn an_estimate_shows_only_the_precision_it_has() {
        // 25 of 25 right is not "100.00%".
        assert_eq!(
            accuracy(25, 25, 2000),
            "≈ 100% ± 12, from 25 of 2,000 digits"
        );
        assert_eq!(accuracy(24, 25, 2000), "≈ 96% ± 8, from 25 of 2,000 digits");
        // Near the end the margin shrinks with the digits left (sampling without replacement).
        assert_eq!(
            accuracy(1900, 1975, 2000),
            "≈ 96.20% ± 0.10, from 1,975 of 2,000 digits"
        );
        assert_eq!(
            accuracy(480, 500, 2000),
            "≈ 96% ± 2, from 500 of 2,000 digits"
        );
        assert_eq!(accuracy(1979, 2000, 2000), "98.95%");
        assert_eq!(accuracy(0, 0, 2000), "…");
    }

    #[test]
    fn markdown_and_plain_tables() {
        let rows = vec![
            vec!["conv1".to_string(), "0.5".to_string()],
            vec!["fc1".to_string(), "12.25".to_string()],
        ];
        let md = table(true, &["layer", "mae"], &rows);
        assert_eq!(
            md,
            "| layer |   mae |\n| ----- | ----: |\n| conv1 |   0.5 |\n| fc1   | 12.25 |\n"
        );
        let plain = table(false, &["layer", "mae"], &rows);
        assert_eq!(plain.lines().nth(2), Some("conv1    0.5"));
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let rows = vec![vec!["fc1".to_string(), "[128, 3136]".to_string()]];
        assert_eq!(
            csv(&["layer", "shape"], &rows),
            "layer,shape\nfc1,\"[128, 3136]\"\n"
        );
    }
}
