//! The same pass-verification loop for two builds: the wasm module exports
//! `verify_loop(token_ptr, token_len, now, iterations) -> valid` (and `alloc(len)` for
//! the host to write the token into); the native binary (`src/main.rs`) times
//! [`verify_many`] directly.

use wr_pass::{KeyRing, TokenKind, Validity};

/// The tests' key ring (`tests/src/fixtures.rs`, `KEYS_JSON`): test-only keys.
const KEYS_JSON: &str = r#"{"active":"k2","keys":{
    "k1":"dGVzdC1rZXktb25lLXRlc3Qta2V5LW9uZS10ZXN0LWtleS0x",
    "k2":"dGVzdC1rZXktdHdvLXRlc3Qta2V5LXR3by10ZXN0LWtleS0y"}}"#;

/// A buffer of `len` bytes that the host fills; leaked on purpose (one per run).
#[no_mangle]
pub extern "C" fn alloc(len: u32) -> *mut u8 {
    Box::leak(vec![0u8; len as usize].into_boxed_slice()).as_mut_ptr()
}

/// Verifies the token `iterations` times; returns how many verifications succeeded.
///
/// # Safety
/// `token_ptr..token_ptr + token_len` must be a buffer from [`alloc`].
#[no_mangle]
pub unsafe extern "C" fn verify_loop(
    token_ptr: *const u8,
    token_len: u32,
    now: u64,
    iterations: u32,
) -> u32 {
    // SAFETY: the caller guarantees the buffer.
    let token = unsafe { std::slice::from_raw_parts(token_ptr, token_len as usize) };
    verify_many(token, now, iterations)
}

/// Verifies `token` (a pass for event `concert` from the test key ring) `iterations`
/// times at unix time `now`; returns how many verifications succeeded.
pub fn verify_many(token: &[u8], now: u64, iterations: u32) -> u32 {
    let Ok(ring) = KeyRing::from_json(KEYS_JSON) else {
        return 0;
    };
    let mut valid = 0;
    for _ in 0..iterations {
        let token = std::hint::black_box(token);
        if ring
            .verify(TokenKind::Pass, token, Validity::at(now, 5), Some("concert"))
            .is_ok()
        {
            valid += 1;
        }
    }
    valid
}
