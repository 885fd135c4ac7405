//! Off-tree values at their size limit: a 1 GiB value is stored in a file, read back
//! whole after reopening with a single copy (the read from the file), and when it is
//! overwritten its pages are freed with its version and reused, so the file does not
//! grow by a gibibyte per overwrite.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use thunderhead_core::{Durability, Engine, TreeConfig};
use thunderhead_disk::PAGE_SIZE_DEFAULT_BYTES;

/// Counts the bytes this test binary allocates, to bound the copies a read makes.
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only adds a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const GIB: usize = 1 << 30;

fn value(seed: u8) -> Vec<u8> {
    (0..GIB).map(|index| (index as u8) ^ seed).collect()
}

#[test]
fn one_gibibyte_values_round_trip_and_are_freed() {
    let dir = std::env::temp_dir().join(format!("thunderhead-large-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("large.thunderhead");
    let _ = std::fs::remove_file(&path);
    let config = TreeConfig::default();
    let page_bytes = PAGE_SIZE_DEFAULT_BYTES as u64;
    {
        let engine = Engine::create_file(&path, PAGE_SIZE_DEFAULT_BYTES, &config).unwrap();
        let mut writer = engine.begin_write().unwrap();
        writer.put(b"big", &value(1)).unwrap();
        writer.put(b"small", b"beside it").unwrap();
        writer.commit(Durability::Immediate).unwrap();
    }
    let engine = Engine::open_file(&path, &config).unwrap();
    {
        let reader = engine.begin_read();
        let before = ALLOCATED.load(Ordering::Relaxed);
        let read = reader.get(b"big").unwrap().expect("the value is there");
        let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
        assert_eq!(read.len(), GIB);
        assert!(
            allocated < GIB + (1 << 20),
            "reading 1 GiB allocated {allocated} bytes: more than one copy"
        );
        assert!(read.iter().enumerate().all(|(i, &b)| b == (i as u8) ^ 1));
        assert_eq!(
            reader.get(b"small").unwrap().as_deref(),
            Some(&b"beside it"[..])
        );
    }
    // Overwrite twice: the first value's pages wait for its version to be gone, then
    // hold the third.
    for seed in [2u8, 3] {
        let mut writer = engine.begin_write().unwrap();
        writer.put(b"big", &value(seed)).unwrap();
        writer.commit(Durability::Immediate).unwrap();
    }
    let report = engine.check().unwrap();
    let used_bytes = engine.used_pages() * page_bytes;
    assert!(
        used_bytes < 2 * GIB as u64 + (64 << 20),
        "three 1 GiB values written, {used_bytes} bytes used: freed pages not reused"
    );
    assert!(report.free_pages + report.pending_pages > (GIB as u64 / page_bytes) / 2);
    let read = engine.begin_read().get(b"big").unwrap().unwrap();
    assert!(read.iter().enumerate().all(|(i, &b)| b == (i as u8) ^ 3));
    drop(read);
    drop(engine);
    let _ = std::fs::remove_file(&path);
}
