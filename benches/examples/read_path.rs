//! The file store's read path, measured: a cache miss either `pread`s the extent straight
//! into the shared buffer the page then lives in (what `FileStore` does), or copies it out
//! of a read-only `memmap2` map of the file. The copy cannot be skipped with a map: pages
//! are reused after they are freed, so a cached view pointing into the map would see its
//! bytes change under it. Reads random 16 KiB pages (and 1 MiB extents) of a 1 GiB file
//! that the operating system has cached, as a warm database would.
//!
//! `cargo run --release -p thunderhead-benches --example read_path`

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use thunderhead_benches::{SplitMix64, scratch_dir};
use thunderhead_disk::PageBytes;

const FILE_BYTES: u64 = 1 << 30;
const READS: usize = 200_000;

fn main() -> std::io::Result<()> {
    let dir = scratch_dir("read-path");
    let path = dir.join("pages.bin");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let mut rng = SplitMix64::new(7);
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..FILE_BYTES / chunk.len() as u64 {
        rng.fill(&mut chunk);
        file.write_all(&chunk)?;
    }
    file.sync_all()?;
    // SAFETY: the file is private to this benchmark and neither truncated nor written
    // while the map exists.
    let map = unsafe { memmap2::Mmap::map(&file)? };

    println!(
        "| extent | reads | pread into the page's buffer | copy out of a memmap2 map | \
         checksum of the extent (every miss pays it) |"
    );
    println!("|---|--:|--:|--:|--:|");
    for extent_bytes in [16 * 1024usize, 1 << 20] {
        let reads = if extent_bytes > 16 * 1024 {
            READS / 20
        } else {
            READS
        };
        let slots = FILE_BYTES / extent_bytes as u64;
        let offsets: Vec<u64> = (0..reads)
            .map(|_| rng.next_u64() % slots * extent_bytes as u64)
            .collect();
        // Warm both paths over the same offsets once, so neither pays for page faults
        // the other did not.
        let mut checksum = 0u64;
        for _ in 0..2 {
            for &offset in &offsets {
                let at = offset as usize;
                checksum ^= u64::from(map[at]);
            }
        }
        let started = Instant::now();
        for &offset in &offsets {
            let mut bytes = PageBytes::zeroed(extent_bytes);
            let buffer = bytes.get_mut().expect("new buffer");
            file.read_exact_at(buffer, offset)?;
            checksum ^= u64::from(bytes[extent_bytes - 1]);
        }
        let pread = started.elapsed() / reads as u32;
        let started = Instant::now();
        for &offset in &offsets {
            let at = offset as usize;
            let bytes = PageBytes::copy_from_slice(&map[at..at + extent_bytes]);
            checksum ^= u64::from(bytes[extent_bytes - 1]);
        }
        let mapped = started.elapsed() / reads as u32;
        let started = Instant::now();
        for &offset in &offsets {
            let at = offset as usize;
            checksum ^= u64::from(thunderhead_disk::page_checksum(&map[at..at + extent_bytes]));
        }
        let crc = started.elapsed() / reads as u32;
        println!(
            "| {} KiB | {reads} | {pread:.2?} | {mapped:.2?} | {crc:.2?} |",
            extent_bytes / 1024
        );
        std::hint::black_box(checksum);
    }
    drop(map);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
