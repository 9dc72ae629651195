//! Object stores behind bucketed sinks: where files go, and how they become visible only when
//! published. `file://` is a local directory (hidden files renamed into place); `s3://` is a
//! bucket prefix with multipart uploads completed on publish ([`super::s3_store`]).
//!
//! Object names carry the writer's instance id and checkpoint epoch
//! (`part-<instance>-<epoch>-<n>.<ext>`), so a restart can tell its own leftovers from
//! other writers' objects and remove exactly them.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::runtime::{ConnectorError, PendingObject};

/// Objects under one root (a directory, a bucket prefix). `Sync`: a checkpoint prepares and
/// publishes its objects from several threads at once (see [`CONCURRENT_OBJECTS`]).
pub trait ObjectStore: Send + Sync {
    /// Where objects go, for messages (`file:///tmp/out/`).
    fn describe(&self) -> String;

    /// Checks that objects can be written under the root, creating it if needed: run at
    /// start-up, so an unwritable destination fails before any input is read.
    ///
    /// # Errors
    /// When the root cannot be written (permissions, a missing bucket, credentials…).
    fn check(&self) -> Result<(), ConnectorError>;

    /// Up to `limit` visible objects under the root (relative names), to tell whether a fresh
    /// run would mix its output with an earlier one's.
    ///
    /// # Errors
    /// When the root cannot be listed.
    fn existing(&self, limit: usize) -> Result<Vec<String>, ConnectorError>;

    /// Deletes every object under the root (`--if-exists overwrite`); returns how many.
    ///
    /// # Errors
    /// When an object cannot be deleted.
    fn delete_all(&self) -> Result<u64, ConnectorError>;

    /// Starts writing object `key` (a relative name). Nothing is visible until it is
    /// published.
    ///
    /// # Errors
    /// When the object cannot be created.
    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>, ConnectorError>;

    /// Makes every object prepared since the last call durable (a checkpoint is about to
    /// record them). Stores whose prepare is durable already (uploaded parts) do nothing.
    ///
    /// # Errors
    /// When data cannot be made durable.
    fn sync(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Makes a prepared object visible. Publishing an object that is already visible
    /// succeeds: a restart publishes its checkpoint's objects again.
    ///
    /// # Errors
    /// When the object cannot be published (or was lost).
    fn publish(&self, object: &PendingObject) -> Result<(), ConnectorError>;

    /// Makes the objects published since the last call stay published across a power loss.
    /// Called once after a checkpoint's objects are published, so stores that must sync
    /// something per object (a directory entry) do it for all of them at once.
    ///
    /// # Errors
    /// When the publishing cannot be made durable.
    fn sync_published(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Removes leftovers of `instance` (objects written and never published) except those in
    /// `keep`; with `published_after`, also objects of `instance` published by epochs after
    /// it (a restart from an older checkpoint writes them again). Returns how many.
    ///
    /// # Errors
    /// When the root cannot be listed or an object cannot be removed.
    fn clean(
        &self,
        instance: &str,
        keep: &[PendingObject],
        published_after: Option<u64>,
    ) -> Result<usize, ConnectorError>;
}

/// An object being written.
pub trait ObjectWriter: Write + Send {
    /// Completes the object invisibly (durable after [`ObjectStore::sync`]): what
    /// [`ObjectStore::publish`] needs.
    /// `rows` is left at 0 for the caller to fill in.
    ///
    /// # Errors
    /// When the data cannot be made durable.
    fn prepare(self: Box<Self>) -> Result<PendingObject, ConnectorError>;

    /// Completes and publishes the object at once (runs without checkpoints).
    ///
    /// # Errors
    /// As [`ObjectWriter::prepare`] and [`ObjectStore::publish`].
    fn commit(self: Box<Self>) -> Result<PendingObject, ConnectorError>;

    /// Discards the object. Dropping a writer that was neither prepared nor committed
    /// discards it too, so an error anywhere leaves nothing behind.
    fn abort(self: Box<Self>) {}
}

/// The name of a data object: `part-<instance>-<epoch>-<n>.<ext>`.
pub fn object_name(instance: &str, epoch: u64, n: u64, extension: &str) -> String {
    format!("part-{instance}-{epoch:05}-{n:04}.{extension}")
}

/// The epoch of an object name of `instance`, if it is one.
pub fn object_epoch(file_name: &str, instance: &str) -> Option<u64> {
    let rest = file_name.strip_prefix("part-")?.strip_prefix(instance)?;
    let rest = rest.strip_prefix('-')?;
    rest.split('-').next()?.parse().ok()
}

/// The store for a sink URL (`aws` and `path_style` apply to `s3://`).
///
/// # Errors
/// For URLs this build cannot write to.
pub fn open(
    url: &str,
    aws: &crate::aws::AwsSettings,
    path_style: Option<bool>,
) -> Result<Box<dyn ObjectStore>, ConnectorError> {
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(Box::new(LocalStore::new(PathBuf::from(path))));
    }
    if url.starts_with("s3://") {
        let s3 = crate::aws::s3::S3::connect(aws, path_style)?;
        return Ok(Box::new(super::s3_store::S3Store::new(s3, url)?));
    }
    Err(ConnectorError::user(format!(
        "`{url}` is not an s3:// or file:// URL"
    )))
}

/// A local directory. Files are written as hidden `.name.inprogress` files, fsynced when
/// prepared, and renamed into place when published, so readers never see partial files.
pub struct LocalStore {
    root: PathBuf,
    /// Files prepared and not yet fsynced, synced together (in parallel) by `sync`: one
    /// checkpoint closes many files, and fsyncing them one by one would pause the job for
    /// the sum of their latencies.
    unsynced: std::sync::Arc<std::sync::Mutex<Vec<(File, PathBuf)>>>,
    /// Directories that gained a published file since the last `sync_published`: syncing
    /// each once, in parallel, instead of once per file one after another, keeps a
    /// checkpoint's publish of hundreds of bucket files from taking a second.
    published_dirs: std::sync::Mutex<std::collections::BTreeSet<PathBuf>>,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        // Pending objects name absolute paths, so a restart from another directory (or a
        // changed `url`) still publishes them where they were written.
        let root = std::path::absolute(&root).unwrap_or(root);
        LocalStore {
            root,
            unsynced: std::sync::Arc::default(),
            published_dirs: std::sync::Mutex::default(),
        }
    }

    /// Every file under the root: (path, is hidden).
    fn walk(&self) -> io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    dirs.push(entry.path());
                } else {
                    files.push(entry.path());
                }
            }
        }
        files.sort();
        Ok(files)
    }

    fn io(&self, what: &str, e: &io::Error) -> ConnectorError {
        ConnectorError::io(&format!("{what} under {}", self.describe()), e)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Hidden, in-progress name of a file: `.name.inprogress`.
fn hidden(target: &Path) -> PathBuf {
    target.with_file_name(format!(".{}.inprogress", file_name(target)))
}

/// How many objects are prepared, committed or published at once. Each is a request or two to
/// the store (S3: the last part, then completing the upload; 20–50 ms each), and a checkpoint
/// or a completed time bucket closes many objects at once (one per bucket of fields): one after
/// another, a checkpoint of a few thousand small S3 objects paused the job for over a minute.
/// Local files gain too: devices complete concurrent flushes far faster than sequential ones.
pub const CONCURRENT_OBJECTS: usize = 16;

/// Runs `work` (given each item's position) on every item, on up to `threads` threads, and
/// returns the results in the items' order. After a failure no new item is started, and the
/// first failure by position is returned.
///
/// # Errors
/// The first error of `work`.
pub fn in_parallel<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    work: impl Fn(usize, T) -> Result<R, ConnectorError> + Sync,
) -> Result<Vec<R>, ConnectorError> {
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items
            .into_iter()
            .enumerate()
            .map(|(i, item)| work(i, item))
            .collect();
    }
    let count = items.len();
    let queue = std::sync::Mutex::new(items.into_iter().enumerate());
    let failed = std::sync::atomic::AtomicBool::new(false);
    let results: std::sync::Mutex<Vec<(usize, Result<R, ConnectorError>)>> =
        std::sync::Mutex::new(Vec::with_capacity(count));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !failed.load(std::sync::atomic::Ordering::Relaxed) {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((i, item)) = next else { break };
                    let result = work(i, item);
                    if result.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, result));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    // Without a failure every item ran (workers stop only at the end of the queue, and a
    // panicking one is re-raised by the scope); after one, its error comes first by position
    // among those that did.
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// fsyncs files on a few threads at once: devices complete concurrent flushes far faster than
/// one after another.
fn parallel_sync<'a>(
    items: impl Iterator<Item = (Option<&'a File>, &'a Path)>,
) -> Result<(), ConnectorError> {
    in_parallel(items.collect(), CONCURRENT_OBJECTS, |_, (file, path)| {
        if let Some(file) = file {
            file.sync_all()
                .map_err(|e| ConnectorError::io(&format!("syncing {}", path.display()), &e))?;
        }
        Ok(())
    })
    .map(|_| ())
}

/// Asks the kernel to start writing a file to disk now, without waiting for it: a closed file
/// here, a growing one every few MB in `stream.rs`. Files close all through a run (time
/// buckets complete, files roll) but are fsynced only at the next checkpoint; left alone, the
/// kernel would write them back only after ~30 s, so the checkpoint would wait for all of them
/// at once (0.3–0.6 s for the movie job's 42 MB at the end of a run). Started here, most of
/// that writing overlaps the run and the checkpoint's fsync finds little left. Only a hint:
/// errors are reported by that fsync.
pub(super) fn start_write_back(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on a file descriptor this `File` owns for the whole call;
        // offset 0 and length 0 mean the whole file.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// fsyncs directories (their entries: files created or renamed in them), in parallel. A
/// directory that cannot be opened is skipped: its files' own fsync already failed or
/// succeeded, and the rename or create of an entry in it is what the sync would have covered.
fn sync_dirs<'a>(dirs: impl Iterator<Item = &'a Path>) -> Result<(), ConnectorError> {
    let handles: Vec<(Option<File>, &Path)> = dirs.map(|d| (File::open(d).ok(), d)).collect();
    parallel_sync(handles.iter().map(|(f, p)| (f.as_ref(), *p)))
}

impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        format!("file://{}/", self.root.display())
    }

    fn check(&self) -> Result<(), ConnectorError> {
        fs::create_dir_all(&self.root).map_err(|e| self.io("creating the directory", &e))?;
        let probe = self
            .root
            .join(format!(".streamctl-write-check-{}", std::process::id()));
        File::create(&probe).map_err(|e| self.io("writing a file", &e))?;
        let _ = fs::remove_file(&probe);
        Ok(())
    }

    fn existing(&self, limit: usize) -> Result<Vec<String>, ConnectorError> {
        let files = self.walk().map_err(|e| self.io("listing", &e))?;
        Ok(files
            .iter()
            .filter(|p| !file_name(p).starts_with('.'))
            .take(limit)
            .map(|p| {
                p.strip_prefix(&self.root)
                    .unwrap_or(p)
                    .display()
                    .to_string()
            })
            .collect())
    }

    fn delete_all(&self) -> Result<u64, ConnectorError> {
        let files = self.walk().map_err(|e| self.io("listing", &e))?;
        let mut n = 0;
        for f in &files {
            fs::remove_file(f).map_err(|e| self.io(&format!("deleting {}", f.display()), &e))?;
            n += 1;
        }
        // Directories left empty go too (the root stays).
        let mut dirs: Vec<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        dirs.dedup();
        for mut dir in dirs {
            while dir != self.root && dir.starts_with(&self.root) && fs::remove_dir(&dir).is_ok() {
                match dir.parent() {
                    Some(p) => dir = p.to_path_buf(),
                    None => break,
                }
            }
        }
        Ok(n)
    }

    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>, ConnectorError> {
        let target = self.root.join(key);
        let dir = target.parent().unwrap_or(Path::new(".")).to_path_buf();
        fs::create_dir_all(&dir)
            .map_err(|e| self.io(&format!("creating {}", dir.display()), &e))?;
        let temp = hidden(&target);
        let file = File::create(&temp)
            .map_err(|e| self.io(&format!("creating {}", temp.display()), &e))?;
        Ok(Box::new(LocalWriter {
            out: BufWriter::with_capacity(FILE_BUFFER_BYTES, file),
            temp,
            target,
            bytes: 0,
            done: false,
            unsynced: self.unsynced.clone(),
        }))
    }

    fn sync(&self) -> Result<(), ConnectorError> {
        let files = match self.unsynced.lock() {
            Ok(mut u) => std::mem::take(&mut *u),
            Err(_) => return Err(ConnectorError::internal("file sync list poisoned")),
        };
        if files.is_empty() {
            return Ok(());
        }
        // The files, then the directories holding their (new) entries.
        let mut dirs: Vec<PathBuf> = files
            .iter()
            .filter_map(|(_, p)| p.parent().map(Path::to_path_buf))
            .collect();
        dirs.sort();
        dirs.dedup();
        parallel_sync(files.iter().map(|(f, p)| (Some(f), p.as_path())))?;
        sync_dirs(dirs.iter().map(PathBuf::as_path))
    }

    fn publish(&self, object: &PendingObject) -> Result<(), ConnectorError> {
        let temp = PathBuf::from(&object.token);
        let target = PathBuf::from(object.name.strip_prefix("file://").unwrap_or(&object.name));
        match fs::rename(&temp, &target) {
            Ok(()) => {
                if let (Some(dir), Ok(mut dirs)) = (target.parent(), self.published_dirs.lock()) {
                    dirs.insert(dir.to_path_buf());
                }
                Ok(())
            }
            // Published before a restart.
            Err(e) if e.kind() == io::ErrorKind::NotFound && target.exists() => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ConnectorError::external(
                format!(
                    "publishing {}: its prepared file {} is gone (removed by someone else?)",
                    object.name, object.token
                ),
                false,
            )),
            Err(e) => Err(self.io(&format!("publishing {}", target.display()), &e)),
        }
    }

    fn sync_published(&self) -> Result<(), ConnectorError> {
        let dirs = match self.published_dirs.lock() {
            Ok(mut d) => std::mem::take(&mut *d),
            Err(_) => {
                return Err(ConnectorError::internal(
                    "published directory list poisoned",
                ));
            }
        };
        sync_dirs(dirs.iter().map(PathBuf::as_path))
    }

    fn clean(
        &self,
        instance: &str,
        keep: &[PendingObject],
        published_after: Option<u64>,
    ) -> Result<usize, ConnectorError> {
        let files = self.walk().map_err(|e| self.io("listing", &e))?;
        let mut removed = 0;
        for path in files {
            let name = file_name(&path);
            let leftover = match name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".inprogress"))
            {
                Some(visible) => {
                    object_epoch(visible, instance).is_some()
                        && !keep.iter().any(|k| Path::new(&k.token) == path)
                }
                None => published_after
                    .zip(object_epoch(&name, instance))
                    .is_some_and(|(after, epoch)| epoch > after),
            };
            if leftover {
                fs::remove_file(&path)
                    .map_err(|e| self.io(&format!("removing {}", path.display()), &e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The write buffer of each local file. A bucketed sink holds one file open per bucket (50
/// movies × 2 hours in the movie job): at 1 MiB each these buffers were a third of the
/// process's memory. CSV and JSON already reach the writer in 64 KiB pieces, which pass a
/// buffer this size untouched (a larger one copied every byte once more before the kernel
/// copies it into the page cache); it gathers Parquet's smaller writes.
pub(crate) const FILE_BUFFER_BYTES: usize = 64 * 1024;

struct LocalWriter {
    out: BufWriter<File>,
    temp: PathBuf,
    target: PathBuf,
    bytes: u64,
    /// Prepared or committed: the file is no longer this writer's to remove.
    done: bool,
    unsynced: std::sync::Arc<std::sync::Mutex<Vec<(File, PathBuf)>>>,
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

impl LocalWriter {
    fn io(&self, what: &str, e: &io::Error) -> ConnectorError {
        ConnectorError::io(&format!("{what} {}", self.temp.display()), e)
    }
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl ObjectWriter for LocalWriter {
    fn prepare(mut self: Box<Self>) -> Result<PendingObject, ConnectorError> {
        self.out.flush().map_err(|e| self.io("writing", &e))?;
        let file = self
            .out
            .get_ref()
            .try_clone()
            .map_err(|e| self.io("preparing", &e))?;
        start_write_back(&file);
        if let Ok(mut unsynced) = self.unsynced.lock() {
            unsynced.push((file, self.temp.clone()));
        }
        self.done = true;
        Ok(PendingObject {
            name: format!("file://{}", self.target.display()),
            bytes: self.bytes,
            rows: 0,
            token: self.temp.display().to_string(),
        })
    }

    fn commit(mut self: Box<Self>) -> Result<PendingObject, ConnectorError> {
        // Without checkpoints a published file need not survive a power loss before the
        // run ends, so no fsync: the rename alone keeps partial files invisible.
        self.out.flush().map_err(|e| self.io("writing", &e))?;
        fs::rename(&self.temp, &self.target).map_err(|e| self.io("publishing", &e))?;
        self.done = true;
        Ok(PendingObject {
            name: format!("file://{}", self.target.display()),
            bytes: self.bytes,
            rows: 0,
            token: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_parallel_keeps_the_items_order_and_runs_them_concurrently() {
        let running = std::sync::atomic::AtomicUsize::new(0);
        let most = std::sync::atomic::AtomicUsize::new(0);
        let out = in_parallel((0..64).collect(), 8, |i, n: u32| {
            let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(5));
            running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            assert_eq!(i as u32, n);
            Ok(n * 2)
        })
        .unwrap();
        assert_eq!(out, (0..64).map(|n| n * 2).collect::<Vec<_>>());
        assert!(most.into_inner() > 1, "more than one at a time");
    }

    #[test]
    fn in_parallel_stops_starting_items_after_a_failure_and_reports_the_first() {
        let started = std::sync::atomic::AtomicUsize::new(0);
        let result = in_parallel((0..1000).collect(), 4, |_, n: u32| {
            started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n >= 10 {
                Err(ConnectorError::internal(format!("item {n} failed")))
            } else {
                Ok(n)
            }
        });
        let error = result.unwrap_err().to_string();
        assert!(error.contains("item 10 failed"), "{error}");
        assert!(
            started.into_inner() < 1000,
            "no new items after the failure"
        );
    }

    #[test]
    fn names_carry_instance_and_epoch() {
        let name = object_name("ab12", 7, 3, "csv");
        assert_eq!(name, "part-ab12-00007-0003.csv");
        assert_eq!(object_epoch(&name, "ab12"), Some(7));
        assert_eq!(object_epoch(&name, "ab1"), None);
        assert_eq!(object_epoch("part-other-00007-0003.csv", "ab12"), None);
    }

    #[test]
    fn prepared_files_are_invisible_until_published_and_publishing_twice_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        store.check().unwrap();
        let mut w = store.create("b/part-x-00001-0000.csv").unwrap();
        w.write_all(b"a,b\n").unwrap();
        let pending = w.prepare().unwrap();
        assert!(store.existing(10).unwrap().is_empty());
        store.publish(&pending).unwrap();
        store.publish(&pending).unwrap();
        assert_eq!(store.existing(10).unwrap(), vec!["b/part-x-00001-0000.csv"]);
    }

    #[test]
    fn clean_removes_only_this_instances_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        let keep = store
            .create("b/part-me-00002-0000.csv")
            .unwrap()
            .prepare()
            .unwrap();
        let _lost = store
            .create("b/part-me-00003-0000.csv")
            .unwrap()
            .prepare()
            .unwrap();
        let _other = store
            .create("b/part-you-00003-0000.csv")
            .unwrap()
            .prepare()
            .unwrap();
        let published = store
            .create("b/part-me-00003-0001.csv")
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(
            store
                .clean("me", std::slice::from_ref(&keep), None)
                .unwrap(),
            1
        );
        assert!(Path::new(&keep.token).exists());
        assert!(PathBuf::from(published.name.strip_prefix("file://").unwrap()).exists());
        // Rolling back to epoch 2 also removes what epoch 3 published.
        assert_eq!(store.clean("me", &[keep], Some(2)).unwrap(), 1);
        assert_eq!(store.existing(10).unwrap(), Vec::<String>::new());
    }
}
