use std::fmt;

/// The number of a page in a store. Page 0 is reserved (it holds the file header in a
/// file store), so `PageId(0)` never names a node and can stand for "no page" on disk.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct PageId(pub u64);

impl PageId {
    /// The reserved page; used on disk as "none".
    pub const NONE: PageId = PageId(0);

    /// True for the reserved page.
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for PageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
