//! The opening draw's seed and procedure, in Rust: what `draw.lua` does in Redis, written
//! out so that it can be published, checked and tested (`docs/draw.md`).
//!
//! Why this shape:
//! - **Sorting by a keyed hash** gives a uniformly random order (each entrant's key is an
//!   independent uniform 160-bit value to anyone who does not know the seed), and it is
//!   easy to recompute: anyone with the seed and the entrants' ids sorts them again,
//!   and a visitor can find their own place by counting the keys below theirs.
//! - **SHA-1** because it is the hash Redis's Lua offers, so the draw runs as one atomic
//!   script. Its known weakness (finding collisions) gives nobody a say in the order:
//!   moving a place needs a key below someone else's, i.e. knowing the seed.
//! - **The seed is committed before anybody joins** (its SHA-256 is published when the
//!   event is created), so the operator cannot pick a seed after seeing who entered,
//!   and revealed only after the draw, so nobody can pick ids that land in front.

use rand::Rng;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A draw seed: 32 random bytes, written as 64 lowercase hex digits.
pub struct DrawSeed(String);

impl DrawSeed {
    /// A seed from the operating system's random source.
    pub fn fresh() -> DrawSeed {
        let bytes: [u8; 32] = rand::rng().random();
        DrawSeed(hex(&bytes))
    }

    /// The seed as published after the draw.
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// What is published before the draw: the SHA-256 of the seed's hex text.
    pub fn commitment(&self) -> String {
        commitment_of(&self.0)
    }
}

/// The commitment to `seed_hex`: lowercase hex SHA-256 of its text.
pub fn commitment_of(seed_hex: &str) -> String {
    hex(&Sha256::digest(seed_hex.as_bytes()))
}

/// An entrant's sort key: lowercase hex SHA-1 of `seed_hex ':' entrant`.
pub fn draw_key(seed_hex: &str, entrant: &str) -> String {
    let mut h = Sha1::new();
    h.update(seed_hex.as_bytes());
    h.update(b":");
    h.update(entrant.as_bytes());
    hex(&h.finalize())
}

/// The entrants in drawn order (place 1 first): ascending byte order of
/// `draw_key(seed, v)` followed by `v`.
pub fn draw_order<'a>(seed_hex: &str, entrants: &[&'a str]) -> Vec<&'a str> {
    let mut keyed: Vec<(String, &str)> = entrants
        .iter()
        .map(|v| (draw_key(seed_hex, v) + v, *v))
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    keyed.into_iter().map(|(_, v)| v).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_seed_is_64_hex_digits_and_its_commitment_is_its_sha256() {
        let seed = DrawSeed::fresh();
        assert_eq!(seed.hex().len(), 64);
        assert!(seed.hex().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            commitment_of("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_key_is_sha1_of_seed_colon_entrant() {
        // printf 'a:c' | sha1sum
        assert_eq!(
            draw_key("a", "c"),
            "66e4766718305fb69cc8ee0c0c4dd49c50b86f68"
        );
    }

    /// Where the visitor "v0" lands among `n` entrants, over `seeds` deterministic
    /// seeds, tallied per place; then Pearson's chi-square against a uniform place.
    fn chi_square_of_one_visitors_place(n: usize, seeds: usize) -> f64 {
        let ids: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
        let entrants: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut tally = vec![0usize; n];
        for s in 0..seeds {
            let seed = commitment_of(&format!("ci seed {s}"));
            let order = draw_order(&seed, &entrants);
            let place = order.iter().position(|v| *v == "v0").unwrap();
            tally[place] += 1;
        }
        let expected = seeds as f64 / n as f64;
        tally
            .iter()
            .map(|&o| (o as f64 - expected).powi(2) / expected)
            .sum()
    }

    #[test]
    fn one_visitors_place_is_uniform_over_many_seeded_draws() {
        // 10 entrants, 20,000 seeds: chi-square with 9 degrees of freedom. 27.88 is the
        // 0.999 quantile: a fair draw fails this one time in a thousand seed sets; the
        // seeds are fixed, so CI sees the same figure every run.
        let chi2 = chi_square_of_one_visitors_place(10, 20_000);
        assert!(
            chi2 < 27.88,
            "chi-square {chi2:.2} >= 27.88 (9 dof, p = 0.001)"
        );
    }

    #[test]
    fn every_pair_is_ordered_either_way_half_the_time() {
        // A fair shuffle puts v3 ahead of v7 in half the draws (binomial, 4,000 draws:
        // sd 31.6; 3.29 sd is p = 0.001 two-sided).
        let entrants = ["v1", "v3", "v5", "v7"];
        let ahead = (0..4_000)
            .filter(|s| {
                let order = draw_order(&commitment_of(&format!("pair {s}")), &entrants);
                let at = |v| order.iter().position(|x| *x == v).unwrap();
                at("v3") < at("v7")
            })
            .count();
        assert!(
            (ahead as f64 - 2_000.0).abs() < 3.29 * 31.63,
            "{ahead} of 4000"
        );
    }

    #[test]
    fn the_order_depends_only_on_the_seed_and_the_entrants() {
        let seed = commitment_of("x");
        let a = draw_order(&seed, &["a", "b", "c", "d"]);
        let b = draw_order(&seed, &["d", "c", "b", "a"]);
        assert_eq!(
            a, b,
            "the order in which entrants are listed does not matter"
        );
        assert_ne!(a, draw_order(&commitment_of("y"), &["a", "b", "c", "d"]));
    }
}
