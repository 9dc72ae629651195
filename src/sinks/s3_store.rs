//! The S3 object store behind bucketed sinks with `s3://` URLs.
//!
//! An object is written as a multipart upload: parts of `part_size` (at least 5 MiB) go up
//! while the file is written. A *prepared* object is an open upload whose parts are all
//! uploaded (durable, invisible); publishing it is CompleteMultipartUpload, which a restart
//! may repeat: "no such upload" while the object exists with the prepared size means it was
//! published before. Runs without checkpoints send a small object in one PutObject.
//! Uploads of a failed attempt carry its instance id in their keys, so a restart aborts
//! exactly those.

use std::io::{self, Write};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::store::{ObjectStore, ObjectWriter, object_epoch};
use crate::aws::RetryPolicy;
use crate::aws::s3::{Completion, S3, S3Url, url};
use crate::runtime::{ConnectorError, PendingObject};

/// S3's smallest part (except the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// Parts we upload: big enough for few requests, small enough to bound memory per open file.
pub const DEFAULT_PART_SIZE: usize = 8 << 20;

/// A bucket prefix.
pub struct S3Store {
    s3: S3,
    bucket: String,
    /// Empty or ending with `/`.
    prefix: String,
    part_size: usize,
}

/// What publishing a prepared object needs (its [`PendingObject::token`], as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UploadToken {
    upload: String,
    /// ETags of parts 1, 2, …
    parts: Vec<String>,
}

impl S3Store {
    /// # Errors
    /// When `url` is not an S3 URL.
    pub fn new(s3: S3, url: &str) -> Result<S3Store, ConnectorError> {
        let location = S3Url::parse(url)
            .ok_or_else(|| ConnectorError::user(format!("`{url}` is not an s3://bucket/ URL")))?;
        Ok(S3Store {
            s3,
            prefix: location.prefix(),
            bucket: location.bucket,
            part_size: DEFAULT_PART_SIZE,
        })
    }

    /// Uploads parts of this size (S3's minimum is 5 MiB).
    pub fn with_part_size(mut self, bytes: usize) -> S3Store {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    fn relative<'k>(&self, key: &'k str) -> &'k str {
        key.strip_prefix(&self.prefix).unwrap_or(key)
    }
}

/// Completes an upload, idempotently: when the upload is gone and the object is there with
/// the expected size, it was completed before (a restart, or a retry whose first answer was
/// lost).
fn complete(
    s3: &S3,
    bucket: &str,
    key: &str,
    upload: &str,
    parts: &[String],
    bytes: u64,
) -> Result<(), ConnectorError> {
    match s3.complete_upload(bucket, key, upload, parts)? {
        Completion::Completed => Ok(()),
        Completion::NoSuchUpload => match s3.size(bucket, key)? {
            Some(size) if size == bytes => Ok(()),
            found => Err(ConnectorError::external(
                format!(
                    "publishing {}: its upload is gone and the object is {} (aborted by someone \
                     else, or by a bucket lifecycle rule for incomplete uploads?)",
                    url(bucket, key),
                    match found {
                        Some(size) => format!("{size} bytes, not {bytes}"),
                        None => "missing".to_string(),
                    }
                ),
                false,
            )),
        },
    }
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        url(&self.bucket, &self.prefix)
    }

    fn check(&self) -> Result<(), ConnectorError> {
        self.s3.check_bucket(&self.bucket)?;
        // A write (and delete) under the prefix, so missing permissions show now. The probe
        // is hidden from Hive-style readers (a leading `.`).
        let probe = format!(
            "{}.streamctl-write-check-{}",
            self.prefix,
            std::process::id()
        );
        self.s3.put(&self.bucket, &probe, Bytes::new())?;
        self.s3.delete(&self.bucket, &[probe])
    }

    fn existing(&self, limit: usize) -> Result<Vec<String>, ConnectorError> {
        Ok(self
            .s3
            .list(&self.bucket, &self.prefix, Some(limit))?
            .into_iter()
            .map(|o| self.relative(&o.key).to_string())
            .collect())
    }

    fn delete_all(&self) -> Result<u64, ConnectorError> {
        let keys: Vec<String> = self
            .s3
            .list(&self.bucket, &self.prefix, None)?
            .into_iter()
            .map(|o| o.key)
            .collect();
        self.s3.delete(&self.bucket, &keys)?;
        Ok(keys.len() as u64)
    }

    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>, ConnectorError> {
        Ok(Box::new(S3Writer {
            s3: self.s3.clone(),
            bucket: self.bucket.clone(),
            key: format!("{}{key}", self.prefix),
            part_size: self.part_size,
            buffer: Vec::new(),
            upload: None,
            parts: Vec::new(),
            bytes: 0,
            done: false,
        }))
    }

    fn publish(&self, object: &PendingObject) -> Result<(), ConnectorError> {
        let location = S3Url::parse(&object.name).ok_or_else(|| {
            ConnectorError::internal(format!("`{}` is not an S3 object name", object.name))
        })?;
        let token: UploadToken = serde_json::from_str(&object.token).map_err(|e| {
            ConnectorError::internal(format!("the upload of {} is unreadable: {e}", object.name))
        })?;
        complete(
            &self.s3,
            &location.bucket,
            &location.key,
            &token.upload,
            &token.parts,
            object.bytes,
        )
    }

    fn clean(
        &self,
        instance: &str,
        keep: &[PendingObject],
        published_after: Option<u64>,
    ) -> Result<usize, ConnectorError> {
        let kept: Vec<String> = keep
            .iter()
            .filter_map(|k| serde_json::from_str::<UploadToken>(&k.token).ok())
            .map(|t| t.upload)
            .collect();
        let mut removed = 0;
        for (key, upload) in self.s3.list_uploads(&self.bucket, &self.prefix)? {
            if object_epoch(file_name(&key), instance).is_some() && !kept.contains(&upload) {
                self.s3.abort_upload(&self.bucket, &key, &upload)?;
                removed += 1;
            }
        }
        if let Some(after) = published_after {
            let later: Vec<String> = self
                .s3
                .list(&self.bucket, &self.prefix, None)?
                .into_iter()
                .filter(|o| object_epoch(file_name(&o.key), instance).is_some_and(|e| e > after))
                .map(|o| o.key)
                .collect();
            self.s3.delete(&self.bucket, &later)?;
            removed += later.len();
        }
        Ok(removed)
    }
}

/// One object being written: buffered, with full parts uploaded as they fill.
struct S3Writer {
    s3: S3,
    bucket: String,
    key: String,
    part_size: usize,
    buffer: Vec<u8>,
    /// The multipart upload, once the first part went up (or the object was prepared).
    upload: Option<String>,
    parts: Vec<String>,
    bytes: u64,
    /// Prepared or committed: the upload is no longer this writer's to abort.
    done: bool,
}

impl S3Writer {
    fn upload_id(&mut self) -> Result<String, ConnectorError> {
        match &self.upload {
            Some(id) => Ok(id.clone()),
            None => {
                let id = self.s3.create_upload(&self.bucket, &self.key)?;
                self.upload = Some(id.clone());
                Ok(id)
            }
        }
    }

    /// Uploads what is buffered as the next part.
    fn upload_buffer(&mut self) -> Result<(), ConnectorError> {
        let upload = self.upload_id()?;
        let body = Bytes::from(std::mem::take(&mut self.buffer));
        let number = self.parts.len() as i32 + 1;
        let etag = self
            .s3
            .upload_part(&self.bucket, &self.key, &upload, number, body)?;
        self.parts.push(etag);
        Ok(())
    }

    fn pending(&self, token: String) -> PendingObject {
        PendingObject {
            name: url(&self.bucket, &self.key),
            bytes: self.bytes,
            rows: 0,
            token,
        }
    }
}

impl Write for S3Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        self.bytes += buf.len() as u64;
        if self.buffer.len() >= self.part_size {
            self.upload_buffer().map_err(io::Error::other)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for S3Writer {
    fn prepare(mut self: Box<Self>) -> Result<PendingObject, ConnectorError> {
        // The last part (any size; the only part of a small object).
        if !self.buffer.is_empty() || self.parts.is_empty() {
            self.upload_buffer()?;
        }
        let token = UploadToken {
            upload: self.upload_id()?,
            parts: self.parts.clone(),
        };
        let token = serde_json::to_string(&token)
            .map_err(|e| ConnectorError::internal(format!("recording an upload: {e}")))?;
        self.done = true;
        Ok(self.pending(token))
    }

    fn commit(mut self: Box<Self>) -> Result<PendingObject, ConnectorError> {
        if self.upload.is_none() {
            let body = Bytes::from(std::mem::take(&mut self.buffer));
            self.s3.put(&self.bucket, &self.key, body)?;
        } else {
            if !self.buffer.is_empty() {
                self.upload_buffer()?;
            }
            let upload = self.upload_id()?;
            complete(
                &self.s3,
                &self.bucket,
                &self.key,
                &upload,
                &self.parts,
                self.bytes,
            )?;
        }
        self.done = true;
        Ok(self.pending(String::new()))
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if !self.done
            && let Some(upload) = &self.upload
        {
            // Best effort, and quick (a failing run may drop many writers): a restart aborts
            // what is left (the key carries the instance id).
            let once = self.s3.clone().with_retry_policy(RetryPolicy {
                attempts: 2,
                ..RetryPolicy::default()
            });
            let _ = once.abort_upload(&self.bucket, &self.key, upload);
        }
    }
}
