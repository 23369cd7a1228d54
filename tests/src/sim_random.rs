//! Deterministic random numbers for the simulations (`sessions-sim`, `autopilot-sim`):
//! xorshift64*, so a run repeats exactly from its seed.

/// A generator from a seed (0 is replaced by 1: xorshift never leaves 0).
pub struct SimRandom(u64);

impl SimRandom {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SimRandom {
        SimRandom(seed.max(1))
    }

    /// A uniform number in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-12);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}
