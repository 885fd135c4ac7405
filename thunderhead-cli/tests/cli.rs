//! The `thunderhead` binary, run as a user would: every subcommand, the exit statuses,
//! the escaping rules on every byte value, malformed op streams, dump and load, damage,
//! and a kill in the middle of `apply`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_thunderhead"))
}

/// A fresh directory for one test, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("thunderhead-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("test.th")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    binary().args(args).output().unwrap()
}

fn run_with_input(args: &[&str], input: &str) -> Output {
    let mut child = binary()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn path(db: &Path) -> &str {
    db.to_str().unwrap()
}

/// apply, get, scan (ranges, limit, reverse), and the statuses of a missing key.
#[test]
fn apply_get_scan() {
    let dir = Dir::new("basic");
    let db = dir.db();
    let output = run_with_input(
        &["apply", path(&db)],
        "put\ta\t1\nput\tb\t2\nput\tc\t3\ncommit\ndel\tb\nput\td\t4\n",
    );
    assert_eq!(status(&output), 0, "{output:?}");
    assert_eq!(stdout(&output), "committed 1\ncommitted 2\n");
    assert_eq!(stdout(&run(&["get", path(&db), "a"])), "1\n");
    let missing = run(&["get", path(&db), "b"]);
    assert_eq!(status(&missing), 1);
    assert_eq!(stdout(&run(&["scan", path(&db)])), "a\t1\nc\t3\nd\t4\n");
    assert_eq!(
        stdout(&run(&["scan", path(&db), "--from", "b", "--to", "d"])),
        "c\t3\n"
    );
    assert_eq!(
        stdout(&run(&["scan", path(&db), "--reverse", "--limit", "2"])),
        "d\t4\nc\t3\n"
    );
    assert_eq!(stdout(&run(&["get", path(&db), "b", "--at", "@1"])), "2\n");
}

/// Every byte value, in keys and values, goes in escaped and comes out escaped exactly
/// as the rules say.
#[test]
fn every_byte_value_round_trips() {
    let dir = Dir::new("bytes");
    let db = dir.db();
    let mut stream = String::new();
    for byte in 0..=255u8 {
        stream.push_str(&format!("put\tk\\x{byte:02x}\tv\\x{byte:02X}\n"));
    }
    assert_eq!(status(&run_with_input(&["apply", path(&db)], &stream)), 0);
    let scanned = stdout(&run(&["scan", path(&db)]));
    let lines: Vec<&str> = scanned.lines().collect();
    assert_eq!(lines.len(), 256);
    for (byte, line) in (0..=255u8).zip(&lines) {
        let escaped = match byte {
            b'\\' => "\\\\".to_string(),
            b'\t' => "\\t".to_string(),
            b'\n' => "\\n".to_string(),
            b'\r' => "\\r".to_string(),
            0x20..=0x7E => (byte as char).to_string(),
            _ => format!("\\x{byte:02x}"),
        };
        assert_eq!(*line, format!("k{escaped}\tv{escaped}"), "byte {byte:#04x}");
    }
}

/// A malformed line exits 2 naming its line, and nothing of the pending transaction
/// is committed; what was committed before stays.
#[test]
fn malformed_lines_commit_nothing() {
    let dir = Dir::new("malformed");
    let db = dir.db();
    run_with_input(&["apply", path(&db)], "put\tkept\t1\n");
    for (stream, line) in [
        ("put\tx\t1\nfrobnicate\tx\n", 2),
        ("put\tx\t1\nput\ty\n", 2),
        ("put\tx\t1\nput\ty\t\\q\n", 2),
        ("put\tx\t1\ndel\n", 2),
        ("put\tx\t1\n\n", 2),
    ] {
        let output = run_with_input(&["apply", path(&db)], stream);
        assert_eq!(status(&output), 2, "{stream:?}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(&format!("line {line}")), "{message}");
        assert_eq!(
            stdout(&run(&["scan", path(&db)])),
            "kept\t1\n",
            "{stream:?}"
        );
    }
}

/// Snapshots: create, list, read at, diff against, drop; missing names are errors.
#[test]
fn snapshots_and_diff() {
    let dir = Dir::new("snapshots");
    let db = dir.db();
    let output = run_with_input(
        &["apply", path(&db)],
        "put\ta\t1\nput\tb\t2\ncommit\nsnapshot\tv1\nput\ta\t9\ndel\tb\nput\tc\t3\n",
    );
    assert_eq!(stdout(&output), "committed 1\nsnapshot v1 1\ncommitted 3\n");
    let listed = stdout(&run(&["snapshot", "list", path(&db)]));
    assert!(listed.starts_with("v1\t1\t"), "{listed}");
    assert_eq!(stdout(&run(&["get", path(&db), "a", "--at", "v1"])), "1\n");
    assert_eq!(
        stdout(&run(&["diff", path(&db), "v1", "@3"])),
        "~\ta\t1\t9\n-\tb\t2\n+\tc\t3\n"
    );
    let created = run(&["snapshot", "create", path(&db), "v2"]);
    assert_eq!(stdout(&created), "snapshot v2 3\n");
    assert_eq!(status(&run(&["snapshot", "create", path(&db), "v2"])), 2);
    assert_eq!(status(&run(&["snapshot", "drop", path(&db), "v1"])), 0);
    assert_eq!(status(&run(&["snapshot", "drop", path(&db), "v1"])), 2);
    assert_eq!(status(&run(&["get", path(&db), "a", "--at", "v1"])), 2);
    let log = stdout(&run(&["log", path(&db)]));
    assert!(log.lines().count() >= 4, "{log}");
}

/// dump | load reproduces the data exactly, and check passes on both.
#[test]
fn dump_load_round_trip() {
    let dir = Dir::new("dump");
    let (first, second) = (dir.0.join("first.th"), dir.0.join("second.th"));
    let mut stream = String::new();
    for index in 0..2000 {
        stream.push_str(&format!("put\tkey\\x00{index:05}\tvalue \\t{index}\\n\n"));
    }
    run_with_input(&["apply", path(&first)], &stream);
    let dump = stdout(&run(&["dump", path(&first)]));
    assert_eq!(dump.lines().count(), 2000);
    let loaded = run_with_input(&["load", path(&second)], &dump);
    assert_eq!(status(&loaded), 0);
    assert_eq!(stdout(&run(&["dump", path(&second)])), dump);
    for db in [&first, &second] {
        let check = run(&["check", path(db)]);
        assert_eq!(status(&check), 0);
        assert!(stdout(&check).starts_with("ok"));
    }
    assert_eq!(status(&run(&["stat", path(&first)])), 0);
}

/// Not a database, a missing file, usage errors and damage each have their status.
#[test]
fn statuses_for_bad_files_and_damage() {
    let dir = Dir::new("damage");
    let db = dir.db();
    let junk = dir.0.join("junk");
    std::fs::write(&junk, vec![7u8; 100_000]).unwrap();
    assert_eq!(status(&run(&["scan", path(&junk)])), 3);
    assert_eq!(status(&run(&["scan", path(&dir.0.join("none.th"))])), 2);
    assert_eq!(status(&run(&["frobnicate"])), 2);
    assert_eq!(status(&run(&["get", path(&db)])), 2);
    let mut stream = String::new();
    for index in 0..3000 {
        stream.push_str(&format!("put\tkey{index:05}\t{}\n", "v".repeat(100)));
    }
    run_with_input(&["apply", path(&db)], &stream);
    assert_eq!(status(&run(&["check", path(&db)])), 0);
    // Flip a byte in the middle of a data page (past the header and meta slots).
    let mut bytes = std::fs::read(&db).unwrap();
    let page = 16384;
    let at = bytes.len() / page / 2 * page + 2000;
    bytes[at] ^= 0x55;
    std::fs::write(&db, &bytes).unwrap();
    let check = run(&["check", path(&db)]);
    assert_eq!(status(&check), 3, "{check:?}");
    assert!(!check.stderr.is_empty());
}

/// A kill -9 in the middle of apply: afterwards scan shows exactly the commits apply
/// acknowledged, or one more.
#[test]
fn kill_during_apply_keeps_acknowledged_commits() {
    let dir = Dir::new("kill");
    let db = dir.db();
    let mut child = binary()
        .args(["apply", path(&db)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut acknowledged = 0u64;
    for batch in 0..40u64 {
        for index in 0..50 {
            writeln!(stdin, "put\tk{index:03}\t{batch}").unwrap();
        }
        writeln!(stdin, "commit").unwrap();
        stdin.flush().unwrap();
        if batch < 20 {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
            assert_eq!(line, format!("committed {}\n", batch + 1));
            acknowledged = batch;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Everything it printed before it died was acknowledged.
    for line in std::io::BufRead::lines(reader) {
        let line = line.unwrap();
        let revision: u64 = line.strip_prefix("committed ").unwrap().parse().unwrap();
        acknowledged = revision - 1;
    }
    let scanned = stdout(&run(&["scan", path(&db)]));
    let values: std::collections::BTreeSet<&str> = scanned
        .lines()
        .map(|line| line.split('\t').nth(1).unwrap())
        .collect();
    assert_eq!(values.len(), 1, "a commit is all or nothing: {values:?}");
    let batch: u64 = values.iter().next().unwrap().parse().unwrap();
    assert!(
        batch == acknowledged || batch == acknowledged + 1,
        "batch {batch} after acknowledging batch {acknowledged}"
    );
    assert_eq!(status(&run(&["check", path(&db)])), 0);
}

/// compact keeps the latest contents and every snapshot, reading the same, passes
/// check, and gives back the space of what was deleted.
#[test]
fn compact_keeps_what_is_live() {
    let dir = Dir::new("compact");
    let db = dir.db();
    let mut stream = String::new();
    for index in 0..3000 {
        stream.push_str(&format!("put\tkey{index:05}\t{}\n", "x".repeat(200)));
    }
    stream.push_str("commit\nsnapshot\tfull\n");
    for index in 0..2500 {
        stream.push_str(&format!("del\tkey{index:05}\n"));
    }
    stream.push_str("put\tnew\tvalue\ncommit\nsnapshot\tsmall\n");
    for index in 2500..2600 {
        stream.push_str(&format!("put\tkey{index:05}\tchanged\n"));
    }
    assert_eq!(status(&run_with_input(&["apply", path(&db)], &stream)), 0);
    let latest = stdout(&run(&["dump", path(&db)]));
    let full = stdout(&run(&["dump", path(&db), "--at", "full"]));
    let small = stdout(&run(&["dump", path(&db), "--at", "small"]));
    let before = std::fs::metadata(&db).unwrap().len();
    let output = run(&["compact", path(&db)]);
    assert_eq!(status(&output), 0, "{output:?}");
    assert_eq!(stdout(&run(&["dump", path(&db)])), latest);
    assert_eq!(stdout(&run(&["dump", path(&db), "--at", "full"])), full);
    assert_eq!(stdout(&run(&["dump", path(&db), "--at", "small"])), small);
    assert_eq!(status(&run(&["check", path(&db)])), 0);
    let after = std::fs::metadata(&db).unwrap().len();
    eprintln!("compact: {before} -> {after} bytes");
    assert!(after <= before, "{before} -> {after}");
}

/// Damage anywhere in the file is reported with a status, never a panic (101).
#[test]
fn damage_anywhere_never_panics() {
    let dir = Dir::new("nopanic");
    let db = dir.db();
    let mut stream = String::new();
    for index in 0..2000 {
        stream.push_str(&format!("put\tkey{index:05}\t{}\n", "v".repeat(60)));
        if index % 500 == 499 {
            stream.push_str("commit\n");
        }
    }
    stream.push_str("snapshot\ts\n");
    run_with_input(&["apply", path(&db)], &stream);
    let original = std::fs::read(&db).unwrap();
    for step in 0..24 {
        let mut bytes = original.clone();
        let at = (step * 7919 * 13) % bytes.len();
        bytes[at] ^= 0xA5;
        std::fs::write(&db, &bytes).unwrap();
        for args in [
            vec!["scan", path(&db)],
            vec!["check", path(&db)],
            vec!["stat", path(&db)],
            vec!["get", path(&db), "key00007", "--at", "s"],
        ] {
            let output = run(&args);
            let code = status(&output);
            assert!(
                [0, 1, 2, 3].contains(&code),
                "{args:?} after flipping byte {at}: status {code}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
