//! Point lookups: descend from the root; the first journal on the path with a message
//! about the key decides (journals get newer going up); otherwise the leaf does.

use thunderhead_disk::{PageId, PageStore};

use crate::config::TREE_DEPTH_MAX;
use crate::error::{Error, Result};
use crate::node::{Newest, Verdict};
use crate::pager::Pager;
use crate::tree::view::NodeView;
use crate::value::{ValueBytes, ValueStore, ValueStored};

pub(crate) fn get<S: PageStore>(
    pager: &Pager<S>,
    root: NodeView<'_>,
    key: &[u8],
) -> Result<Option<ValueBytes>> {
    let mut node = root;
    for _ in 0..TREE_DEPTH_MAX {
        match node {
            NodeView::Leaf(leaf) => {
                return leaf
                    .get(key)?
                    .map(|value| load_value(pager, value))
                    .transpose();
            }
            NodeView::Branch(branch) => {
                let index = branch.route(key)?;
                let mut newest = Newest::default();
                branch.lookup(pager, key, index, &mut newest)?;
                match newest.into_verdict() {
                    Some(Verdict::Put(value)) => return load_value(pager, value).map(Some),
                    Some(Verdict::Deleted) => return Ok(None),
                    None => node = branch.child(pager, index)?,
                }
            }
        }
    }
    Err(depth_exceeded())
}

pub(crate) fn depth_exceeded() -> Error {
    Error::corrupted(
        PageId::NONE,
        format!("tree deeper than {TREE_DEPTH_MAX} levels"),
    )
}

/// The bytes of a stored value: a slice of its page, or its overflow extent.
pub(crate) fn load_value<S: PageStore>(pager: &Pager<S>, value: ValueStored) -> Result<ValueBytes> {
    match value {
        ValueStored::Inline(bytes) => Ok(bytes),
        ValueStored::Overflow(reference) => Ok(pager.get_value(&reference)?),
    }
}
