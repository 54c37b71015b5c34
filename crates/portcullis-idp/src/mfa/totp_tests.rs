use super::*;

/// RFC 6238 appendix B's SHA-1 secret.
fn rfc_secret() -> TotpSecret {
    TotpSecret(*b"12345678901234567890")
}

#[test]
fn codes_match_rfc_6238_sha1_vectors() {
    // RFC 6238 gives 8 digits; 6-digit codes are their last six (the truncation mod 10^6).
    for (time, eight) in [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ] {
        let code = code_at(&rfc_secret(), step_at(time));
        assert_eq!(
            std::str::from_utf8(&code).expect("ascii"),
            &eight[2..],
            "t={time}"
        );
    }
}

#[test]
fn base32_matches_rfc_4648_vectors_and_round_trips() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "MY"),
        ("fo", "MZXQ"),
        ("foo", "MZXW6"),
        ("foob", "MZXW6YQ"),
        ("fooba", "MZXW6YTB"),
        ("foobar", "MZXW6YTBOI"),
    ] {
        assert_eq!(base32_encode(plain.as_bytes()), encoded);
        assert_eq!(
            base32_decode(encoded).expect("valid base32"),
            plain.as_bytes()
        );
    }
    assert_eq!(
        base32_decode("mzxw6ytboi======").expect("lower case and padding"),
        b"foobar"
    );
    assert_eq!(base32_decode("MZ1"), None);
    let secret = TotpSecret::random().expect("randomness");
    let text = secret.base32();
    assert_eq!(text.len(), 32);
    assert!(
        text.bytes()
            .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c))
    );
    assert_eq!(base32_decode(&text).expect("own encoding"), secret.0);
}

fn code(secret: &TotpSecret, step: i64) -> String {
    String::from_utf8(code_at(secret, step).to_vec()).expect("ascii")
}

#[test]
fn accepts_one_step_either_way_and_nothing_further() {
    let secret = rfc_secret();
    let now = 1_700_000_015;
    let current = step_at(now);
    for step in [current - 1, current, current + 1] {
        assert_eq!(check(&secret, &code(&secret, step), now, None), Ok(step));
    }
    for step in [current - 2, current + 2, current - 10] {
        let result = check(&secret, &code(&secret, step), now, None);
        // a far step's code may by chance equal a near one's; it never answers as its own step
        assert_ne!(result, Ok(step));
    }
}

#[test]
fn a_spent_step_or_an_earlier_one_is_a_replay() {
    let secret = rfc_secret();
    let now = 1_700_000_015;
    let current = step_at(now);
    let spent = code(&secret, current);
    assert_eq!(
        check(&secret, &spent, now, Some(current)),
        Err(TotpError::Replayed)
    );
    assert_eq!(
        check(&secret, &code(&secret, current - 1), now, Some(current)),
        Err(TotpError::Replayed)
    );
    assert_eq!(
        check(&secret, &code(&secret, current + 1), now, Some(current)),
        Ok(current + 1)
    );
}

#[test]
fn malformed_and_wrong_codes() {
    let secret = rfc_secret();
    for bad in ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "-12345"] {
        assert_eq!(
            check(&secret, bad, 59, None),
            Err(TotpError::Malformed),
            "{bad:?}"
        );
    }
    assert_eq!(parse_code(" 287082 "), Ok(*b"287082"));
    let right = code(&secret, step_at(59));
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    assert_eq!(check(&secret, wrong, 59, None), Err(TotpError::Mismatch));
}

#[test]
fn secrets_do_not_show_in_debug() {
    let shown = format!("{:?}", rfc_secret());
    assert!(!shown.contains("123"), "{shown}");
}
