//! Giving up a place or an admission (`leave.lua`).

use redis::Value;

use super::keys::{Bind, EventKey};
use super::reply::Shape;
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "reply.lua", "leave.lua");

/// The items of leave's reply (`LEAVE_REPLY` in `leave.lua`).
static REPLY: std::sync::LazyLock<Shape> =
    std::sync::LazyLock::new(|| Shape::declared(include_str!("leave.lua"), "LEAVE_REPLY"));

/// The keys `leave.lua` expects, in order.
const KEYS: [EventKey; 4] = [
    EventKey::Line,
    EventKey::Granted,
    EventKey::Active,
    EventKey::Stats,
];

/// What leaving did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    /// The visitor held a place, a grant or a session.
    pub held: bool,
    /// An active session ended (counted as ended by `left`).
    pub ended_session: bool,
}

impl Store {
    /// Removes `visitor` from the line and from admission.
    pub async fn leave(&self, event: &str, visitor: &str) -> Result<Left, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS).arg(visitor);
        let reply: Vec<Value> = self.eval(call).await?;
        parse(&reply).map_err(StoreError::bad_reply)
    }
}

fn parse(reply: &[Value]) -> Result<Left, String> {
    let left = REPLY.read(reply)?;
    Ok(Left {
        held: left.count("held")? > 0,
        ended_session: left.count("ended_session")? == 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_leaving_did() {
        let reply = |held, ended| {
            REPLY.build(&[
                ("held", Value::Int(held)),
                ("ended_session", Value::Int(ended)),
            ])
        };
        assert_eq!(
            parse(&reply(2, 1)),
            Ok(Left {
                held: true,
                ended_session: true
            })
        );
        assert_eq!(
            parse(&reply(0, 0)),
            Ok(Left {
                held: false,
                ended_session: false
            })
        );
        assert!(parse(&[Value::Int(1)]).is_err());
    }
}
