//! The `qp` binary end to end: its JSON carries numbers as numbers, and bad arguments are refused
//! with a clear message and a failing exit code.

use std::process::{Command, Output};

/// Fails the test with `qp`'s own message if it did not succeed.
fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

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
    succeeded(&out);
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
    assert_eq!(v["recipe"], "bits=4&scheme=asym");
    assert_eq!(layers[0]["recipe"], "bits=4&scheme=asym");
    assert_eq!(layers[0]["blocks"], 1);
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
fn every_knob_is_a_flag_and_a_sweep_runs_along_any_axis() {
    let out = qp(&[
        "report",
        "--bits",
        "4",
        "--granularity",
        "group:32",
        "--rounding",
        "floor",
        "--range",
        "clip:0.8",
        "--format",
        "json",
    ]);
    succeeded(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let recipe = "bits=4&scheme=sym&granularity=group:32&rounding=floor&range=clip:0.8";
    assert_eq!(v["recipe"], recipe);
    // fc1: 128 rows of 3,136 weights, 98 groups each; no single scale, a range of them.
    assert_eq!(v["layers"][2]["blocks"], 128 * 98);
    assert!(v["layers"][2].get("scale").is_none());
    assert!(v["layers"][2]["scale_min"].as_f64() < v["layers"][2]["scale_max"].as_f64());
    // The same recipe as one --recipe value.
    let again = qp(&["report", "--recipe", recipe, "--format", "json"]);
    assert_eq!(again.stdout, out.stdout);

    let out = qp(&[
        "sweep",
        "--sweep",
        "granularity,scheme",
        "--bits",
        "2",
        "--format",
        "json",
    ]);
    succeeded(&out);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rows.len(),
        7 * 2,
        "7 granularities × 2 schemes, outermost first"
    );
    assert_eq!(rows[0]["recipe"], "bits=2&scheme=sym");
    assert_eq!(rows[1]["recipe"], "bits=2&scheme=asym");
    assert_eq!(rows[2]["recipe"], "bits=2&scheme=sym&granularity=channel");
    assert_eq!(
        rows[13]["recipe"],
        "bits=2&scheme=asym&granularity=group:128"
    );
    // Finer granularity helps at 2 bits: per channel beats per tensor.
    assert!(rows[2]["accuracy"].as_f64() > rows[0]["accuracy"].as_f64());
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
            vec!["report", "--granularity", "group:12"],
            "--granularity: recipe: group size 12 is not offered",
        ),
        (
            vec!["report", "--range", "clip:2"],
            "--range: recipe: a clip must be a fraction",
        ),
        (vec!["sweep", "--sweep", "depth"], "unknown knob \"depth\""),
        (
            vec!["ptq", "--preset", "arm"],
            "unknown preset \"arm\": use x86 or qnnpack",
        ),
        (
            vec!["ptq", "--calibration", "0"],
            "calibration digits must be 1 to 8000",
        ),
        (vec!["ptq", "--observer", "kl"], "unknown observer \"kl\""),
        (
            vec!["ptq", "--activation-bits", "9"],
            "activation bits must be 2 to 8",
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

/// `qp ptq`: the printout's numbers, and the emitted integer codes, against PyTorch's converted
/// model (core/tests/goldens/ptq.json, written by scripts/ptq_goldens.py).
#[test]
fn ptq_prints_pytorchs_accuracy_and_emits_its_codes() {
    let goldens: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../core/tests/goldens/ptq.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let want = goldens["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["preset"] == "qnnpack" && c["observer"] == "minmax" && c["calibration"] == 1000)
        .unwrap();
    let codes = std::env::temp_dir().join(format!("qp-codes-{}.safetensors", std::process::id()));
    let out = qp(&[
        "ptq",
        "--preset",
        "qnnpack",
        "--observer",
        "minmax",
        "--calibration",
        "1000",
        "--format",
        "json",
        "--emit-codes",
        codes.to_str().unwrap(),
    ]);
    succeeded(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["integer"]["correct"], want["correct"]);
    assert_eq!(v["weights"][0]["dtype"], "torch.qint8");
    assert_eq!(
        v["sites"][1]["zero_point"],
        want["activations"]["conv1"]["zero_point"]
    );
    let bytes = std::fs::read(&codes).unwrap();
    let _ = std::fs::remove_file(&codes);
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let fc2 = file.tensor("fc2").unwrap();
    assert_eq!(fc2.shape(), [2000, 10]);
    assert_eq!(file.tensor("conv1").unwrap().shape(), [2000, 32, 28, 28]);
    // The codes' argmax is the dequantized scores' (the scale is positive): PyTorch's classes.
    let classes: String = fc2
        .data()
        .chunks(10)
        .map(|row| {
            let best = row
                .iter()
                .enumerate()
                .fold(0, |b, (i, &q)| if q > row[b] { i } else { b });
            char::from(b'0' + best as u8)
        })
        .collect();
    assert_eq!(classes, want["predictions"].as_str().unwrap());
}

#[test]
fn qat_prints_a_rising_curve_and_writes_loadable_weights() {
    let out_file = std::env::temp_dir().join(format!("qp-qat-{}.safetensors", std::process::id()));
    let out = qp(&[
        "qat",
        "--bits",
        "2",
        "--mode",
        "sym",
        "--steps",
        "30",
        "--every",
        "15",
        "--format",
        "json",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let curve = v["curve"].as_array().unwrap();
    let steps: Vec<u64> = curve.iter().map(|p| p["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [0, 15, 30]);
    let acc = |i: usize| curve[i]["test"]["accuracy"].as_f64().unwrap();
    assert!(acc(2) > acc(0) + 10.0, "{} → {}", acc(0), acc(2));
    let bytes = std::fs::read(&out_file).unwrap();
    let _ = std::fs::remove_file(&out_file);
    let net = quant_core::weights::from_safetensors(&bytes).unwrap();
    let bundled = quant_core::weights::from_safetensors(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../static/mnistnet.safetensors"
        ))
        .unwrap(),
    )
    .unwrap();
    // Fine-tuned: the bundled weights, moved.
    assert_ne!(net.tensors()[0], bundled.tensors()[0]);
    let moved = net.tensors()[0]
        .iter()
        .zip(bundled.tensors()[0])
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(moved < 0.1, "{moved}");
    // A bad learning rate is refused with a message.
    let bad = qp(&["qat", "--lr=-1", "--steps", "1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("learning rate"));
}

#[test]
fn the_format_gallery_and_quantize_agree_on_the_written_weights() {
    let out = qp(&["sweep", "--dtypes", "nf4,q4_0", "--format", "json"]);
    succeeded(&out);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["format"], "NF4");
    assert_eq!(rows[1]["recipe"], "bits=8&scheme=sym&dtype=q4_0");
    // Q4_0 stores 18 bytes per 32 weights: 4.5 bits, plus nothing for the FP32 biases.
    assert_eq!(rows[1]["bits_per_weight"], 4.5);
    let q4_0 = rows[1]["accuracy"].as_f64().unwrap();
    assert!((90.0..100.0).contains(&q4_0), "{q4_0}");

    let path = std::env::temp_dir().join(format!("qp-q4_0-{}.safetensors", std::process::id()));
    let out = qp(&[
        "quantize",
        "--dtype",
        "q4_0",
        "--out",
        path.to_str().unwrap(),
    ]);
    succeeded(&out);
    // The written file, read as a plain FP32 network, scores what the gallery printed.
    let out = qp(&[
        "report",
        "--weights",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    succeeded(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["fp32"]["accuracy"].as_f64().unwrap(), q4_0);
    std::fs::remove_file(&path).ok();

    let out = qp(&["sweep", "--dtypes", "fp7"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown dtype"));
}

#[test]
fn layer_bits_give_each_layer_its_width_and_the_same_network_as_the_recipe_text() {
    let out = qp(&[
        "report",
        "--layer-bits",
        "conv1=8,conv2=4,fc1=2,fc2=fp32",
        "--format",
        "json",
    ]);
    succeeded(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["recipe"],
        "bits=8&scheme=sym&conv2.bits=4&fc1.bits=2&fc2.dtype=fp32"
    );
    let text = qp(&[
        "report",
        "--recipe",
        "bits=8&conv2.bits=4&fc1.bits=2&fc2.dtype=fp32",
        "--format",
        "json",
    ]);
    succeeded(&text);
    let w: serde_json::Value = serde_json::from_slice(&text.stdout).unwrap();
    assert_eq!(v["quantized"], w["quantized"]);
    // fc2 kept in FP32: no error, and its 1,290 parameters at 4 bytes in the size.
    assert_eq!(v["layers"][3]["mean_abs_error"], 0.0);
    let bad = qp(&["report", "--layer-bits", "fc3=2"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--layer-bits"));
}

#[test]
fn flips_lists_the_digits_whose_answer_changes() {
    let out = qp(&["flips", "--bits", "2", "--digit", "0", "--format", "json"]);
    succeeded(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let flips = v["flips"].as_array().unwrap();
    // At 2 bits the network falls to about a third: over a thousand digits flip.
    assert!(flips.len() > 1000, "{}", flips.len());
    assert!(flips.iter().all(|f| f["fp32"] != f["quantized"]));
    let p: f64 = v["digit"]["fp32"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-5);
    let out = qp(&["flips", "--bits", "16", "--format", "json"]);
    succeeded(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["flips"].as_array().unwrap().len() <= 2);
    assert!(!qp(&["flips", "--digit", "2000"]).status.success());
}

#[test]
fn inspect_gives_pytorch_s_scale_zero_point_and_codes_for_a_reader_s_tensor() {
    // The essay's ResNet18 conv1 range, in files PyTorch and numpy wrote
    // (scripts/inspect_goldens.py); scales, zero points and int_repr() from PyTorch.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/goldens/");
    let golden: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{root}inspect.json")).unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("qp-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, case) in golden["quantized"].as_array().unwrap().iter().enumerate() {
        let recipe = case["recipe"].as_str().unwrap();
        for file in ["inspect.safetensors", "inspect.npy"] {
            let codes = dir.join(format!("codes-{i}.safetensors"));
            let path = format!("{root}{file}");
            let mut args = vec!["inspect", &path, "--recipe", recipe, "--format", "json"];
            if file.ends_with("safetensors") {
                args.extend(["--tensor", "conv1.weight"]);
            }
            let codes_arg = codes.to_str().unwrap().to_string();
            args.extend(["--emit-codes", &codes_arg]);
            let axis = case["axis"].as_u64().unwrap_or(0).to_string();
            args.extend(["--axis", &axis]);
            let out = qp(&args);
            succeeded(&out);
            let bytes = std::fs::read(&codes).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            // Compared as f32 (what both store): serde_json's decimal parsing may miss the
            // nearest f64 by an ulp.
            let scale: Vec<f32> = st
                .tensor("scale")
                .unwrap()
                .data()
                .chunks(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let want: Vec<f32> = case["scale"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(scale, want, "{recipe} {file}");
            let zp: Vec<i64> = st
                .tensor("zero_point")
                .unwrap()
                .data()
                .chunks(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap())))
                .collect();
            let want_zp: Vec<i64> = case["zero_point"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect();
            assert_eq!(zp, want_zp, "{recipe} {file}");
            use sha2::Digest;
            let digest: String = sha2::Sha256::digest(st.tensor("codes").unwrap().data())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(digest, case["codes_sha256"], "{recipe} {file}");
        }
    }
    // A file of several tensors is listed; a missing tensor and a broken file are refused.
    let path = format!("{root}inspect.safetensors");
    let out = qp(&["inspect", &path]);
    succeeded(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("conv1.weight.bf16"));
    let out = qp(&["inspect", &path, "--tensor", "nope"]);
    assert!(!out.status.success());
    let broken = dir.join("broken.safetensors");
    std::fs::write(&broken, [0xff; 20]).unwrap();
    let out = qp(&["inspect", broken.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than the 16 MB allowed"));
    let _ = std::fs::remove_dir_all(&dir);
}
