//! Nodes as a writer holds them in memory. A node is either *stored* (a page: immutable,
//! possibly shared by many versions) or *transient* (owned by one writer and changed in
//! place). Writing a transient node turns it into a stored one; reading a stored node
//! for change copies it into a transient one. Unchanged subtrees stay stored and shared.

mod branch;
mod buffer;
mod leaf;
mod message;

pub(crate) use branch::{BRANCH_ENTRY_OVERHEAD_BYTES, Branch, Child};
pub(crate) use buffer::Buffer;
#[cfg(test)]
pub(crate) use buffer::range_message;
pub(crate) use leaf::Leaf;
pub(crate) use message::{Newest, PointMessage, PointOp, RangeMessage, RangeSweep, Verdict};

use thunderhead_disk::PageId;

use crate::key::Key;
use crate::value::ValueStored;

/// A key and its value, as a leaf holds them.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub key: Key,
    pub value: ValueStored,
}

/// Bytes an entry weighs for fill and split decisions (its size without prefix
/// compression, so the figure does not depend on a node's fences).
pub(crate) fn entry_weight(key: &[u8], value: &ValueStored) -> usize {
    crate::page::leaf_entry_bytes(key.len(), value)
}

/// A node a writer may change.
#[derive(Debug)]
pub(crate) enum Node {
    Leaf(Leaf),
    Branch(Branch),
}

impl Node {
    pub fn level(&self) -> u8 {
        match self {
            Node::Leaf(_) => 0,
            Node::Branch(branch) => branch.level,
        }
    }

    /// Bytes the node weighs (see [`entry_weight`]).
    pub fn weight(&self) -> usize {
        match self {
            Node::Leaf(leaf) => leaf.weight(),
            Node::Branch(branch) => branch.weight(),
        }
    }
}

/// Where a stored node lives, and what its parent knows about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoredRef {
    pub page: PageId,
    pub checksum: u32,
    /// Sequence number of the commit that wrote it.
    pub birth: u64,
}

/// A child pointer: a stored page, or a transient node owned by the writer.
#[derive(Debug)]
pub(crate) enum NodeRef {
    Stored(StoredRef),
    Transient(Box<Node>),
}

/// The key range `[low, high)` a node covers, from its parent's pivots; `None` is
/// unbounded. Every key a node holds, and every message its journal holds, lies inside.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(crate) struct Fences {
    pub low: Option<Key>,
    pub high: Option<Key>,
}

impl Fences {
    pub fn low(&self) -> Option<&[u8]> {
        self.low.as_deref()
    }

    pub fn high(&self) -> Option<&[u8]> {
        self.high.as_deref()
    }

    /// Length of the prefix all keys inside share (not stored in the node's page).
    pub fn implied_len(&self) -> usize {
        crate::key::implied_prefix_len(self.low(), self.high())
    }

    /// The implied prefix bytes themselves.
    pub fn implied_prefix(&self) -> &[u8] {
        let len = self.implied_len();
        match (&self.low, &self.high) {
            (Some(low), _) if len > 0 => &low[..len],
            _ => &[],
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.low().is_none_or(|low| key >= low) && self.high().is_none_or(|high| key < high)
    }
}
