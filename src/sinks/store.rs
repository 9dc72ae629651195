//! Object stores behind bucketed sinks: where a finished file goes, and how it becomes
//! visible only once complete. `file://` is a local directory; `s3://` plugs in here.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Creates objects under a root.
pub trait ObjectStore: Send {
    /// Starts writing the object `key` (a relative path). Nothing is visible until commit.
    ///
    /// # Errors
    /// When the object cannot be created (permissions, disk…).
    fn create(&self, key: &str) -> io::Result<Box<dyn ObjectWriter>>;

    /// Where objects go, for messages (`file:///tmp/out/`).
    fn describe(&self) -> String;
}

/// An object being written.
pub trait ObjectWriter: Write + Send {
    /// Makes the object visible under its key, complete.
    ///
    /// # Errors
    /// When the data cannot be made durable or moved into place.
    fn commit(self: Box<Self>) -> io::Result<u64>;
}

/// The store for a sink URL.
///
/// # Errors
/// For URLs this build cannot write to.
pub fn open(url: &str) -> Result<Box<dyn ObjectStore>, String> {
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(Box::new(LocalStore::new(PathBuf::from(path))));
    }
    if url.starts_with("s3://") {
        return Err(format!(
            "writing to {url}: the S3 object store is not in this build yet; use a file:// URL for local runs"
        ));
    }
    Err(format!("`{url}` is not an s3:// or file:// URL"))
}

/// A local directory. Files are written as hidden `.name.inprogress` files and renamed into
/// place on commit, so readers never see partial files.
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore { root }
    }
}

impl ObjectStore for LocalStore {
    fn create(&self, key: &str) -> io::Result<Box<dyn ObjectWriter>> {
        let target = self.root.join(key);
        let dir = target.parent().unwrap_or(Path::new(".")).to_path_buf();
        fs::create_dir_all(&dir)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.inprogress"));
        let file = File::create(&temp)?;
        Ok(Box::new(LocalWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            temp,
            target,
            bytes: 0,
        }))
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

struct LocalWriter {
    out: BufWriter<File>,
    temp: PathBuf,
    target: PathBuf,
    bytes: u64,
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
    fn commit(mut self: Box<Self>) -> io::Result<u64> {
        self.out.flush()?;
        fs::rename(&self.temp, &self.target)?;
        Ok(self.bytes)
    }
}
