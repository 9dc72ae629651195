//! Where checkpoints are kept. A checkpoint is written whole and appears atomically (a local
//! directory: temp file, fsync, rename, fsync of the directory; S3: one PutObject), so a crash
//! leaves either the complete new checkpoint or none.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::runtime::ConnectorError;

/// Storage for one job's checkpoints.
pub trait CheckpointStore: Send {
    /// Where, for messages (`file:///var/lib/streamctl/job/`).
    fn describe(&self) -> String;

    /// Ids of the checkpoints present, ascending.
    ///
    /// # Errors
    /// When the location cannot be listed.
    fn list(&self) -> Result<Vec<u64>, ConnectorError>;

    /// A checkpoint's bytes.
    ///
    /// # Errors
    /// When it cannot be read.
    fn read(&self, id: u64) -> Result<Vec<u8>, ConnectorError>;

    /// Its size in bytes.
    ///
    /// # Errors
    /// When it cannot be found.
    fn size(&self, id: u64) -> Result<u64, ConnectorError>;

    /// Stores a checkpoint so that it appears complete or not at all.
    ///
    /// # Errors
    /// When it cannot be stored durably.
    fn write(&self, id: u64, bytes: &[u8]) -> Result<(), ConnectorError>;

    /// Deletes a checkpoint (pruning).
    ///
    /// # Errors
    /// When it cannot be deleted.
    fn delete(&self, id: u64) -> Result<(), ConnectorError>;

    /// The job's instance id: created on first use and kept, so the object names of every
    /// attempt of this job share it (and leftovers of a failed attempt can be found).
    ///
    /// # Errors
    /// When it can be neither read nor created.
    fn instance(&self) -> Result<String, ConnectorError>;
}

/// The store for a checkpoint location: `file:///dir/`, a plain directory path, or `s3://`.
///
/// # Errors
/// For locations this build cannot use.
pub fn open(url: &str) -> Result<Box<dyn CheckpointStore>, ConnectorError> {
    if url.starts_with("s3://") {
        // Region and endpoint come from the AWS environment (AWS_REGION, AWS_ENDPOINT_URL_S3…).
        let s3 = crate::aws::s3::S3::connect(&crate::aws::AwsSettings::default(), None)?;
        return Ok(Box::new(S3Store::new(s3, url)?));
    }
    if let Some((scheme, _)) = url.split_once("://")
        && scheme != "file"
    {
        return Err(ConnectorError::user(format!(
            "checkpoint location `{url}`: use a directory, file:///dir/ or s3://bucket/prefix/"
        )));
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    Ok(Box::new(LocalStore::new(PathBuf::from(path))?))
}

/// Checkpoint file names: `chk-00000042.ckpt`.
pub fn file_name(id: u64) -> String {
    format!("chk-{id:08}.ckpt")
}

fn parse_name(name: &str) -> Option<u64> {
    name.strip_prefix("chk-")?
        .strip_suffix(".ckpt")?
        .parse()
        .ok()
}

/// A new random id (16 hex digits) from the OS's randomness, for instance ids.
pub fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState's keys come from the OS's randomness; the pid is mixed in for good measure.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Checkpoints in a local directory.
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(dir: PathBuf) -> Result<LocalStore, ConnectorError> {
        fs::create_dir_all(&dir).map_err(|e| {
            ConnectorError::io(
                &format!("creating checkpoint directory {}", dir.display()),
                &e,
            )
        })?;
        Ok(LocalStore { dir })
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(file_name(id))
    }

    /// Writes `bytes` to `target` atomically and durably.
    fn write_atomic(&self, target: &Path, bytes: &[u8]) -> Result<(), ConnectorError> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let temp = self.dir.join(format!(".{name}.tmp"));
        let io = |what: &str, e: std::io::Error| ConnectorError::io(what, &e);
        let mut file =
            fs::File::create(&temp).map_err(|e| io(&format!("writing {}", temp.display()), e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| io(&format!("writing {}", temp.display()), e))?;
        drop(file);
        crate::fault::point("checkpoint-rename");
        fs::rename(&temp, target).map_err(|e| io(&format!("renaming {}", temp.display()), e))?;
        // The rename is durable only once the directory is.
        if let Ok(dir) = fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl CheckpointStore for LocalStore {
    fn describe(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    fn list(&self) -> Result<Vec<u64>, ConnectorError> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| ConnectorError::io(&format!("listing {}", self.dir.display()), &e))?;
        let mut ids: Vec<u64> = entries
            .flatten()
            .filter_map(|e| parse_name(&e.file_name().to_string_lossy()))
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn read(&self, id: u64) -> Result<Vec<u8>, ConnectorError> {
        let path = self.path(id);
        fs::read(&path).map_err(|e| ConnectorError::io(&format!("reading {}", path.display()), &e))
    }

    fn size(&self, id: u64) -> Result<u64, ConnectorError> {
        let path = self.path(id);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| ConnectorError::io(&format!("reading {}", path.display()), &e))
    }

    fn write(&self, id: u64, bytes: &[u8]) -> Result<(), ConnectorError> {
        self.write_atomic(&self.path(id), bytes)
    }

    fn delete(&self, id: u64) -> Result<(), ConnectorError> {
        let path = self.path(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ConnectorError::io(
                &format!("deleting {}", path.display()),
                &e,
            )),
        }
    }

    fn instance(&self) -> Result<String, ConnectorError> {
        let path = self.dir.join("instance");
        if let Ok(text) = fs::read_to_string(&path) {
            let id = text.trim();
            if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Ok(id.to_string());
            }
        }
        let id = random_id();
        self.write_atomic(&path, format!("{id}\n").as_bytes())?;
        Ok(id)
    }
}

/// Checkpoints under an S3 prefix: `chk-….ckpt` objects and the `instance` object beside them.
pub struct S3Store {
    s3: crate::aws::s3::S3,
    bucket: String,
    /// Empty or ending with `/`.
    prefix: String,
}

impl S3Store {
    /// Checks the bucket at once, so a wrong location fails before the job starts.
    ///
    /// # Errors
    /// When `url` is not an S3 URL or the bucket cannot be used.
    pub fn new(s3: crate::aws::s3::S3, url: &str) -> Result<S3Store, ConnectorError> {
        let location = crate::aws::s3::S3Url::parse(url).ok_or_else(|| {
            ConnectorError::user(format!(
                "checkpoint location `{url}` is not s3://bucket/prefix/"
            ))
        })?;
        s3.check_bucket(&location.bucket)
            .map_err(|e| e.context("checkpoint location"))?;
        Ok(S3Store {
            s3,
            prefix: location.prefix(),
            bucket: location.bucket,
        })
    }

    fn key(&self, id: u64) -> String {
        format!("{}{}", self.prefix, file_name(id))
    }
}

impl CheckpointStore for S3Store {
    fn describe(&self) -> String {
        crate::aws::s3::url(&self.bucket, &self.prefix)
    }

    fn list(&self) -> Result<Vec<u64>, ConnectorError> {
        let mut ids: Vec<u64> = self
            .s3
            .list(&self.bucket, &self.prefix, None)?
            .iter()
            .filter_map(|o| parse_name(o.key.strip_prefix(&self.prefix)?))
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn read(&self, id: u64) -> Result<Vec<u8>, ConnectorError> {
        let key = self.key(id);
        self.s3.get(&self.bucket, &key)?.ok_or_else(|| {
            ConnectorError::external(
                format!("{} is gone", crate::aws::s3::url(&self.bucket, &key)),
                false,
            )
        })
    }

    fn size(&self, id: u64) -> Result<u64, ConnectorError> {
        let key = self.key(id);
        self.s3.size(&self.bucket, &key)?.ok_or_else(|| {
            ConnectorError::external(
                format!("{} is gone", crate::aws::s3::url(&self.bucket, &key)),
                false,
            )
        })
    }

    fn write(&self, id: u64, bytes: &[u8]) -> Result<(), ConnectorError> {
        // One PutObject: S3 shows the whole object or nothing.
        self.s3.put(
            &self.bucket,
            &self.key(id),
            bytes::Bytes::copy_from_slice(bytes),
        )
    }

    fn delete(&self, id: u64) -> Result<(), ConnectorError> {
        self.s3.delete(&self.bucket, &[self.key(id)])
    }

    fn instance(&self) -> Result<String, ConnectorError> {
        let key = format!("{}instance", self.prefix);
        if let Some(bytes) = self.s3.get(&self.bucket, &key)? {
            let text = String::from_utf8_lossy(&bytes);
            let id = text.trim();
            if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Ok(id.to_string());
            }
        }
        let id = random_id();
        self.s3
            .put(&self.bucket, &key, bytes::Bytes::from(format!("{id}\n")))?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_lists_reads_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&format!("file://{}", dir.path().display())).unwrap();
        assert!(store.list().unwrap().is_empty());
        store.write(2, b"two").unwrap();
        store.write(10, b"ten").unwrap();
        assert_eq!(store.list().unwrap(), vec![2, 10]);
        assert_eq!(store.read(10).unwrap(), b"ten");
        store.delete(2).unwrap();
        store.delete(2).unwrap();
        assert_eq!(store.list().unwrap(), vec![10]);
        let id = store.instance().unwrap();
        assert_eq!(store.instance().unwrap(), id, "the instance id is kept");
        // No temp files are left behind.
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }
}
