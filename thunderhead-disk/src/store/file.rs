//! A page store in one file. Reads use `pread` into a fresh buffer (the page cache
//! above keeps what it validated, so a read is the cost of a cache miss); writes use
//! `pwrite`; `sync` is `sync_data`. The file is locked exclusively while the store is
//! open, so a second writer gets [`Error::Locked`] instead of a corrupt file, and the
//! lock dies with the process.

use std::fs::{File, OpenOptions};
use std::future::{Ready, ready};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::check_page_size;
use crate::{Error, Header, PageBytes, PageId, PageStore, Result, StoreStats};

/// A page store backed by one file.
pub struct FileStore {
    file: File,
    path: PathBuf,
    page_size: usize,
    state: Mutex<FileState>,
}

struct FileState {
    /// Pages the file holds (written or extended to).
    file_pages: u64,
    /// Set by a failed sync: after EIO the kernel may have dropped dirty pages, so
    /// nothing written since the last good sync can be trusted to be on disk.
    failed: bool,
    stats: StoreStats,
}

impl FileStore {
    /// Creates a new, empty store at `path` (which must not exist). The caller writes
    /// the header (see [`Header`]) before the store can be opened again.
    pub fn create(path: impl AsRef<Path>, page_size: usize) -> Result<Self> {
        check_page_size(page_size)?;
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Self::locked(file, path, page_size)
    }

    /// Opens the store at `path` for reading and writing; the page size comes from its
    /// header. A file that is not a Thunderhead store is [`Error::NotAStore`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut head = [0u8; crate::format::HEADER_BYTES];
        let len = file.metadata()?.len();
        if len < head.len() as u64 {
            return Err(Error::NotAStore {
                reason: format!("{len} bytes is too short to hold a header"),
            });
        }
        file.read_exact_at(&mut head, 0)?;
        let header = Header::decode(&head)?;
        Self::locked(file, path, header.page_size)
    }

    fn locked(file: File, path: &Path, page_size: usize) -> Result<Self> {
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(error.into()),
        }
        // Locked first: the length of a file another handle is writing means nothing.
        let pages = file.metadata()?.len() / page_size as u64;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            page_size,
            state: Mutex::new(FileState {
                file_pages: pages,
                failed: false,
                stats: StoreStats::default(),
            }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Pages the file holds.
    pub fn file_pages(&self) -> u64 {
        self.lock().file_pages
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FileState> {
        // Every update under the lock is a few assignments; a panic cannot leave it torn.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_now(&self, start: PageId, page_count: u32) -> Result<PageBytes> {
        let file_pages = self.lock().file_pages;
        let end = start.0.checked_add(u64::from(page_count));
        if page_count == 0 || end.is_none_or(|end| end > file_pages) {
            return Err(Error::OutOfBounds {
                page: start,
                page_count: u64::from(page_count),
                store_pages: file_pages,
            });
        }
        let len = page_count as usize * self.page_size;
        let mut bytes = PageBytes::zeroed(len);
        let buffer = bytes.get_mut().expect("a new buffer has one handle");
        self.file
            .read_exact_at(buffer, start.0 * self.page_size as u64)?;
        let mut state = self.lock();
        state.stats.reads += 1;
        state.stats.read_bytes += len as u64;
        Ok(bytes)
    }

    fn write_now(&self, start: PageId, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(self.page_size) {
            return Err(Error::UnalignedWrite {
                len: bytes.len(),
                page_size: self.page_size,
            });
        }
        let pages = (bytes.len() / self.page_size) as u64;
        {
            let state = self.lock();
            if state.failed {
                return Err(Error::SyncFailed);
            }
            let in_range = start
                .0
                .checked_add(pages)
                .and_then(|end| end.checked_mul(self.page_size as u64));
            if in_range.is_none() {
                return Err(Error::OutOfBounds {
                    page: start,
                    page_count: pages,
                    store_pages: state.file_pages,
                });
            }
        }
        self.file
            .write_all_at(bytes, start.0 * self.page_size as u64)?;
        let mut state = self.lock();
        state.file_pages = state.file_pages.max(start.0 + pages);
        state.stats.writes += 1;
        state.stats.written_bytes += bytes.len() as u64;
        Ok(())
    }

    fn truncate_now(&self, page_count: u64) -> Result<()> {
        let mut state = self.lock();
        if state.failed {
            return Err(Error::SyncFailed);
        }
        self.file.set_len(page_count * self.page_size as u64)?;
        state.file_pages = page_count;
        Ok(())
    }

    fn sync_now(&self) -> Result<()> {
        if self.lock().failed {
            return Err(Error::SyncFailed);
        }
        let result = self.file.sync_data();
        let mut state = self.lock();
        state.stats.syncs += 1;
        if let Err(error) = result {
            state.failed = true;
            return Err(error.into());
        }
        Ok(())
    }
}

// The file is read and written synchronously: the futures are ready when returned.
#[allow(refining_impl_trait)]
impl PageStore for FileStore {
    fn page_size(&self) -> usize {
        self.page_size
    }

    fn page_count(&self) -> u64 {
        self.lock().file_pages
    }

    fn read(&self, start: PageId, page_count: u32) -> Ready<Result<PageBytes>> {
        ready(self.read_now(start, page_count))
    }

    fn write(&self, start: PageId, bytes: PageBytes) -> Ready<Result<()>> {
        ready(self.write_now(start, &bytes))
    }

    fn sync(&self) -> Ready<Result<()>> {
        ready(self.sync_now())
    }

    fn truncate(&self, page_count: u64) -> Ready<Result<()>> {
        ready(self.truncate_now(page_count))
    }

    fn stats(&self) -> StoreStats {
        self.lock().stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve;

    /// Tests that open files run one at a time: a child process forked by one test briefly shares
    /// every open file of this process (until its exec closes them), locks included.
    static LOCK_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("thunderhead-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        path
    }

    /// A store with a header, as a database creates it.
    fn create_with_header(path: &Path) -> FileStore {
        let store = FileStore::create(path, 4096).unwrap();
        let header = Header { page_size: 4096 }.encode();
        resolve(store.write(PageId(0), PageBytes::new(header))).unwrap();
        store
    }

    /// Pages written read back after reopening (the page size from the header);
    /// out-of-range and misaligned requests and headerless files are typed errors.
    #[test]
    fn write_read_reopen() {
        let _serial = LOCK_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let path = temp_path("round-trip");
        {
            let store = create_with_header(&path);
            let start = PageId(1);
            resolve(store.write(start, PageBytes::new(vec![7; 8192]))).unwrap();
            resolve(store.sync()).unwrap();
            assert_eq!(&resolve(store.read(start, 2)).unwrap()[..], &[7; 8192][..]);
            assert!(matches!(
                resolve(store.read(PageId(2), 2)),
                Err(Error::OutOfBounds { .. })
            ));
            assert!(matches!(
                resolve(store.write(start, PageBytes::new(vec![0; 100]))),
                Err(Error::UnalignedWrite { .. })
            ));
            assert!(matches!(
                resolve(store.write(PageId(u64::MAX - 1), PageBytes::new(vec![0; 4096]))),
                Err(Error::OutOfBounds { .. })
            ));
            assert_eq!(store.stats().syncs, 1);
        }
        let store = FileStore::open(&path).unwrap();
        assert_eq!(store.file_pages(), 3);
        assert_eq!(
            &resolve(store.read(PageId(1), 2)).unwrap()[..],
            &[7; 8192][..]
        );
        resolve(store.truncate(2)).unwrap();
        assert!(resolve(store.read(PageId(2), 1)).is_err());
        drop(store);
        assert!(
            FileStore::create(&path, 4096).is_err(),
            "create never clobbers"
        );
        for garbage in [&b""[..], &b"THUNDRHD"[..], &[0xAB; 5000][..]] {
            std::fs::write(&path, garbage).unwrap();
            assert!(matches!(
                FileStore::open(&path),
                Err(Error::NotAStore { .. })
            ));
        }
    }

    /// A second handle on an open store is refused with `Locked`; the lock goes with the
    /// handle.
    #[test]
    fn second_handle_is_locked_out() {
        let _serial = LOCK_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let path = temp_path("lock");
        let store = create_with_header(&path);
        match FileStore::open(&path) {
            Err(Error::Locked { path: locked }) => assert_eq!(locked, path),
            other => panic!("expected Locked, got {:?}", other.map(|_| ())),
        }
        drop(store);
        FileStore::open(&path).unwrap();
    }

    /// Another process holding the lock keeps the store out; when that process is
    /// killed, the lock goes with it. (`flock(1)` takes the same lock as `try_lock`.)
    #[test]
    fn lock_dies_with_the_holding_process() {
        let _serial = LOCK_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let path = temp_path("process-lock");
        drop(create_with_header(&path));
        let mut holder = std::process::Command::new("flock")
            .args(["--exclusive", "--no-fork"])
            .arg(&path)
            .args(["sleep", "30"])
            .spawn()
            .expect("flock(1) from util-linux");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match FileStore::open(&path) {
                Err(Error::Locked { .. }) => break,
                Ok(store) if std::time::Instant::now() < deadline => {
                    drop(store);
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => panic!(
                    "the other process never took the lock: {:?}",
                    other.map(|_| ())
                ),
            }
        }
        holder.kill().unwrap();
        holder.wait().unwrap();
        // With `--no-fork`, the killed process is the one holding the lock.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match FileStore::open(&path) {
                Ok(_) => break,
                Err(Error::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => panic!("lock outlived its process: {:?}", other.map(|_| ())),
            }
        }
    }
}
