//! The configuration compiler reports problems; it must never panic on any file.

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = portcullis_config::load_str(text, "fuzz.toml", &|name| {
        (name == "SET").then(|| "value".to_owned())
    });
}
