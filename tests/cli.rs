//! The command-line contract: `info --json`, `extract`, the demo (the DataLoader on a generated data set), and
//! one-line errors on bad input.

mod common;

use common::*;

#[test]
fn info_json_has_the_contract_fields() {
    let stdout = run(cli()
        .arg("info")
        .arg(fixture("h264_b3_gop30.mp4"))
        .arg("--json"));
    let stdout = String::from_utf8(stdout).unwrap();
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "one JSON object on one line"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["codec"], "h264");
    assert_eq!(v["width"], 320);
    assert_eq!(v["height"], 240);
    assert_eq!(v["num_frames"], 75);
    assert_eq!(v["fps"], 30.0);
    assert!((v["duration_s"].as_f64().unwrap() - 2.5).abs() < 0.05);
    assert_eq!(v["bit_depth"], 8);
    assert_eq!(v["chroma"], "420");
    assert_eq!(v["keyframes"], serde_json::json!([0, 30, 60]));
}

#[test]
fn extract_native_and_rgb_match_ffmpeg() {
    let path = fixture("hevc10.mkv");
    let dir = fixture_dir().join("scratch/extract-hevc10");
    let _ = std::fs::remove_dir_all(&dir);
    let st = cli()
        .arg("extract")
        .arg(&path)
        .args(["--indices", "17,0,17,47", "--color", "native", "--out"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let fb = planar_frame_bytes(320, 240, 1, 1, 2);
    let reference = reference_frames(&path, "yuv420p10le", fb);
    for i in [0usize, 17, 47] {
        let got = std::fs::read(dir.join(format!("{i}.yuv"))).unwrap();
        assert!(got == reference[i], "frame {i}");
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        3,
        "duplicates write the same file"
    );

    let st = cli()
        .arg("extract")
        .arg(&path)
        .args(["--indices", "5", "--color", "rgb", "--out"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let ppm = std::fs::read(dir.join("5.ppm")).unwrap();
    let header = b"P6\n320 240\n255\n";
    assert!(ppm.starts_with(header));
    let want = reference_rgb(&reference[5], 320, 240, 1, 1, 10, "bt2020", false);
    assert!(max_abs_diff(&ppm[header.len()..], &want) <= 1);
}

#[test]
fn bad_input_exits_nonzero_with_one_line() {
    let cases: Vec<Vec<String>> = vec![
        vec!["info".into(), "/no/such/file.mp4".into(), "--json".into()],
        vec![
            "extract".into(),
            fixture("mpeg4.avi").display().to_string(),
            "--indices".into(),
            "0,5000".into(),
            "--out".into(),
            fixture_dir().join("scratch/x").display().to_string(),
        ],
        vec![
            "extract".into(),
            fixture("mpeg4.avi").display().to_string(),
            "--indices".into(),
            "0".into(),
            "--color".into(),
            "cmyk".into(),
            "--out".into(),
            fixture_dir().join("scratch/x").display().to_string(),
        ],
        vec![
            "info".into(),
            env!("CARGO_MANIFEST_DIR").to_string() + "/Cargo.toml",
        ],
    ];
    for args in cases {
        let out = cli().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("vidloader: error: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn demo_makes_a_dataset_and_prints_batches_and_speed() {
    let dir = fixture_dir().join("scratch/demo");
    let stdout =
        run(cli()
            .arg("demo")
            .arg("--dir")
            .arg(&dir)
            .args(["--per-class", "2", "--frames", "4"]));
    let s = String::from_utf8(stdout).unwrap();
    assert!(s.contains("batch: [8, 4, 3, 128, 128]"), "{s}");
    assert!(s.contains("decoder pool hit rate"), "{s}");
    assert!(s.contains("frames/s"), "{s}");
    assert_eq!(
        std::fs::read_to_string(dir.join("labels.csv"))
            .unwrap()
            .lines()
            .count(),
        9
    );
}

#[test]
fn gpu_flag_reads_every_file_and_backend_nvdec_insists() {
    // MPEG-4 Part 2 is kept off NVDEC (its inverse DCT may differ): `--gpu 0` still decodes it (on the CPU, and
    // on a machine without a GPU everything goes to the CPU), `--backend nvdec` refuses it in one line.
    let path = fixture("mpeg4.avi");
    let out_dir = fixture_dir().join("scratch").join("cli_gpu_flag");
    let _ = std::fs::remove_dir_all(&out_dir);
    let ok = cli()
        .arg("extract")
        .arg(&path)
        .args(["--indices", "0,7", "--color", "rgb", "--gpu", "0", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out_dir.join("7.ppm").exists());
    let strict = cli()
        .arg("extract")
        .arg(&path)
        .args([
            "--indices",
            "0",
            "--backend",
            "nvdec",
            "--gpu",
            "0",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(!strict.status.success());
    let err = String::from_utf8_lossy(&strict.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let bad = cli()
        .arg("info")
        .arg(&path)
        .args(["--backend", "fpga"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown backend"));
}
