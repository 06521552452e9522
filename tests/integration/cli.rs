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

/// `generate-registration` writes a 0600 file once, keeps its tokens on `--force`, and
/// `check-config` (bridge enabled) refuses a registration that disagrees with the config.
#[test]
fn test_generate_registration_and_check_config() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let registration = dir.path().join("reg/registration.yaml");
    let write_config = |address: &str| {
        let path = dir.path().join("bridge.yaml");
        let yaml = format!(
            "bridge: {{enabled: true}}\nappservice:\n  address: \"{address}\"\n  registration: {}\n\
             accounts:\n  - {{id: a, qq: 10001, login: qr, owner: \"@a:localhost\"}}\n",
            registration.display()
        );
        std::fs::write(&path, yaml).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let config = write_config("http://127.0.0.1:29340");
    let (ok, text) = qqbridge(&["check-config", "-c", &config], &[]);
    assert!(!ok && text.contains("cannot read registration file"), "{text}");

    let (ok, text) = qqbridge(&["generate-registration", "-c", &config], &[]);
    assert!(ok && text.contains("written with new tokens"), "{text}");
    let mode = std::fs::metadata(&registration).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let first = std::fs::read_to_string(&registration).unwrap();
    let token = |text: &str, key: &str| {
        let line = text.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_once(": ").unwrap().1.to_owned()
    };
    let as_token = token(&first, "as_token");
    let (ok, text) = qqbridge(&["check-config", "-c", &config], &[]);
    assert!(ok, "{text}");
    assert!(!text.contains(&as_token), "{text}");

    let (ok, text) = qqbridge(&["generate-registration", "-c", &config], &[]);
    assert!(!ok && text.contains("already exists"), "{text}");

    let config = write_config("http://127.0.0.1:1");
    let (ok, text) = qqbridge(&["check-config", "-c", &config], &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("registration url is") && text.contains("generate-registration"),
        "{text}"
    );
    let (ok, run) = qqbridge(&["run", "-c", &config], &[]);
    assert!(!ok && run.contains("registration url is"), "{run}");

    let (ok, text) = qqbridge(&["generate-registration", "-c", &config, "--force"], &[]);
    assert!(ok && text.contains("tokens kept"), "{text}");
    let kept = std::fs::read_to_string(&registration).unwrap();
    assert_eq!(token(&kept, "as_token"), as_token);
    let (ok, text) = qqbridge(&["check-config", "-c", &config], &[]);
    assert!(ok, "{text}");

    let other = dir.path().join("other.yaml");
    let args = ["generate-registration", "-c", &config, "-r", other.to_str().unwrap()];
    let (ok, text) = qqbridge(&args, &[]);
    assert!(ok && other.exists(), "{text}");
    let args = ["generate-registration", "-c", &config, "--force", "--new-tokens"];
    let (ok, text) = qqbridge(&args, &[]);
    assert!(ok && text.contains("rewritten with new tokens"), "{text}");
    let fresh = std::fs::read_to_string(&registration).unwrap();
    assert_ne!(token(&fresh, "as_token"), as_token);
}
