//! Lua scripts sent by SHA, loaded on the one master that needs them.
//!
//! `redis::Script` answers a master's `NOSCRIPT` with `SCRIPT LOAD`, which a cluster
//! connection sends to every master and which fails unless every master answers: while
//! one master was stalled, the first call of a script on any other master (after a
//! restart or a failover, whose new master starts with an empty script cache) waited
//! for the Redis timeout and failed. Here the answer to `NOSCRIPT` is `EVAL` with the
//! whole text, sent like the `EVALSHA` to the master of the script's keys; Redis caches
//! the script there, so later calls go by SHA again.

use std::sync::Arc;

use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, ToRedisArgs};

/// A `static` [`LuaScript`] of the preludes and the script named, in that order:
/// `lua_script!(SCRIPT = "event.lua", "seen.lua", "join.lua");`
macro_rules! lua_script {
    ($name:ident = $($file:literal),+) => {
        static $name: std::sync::LazyLock<$crate::store::script::LuaScript> =
            std::sync::LazyLock::new(|| {
                $crate::store::script::LuaScript::new(concat!($(include_str!($file)),+))
            });
    };
}
pub(crate) use lua_script;

/// A script's text and SHA1.
pub struct LuaScript {
    code: &'static str,
    sha: Arc<str>,
}

impl LuaScript {
    /// The script `code` (its SHA1 computed once). `code` is the script's preludes (the
    /// Lua functions it shares with other scripts) followed by its own text.
    pub fn new(code: &'static str) -> LuaScript {
        let sha = redis::Script::new(code).get_hash().into();
        LuaScript { code, sha }
    }

    /// A call of this script, to be given its keys and arguments.
    pub fn prepare_invoke(&self) -> Invocation<'_> {
        Invocation {
            script: self,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }
}

/// One call of a [`LuaScript`].
pub struct Invocation<'a> {
    script: &'a LuaScript,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl Invocation<'_> {
    /// Adds a key (all keys of a call share one hash slot).
    pub fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    /// `EVALSHA`; on `NOSCRIPT`, `EVAL` with the text, on the same master.
    pub async fn invoke_async<T: FromRedisValue>(
        &self,
        conn: &mut ClusterConnection,
    ) -> RedisResult<T> {
        match self
            .command("EVALSHA", &self.script.sha)
            .query_async(conn)
            .await
        {
            Err(e) if e.kind() == ErrorKind::NoScriptError => {
                self.command("EVAL", self.script.code)
                    .query_async(conn)
                    .await
            }
            answer => answer,
        }
    }

    fn command(&self, verb: &str, script: &str) -> Cmd {
        let mut cmd = redis::cmd(verb);
        cmd.arg(script)
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.args);
        cmd
    }
}
