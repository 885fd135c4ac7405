//! Thin wrappers over page internals that the public API cannot isolate, for the
//! micro-benchmarks in `thunderhead-benches` (`benches/benches/hot_paths.rs`) only.
//!
//! **Not a stable API**: hidden from the documentation and free to change or go away
//! with the page formats. Each wrapper builds or views a page exactly as the tree does
//! (same encoder, same validation, same search) so that what is measured is the code
//! the tree runs, not a copy of it.

use thunderhead_disk::{PAGE_SIZE_MAX_BYTES, PAGE_SIZE_MIN_BYTES, PageBytes, PageId, PageSlice};

use crate::config::JOURNAL_SEGMENTS_MAX;
use crate::error::Result;
use crate::node::Entry;
use crate::page::{
    BranchContents, BranchPage, ChildSlot, LeafPage, branch_layout_bytes, encode_branch,
    encode_leaf, leaf_layout_bytes, verify_checksum,
};
use crate::value::ValueStored;

/// The page id the wrappers' pages claim; only error messages show it.
const BENCH_PAGE: PageId = PageId(1);

fn check_page_size(page_size: usize) {
    assert!(
        (PAGE_SIZE_MIN_BYTES..=PAGE_SIZE_MAX_BYTES).contains(&page_size)
            && page_size.is_power_of_two(),
        "page size {page_size} is not one a store accepts"
    );
}

/// Panics unless `keys` ascend strictly and all start with the first one's
/// `implied_len` bytes (as every key inside a node's fences does).
fn check_keys<'a>(mut keys: impl Iterator<Item = &'a [u8]>, implied_len: usize) {
    let Some(first) = keys.next() else {
        return;
    };
    assert!(
        first.len() >= implied_len,
        "a key is shorter than the implied prefix"
    );
    let implied = &first[..implied_len];
    let mut previous = first;
    for key in keys {
        assert!(previous < key, "keys are not strictly ascending");
        assert!(
            key.starts_with(implied),
            "a key does not start with the implied prefix"
        );
        previous = key;
    }
}

/// The bytes of a checksummed leaf page of `page_size` bytes holding `entries` (sorted,
/// distinct keys; inline values), with the first `implied_len` bytes of every key implied
/// by the node's fences and so not stored. `None` if the entries do not fit one page.
///
/// # Panics
///
/// If the keys are not strictly ascending, do not share `implied_len` leading bytes, a
/// key or value is longer than a page, or `page_size` is not a valid page size.
pub fn encode_leaf_page(
    entries: &[(Vec<u8>, Vec<u8>)],
    implied_len: usize,
    page_size: usize,
) -> Option<Vec<u8>> {
    check_page_size(page_size);
    check_keys(entries.iter().map(|(key, _)| key.as_slice()), implied_len);
    assert!(
        entries
            .iter()
            .all(|(key, value)| key.len() <= page_size && value.len() <= page_size),
        "a key or value is longer than a page"
    );
    let entries: Vec<Entry> = entries
        .iter()
        .map(|(key, value)| Entry {
            key: key.as_slice().into(),
            value: ValueStored::Inline(PageSlice::copy_from_slice(value)),
        })
        .collect();
    (leaf_layout_bytes(&entries, implied_len) <= page_size)
        .then(|| encode_leaf(&entries, implied_len, page_size).to_vec())
}

/// A leaf page, checksum verified and structure validated as the pager does on a cache
/// miss.
pub struct BenchLeafPage {
    page: LeafPage,
}

impl BenchLeafPage {
    /// Verifies the checksum of `bytes` and validates them as a leaf page.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        verify_checksum(BENCH_PAGE, bytes)?;
        let page = LeafPage::parse(BENCH_PAGE, PageBytes::copy_from_slice(bytes))?;
        Ok(Self { page })
    }

    /// Entries in the page.
    pub fn len(&self) -> usize {
        self.page.len()
    }

    /// Whether the page holds no entry.
    pub fn is_empty(&self) -> bool {
        self.page.len() == 0
    }

    /// Bytes of every key implied by the fences (not stored in the page).
    pub fn implied_len(&self) -> usize {
        self.page.implied_len()
    }

    /// Bytes every key shares beyond the implied prefix, stored once in the page.
    pub fn local_prefix_len(&self) -> usize {
        self.page.local_prefix().len()
    }

    /// The tree's binary search for the full key `key` in this leaf: `Ok(index)` if
    /// present, `Err(insertion point)` otherwise. Like the tree, it assumes `key` lies
    /// within the leaf's fences, so starts with the implied prefix.
    ///
    /// # Panics
    ///
    /// If `key` is shorter than the implied prefix.
    pub fn search(&self, key: &[u8]) -> std::result::Result<usize, usize> {
        self.page.search(&key[self.page.implied_len()..])
    }

    /// The value of entry `index` if it is stored inline (as every value of
    /// [`encode_leaf_page`] is).
    ///
    /// # Panics
    ///
    /// If `index` is out of range.
    pub fn inline_value(&self, index: usize) -> Option<PageSlice> {
        assert!(index < self.len(), "entry {index} of {}", self.len());
        match self.page.value(index) {
            ValueStored::Inline(bytes) => Some(bytes),
            ValueStored::Overflow(_) => None,
        }
    }

    /// Rebuilds every full key in order, as the tree's iterators do: the prefix
    /// (`implied_prefix`, from the fences, then the local prefix) once, then each
    /// entry's suffix after it in a reused buffer, handed to `each` with its index.
    ///
    /// # Panics
    ///
    /// If `implied_prefix` is not as long as the page's implied prefix.
    pub fn for_each_key(&self, implied_prefix: &[u8], mut each: impl FnMut(usize, &[u8])) {
        assert_eq!(
            implied_prefix.len(),
            self.page.implied_len(),
            "implied prefix length"
        );
        let prefix = [implied_prefix, self.page.local_prefix()].concat();
        let mut key = Vec::new();
        for index in 0..self.page.len() {
            key.clear();
            key.extend_from_slice(&prefix);
            key.extend_from_slice(self.page.suffix(index));
            each(index, &key);
        }
    }
}

/// The bytes of a checksummed level-1 branch page of `page_size` bytes with `pivots`
/// (sorted, distinct) between `pivots.len() + 1` children, no journal segments, and
/// the first `implied_len` bytes of every pivot implied by the node's fences. The child
/// slots point at pages 1, 2, ...; nothing is behind them. `None` if the pivots do not
/// fit one page with room for the most segment slots a journal may have (the tree keeps
/// that room free too, so a full page here is as full as the tree makes one).
///
/// # Panics
///
/// If the pivots are not strictly ascending, do not share `implied_len` leading bytes,
/// or `page_size` is not a valid page size.
pub fn encode_branch_page(
    pivots: &[Vec<u8>],
    implied_len: usize,
    page_size: usize,
) -> Option<Vec<u8>> {
    check_page_size(page_size);
    check_keys(pivots.iter().map(Vec::as_slice), implied_len);
    let pivots: Vec<crate::key::Key> = pivots.iter().map(|pivot| pivot[..].into()).collect();
    if branch_layout_bytes(&pivots, implied_len, JOURNAL_SEGMENTS_MAX) > page_size {
        return None;
    }
    let children: Vec<ChildSlot> = (1..=pivots.len() as u64 + 1)
        .map(|page| ChildSlot {
            page: page.into(),
            checksum: 0.into(),
            pending_bytes: 0.into(),
            watermark: 0.into(),
            birth: 0.into(),
        })
        .collect();
    Some(
        encode_branch(
            &BranchContents {
                level: 1,
                implied_len,
                seq_high: 0,
                pivots: &pivots,
                children: &children,
                segments: &[],
            },
            page_size,
        )
        .to_vec(),
    )
}

/// A branch page, checksum verified and structure validated as the pager does on a
/// cache miss.
pub struct BenchBranchPage {
    page: BranchPage,
}

impl BenchBranchPage {
    /// Verifies the checksum of `bytes` and validates them as a branch page.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        verify_checksum(BENCH_PAGE, bytes)?;
        let page = BranchPage::parse(BENCH_PAGE, PageBytes::copy_from_slice(bytes))?;
        Ok(Self { page })
    }

    /// Children of the branch (one more than its pivots).
    pub fn len(&self) -> usize {
        self.page.len()
    }

    /// Always false: a valid branch has at least one child.
    pub fn is_empty(&self) -> bool {
        self.page.len() == 0
    }

    /// Bytes every pivot shares beyond the implied prefix, stored once in the page.
    pub fn local_prefix_len(&self) -> usize {
        self.page.local_prefix().len()
    }

    /// The tree's routing of the full key `key`: the index of the child whose range
    /// holds it (child `i` holds `[pivot[i-1], pivot[i])`). Like the tree, it assumes
    /// `key` lies within the branch's fences, so starts with the implied prefix.
    ///
    /// # Panics
    ///
    /// If `key` is shorter than the implied prefix.
    pub fn route(&self, key: &[u8]) -> usize {
        self.page.route(&key[self.page.implied_len()..])
    }
}
