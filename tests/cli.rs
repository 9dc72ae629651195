//! Behaviour every command shares, through the binary: how commands end when their reader
//! goes away.

use std::process::{Command, Stdio};

fn streamctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_streamctl"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// `streamctl … | head -1`: the reader closes the pipe. Every command ends quietly with exit 0
/// (no panic, no exit 101, no error about the pipe). The pipe's reading end is closed before the
/// command starts, so its first write fails, whatever the timing.
#[test]
fn every_command_ends_quietly_when_its_reader_goes_away() {
    let commands: &[&[&str]] = &[
        &["plan", "pipelines/movie-impressions-local.yaml"],
        &[
            "plan",
            "pipelines/movie-impressions-local.yaml",
            "--format",
            "json",
        ],
        &[
            "plan",
            "pipelines/taxi-hot-spots.yaml",
            "--target",
            "flink-sql",
        ],
        &["validate", "pipelines/movie-impressions-local.yaml"],
        &["schema"],
        &["generate", "movie-impressions", "--count", "100000"],
        &["--help"],
        &["run", "--help"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = streamctl()
            .args(*args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .expect("run streamctl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "`streamctl {}` on a closed pipe: {stderr}",
            args.join(" ")
        );
        // Diagnostics (warnings of the plan) may appear; no panic, no pipe error.
        assert!(
            !stderr.contains("panicked") && !stderr.to_lowercase().contains("broken pipe"),
            "`streamctl {}` on a closed pipe printed: {stderr}",
            args.join(" ")
        );
    }
}

/// Preset names: `taxi_trips` (as in a pipeline's `preset:`) and `taxi-trips` (as in file names)
/// are the same preset on the command line and in pipelines.
#[test]
fn preset_names_are_accepted_in_both_spellings_everywhere() {
    let generate = |preset: &str| {
        let out = streamctl()
            .args(["generate", preset, "--count", "50"])
            .output()
            .expect("run streamctl");
        assert!(out.status.success(), "generate {preset}");
        out.stdout
    };
    assert_eq!(generate("taxi_trips"), generate("taxi-trips"));
    assert_eq!(generate("movie_impressions"), generate("movie-impressions"));

    let dir = tempfile::tempdir().unwrap();
    for preset in ["taxi_trips", "taxi-trips", "delivery-pings", "stock-ticks"] {
        let path = dir.path().join("p.yaml");
        std::fs::write(
            &path,
            format!(
                "version: 1\nname: p\nsources:\n  g:\n    type: generator\n    preset: {preset}\n    count: 3\nsinks:\n  out:\n    type: stdout\n    inputs: [g]\n"
            ),
        )
        .unwrap();
        let out = streamctl()
            .args(["run", "--progress", "off"])
            .arg(&path)
            .output()
            .expect("run streamctl");
        assert!(
            out.status.success(),
            "preset: {preset}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    }
}
