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
}
