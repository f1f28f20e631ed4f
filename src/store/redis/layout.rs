//! The deployment's layout record (`{prefix}:layout`), checked before the engine touches anything
//! else: the key layout's version, the partition count, and the salt of event ids.
//!
//! The first node to reach an empty Redis writes the record; every other node reads it. A node
//! configured with another partition count, or a Redis that still holds the layout from before
//! partitions, is refused with a message saying what to do: data is never silently mixed, and a
//! project never silently moves to another partition.

use super::keys::Keys;
use crate::store::{StoreError, StoreResult};
use std::collections::HashMap;

/// The key layout's version: 2 is the partitioned one (1 had global presence, log and leases).
const VERSION: &str = "2";

/// What the record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub salt: u64,
}

/// How the record is created: one atomic step on its one key.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'partitions', ARGV[2], 'salt', ARGV[3])
end
return redis.call('HGETALL', KEYS[1])
";

/// Reads the record, or creates it in an empty Redis. `Err(Refused)` for a Redis this node must
/// not use.
pub async fn check<C: redis::aio::ConnectionLike + Send>(
    connection: &mut C,
    keys: &Keys,
) -> StoreResult<Layout> {
    let existing: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys.layout())
        .query_async(connection)
        .await
        .map_err(super::map_error)?;
    let record = if existing.is_empty() {
        for old in keys.previous_layout() {
            let found: bool = redis::cmd("EXISTS")
                .arg(&old)
                .query_async(connection)
                .await
                .map_err(super::map_error)?;
            if found {
                return Err(StoreError::Refused(format!(
                    "this Redis holds the key layout of an earlier version under the prefix `{}` \
                     (found `{old}`), which this version cannot read: start on an empty Redis \
                     or another `redis_prefix`",
                    keys.prefix()
                )));
            }
        }
        let salt = u64::from_le_bytes(crate::auth::random_bytes::<8>());
        redis::Script::new(CREATE)
            .key(keys.layout())
            .arg(VERSION)
            .arg(keys.partitions().count())
            .arg(salt.to_string())
            .invoke_async(connection)
            .await
            .map_err(super::map_error)?
    } else {
        existing
    };
    read(&record, keys)
}

fn read(record: &HashMap<String, String>, keys: &Keys) -> StoreResult<Layout> {
    let field = |name: &str| record.get(name).map(String::as_str).unwrap_or("");
    if field("version") != VERSION {
        return Err(StoreError::Refused(format!(
            "`{}` says key layout version `{}`; this version uses {VERSION}",
            keys.layout(),
            field("version")
        )));
    }
    let configured = keys.partitions().count();
    if field("partitions") != configured.to_string() {
        return Err(StoreError::Refused(format!(
            "this deployment has {} partitions (`{}`), but this node is configured with \
             `redis_partitions` = {configured}: the count is fixed for a deployment's life, so \
             set it to {} on every node",
            field("partitions"),
            keys.layout(),
            field("partitions")
        )));
    }
    let salt = field("salt")
        .parse()
        .map_err(|_| StoreError::Internal(format!("corrupt salt in `{}`", keys.layout())))?;
    Ok(Layout { salt })
}
