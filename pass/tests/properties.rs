//! Property tests: the parser and verifier never panic, and no altered pass verifies.

use proptest::prelude::*;
use wr_pass::{parse_unverified, Claims, KeyRing, TokenKind, Validity};

fn ring() -> KeyRing {
    KeyRing::from_json(
        r#"{"active":"k1","keys":{"k1":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}}"#,
    )
    .unwrap()
}

const NOW: u64 = 1_800_000_000;

fn valid_token(event: &str, visitor: &str) -> String {
    ring()
        .mint(
            TokenKind::Pass,
            &Claims::new(event, visitor, NOW - 10, NOW + 600),
        )
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn any_bytes_give_an_error_or_a_valid_pass(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let r = ring();
        if let Ok(claims) = r.verify(TokenKind::Pass, &bytes, Validity::at(NOW, 30), None) {
            prop_assert!(claims.validate().is_ok());
        }
        let _ = parse_unverified(&bytes);
    }

    #[test]
    fn token_shaped_garbage_never_panics(
        prefix in "(p1|t1|p2|x)",
        kid in "[A-Za-z0-9_-]{0,40}",
        claims in "[A-Za-z0-9_-]{0,200}",
        mac in "[A-Za-z0-9_-]{0,60}",
    ) {
        let token = format!("{prefix}.{kid}.{claims}.{mac}");
        prop_assert!(ring().verify(TokenKind::Pass, token.as_bytes(), Validity::at(NOW, 30), None).is_err());
        let _ = parse_unverified(token.as_bytes());
    }

    #[test]
    fn flipping_any_bit_invalidates(
        event in "[a-z0-9][a-z0-9_-]{0,20}",
        visitor in "[A-Za-z0-9_-]{1,40}",
        bit in any::<prop::sample::Index>(),
    ) {
        let token = valid_token(&event, &visitor);
        let mut bytes = token.clone().into_bytes();
        let i = bit.index(bytes.len() * 8);
        bytes[i / 8] ^= 1 << (i % 8);
        prop_assert!(ring().verify(TokenKind::Pass, token.as_bytes(), Validity::at(NOW, 30), None).is_ok());
        prop_assert!(ring().verify(TokenKind::Pass, &bytes, Validity::at(NOW, 30), None).is_err(),
            "bit {} of {} accepted", i, token);
    }
}

/// Exhaustive rather than sampled: every single-bit flip of one pass.
#[test]
fn every_single_bit_flip_of_one_pass_is_rejected() {
    let token = valid_token("concert", "visitor-abc");
    let r = ring();
    for i in 0..token.len() * 8 {
        let mut bytes = token.clone().into_bytes();
        bytes[i / 8] ^= 1 << (i % 8);
        assert!(
            r.verify(TokenKind::Pass, &bytes, Validity::at(NOW, 30), None)
                .is_err(),
            "bit {i} flipped still verifies"
        );
    }
}
