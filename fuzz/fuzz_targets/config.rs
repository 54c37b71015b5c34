//! The configuration compiler reports problems; it must never panic on any file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = portcullis_config::load_str(text, "fuzz.toml", &|name| (name == "SET").then(|| "value".to_owned()));
});
