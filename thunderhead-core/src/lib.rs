//! The core of Thunderhead: a copy-on-write hitchhiker B+-tree.
//!
//! Data lives in leaves; every branch carries a journal of pending messages (put,
//! delete, range delete) that reach the leaves in batches, one heaviest child at a time.
//! Nodes are stored (immutable pages shared between versions) or transient (private to a
//! writer); a commit writes the transient ones copy-on-write, so a version is just a root.
//! Keys are prefix-compressed against their node's fences; large values live off-tree.
//! All storage goes through `thunderhead_disk::PageStore`.
// Safe Rust only: no measurement has yet shown a gain worth an unsafe block (page
// views validate once, then index with bounds checks), and the forbid keeps it so.
#![forbid(unsafe_code)]

#[doc(hidden)]
pub mod bench_support;
mod cache;
mod config;
mod engine;
mod error;
mod key;
mod node;
mod page;
mod pager;
mod sync;
#[doc(hidden)]
pub mod testing;
mod tree;
mod value;

pub use cache::CacheStats;
pub use config::{
    CACHE_BYTES_MAX_DEFAULT, Clock, JOURNAL_BYTES_MAX_DEFAULT, JOURNAL_BYTES_MAX_LIMIT,
    JOURNAL_SEGMENTS_MAX, Limits, Retention, TREE_DEPTH_MAX, TreeConfig, VALUE_BYTES_MAX,
};
pub use engine::{
    CommitInfo, Durability, Engine, EngineReport, Reader, SNAPSHOT_NAME_BYTES_MAX, SnapshotInfo,
    TREE_NAME_BYTES_MAX, Writer,
};
pub use error::{Error, Result};
pub use page::OverflowRef;
pub use pager::Pager;
pub use tree::{BulkLoad, Change, ChangeKind, CheckReport, Diff, Range, Snapshot, Tree, Version};
pub use value::{ValueBytes, ValueStore};
