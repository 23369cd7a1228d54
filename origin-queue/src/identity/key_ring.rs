//! Loading the key ring from the environment. There is no built-in default secret.

use wr_pass::KeyRing;

use crate::service::env::Env;

/// The key ring from `WR_KEYS` (JSON) or `WR_KEYS_FILE` (path to the same JSON).
pub fn load(env: &Env) -> Result<KeyRing, String> {
    let inline = env.get("WR_KEYS");
    let file = env.get("WR_KEYS_FILE");
    let text = match (inline, file) {
        (Some(_), Some(_)) => {
            return Err("both WR_KEYS and WR_KEYS_FILE are set: set only one".into());
        }
        (Some(text), None) => text,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read WR_KEYS_FILE {path:?}: {e}"))?,
        (None, None) => {
            return Err(concat!(
                "no signing keys configured: set WR_KEYS to ",
                r#"'{"active":"k1","keys":{"k1":"<base64, at least 32 bytes>"}}' "#,
                "or WR_KEYS_FILE to a file holding that JSON (there is no built-in default key)"
            )
            .into());
        }
    };
    KeyRing::from_json(&text).map_err(|e| e.to_string())
}
