//! `thunderhead demo` on a small generated tree: the diff it reports matches the changes
//! it makes, it runs again over its own database, it leaves a database that checks, and
//! it refuses a missing directory and a file that is not its database.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_thunderhead"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A fresh directory for one test, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("thunderhead-demo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `count` files into `dir` (relative to `root`); returns their paths.
fn files(root: &Path, dir: &str, count: usize) -> Vec<PathBuf> {
    let dir = if dir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(dir)
    };
    std::fs::create_dir_all(&dir).unwrap();
    (0..count)
        .map(|index| {
            let path = dir.join(format!("f{index:03}"));
            std::fs::write(&path, vec![b'x'; index]).unwrap();
            path
        })
        .collect()
}

/// The line of `output` starting with `start`.
fn line<'a>(output: &'a str, start: &str) -> &'a str {
    output
        .lines()
        .find(|line| line.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{output}"))
}

#[test]
fn demo_reports_its_changes_and_reruns() {
    let base = Dir::new("run");
    let root = base.0.join("tree");
    let mut paths = Vec::new();
    paths.extend(files(&root, "", 5));
    paths.extend(files(&root, "bin", 20));
    paths.extend(files(&root, "lib/a", 40));
    paths.extend(files(&root, "lib/b", 30));
    paths.extend(files(&root, "lib/c", 45));
    // The largest directory two levels down: share/doc (110 files), removed.
    paths.extend(files(&root, "share/doc/p1", 60));
    paths.extend(files(&root, "share/doc/p2", 50));
    paths.extend(files(&root, "src/deep/nested/more", 50));
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("lib"), root.join("link")).unwrap();
    assert_eq!(paths.len(), 300);

    // Expectations: every 50th file in key order gets a new mtime, what is under
    // share/doc/ goes, 2,000 files are added.
    let mut keys: Vec<Vec<u8>> = paths
        .iter()
        .map(|path| path.as_os_str().as_encoded_bytes().to_vec())
        .collect();
    keys.sort();
    let mut removed_prefix = root
        .join("share/doc")
        .as_os_str()
        .as_encoded_bytes()
        .to_vec();
    removed_prefix.push(b'/');
    let removed = keys
        .iter()
        .filter(|key| key.starts_with(&removed_prefix))
        .count();
    let updated = keys
        .iter()
        .step_by(50)
        .filter(|key| !key.starts_with(&removed_prefix))
        .count();
    assert_eq!(removed, 110);

    let db = base.0.join("demo.th");
    let args = [root.as_os_str(), "--db".as_ref(), db.as_os_str()];
    let demo = |first: bool| {
        let output = run(&[&["demo".as_ref()][..], &args].concat());
        let text = stdout(&output);
        assert!(
            output.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("scanned 300 files"), "{text}");
        assert_eq!(
            line(&text, "database:").contains("removed the previous demo database"),
            !first,
            "{text}"
        );
        assert!(
            line(&text, "diff ")
                .contains(&format!("2000 added, {removed} removed, {updated} updated")),
            "{text}"
        );
        let range_count = |sub: &str| -> u64 {
            let prefix = format!("range {}/", root.join(sub).display());
            line(&text, &prefix)
                .split_whitespace()
                .nth(2)
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!(range_count("bin"), 20);
        assert_eq!(range_count("lib"), 115);
        assert_eq!(range_count("share/doc"), 0);
        assert!(
            line(&text, "point read of removed").ends_with("latest absent"),
            "{text}"
        );
        assert!(line(&text, "check: ok").contains("revision"), "{text}");
        assert!(
            line(&text, "tree \"main\": height").contains("leaves"),
            "{text}"
        );
    };
    demo(true);
    demo(false);

    let check = run(&["check".as_ref(), db.as_os_str()]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(stdout(&check).starts_with("ok: "));
}

#[test]
fn demo_refuses_a_missing_directory_and_a_foreign_file() {
    let base = Dir::new("refuse");
    let db = base.0.join("demo.th");
    let missing = base.0.join("missing");
    let output = run(&[
        "demo".as_ref(),
        missing.as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!db.exists());

    let tree = base.0.join("tree");
    files(&tree, "a/b", 3);
    let foreign = base.0.join("notes.txt");
    std::fs::write(&foreign, "not a database").unwrap();
    let output = run(&[
        "demo".as_ref(),
        tree.as_os_str(),
        "--db".as_ref(),
        foreign.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(std::fs::read(&foreign).unwrap(), b"not a database");
}
