use std::sync::Arc;
use thunderhead_core::{Pager, Tree, TreeConfig};
use thunderhead_disk::MemStore;

#[test]
fn scratch() {
    let config = TreeConfig {
        journal_bytes_max: 1024,
        ..TreeConfig::default()
    };
    let pager = Arc::new(Pager::new(MemStore::new(4096).unwrap(), &config).unwrap());
    let mut tree = Tree::new(pager.clone());
    for i in 0..40 {
        tree.put(format!("k{i:02}").as_bytes(), &[7u8; 100])
            .unwrap();
    }
    let r = tree.check().unwrap();
    println!("height {} leaves {}", r.height, r.leaf_count);
    tree.put(b"k00", &[1u8; 1000]).unwrap();
    tree.put(b"k39", b"x").unwrap();
    tree.commit().unwrap();
    tree.check().unwrap();
    for i in 0..100 {
        tree.put(format!("k00{i:02}").as_bytes(), &[i as u8; 100])
            .unwrap();
        if let Err(e) = tree.check() {
            panic!("after {i}: {e}");
        }
    }
}
