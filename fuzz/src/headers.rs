//! The input shape of the targets that take HTTP headers: one header a line, `name:value`
//! split at the first colon (a line without one is a name with an empty value). Names are
//! read lossily as UTF-8, as the gateway's HTTP stack hands them over; values stay bytes.

/// The headers of `lines`, names owned (see [`borrowed`] for the `(&str, &[u8])` form the
/// gateway's functions take).
pub fn parse(lines: &[u8]) -> Vec<(String, &[u8])> {
    lines
        .split(|&b| b == b'\n')
        .map(|line| match line.iter().position(|&b| b == b':') {
            Some(i) => (
                String::from_utf8_lossy(&line[..i]).into_owned(),
                &line[i + 1..],
            ),
            None => (String::from_utf8_lossy(line).into_owned(), &[][..]),
        })
        .collect()
}

/// `(name, value)` pairs borrowing from the result of [`parse`].
pub fn borrowed<'a>(owned: &'a [(String, &'a [u8])]) -> Vec<(&'a str, &'a [u8])> {
    owned.iter().map(|(n, v)| (n.as_str(), *v)).collect()
}
