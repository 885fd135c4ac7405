//! The fixed part of a store: the header (page 0), written once when the store is
//! created, and the two meta slots (pages 1 and 2), written alternately by commits, as
//! LMDB does with its two meta pages. A slot names a whole committed version: its
//! revision, the used length of the store, and the roots of the trees and of the free
//! space. Opening picks the valid slot with the highest revision; a torn or damaged slot
//! fails its checksum and is ignored, never trusted.

use crate::{Error, PageId, Result, page_checksum, seal_checksum};

/// The first eight bytes of every Thunderhead store.
pub const MAGIC: [u8; 8] = *b"THUNDRHD";
/// Version of the file format written by this build.
pub const FILE_FORMAT_VERSION: u32 = 2;
/// The header page.
pub const HEADER_PAGE: PageId = PageId(0);
/// The two meta slots.
pub const META_PAGES: [PageId; 2] = [PageId(1), PageId(2)];
/// Page kind byte of a meta slot.
pub const META_PAGE_KIND: u8 = 6;
const META_FORMAT: u8 = 1;
/// Bytes of the header that carry information (the rest of page 0 is zero).
pub const HEADER_BYTES: usize = 20;
/// Bytes of a meta slot that carry information (the rest of its page is zero).
pub const META_BYTES: usize = 88;

/// The header of a store: what it is and its page size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Bytes per page.
    pub page_size: usize,
}

impl Header {
    /// The header as a page of `page_size` bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut page = vec![0u8; self.page_size];
        page[0..8].copy_from_slice(&MAGIC);
        page[8..12].copy_from_slice(&FILE_FORMAT_VERSION.to_le_bytes());
        page[12..16].copy_from_slice(&(self.page_size as u32).to_le_bytes());
        let checksum = crc32fast::hash(&page[0..16]);
        page[16..20].copy_from_slice(&checksum.to_le_bytes());
        page
    }

    /// Reads a header from the first bytes of a store. Anything that is not a
    /// Thunderhead header of a supported version is a typed error.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let not_ours = |reason: &str| Error::NotAStore {
            reason: reason.to_string(),
        };
        if bytes.len() < HEADER_BYTES {
            return Err(not_ours("too short to hold a header"));
        }
        if bytes[0..8] != MAGIC {
            return Err(not_ours("no Thunderhead magic number"));
        }
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        if crc32fast::hash(&bytes[0..16]) != word(16) {
            return Err(not_ours("header checksum mismatch"));
        }
        let version = word(8);
        if version != FILE_FORMAT_VERSION {
            return Err(Error::UnsupportedVersion { version });
        }
        let page_size = word(12) as usize;
        crate::store::check_page_size(page_size)?;
        Ok(Self { page_size })
    }
}

/// Where a tree's root is, and the last sequence number the tree used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeRoot {
    /// The root node's page.
    pub page: PageId,
    /// The root page's checksum.
    pub checksum: u32,
    /// The tree's last sequence number.
    pub seq: u64,
    /// The revision that wrote the root page: a freed page is kept for the retained
    /// versions between its birth and the revision that freed it.
    pub birth: u64,
}

/// Where a checksummed extent is (the free space).
/// For the free space, `page` `PageId::NONE` means it is kept in the meta slot itself,
/// right after the slot's fields, and `page_count` is then its length in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtentRoot {
    /// First page (`PageId::NONE` for none, or for inline).
    pub page: PageId,
    /// Pages in the extent (bytes, when inline).
    pub page_count: u32,
    /// The extent's checksum.
    pub checksum: u32,
}

/// One committed version of the whole store, as a meta slot records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Commits count up from 0 (the empty store).
    pub revision: u64,
    /// The used length of the store in pages: every page this version uses lies below.
    pub end: u64,
    /// The root of the tree (the catalog of named trees, once there are several).
    pub tree: TreeRoot,
    /// The free-space state of this version.
    pub free_space: ExtentRoot,
    /// When the commit was made: microseconds since the Unix epoch, never less than the
    /// previous commit's (a clock stepping back does not reorder history).
    pub time: u64,
    /// The oldest revision this version keeps readable (its retention floor).
    pub floor: u64,
}

impl Meta {
    /// Whether a free-space state of `len` bytes fits in a meta slot.
    pub fn fits_inline(len: usize, page_size: usize) -> bool {
        len <= page_size.saturating_sub(META_BYTES)
    }

    /// The free-space extent, unless the state is kept inline in the slot.
    pub fn free_space_extent(&self) -> Option<crate::Extent> {
        (!self.free_space.page.is_none()).then(|| {
            crate::Extent::new(self.free_space.page, u64::from(self.free_space.page_count))
        })
    }

    /// The free-space state kept inline in the slot's page `page_bytes`, if it is.
    /// Its length was validated by [`Meta::decode`].
    pub fn inline_free_space<'a>(&self, page_bytes: &'a [u8]) -> Option<&'a [u8]> {
        if !self.free_space.page.is_none() {
            return None;
        }
        page_bytes.get(META_BYTES..META_BYTES + self.free_space.page_count as usize)
    }

    /// The slot as a page of `page_size` bytes, checksummed, with the free-space state
    /// `inline` after the fields when it is kept there (it must fit).
    pub fn encode(&self, page_size: usize, inline: Option<&[u8]>) -> Vec<u8> {
        let mut page = vec![0u8; page_size];
        if let Some(inline) = inline {
            assert!(Self::fits_inline(inline.len(), page_size));
            page[META_BYTES..META_BYTES + inline.len()].copy_from_slice(inline);
        }
        page[0] = META_PAGE_KIND;
        page[1] = META_FORMAT;
        let mut at = 8;
        let mut put = |bytes: &[u8]| {
            page[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&self.revision.to_le_bytes());
        put(&self.end.to_le_bytes());
        put(&self.tree.page.0.to_le_bytes());
        put(&self.tree.checksum.to_le_bytes());
        put(&0u32.to_le_bytes());
        put(&self.tree.seq.to_le_bytes());
        put(&self.free_space.page.0.to_le_bytes());
        put(&self.free_space.page_count.to_le_bytes());
        put(&self.free_space.checksum.to_le_bytes());
        put(&self.tree.birth.to_le_bytes());
        put(&self.time.to_le_bytes());
        put(&self.floor.to_le_bytes());
        debug_assert_eq!(at, META_BYTES);
        seal_checksum(&mut page);
        page
    }

    /// Reads a meta slot from `page`; a torn, damaged or foreign slot is an error (the
    /// caller then ignores the slot). Roots are checked to lie inside the used length.
    pub fn decode(page: PageId, bytes: &[u8]) -> Result<Self> {
        if bytes.len() < META_BYTES {
            return Err(Error::corrupted(
                page,
                "meta slot shorter than its contents",
            ));
        }
        let stored = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        let actual = page_checksum(bytes);
        if stored != actual {
            return Err(Error::ChecksumMismatch {
                page,
                expected: stored,
                actual,
            });
        }
        if bytes[0] != META_PAGE_KIND || bytes[1] != META_FORMAT {
            return Err(Error::corrupted(page, "not a meta slot of a known format"));
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let extent_at = |at: usize| ExtentRoot {
            page: PageId(u64_at(at)),
            page_count: u32_at(at + 8),
            checksum: u32_at(at + 12),
        };
        let meta = Meta {
            revision: u64_at(8),
            end: u64_at(16),
            tree: TreeRoot {
                page: PageId(u64_at(24)),
                checksum: u32_at(32),
                seq: u64_at(40),
                birth: u64_at(64),
            },
            free_space: extent_at(48),
            time: u64_at(72),
            floor: u64_at(80),
        };
        if meta.floor > meta.revision {
            return Err(Error::corrupted(page, "retention floor above the revision"));
        }
        let inside = |first: PageId, page_count: u64| {
            first.0 >= crate::FIRST_DATA_PAGE
                && first
                    .0
                    .checked_add(page_count)
                    .is_some_and(|end| end <= meta.end)
        };
        if !inside(meta.tree.page, 1) {
            return Err(Error::corrupted(page, "tree root outside the store"));
        }
        let space = meta.free_space;
        let valid = if space.page.is_none() {
            (32..=bytes.len() - META_BYTES).contains(&(space.page_count as usize))
        } else {
            space.page_count != 0 && inside(space.page, u64::from(space.page_count))
        };
        if !valid {
            return Err(Error::corrupted(page, "free space outside the store"));
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header and meta slot round-trip; every single-bit flip in what they carry is
    /// caught, and foreign bytes are `NotAStore`.
    #[test]
    fn round_trip_and_damage() {
        let header = Header { page_size: 4096 };
        let bytes = header.encode();
        assert_eq!(Header::decode(&bytes).unwrap(), header);
        for bit in 0..HEADER_BYTES * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(Header::decode(&damaged).is_err(), "header bit {bit}");
        }
        assert!(matches!(Header::decode(b""), Err(Error::NotAStore { .. })));
        assert!(matches!(
            Header::decode(&[0u8; 4096]),
            Err(Error::NotAStore { .. })
        ));

        let meta = Meta {
            revision: 9,
            end: 100,
            tree: TreeRoot {
                page: PageId(50),
                checksum: 77,
                seq: 1234,
                birth: 8,
            },
            free_space: ExtentRoot {
                page: PageId(60),
                page_count: 2,
                checksum: 5,
            },
            time: 1_700_000_000_000_000,
            floor: 7,
        };
        let bytes = meta.encode(4096, None);
        assert_eq!(Meta::decode(PageId(1), &bytes).unwrap(), meta);
        for bit in 0..META_BYTES * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(Meta::decode(PageId(1), &damaged).is_err(), "meta bit {bit}");
        }
        let outside = Meta { end: 51, ..meta };
        assert!(Meta::decode(PageId(1), &outside.encode(4096, None)).is_err());

        // Free space kept inline: found again, and its length is checked.
        let inline_bytes = vec![5u8; 40];
        let inline = Meta {
            free_space: ExtentRoot {
                page: PageId::NONE,
                page_count: 40,
                checksum: 9,
            },
            ..meta
        };
        let bytes = inline.encode(4096, Some(&inline_bytes));
        let back = Meta::decode(PageId(1), &bytes).unwrap();
        assert_eq!(back.inline_free_space(&bytes), Some(&inline_bytes[..]));
        assert_eq!(back.free_space_extent(), None);
        let too_long = Meta {
            free_space: ExtentRoot {
                page_count: 4096,
                ..inline.free_space
            },
            ..meta
        };
        assert!(Meta::decode(PageId(1), &too_long.encode(4096, None)).is_err());
    }
}
