//! Page checksums. Every page or extent written by Thunderhead carries a crc32 of its
//! contents in a fixed slot, so a torn or rotted page is caught when it is first read.

/// Byte offset of the 4-byte checksum slot in every page header.
pub const CHECKSUM_OFFSET: usize = 4;

/// The crc32 of `bytes` with the checksum slot read as zero.
pub fn page_checksum(bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    let slot_end = CHECKSUM_OFFSET + 4;
    if bytes.len() < slot_end {
        hasher.update(bytes);
        return hasher.finalize();
    }
    hasher.update(&bytes[..CHECKSUM_OFFSET]);
    hasher.update(&[0; 4]);
    hasher.update(&bytes[slot_end..]);
    hasher.finalize()
}

/// Computes the checksum of `bytes` and writes it into the slot; returns it.
pub fn seal_checksum(bytes: &mut [u8]) -> u32 {
    let checksum = page_checksum(bytes);
    bytes[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4].copy_from_slice(&checksum.to_le_bytes());
    checksum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot does not feed its own checksum, and any other flipped bit changes it.
    #[test]
    fn checksum_ignores_slot_and_sees_every_bit() {
        let mut page = vec![7u8; 64];
        let sealed = seal_checksum(&mut page);
        assert_eq!(page_checksum(&page), sealed);
        for byte in (0..64).filter(|b| !(CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4).contains(b)) {
            let mut damaged = page.clone();
            damaged[byte] ^= 0x10;
            assert_ne!(page_checksum(&damaged), sealed, "flip at {byte} unseen");
        }
    }
}
