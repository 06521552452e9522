//! The `qqbridge` binary: `check-config` and `run` refuse a broken config with the same message,
//! naming the key, before anything starts; environment overrides are checked the same way.

use std::process::Command;

fn qqbridge(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_qqbridge"));
    command.args(args).env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn test_check_config_and_run_name_the_bad_key() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-input/config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = text.lines().next().unwrap().trim_start_matches("# error: ").to_owned();
        let file = path.to_str().unwrap();
        let (ok, check) = qqbridge(&["check-config", "-c", file], &[]);
        assert!(!ok, "{file} was accepted");
        assert!(check.contains(&expected), "{file}: {check}");
        let (ok, run) = qqbridge(&["run", "-c", file], &[]);
        assert!(!ok && run.contains(&expected), "{file}: run said {run}");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} bad configs");
}

#[test]
fn test_environment_overrides_are_checked_too() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/bridge.yaml");
    let (ok, text) = qqbridge(&["check-config", "-c", config], &[]);
    assert!(ok, "{text}");
    let (ok, text) = qqbridge(
        &["check-config", "-c", config],
        &[("QQBRIDGE__METRICS__LISTEN", "not an address")],
    );
    assert!(!ok);
    assert!(text.contains("metrics.listen"), "{text}");
    let (ok, text) =
        qqbridge(&["check-config", "-c", config], &[("QQBRIDGE__SENDER__MIN_INTERVAL_MS", "250")]);
    assert!(ok, "{text}");
}
