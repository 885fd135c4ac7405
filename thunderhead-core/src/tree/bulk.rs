//! Loading an empty tree from entries in ascending key order, bottom up. Put one by one,
//! a million entries would each pass through every journal on their way down and be
//! sorted again at every level; arriving sorted, they can go straight into leaves. Each
//! leaf is filled to its page and written as soon as the next key fixes its upper fence,
//! so memory holds two leaves and one child slot per leaf written. At the end the leaves
//! hang under one branch that the ordinary root fix splits into levels.
//!
//! Leaves are filled to the page, as a B-tree's bulk load (LMDB's `MDB_APPEND`) does:
//! the file is as small as the entries allow, and a later write into a full leaf
//! splits it, the one cost of that choice.

use thunderhead_disk::PageStore;

use crate::error::{Error, Result};
use crate::key::{Key, shortest_separator};
use crate::node::{Branch, Child, Entry, Fences, Leaf, Node, NodeRef, entry_weight};
use crate::page::leaf_layout_bytes;
use crate::tree::Tree;
use crate::tree::cow::make_transient;
use crate::tree::persist::persist;
use crate::tree::view::{LeafView, NodeView, view};

/// An empty tree being loaded in key order ([`Tree::bulk_load`]). Call
/// [`BulkLoad::finish`] when done: until then the tree holds none of the entries, and
/// a load dropped unfinished leaves its writer poisoned (the leaves it wrote belong to
/// no version).
pub struct BulkLoad<'t, S: PageStore> {
    tree: &'t mut Tree<S>,
    /// The leaf being filled, and its size as a page (before prefix compression,
    /// which can only shrink it).
    leaf: Vec<Entry>,
    leaf_bytes: usize,
    /// The leaf filled before it, kept back unwritten so that a light last leaf can
    /// take entries from it.
    held: Option<Vec<Entry>>,
    /// The leaves written, and the separators after every leaf closed so far (written
    /// or held): `pivots[i]` is the upper fence of leaf `i`.
    written: Vec<Child>,
    pivots: Vec<Key>,
    finished: bool,
}

impl<S: PageStore> Tree<S> {
    /// Starts loading entries in strictly ascending key order, if the tree is empty
    /// (`None` if it holds anything, entries or pending messages: load it with
    /// [`Tree::put`] then). The result is the tree `put` would build from the same
    /// entries, with full leaves and each leaf written once.
    pub fn bulk_load(&mut self) -> Result<Option<BulkLoad<'_, S>>> {
        if self.poisoned {
            return Err(Error::WriterPoisoned);
        }
        let empty = match view(&self.pager, &self.root)? {
            NodeView::Leaf(LeafView::Transient(leaf)) => leaf.entries.is_empty(),
            NodeView::Leaf(LeafView::Stored(page)) => page.len() == 0,
            NodeView::Branch(_) => false,
        };
        if !empty {
            return Ok(None);
        }
        // The empty root page, if stored, is superseded by what the load builds.
        let pager = self.pager.clone();
        make_transient(&pager, &mut self.root, &Fences::default(), None)?;
        // One sequence number for the whole load: the leaves are newer than anything
        // the (empty) tree held, older than any message written after.
        self.seq += 1;
        Ok(Some(BulkLoad {
            tree: self,
            leaf: Vec::new(),
            leaf_bytes: leaf_layout_bytes(&[], 0),
            held: None,
            written: Vec::new(),
            pivots: Vec::new(),
            finished: false,
        }))
    }
}

impl<S: PageStore> BulkLoad<'_, S> {
    /// Adds `key` with `value`. Keys must come in strictly ascending order.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let result = self.push_entry(key, value);
        if result.is_err() {
            self.tree.poisoned = true;
        }
        result
    }

    fn push_entry(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let previous = self
            .leaf
            .last()
            .or(self.held.as_ref().and_then(|held| held.last()));
        if previous.is_some_and(|previous| previous.key.as_slice() >= key) {
            return Err(Error::KeysOutOfOrder { key: key.to_vec() });
        }
        self.tree.check_key(key)?;
        let value = self.tree.stored_value(key, value)?;
        let weight = entry_weight(key, &value);
        if !self.leaf.is_empty()
            && self.leaf_bytes + weight > self.tree.pager.limits().page_size_bytes
        {
            self.close_leaf(key)?;
        }
        self.leaf.push(Entry {
            key: key.into(),
            value,
        });
        self.leaf_bytes += weight;
        Ok(())
    }

    /// Closes the leaf being filled because `next` does not fit it: the leaf held
    /// before it now has both fences and is written, and this one is held.
    fn close_leaf(&mut self, next: &[u8]) -> Result<()> {
        let last = &self.leaf.last().expect("a leaf closes when full").key;
        self.pivots.push(shortest_separator(last, next));
        if let Some(held) = self.held.take() {
            self.write_leaf(held)?;
        }
        self.held = Some(std::mem::take(&mut self.leaf));
        self.leaf_bytes = leaf_layout_bytes(&[], 0);
        Ok(())
    }

    /// Writes the next leaf under its fences (the pivots around its position).
    fn write_leaf(&mut self, entries: Vec<Entry>) -> Result<()> {
        let index = self.written.len();
        let fences = Fences {
            low: index
                .checked_sub(1)
                .map(|before| self.pivots[before].clone()),
            high: self.pivots.get(index).cloned(),
        };
        let mut node = NodeRef::Transient(Box::new(Node::Leaf(Leaf { entries })));
        let birth = self.tree.write_birth();
        persist(&self.tree.pager, &mut node, &fences, birth)?;
        self.written.push(Child {
            node,
            watermark: self.tree.seq,
            pending_bytes: 0,
        });
        Ok(())
    }

    /// Hangs the leaves in the tree. A last leaf under the fill minimum shares the
    /// held leaf's entries: together they fill at most a page and a quarter, so they
    /// make one leaf or two of more than half a page each.
    pub fn finish(mut self) -> Result<()> {
        self.finished = true;
        let result = self.hang_leaves();
        if result.is_err() {
            self.tree.poisoned = true;
        }
        result
    }

    fn hang_leaves(&mut self) -> Result<()> {
        let limits = *self.tree.pager.limits();
        let mut last = std::mem::take(&mut self.leaf);
        let Some(mut held) = self.held.take() else {
            // Everything fits one leaf: it is the root, written at commit.
            self.tree.root = NodeRef::Transient(Box::new(Node::Leaf(Leaf { entries: last })));
            return self.tree.fix_root();
        };
        let last_weight: usize = last
            .iter()
            .map(|entry| entry_weight(&entry.key, &entry.value))
            .sum();
        if last_weight < limits.node_fill_min_bytes {
            self.pivots.pop();
            held.append(&mut last);
            if leaf_layout_bytes(&held, 0) > limits.page_size_bytes {
                let cut = half_weight_cut(&held);
                last = held.split_off(cut);
                self.pivots
                    .push(shortest_separator(&held[cut - 1].key, &last[0].key));
            }
        }
        self.write_leaf(held)?;
        if !last.is_empty() {
            self.write_leaf(last)?;
        }
        let tree = &mut *self.tree;
        if self.written.len() == 1 {
            tree.root = self.written.pop().expect("one leaf").node;
            return Ok(());
        }
        tree.root = NodeRef::Transient(Box::new(Node::Branch(Branch {
            level: 1,
            pivots: std::mem::take(&mut self.pivots),
            children: std::mem::take(&mut self.written),
            buffer: Default::default(),
            segments: Vec::new(),
            seq_high: tree.seq,
        })));
        tree.fix_root()
    }
}

impl<S: PageStore> Drop for BulkLoad<'_, S> {
    fn drop(&mut self) {
        if !self.finished {
            self.tree.poisoned = true;
        }
    }
}

/// The index that splits `entries` into two runs of about equal weight, each non-empty.
fn half_weight_cut(entries: &[Entry]) -> usize {
    let total: usize = entries
        .iter()
        .map(|entry| entry_weight(&entry.key, &entry.value))
        .sum();
    let mut before = 0;
    for (index, entry) in entries.iter().enumerate() {
        before += entry_weight(&entry.key, &entry.value);
        if 2 * before >= total {
            return (index + 1).min(entries.len() - 1);
        }
    }
    entries.len() - 1
}
