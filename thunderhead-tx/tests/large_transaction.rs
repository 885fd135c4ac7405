//! A 2 GiB write transaction with default options: its pending writes spill to the
//! scratch store past 64 MiB, the commit writes its nodes out as it goes, and the
//! process's peak resident memory stays far below the transaction's size. Its own test
//! binary, so the peak measured is its own.

use thunderhead_tx::{Database, Options};

/// Peak resident set of this process, in bytes (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn a_two_gib_transaction_commits_in_bounded_memory() {
    const VALUE_BYTES: usize = 64 * 1024;
    const TOTAL_BYTES: usize = 2 << 30;
    let count = TOTAL_BYTES / VALUE_BYTES;
    let dir = std::env::temp_dir().join(format!("thunderhead-large-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("large.th");
    let db = Database::create(&path, Options::default()).unwrap();
    let value = |index: usize| {
        let mut value = vec![(index % 251) as u8; VALUE_BYTES];
        value[..8].copy_from_slice(&(index as u64).to_le_bytes());
        value
    };
    let txn = db.begin_write().unwrap();
    let tree = txn.open_tree(b"large").unwrap();
    for index in 0..count {
        tree.insert(format!("{index:08}").as_bytes(), &value(index))
            .unwrap();
    }
    // Reads inside the transaction see spilled writes.
    assert_eq!(
        tree.get(b"00000003").unwrap().as_deref(),
        Some(value(3).as_slice())
    );
    drop(tree);
    txn.commit().unwrap();

    let read = db.begin_read();
    let tree = read.open_tree(b"large").unwrap();
    let mut seen = 0;
    for entry in tree.iter() {
        let (key, found) = entry.unwrap();
        assert_eq!(key, format!("{seen:08}").into_bytes());
        assert_eq!(&found[..8], &(seen as u64).to_le_bytes());
        seen += 1;
    }
    assert_eq!(seen, count);
    drop(tree);
    drop(read);
    db.check().unwrap();
    let peak = peak_rss().unwrap_or(0);
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        peak < 1 << 30,
        "peak resident set {} MiB for a 2 GiB transaction",
        peak >> 20
    );
    eprintln!("2 GiB transaction: peak resident set {} MiB", peak >> 20);
}
