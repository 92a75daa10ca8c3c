//! Which configuration formats a build reads follows its features.

use mpm_lazy::{Error, Format, LazyConfig};

#[track_caller]
fn check(format: Format, extension: &str, body: &str, enabled: bool) {
    assert_eq!(format.is_enabled(), enabled);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("mpm.{extension}"));
    std::fs::write(&path, body).unwrap();
    match LazyConfig::open(&path) {
        Ok(config) => {
            assert!(enabled, "{format:?} opened although its feature is off");
            assert_eq!(config.section_names().unwrap(), ["server"]);
        }
        Err(Error::FormatNotEnabled {
            format: refused, ..
        }) => {
            assert!(!enabled, "{format:?} refused although its feature is on");
            assert_eq!(refused, format);
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[test]
fn json_is_always_read() {
    check(Format::Json, "json", r#"{"server": {"port": 1}}"#, true);
}

#[test]
fn toml_is_read_with_its_feature() {
    check(
        Format::Toml,
        "toml",
        "[server]\nport = 1\n",
        cfg!(feature = "toml"),
    );
}

#[test]
fn yaml_is_read_with_its_feature() {
    check(
        Format::Yaml,
        "yaml",
        "server:\n  port: 1\n",
        cfg!(feature = "yaml"),
    );
}
