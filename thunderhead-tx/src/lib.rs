//! Thunderhead's `Database` API: ACID transactions over named trees in one file.
//!
//! * [`Database::begin_read`] gives a [`ReadTransaction`]: a snapshot of the latest
//!   commit that never waits and keeps its version readable while it lives.
//! * [`Database::begin_write`] gives a [`WriteTransaction`]. Any number may be open at
//!   once; each records its writes privately (in an arena, spilling to a scratch file
//!   past [`Options::spill_bytes`]) and is validated at commit against everything that
//!   committed since it began: if a key or range it read was written, commit returns
//!   [`Error::Conflict`] and applies nothing (serializable). Commits pass through one
//!   committer; those that arrive together share one sync.
//! * Trees are named, can be renamed, deleted, and forked in constant time
//!   ([`WriteTransaction::fork_tree`]), and viewed through a key prefix
//!   ([`WriteTree::prefix`]).
//! * Every commit is a revision. Past revisions stay readable as
//!   [`Options::retain_revisions`] says ([`Database::begin_read_at`]); named snapshots
//!   ([`Database::snapshot`]) keep one until dropped. [`Database::diff`] says what
//!   changed between two versions at a cost that follows the change, and
//!   [`Database::changes_since`] is a feed of every commit's changes, with
//!   [`Database::wait_for_commit`] and [`Database::commit_after`] to wait for more.
//!
//! ```
//! use thunderhead_tx::{Database, Options};
//!
//! let db = Database::in_memory(Options::default())?;
//! let txn = db.begin_write()?;
//! let users = txn.open_tree(b"users")?;
//! users.insert(b"ann", b"admin")?;
//! users.insert(b"bob", b"guest")?;
//! txn.commit()?;
//!
//! let read = db.begin_read();
//! let users = read.open_tree(b"users")?;
//! assert_eq!(users.get(b"ann")?.as_deref(), Some(&b"admin"[..]));
//! assert_eq!(users.iter().count(), 2);
//! # Ok::<(), thunderhead_tx::Error>(())
//! ```
// Safe Rust only: no measurement has yet shown a gain worth an unsafe block (page
// views validate once, then index with bounds checks), and the forbid keeps it so.
#![forbid(unsafe_code)]

mod arena;
mod commits;
mod database;
mod diff;
mod error;
mod feed;
mod footprint;
mod keys;
mod locks;
mod merge;
mod options;
mod queue;
mod read;
mod spill;
mod store;
mod sync;
mod versions;
mod write;

pub use database::Database;
pub use diff::{Change, Diff};
pub use error::{Error, Result};
pub use feed::{ChangeFeed, CommitAfter, CommitChanges};
pub use merge::WriteRange;
pub use options::Options;
pub use read::{Range, ReadTransaction, ReadTree};
pub use store::Store;
pub use thunderhead_core::{
    ChangeKind, Clock, Durability, EngineReport, Retention, ValueBytes as Value,
};
pub use versions::{CommitInfo, SnapshotInfo, Version};
pub use write::{WriteTransaction, WriteTree};

#[doc(hidden)]
pub mod testing {
    //! The commit queue and the commit wake-up, for the loom models.
    pub use crate::commits::Commits;
    pub use crate::queue::GroupCommit;
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Database>();
    send_sync::<ReadTransaction>();
    send::<WriteTransaction>();
}
