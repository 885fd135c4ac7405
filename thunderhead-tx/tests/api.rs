//! The `Database` API end to end: trees, views, forks, renames, conflicts, locks,
//! reopening and typed errors.

use std::time::Duration;

use thunderhead_tx::{Database, Durability, Error, Options};

fn collect(
    range: impl Iterator<Item = thunderhead_tx::Result<(Vec<u8>, thunderhead_tx::Value)>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    range
        .map(|entry| entry.map(|(key, value)| (key, value.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    items
        .iter()
        .map(|(key, value)| (key.as_bytes().to_vec(), value.as_bytes().to_vec()))
        .collect()
}

#[test]
fn writes_reads_and_own_writes() {
    let db = Database::in_memory(Options::default()).unwrap();
    let txn = db.begin_write().unwrap();
    let tree = txn.open_tree(b"t").unwrap();
    tree.insert(b"b", b"2").unwrap();
    tree.insert(b"a", b"1").unwrap();
    tree.insert(b"c", b"3").unwrap();
    tree.remove(b"c").unwrap();
    assert_eq!(tree.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert!(tree.get(b"c").unwrap().is_none());
    assert_eq!(
        collect(tree.iter().unwrap()),
        pairs(&[("a", "1"), ("b", "2")])
    );
    let revision = txn.commit().unwrap();
    assert_eq!(revision, 1);
    assert_eq!(db.revision(), 1);

    let txn = db.begin_write().unwrap();
    let tree = txn.open_tree(b"t").unwrap();
    tree.insert(b"d", b"4").unwrap();
    tree.remove_range(&b"a"[..]..&b"b"[..]).unwrap();
    tree.insert(b"a0", b"5").unwrap();
    assert_eq!(
        collect(tree.iter().unwrap()),
        pairs(&[("a0", "5"), ("b", "2"), ("d", "4")])
    );
    assert_eq!(
        collect(tree.iter().unwrap().rev()),
        pairs(&[("d", "4"), ("b", "2"), ("a0", "5")])
    );
    txn.commit().unwrap();
    let read = db.begin_read();
    let tree = read.open_tree(b"t").unwrap();
    assert_eq!(
        collect(tree.iter()),
        pairs(&[("a0", "5"), ("b", "2"), ("d", "4")])
    );
    db.check().unwrap();
}

#[test]
fn abort_and_drop_leave_no_trace() {
    let db = Database::in_memory(Options::default()).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_tree(b"t").unwrap().insert(b"a", b"1").unwrap();
    txn.abort();
    {
        let txn = db.begin_write().unwrap();
        txn.open_tree(b"t").unwrap().insert(b"a", b"1").unwrap();
    }
    assert_eq!(db.revision(), 0);
    assert!(db.begin_read().list_trees().unwrap().is_empty());
    db.check().unwrap();
}

#[test]
fn prefix_views_read_and_write_relative_keys() {
    let db = Database::in_memory(Options::default()).unwrap();
    let txn = db.begin_write().unwrap();
    let tree = txn.open_tree(b"t").unwrap();
    tree.insert(b"user", b"x").unwrap();
    tree.insert(b"user0", b"y").unwrap();
    let users = tree.prefix(b"user/");
    users.insert(b"ann", b"1").unwrap();
    users.insert(b"bob", b"2").unwrap();
    assert_eq!(
        collect(users.iter().unwrap()),
        pairs(&[("ann", "1"), ("bob", "2")])
    );
    users.remove_range::<[u8], _>(..).unwrap();
    assert!(users.is_empty().unwrap());
    users.insert(b"cat", b"3").unwrap();
    txn.commit().unwrap();
    let read = db.begin_read();
    let tree = read.open_tree(b"t").unwrap();
    assert_eq!(
        collect(tree.iter()),
        pairs(&[("user", "x"), ("user/cat", "3"), ("user0", "y")])
    );
    assert_eq!(
        collect(tree.prefix(b"user/").iter()),
        pairs(&[("cat", "3")])
    );
}

#[test]
fn trees_fork_rename_delete() {
    let db = Database::in_memory(Options::default()).unwrap();
    let txn = db.begin_write().unwrap();
    let tree = txn.open_tree(b"a").unwrap();
    for index in 0..5000u32 {
        tree.insert(format!("{index:06}").as_bytes(), b"v").unwrap();
    }
    txn.commit().unwrap();

    let txn = db.begin_write().unwrap();
    txn.fork_tree(b"a", b"b").unwrap();
    txn.open_tree(b"b")
        .unwrap()
        .insert(b"new", b"only in b")
        .unwrap();
    assert!(matches!(
        txn.fork_tree(b"a", b"b"),
        Err(Error::TreeExists { .. })
    ));
    assert!(matches!(
        txn.fork_tree(b"zz", b"c"),
        Err(Error::TreeNotFound { .. })
    ));
    txn.commit().unwrap();
    let report = db.check().unwrap();
    assert!(report.shared_pages > 0, "the fork shares pages");

    let txn = db.begin_write().unwrap();
    txn.rename_tree(b"a", b"c").unwrap();
    assert_eq!(
        txn.list_trees().unwrap(),
        vec![b"b".to_vec(), b"c".to_vec()]
    );
    assert!(txn.delete_tree(b"b").unwrap());
    assert!(!txn.delete_tree(b"b").unwrap());
    txn.commit().unwrap();
    let read = db.begin_read();
    assert_eq!(read.list_trees().unwrap(), vec![b"c".to_vec()]);
    let c = read.open_tree(b"c").unwrap();
    assert!(c.get(b"new").unwrap().is_none());
    assert_eq!(c.iter().count(), 5000);
    assert!(matches!(
        read.open_tree(b"a"),
        Err(Error::TreeNotFound { .. })
    ));
    let report = db.check().unwrap();
    assert_eq!(report.shared_pages, 0);
}

#[test]
fn a_read_written_since_is_a_conflict_and_blind_writes_are_not() {
    let db = Database::in_memory(Options::default()).unwrap();
    let setup = db.begin_write().unwrap();
    setup.open_tree(b"t").unwrap().insert(b"k", b"0").unwrap();
    setup.commit().unwrap();

    let reader = db.begin_write().unwrap();
    let blind = db.begin_write().unwrap();
    let other = db.begin_write().unwrap();
    assert_eq!(
        reader
            .open_tree(b"t")
            .unwrap()
            .get(b"k")
            .unwrap()
            .as_deref(),
        Some(&b"0"[..])
    );
    reader
        .open_tree(b"t")
        .unwrap()
        .insert(b"k", b"reader")
        .unwrap();
    blind
        .open_tree(b"t")
        .unwrap()
        .insert(b"k", b"blind")
        .unwrap();
    other
        .open_tree(b"t")
        .unwrap()
        .insert(b"elsewhere", b"x")
        .unwrap();
    blind.commit().unwrap();
    other.commit().unwrap();
    assert!(matches!(reader.commit(), Err(Error::Conflict { .. })));
    let read = db.begin_read();
    assert_eq!(
        read.open_tree(b"t").unwrap().get(b"k").unwrap().as_deref(),
        Some(&b"blind"[..])
    );

    // A range read conflicts with an insert into the range.
    let scanner = db.begin_write().unwrap();
    assert_eq!(
        scanner
            .open_tree(b"t")
            .unwrap()
            .range(&b"a"[..]..&b"f"[..])
            .unwrap()
            .count(),
        1
    );
    scanner
        .open_tree(b"t")
        .unwrap()
        .insert(b"sum", b"1")
        .unwrap();
    let inserter = db.begin_write().unwrap();
    inserter
        .open_tree(b"t")
        .unwrap()
        .insert(b"b", b"new")
        .unwrap();
    inserter.commit().unwrap();
    assert!(matches!(scanner.commit(), Err(Error::Conflict { .. })));
    db.check().unwrap();
}

#[test]
fn lock_range_makes_others_wait_instead_of_conflicting() {
    let db = Database::in_memory(Options {
        lock_timeout: Duration::from_secs(5),
        ..Options::default()
    })
    .unwrap();
    let setup = db.begin_write().unwrap();
    setup.open_tree(b"c").unwrap().insert(b"n", &[0]).unwrap();
    setup.commit().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let txn = db.begin_write().unwrap();
                    txn.lock_range(b"c", &b"n"[..]..=&b"n"[..]).unwrap();
                    let tree = txn.open_tree(b"c").unwrap();
                    let n = tree.get(b"n").unwrap().unwrap()[0];
                    tree.insert(b"n", &[n + 1]).unwrap();
                    txn.commit_with(Durability::Eventual).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let read = db.begin_read();
    assert_eq!(
        read.open_tree(b"c").unwrap().get(b"n").unwrap().unwrap()[0],
        100
    );
}

#[test]
fn a_lock_held_too_long_times_out() {
    let db = Database::in_memory(Options {
        lock_timeout: Duration::from_millis(50),
        ..Options::default()
    })
    .unwrap();
    let holder = db.begin_write().unwrap();
    holder.lock_range(b"t", &b"a"[..]..&b"m"[..]).unwrap();
    let other = db.begin_write().unwrap();
    let tree = other.open_tree(b"t").unwrap();
    assert!(matches!(
        tree.insert(b"b", b"x"),
        Err(Error::LockTimeout { .. })
    ));
    tree.insert(b"z", b"outside").unwrap();
    drop(holder);
    tree.insert(b"b", b"x").unwrap();
    drop(tree);
    other.commit().unwrap();
}

#[test]
fn files_reopen_with_their_trees() {
    let dir = std::env::temp_dir().join(format!("thunderhead-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("reopen.th");
    let _ = std::fs::remove_file(&path);
    {
        let db = Database::create(&path, Options::default()).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_tree(b"one").unwrap().insert(b"k", b"1").unwrap();
        txn.open_tree(b"two").unwrap().insert(b"k", b"2").unwrap();
        txn.commit().unwrap();
        assert!(matches!(
            Database::open(&path, Options::default()),
            Err(Error::Locked { .. })
        ));
        assert!(matches!(
            Database::create(&path, Options::default()),
            Err(Error::Io(_))
        ));
    }
    let db = Database::open(&path, Options::default()).unwrap();
    let read = db.begin_read();
    assert_eq!(
        read.list_trees().unwrap(),
        vec![b"one".to_vec(), b"two".to_vec()]
    );
    assert_eq!(
        read.open_tree(b"two")
            .unwrap()
            .get(b"k")
            .unwrap()
            .as_deref(),
        Some(&b"2"[..])
    );
    db.check().unwrap();
    drop(read);
    drop(db);
    std::fs::write(dir.join("foreign.th"), b"not a database at all").unwrap();
    assert!(matches!(
        Database::open(dir.join("foreign.th"), Options::default()),
        Err(Error::NotADatabase { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_a_typed_error() {
    let db = Database::in_memory(Options {
        page_size: 4096,
        ..Options::default()
    })
    .unwrap();
    let txn = db.begin_write().unwrap();
    assert!(matches!(
        txn.open_tree(b""),
        Err(Error::InvalidTreeName { .. })
    ));
    assert!(matches!(
        txn.open_tree(&[b'x'; 256]),
        Err(Error::InvalidTreeName { .. })
    ));
    let tree = txn.open_tree(b"t").unwrap();
    assert!(matches!(
        tree.insert(&[1; 600], b""),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(matches!(
        tree.get(&[1; 600]),
        Err(Error::KeyTooLarge { .. })
    ));

    assert!(matches!(
        tree.prefix(&[2; 500]).insert(&[1; 100], b""),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(txn.delete_tree(b"t").unwrap());
    assert!(matches!(
        tree.insert(b"a", b""),
        Err(Error::TreeNotFound { .. })
    ));
    assert!(matches!(
        Database::in_memory(Options {
            page_size: 1000,
            ..Options::default()
        }),
        Err(Error::InvalidOptions(_))
    ));
}

#[test]
fn a_transaction_larger_than_its_memory_budget_spills() {
    let db = Database::in_memory(Options {
        spill_bytes: 256 * 1024,
        ..Options::default()
    })
    .unwrap();
    let txn = db.begin_write().unwrap();
    let tree = txn.open_tree(b"big").unwrap();
    for index in 0..20_000u32 {
        tree.insert(format!("{index:08}").as_bytes(), &[index as u8; 100])
            .unwrap();
    }
    tree.remove_range(&b"00005000"[..]..&b"00006000"[..])
        .unwrap();
    tree.insert(b"00005500", b"back").unwrap();
    assert_eq!(
        tree.get(b"00000001").unwrap().as_deref(),
        Some(&[1u8; 100][..])
    );
    assert!(tree.get(b"00005001").unwrap().is_none());
    assert_eq!(tree.iter().unwrap().count(), 19_001);
    txn.fork_tree(b"big", b"copy").unwrap();
    txn.commit().unwrap();
    let read = db.begin_read();
    for name in [&b"big"[..], b"copy"] {
        let tree = read.open_tree(name).unwrap();
        assert_eq!(tree.iter().count(), 19_001);
        assert_eq!(
            tree.get(b"00005500").unwrap().as_deref(),
            Some(&b"back"[..])
        );
        assert_eq!(
            tree.get(b"00019999").unwrap().as_deref(),
            Some(&[(19999u32 as u8); 100][..])
        );
    }
    db.check().unwrap();
}

#[test]
fn writers_committing_together_share_syncs() {
    use thunderhead_disk::PageStore;
    let dir = std::env::temp_dir().join(format!("thunderhead-group-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("group.th");
    let _ = std::fs::remove_file(&path);
    let db = Database::create(&path, Options::default()).unwrap();
    let syncs_before = db.engine().pager().store().stats().syncs;
    const THREADS: usize = 8;
    const COMMITS: usize = 40;
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let db = db.clone();
            std::thread::spawn(move || {
                for index in 0..COMMITS {
                    let txn = db.begin_write().unwrap();
                    let key = format!("{thread}-{index}");
                    txn.open_tree(b"t")
                        .unwrap()
                        .insert(key.as_bytes(), b"v")
                        .unwrap();
                    // Creating the tree races between the first transactions; retry those.
                    if let Err(Error::Conflict { .. }) = txn.commit() {
                        let txn = db.begin_write().unwrap();
                        txn.open_tree(b"t")
                            .unwrap()
                            .insert(key.as_bytes(), b"v")
                            .unwrap();
                        txn.commit().unwrap();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let syncs = db.engine().pager().store().stats().syncs - syncs_before;
    let commits = (THREADS * COMMITS) as u64;
    eprintln!("{commits} durable commits from {THREADS} threads: {syncs} syncs");
    assert!(db.revision() >= commits);
    assert!(
        syncs < commits,
        "{syncs} syncs for {commits} durable commits: none was shared"
    );
    let read = db.begin_read();
    assert_eq!(
        read.open_tree(b"t").unwrap().iter().count(),
        THREADS * COMMITS
    );
    drop(read);
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eventual_commits_do_not_sync() {
    use thunderhead_disk::PageStore;
    let db = Database::in_memory(Options {
        durability: Durability::Eventual,
        ..Options::default()
    })
    .unwrap();
    let before = db.engine().pager().store().stats().syncs;
    for index in 0..10u32 {
        let txn = db.begin_write().unwrap();
        txn.open_tree(b"t")
            .unwrap()
            .insert(&index.to_be_bytes(), b"v")
            .unwrap();
        txn.commit().unwrap();
    }
    assert_eq!(db.engine().pager().store().stats().syncs, before);
    db.sync().unwrap();
    assert_eq!(db.engine().pager().store().stats().syncs, before + 1);
}

#[test]
fn reads_refuse_keys_no_tree_can_hold() {
    let db = Database::in_memory(Options {
        page_size: 4096,
        ..Options::default()
    })
    .unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_tree(b"t").unwrap().insert(b"k", b"v").unwrap();
    txn.commit().unwrap();
    let read = db.begin_read();
    let tree = read.open_tree(b"t").unwrap();
    assert!(matches!(
        tree.get(&[1; 600]),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(matches!(
        tree.prefix(&[2; 500]).get(&[1; 100]),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(tree.get(&[1; 512]).unwrap().is_none());
}

#[test]
fn a_range_conflicts_only_on_what_it_read() {
    let db = Database::in_memory(Options::default()).unwrap();
    let setup = db.begin_write().unwrap();
    let tree = setup.open_tree(b"t").unwrap();
    for index in 0..2000u32 {
        tree.insert(format!("{index:05}").as_bytes(), b"v").unwrap();
    }
    drop(tree);
    setup.commit().unwrap();

    // Reads the first entry at or after "00100" only.
    let reader = db.begin_write().unwrap();
    let first = reader
        .open_tree(b"t")
        .unwrap()
        .range(&b"00100"[..]..)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(first.0, b"00100");
    reader
        .open_tree(b"t")
        .unwrap()
        .insert(b"seen", &first.0)
        .unwrap();
    let far = db.begin_write().unwrap();
    far.open_tree(b"t")
        .unwrap()
        .insert(b"01999", b"changed")
        .unwrap();
    far.commit().unwrap();
    reader.commit().unwrap();

    // A write inside what was read conflicts.
    let reader = db.begin_write().unwrap();
    let count = reader
        .open_tree(b"t")
        .unwrap()
        .range(&b"00100"[..]..&b"00200"[..])
        .unwrap()
        .count();
    assert_eq!(count, 100);
    reader
        .open_tree(b"t")
        .unwrap()
        .insert(b"count", b"100")
        .unwrap();
    let near = db.begin_write().unwrap();
    near.open_tree(b"t")
        .unwrap()
        .insert(b"00150x", b"new")
        .unwrap();
    near.commit().unwrap();
    assert!(matches!(reader.commit(), Err(Error::Conflict { .. })));
}

#[test]
fn a_range_read_across_a_lock_wait_is_a_conflict_not_stale_data() {
    let db = Database::in_memory(Options::default()).unwrap();
    let setup = db.begin_write().unwrap();
    let tree = setup.open_tree(b"t").unwrap();
    for index in 0..1000u32 {
        tree.insert(format!("{index:05}").as_bytes(), b"v").unwrap();
    }
    drop(tree);
    setup.commit().unwrap();
    let txn = db.begin_write().unwrap();
    let tree = txn.open_tree(b"t").unwrap();
    let mut range = tree.iter().unwrap();
    assert!(range.next().unwrap().is_ok());
    // Taking a lock moves the transaction to the latest commit; the range read the old one.
    let other = db.begin_write().unwrap();
    other
        .open_tree(b"t")
        .unwrap()
        .insert(b"00999", b"changed")
        .unwrap();
    other.commit().unwrap();
    txn.lock_range(b"other", &b"a"[..]..&b"b"[..]).unwrap();
    let rest: Result<Vec<_>, _> = range.collect();
    assert!(matches!(rest, Err(Error::Conflict { .. })));
}
