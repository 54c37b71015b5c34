//! Result lines: human-readable lines on stdout, then exactly one JSON line per benchmark
//! (`{"bench":"idle",...}`) that `scripts/bench` picks out.

use serde_json::Value;

/// Prints the machine-readable line; `scripts/bench` greps for lines starting with `{"bench"`.
pub fn json_line(value: Value) {
    println!("{value}");
}
