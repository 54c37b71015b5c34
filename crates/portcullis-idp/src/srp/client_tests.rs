//! The client half of SRP sign-in, as Cognito's clients compute it, for the tests of the server
//! half (the JSON API's tests drive a whole `USER_SRP_AUTH` sign-in with it).

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use num_bigint::BigUint;
use rand::RngCore as _;

use super::{claim_message, derive_key, group, hash_int, pad, parse_hex, private_key};

/// A client's ephemeral a and its A = g^a mod N.
pub(crate) struct SrpClient {
    a: BigUint,
    big_a: BigUint,
}

impl SrpClient {
    /// A fresh client (a: 128 random bytes, as amazon-cognito-identity-js draws it).
    pub(crate) fn new() -> Self {
        let mut bytes = [0u8; 128];
        rand::rng().fill_bytes(&mut bytes);
        let group = group();
        let a = BigUint::from_bytes_be(&bytes) % &group.n;
        let big_a = group.g.modpow(&a, &group.n);
        SrpClient { a, big_a }
    }

    /// `SRP_A`: unpadded lowercase hex.
    pub(crate) fn a_hex(&self) -> String {
        self.big_a.to_str_radix(16)
    }

    /// `PASSWORD_CLAIM_SIGNATURE` for a challenge's `SALT`, `SRP_B` and `SECRET_BLOCK` (as
    /// received) at `timestamp`, with the pool name and `USER_ID_FOR_SRP`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn signature(
        &self,
        pool_name: &str,
        user_id: &str,
        password: &str,
        salt_hex: &str,
        b_hex: &str,
        secret_block_b64: &str,
        timestamp: &str,
    ) -> String {
        let group = group();
        let salt = parse_hex(salt_hex).expect("SALT is hex").to_bytes_be();
        let big_b = parse_hex(b_hex).expect("SRP_B is hex");
        let u = hash_int(&[&pad(&self.big_a), &pad(&big_b)]);
        let x = private_key(pool_name, user_id, password, &salt);
        let kgx = &group.k * group.g.modpow(&x, &group.n) % &group.n;
        let base = (big_b % &group.n + &group.n - kgx) % &group.n;
        let s = base.modpow(&(&self.a + &u * &x), &group.n);
        let key = derive_key(&pad(&u), &pad(&s));
        let block = STANDARD
            .decode(secret_block_b64)
            .expect("SECRET_BLOCK is base64");
        let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
        let tag = hmac::sign(&key, &claim_message(pool_name, user_id, &block, timestamp));
        STANDARD.encode(tag.as_ref())
    }
}
