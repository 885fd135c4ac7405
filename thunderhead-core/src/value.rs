//! Values as the tree stores them: inline in a page, or off-tree in an overflow extent
//! (TOAST) that the node refers to.

use thunderhead_disk::PageSlice;

use crate::page::OverflowRef;

/// A value's bytes as handed to readers: a zero-copy slice of the page (or overflow
/// extent, or write buffer) that holds them.
pub type ValueBytes = PageSlice;

/// A value as a node holds it.
#[derive(Clone, Debug)]
pub(crate) enum ValueStored {
    /// Small values live in the leaf (or journal message) itself.
    Inline(PageSlice),
    /// Large values live in an overflow extent; the node keeps this reference.
    Overflow(OverflowRef),
}

impl ValueStored {
    /// Bytes this value occupies inside a node or message.
    pub fn stored_bytes(&self) -> usize {
        match self {
            ValueStored::Inline(bytes) => bytes.len(),
            ValueStored::Overflow(_) => OverflowRef::ENCODED_BYTES,
        }
    }
}

/// Where values too large for a node go. The disk layer may provide other stores (a
/// separate blob file, say); the tree only needs to put a value and get it back.
pub trait ValueStore {
    /// Stores `value` off-tree, as written by the commit of revision `birth`, and
    /// returns the reference the node will hold.
    fn put_value(&self, value: &[u8], birth: u64) -> thunderhead_disk::Result<OverflowRef>;
    /// Reads back a value stored by [`ValueStore::put_value`], verifying its checksum.
    fn get_value(&self, reference: &OverflowRef) -> thunderhead_disk::Result<PageSlice>;
}
