//! The catalog: the tree a store's meta slot points to. It names the store's trees and
//! counts the pages that more than one parent refers to.
//!
//! * `t ++ name` → the named tree's root: `page u64 | checksum u32 | seq u64 | birth u64`
//!   (28 bytes).
//!   The empty name is the store's default tree, which always exists.
//! * `s ++ page (u64 big-endian)` → `extra u64`: a page referred to by `1 + extra`
//!   distinct parents (nodes, or tree entries for roots). Absent means one. Forks share
//!   a root; copy-on-write of a shared node shares its parts; see `shared_diff`.
//!
//! * `r ++ revision (u64 big-endian)` → `catalog root (28 bytes, as above) | time u64`:
//!   a retained past revision, by the root of its catalog. Written by the next commit;
//!   deleted when the retention rules let the revision go.
//! * `n ++ name` → `revision u64 | time u64 | catalog root (28 bytes)`: a named snapshot.
//!
//! Everything read from the catalog is checked: a malformed entry is corruption.

use thunderhead_disk::{FIRST_DATA_PAGE, PageId, PageStore};

use crate::error::{Error, Result};
use crate::tree::{Snapshot, Tree, Version};
use crate::value::ValueBytes;

const TREE_TAG: u8 = b't';
const SHARED_TAG: u8 = b's';
const HISTORY_TAG: u8 = b'r';
const SNAPSHOT_TAG: u8 = b'n';
const DESC_BYTES: usize = 28;
const HISTORY_BYTES: usize = DESC_BYTES + 8;
const SNAPSHOT_BYTES: usize = 16 + DESC_BYTES;

/// Longest snapshot name accepted.
pub const SNAPSHOT_NAME_BYTES_MAX: usize = 255;

/// Longest tree name accepted.
pub const TREE_NAME_BYTES_MAX: usize = 255;

pub(crate) fn tree_key(name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(TREE_TAG);
    key.extend_from_slice(name);
    key
}

pub(crate) fn shared_key(page: u64) -> [u8; 9] {
    let mut key = [SHARED_TAG; 9];
    key[1..].copy_from_slice(&page.to_be_bytes());
    key
}

pub(crate) fn history_key(revision: u64) -> [u8; 9] {
    let mut key = [HISTORY_TAG; 9];
    key[1..].copy_from_slice(&revision.to_be_bytes());
    key
}

pub(crate) fn snapshot_key(name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(SNAPSHOT_TAG);
    key.extend_from_slice(name);
    key
}

/// A past revision as the catalog keeps it: its catalog's root and its commit time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Past {
    pub revision: u64,
    pub time: u64,
    pub catalog: Version,
}

pub(crate) fn encode_history(past: &Past) -> [u8; HISTORY_BYTES] {
    let mut bytes = [0; HISTORY_BYTES];
    bytes[..DESC_BYTES].copy_from_slice(&encode_version(&past.catalog));
    bytes[DESC_BYTES..].copy_from_slice(&past.time.to_le_bytes());
    bytes
}

pub(crate) fn encode_snapshot(past: &Past) -> [u8; SNAPSHOT_BYTES] {
    let mut bytes = [0; SNAPSHOT_BYTES];
    bytes[0..8].copy_from_slice(&past.revision.to_le_bytes());
    bytes[8..16].copy_from_slice(&past.time.to_le_bytes());
    bytes[16..].copy_from_slice(&encode_version(&past.catalog));
    bytes
}

pub(crate) fn decode_history(catalog_root: PageId, key: &[u8], bytes: &[u8]) -> Result<Past> {
    let revision = <[u8; 8]>::try_from(&key[1..])
        .map(u64::from_be_bytes)
        .map_err(|_| Error::corrupted(catalog_root, "a malformed history key"))?;
    if bytes.len() != HISTORY_BYTES {
        return Err(Error::corrupted(catalog_root, "a malformed history entry"));
    }
    Ok(Past {
        revision,
        catalog: decode_version(catalog_root, &bytes[..DESC_BYTES])?,
        time: u64::from_le_bytes(bytes[DESC_BYTES..].try_into().expect("8 bytes")),
    })
}

pub(crate) fn decode_snapshot(catalog_root: PageId, bytes: &[u8]) -> Result<Past> {
    if bytes.len() != SNAPSHOT_BYTES {
        return Err(Error::corrupted(catalog_root, "a malformed snapshot entry"));
    }
    Ok(Past {
        revision: u64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes")),
        time: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
        catalog: decode_version(catalog_root, &bytes[16..])?,
    })
}

pub(crate) fn check_snapshot_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name.len() > SNAPSHOT_NAME_BYTES_MAX {
        return Err(Error::InvalidSnapshotName {
            reason: format!(
                "{} bytes; a name takes 1 to {SNAPSHOT_NAME_BYTES_MAX}",
                name.len()
            ),
        });
    }
    Ok(())
}

pub(crate) fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > TREE_NAME_BYTES_MAX {
        return Err(Error::InvalidTreeName {
            reason: format!(
                "{} bytes, at most {TREE_NAME_BYTES_MAX} are allowed",
                name.len()
            ),
        });
    }
    Ok(())
}

pub(crate) fn encode_version(version: &Version) -> [u8; DESC_BYTES] {
    let mut bytes = [0; DESC_BYTES];
    bytes[0..8].copy_from_slice(&version.root.0.to_le_bytes());
    bytes[8..12].copy_from_slice(&version.root_checksum.to_le_bytes());
    bytes[12..20].copy_from_slice(&version.seq.to_le_bytes());
    bytes[20..28].copy_from_slice(&version.birth.to_le_bytes());
    bytes
}

pub(crate) fn decode_version(catalog_root: PageId, bytes: &[u8]) -> Result<Version> {
    let Ok(bytes) = <[u8; DESC_BYTES]>::try_from(bytes) else {
        return Err(Error::corrupted(
            catalog_root,
            format!("a catalog tree entry of {} bytes", bytes.len()),
        ));
    };
    let root = u64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes"));
    if root < FIRST_DATA_PAGE {
        return Err(Error::corrupted(
            catalog_root,
            format!("a tree rooted at reserved page {root}"),
        ));
    }
    Ok(Version {
        root: PageId(root),
        root_checksum: u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")),
        seq: u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")),
        birth: u64::from_le_bytes(bytes[20..28].try_into().expect("8 bytes")),
    })
}

pub(crate) fn decode_extra(catalog_root: PageId, bytes: &[u8]) -> Result<u64> {
    match <[u8; 8]>::try_from(bytes) {
        Ok(bytes) if u64::from_le_bytes(bytes) > 0 => Ok(u64::from_le_bytes(bytes)),
        _ => Err(Error::corrupted(
            catalog_root,
            "a malformed shared-page count",
        )),
    }
}

/// Read access to a catalog, committed ([`Snapshot`]) or being written ([`Tree`]).
pub(crate) trait Catalog {
    fn lookup(&self, key: &[u8]) -> Result<Option<ValueBytes>>;
    /// Where errors are reported.
    fn location(&self) -> PageId;
    fn entries(&self, tag: u8) -> Result<Vec<(Vec<u8>, ValueBytes)>>;
    /// The first entry at or after `from` with the same tag.
    fn first_from(&self, from: &[u8]) -> Result<Option<(Vec<u8>, ValueBytes)>>;

    /// The first retained past revision at or after `revision`.
    fn past_from(&self, revision: u64) -> Result<Option<Past>> {
        self.first_from(&history_key(revision))?
            .map(|(key, value)| decode_history(self.location(), &key, &value))
            .transpose()
    }

    /// Retained past revisions from `revision` on, oldest first, at most `limit`.
    fn pasts_from(&self, revision: u64, limit: usize) -> Result<Vec<Past>>;

    /// The catalogs of every past version this one keeps readable: its retained
    /// history, then its snapshots.
    fn kept_catalogs(&self) -> Result<Vec<Version>> {
        let mut catalogs: Vec<Version> = self
            .pasts_from(0, usize::MAX)?
            .into_iter()
            .map(|past| past.catalog)
            .collect();
        catalogs.extend(self.snapshots()?.into_iter().map(|(_, past)| past.catalog));
        Ok(catalogs)
    }

    /// Every named snapshot.
    fn snapshots(&self) -> Result<Vec<(Vec<u8>, Past)>> {
        self.entries(SNAPSHOT_TAG)?
            .into_iter()
            .map(|(key, value)| Ok((key[1..].to_vec(), decode_snapshot(self.location(), &value)?)))
            .collect()
    }

    /// The named tree's committed root, if the tree exists.
    fn tree(&self, name: &[u8]) -> Result<Option<Version>> {
        self.lookup(&tree_key(name))?
            .map(|bytes| decode_version(self.location(), &bytes))
            .transpose()
    }

    /// Every tree, by name.
    fn trees(&self) -> Result<Vec<(Vec<u8>, Version)>> {
        self.entries(TREE_TAG)?
            .into_iter()
            .map(|(key, value)| Ok((key[1..].to_vec(), decode_version(self.location(), &value)?)))
            .collect()
    }

    /// The extra references to `page` (0 when it has one parent).
    fn extra(&self, page: u64) -> Result<u64> {
        self.lookup(&shared_key(page))?
            .map_or(Ok(0), |bytes| decode_extra(self.location(), &bytes))
    }

    /// Every page with extra references, with its count.
    fn shared(&self) -> Result<Vec<(u64, u64)>> {
        self.entries(SHARED_TAG)?
            .into_iter()
            .map(|(key, value)| {
                let page = <[u8; 8]>::try_from(&key[1..]).map_err(|_| {
                    Error::corrupted(self.location(), "a malformed shared-page key")
                })?;
                Ok((
                    u64::from_be_bytes(page),
                    decode_extra(self.location(), &value)?,
                ))
            })
            .collect()
    }
}

fn first_tagged(
    mut range: impl Iterator<Item = Result<(Vec<u8>, ValueBytes)>>,
) -> Result<Option<(Vec<u8>, ValueBytes)>> {
    range.next().transpose()
}

fn pasts(
    location: PageId,
    range: impl Iterator<Item = Result<(Vec<u8>, ValueBytes)>>,
    limit: usize,
) -> Result<Vec<Past>> {
    range
        .take(limit)
        .map(|entry| {
            let (key, value) = entry?;
            decode_history(location, &key, &value)
        })
        .collect()
}

fn tagged<'a>(
    range: impl Iterator<Item = Result<(Vec<u8>, ValueBytes)>> + 'a,
) -> Result<Vec<(Vec<u8>, ValueBytes)>> {
    range.collect()
}

impl<S: PageStore> Catalog for Snapshot<S> {
    fn lookup(&self, key: &[u8]) -> Result<Option<ValueBytes>> {
        self.get(key)
    }
    fn location(&self) -> PageId {
        self.version().root
    }
    fn entries(&self, tag: u8) -> Result<Vec<(Vec<u8>, ValueBytes)>> {
        tagged(self.range([tag].as_slice()..[tag + 1].as_slice()))
    }
    fn first_from(&self, from: &[u8]) -> Result<Option<(Vec<u8>, ValueBytes)>> {
        first_tagged(self.range(from..[from[0] + 1].as_slice()))
    }
    fn pasts_from(&self, revision: u64, limit: usize) -> Result<Vec<Past>> {
        let from = history_key(revision);
        pasts(
            self.location(),
            self.range(from.as_slice()..[HISTORY_TAG + 1].as_slice()),
            limit,
        )
    }
}

impl<S: PageStore> Catalog for Tree<S> {
    fn lookup(&self, key: &[u8]) -> Result<Option<ValueBytes>> {
        self.get(key)
    }
    fn location(&self) -> PageId {
        PageId::NONE
    }
    fn entries(&self, tag: u8) -> Result<Vec<(Vec<u8>, ValueBytes)>> {
        tagged(self.range([tag].as_slice()..[tag + 1].as_slice()))
    }
    fn first_from(&self, from: &[u8]) -> Result<Option<(Vec<u8>, ValueBytes)>> {
        first_tagged(self.range(from..[from[0] + 1].as_slice()))
    }
    fn pasts_from(&self, revision: u64, limit: usize) -> Result<Vec<Past>> {
        let from = history_key(revision);
        pasts(
            self.location(),
            self.range(from.as_slice()..[HISTORY_TAG + 1].as_slice()),
            limit,
        )
    }
}
