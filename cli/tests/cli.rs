//! The `qp` binary end to end: its JSON carries numbers as numbers, and bad arguments are refused
//! with a clear message and a failing exit code.

use std::process::{Command, Output};

fn qp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qp"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn report_json_has_every_layer_and_the_comparison() {
    let out = qp(&[
        "report", "--bits", "4", "--mode", "asym", "--format", "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = v["layers"].as_array().unwrap();
    let names: Vec<&str> = layers
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["conv1", "conv2", "fc1", "fc2"]);
    assert_eq!(layers[2]["shape"], serde_json::json!([128, 3136]));
    assert!(layers
        .iter()
        .all(|l| l["scale"].as_f64().unwrap() > 0.0 && l["zero_point"].is_i64()));
    assert_eq!(v["bits"], 4);
    assert_eq!(v["scheme"], "asymmetric");
    assert!(v["fp32"]["accuracy"].as_f64().unwrap() >= 98.0);
    assert_eq!(v["quantized_bytes"], 211_672);
}

#[test]
fn markdown_report_is_a_pasteable_table() {
    let out = qp(&[
        "report", "--bits", "8", "--mode", "sym", "--format", "markdown",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("| layer | shape"));
    assert!(text.contains("| fc1   | [128, 3136]"));
    assert!(text.contains("| FP32      |"));
}

#[test]
fn bad_arguments_fail_with_a_reason() {
    for (args, reason) in [
        (
            vec!["report", "--bits", "1", "--mode", "sym"],
            "unsupported bit width 1",
        ),
        (
            vec!["report", "--bits", "99", "--mode", "sym"],
            "unsupported bit width 99",
        ),
        (
            vec!["report", "--bits", "abc", "--mode", "sym"],
            "invalid bit width \"abc\"",
        ),
        (
            vec!["report", "--bits", "8", "--mode", "foo"],
            "unknown scheme \"foo\"",
        ),
        (
            vec![
                "report",
                "--bits",
                "8",
                "--mode",
                "sym",
                "--weights",
                "/no/such.safetensors",
            ],
            "cannot read /no/such.safetensors",
        ),
        (
            vec![
                "sweep",
                "--weights",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            ],
            "not a valid safetensors file",
        ),
    ] {
        let out = qp(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(reason), "{args:?}: {err}");
    }
}
