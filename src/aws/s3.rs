//! A blocking S3 client for connectors: every call retries throttling, 5xx and transport
//! failures with backoff and jitter, and fails with a [`ConnectorError`] that says whose
//! problem it is. Used by the bucketed sink's object store, the checkpoint store and the
//! `file` source.

use std::io::Read;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::RequestChecksumCalculation;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use bytes::Bytes;

use super::{Aws, AwsSettings, Failure, RetryPolicy, Service, retry};
use crate::runtime::ConnectorError;

/// `s3://bucket/key-or-prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub key: String,
}

impl S3Url {
    /// Parses `s3://bucket/key`; `None` for other URLs or an empty bucket.
    pub fn parse(url: &str) -> Option<S3Url> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| S3Url {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// The key as a prefix: empty, or ending with `/`.
    pub fn prefix(&self) -> String {
        if self.key.is_empty() || self.key.ends_with('/') {
            self.key.clone()
        } else {
            format!("{}/", self.key)
        }
    }
}

/// `s3://bucket/key`.
pub fn url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// How completing a multipart upload went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Completed,
    /// The upload is not there: completed before (a restart publishing again) or aborted.
    NoSuchUpload,
}

/// An S3 client with its own runtime; cheap to clone.
#[derive(Clone)]
pub struct S3 {
    aws: Aws,
    client: Client,
    policy: RetryPolicy,
}

impl S3 {
    /// A client for `settings` (region, endpoint; path-style addressing with a custom endpoint
    /// unless `force_path_style` says otherwise).
    ///
    /// # Errors
    /// As [`Aws::connect`].
    pub fn connect(
        settings: &AwsSettings,
        force_path_style: Option<bool>,
    ) -> Result<S3, ConnectorError> {
        let aws = Aws::connect(Service::S3, settings)?;
        let mut config = aws_sdk_s3::config::Builder::from(&aws.config)
            // Checksums only where S3 requires them: S3-compatible servers often reject the
            // newer default checksum headers.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
        if let Some(endpoint) = &aws.endpoint {
            config = config.endpoint_url(endpoint.clone());
        }
        config = config.force_path_style(force_path_style.unwrap_or(aws.endpoint.is_some()));
        let client = Client::from_conf(config.build());
        Ok(S3 {
            aws,
            client,
            policy: RetryPolicy::default(),
        })
    }

    /// The same client with another retry policy (tests make failures quick).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> S3 {
        self.policy = policy;
        self
    }

    pub fn aws(&self) -> &Aws {
        &self.aws
    }

    fn fail<E>(
        &self,
        e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
        what: &str,
        bucket: &str,
    ) -> ConnectorError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        Failure::of(e).to_error(what, bucket, &self.aws)
    }

    /// Checks credentials and that `bucket` exists and is reachable in the configured region.
    ///
    /// # Errors
    /// Missing credentials, a missing bucket, a wrong region, access denied.
    pub fn check_bucket(&self, bucket: &str) -> Result<(), ConnectorError> {
        self.aws.check_credentials()?;
        let what = &format!("checking s3://{bucket}/");
        self.aws.block_on(retry(&self.policy, || async move {
            self.client
                .head_bucket()
                .bucket(bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.fail(&e, what, bucket))
        }))
    }

    /// Writes an object in one request.
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn put(&self, bucket: &str, key: &str, body: Bytes) -> Result<(), ConnectorError> {
        let what = &format!("writing {}", url(bucket, key));
        let body = &body;
        self.aws.block_on(retry(&self.policy, || async move {
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.fail(&e, what, bucket))
        }))
    }

    /// An object's bytes, or `None` when there is no such object.
    ///
    /// # Errors
    /// When it cannot be read.
    pub fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, ConnectorError> {
        let what = &format!("reading {}", url(bucket, key));
        self.aws.block_on(retry(&self.policy, || async move {
            let out = match self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if Failure::of(&e).code.as_deref() == Some("NoSuchKey") => {
                    return Ok(None);
                }
                Err(e) => return Err(self.fail(&e, what, bucket)),
            };
            let bytes = out.body.collect().await.map_err(|e| {
                ConnectorError::external(format!("{what}: the download broke off: {e}"), true)
            })?;
            Ok(Some(bytes.to_vec()))
        }))
    }

    /// An object's size, or `None` when there is no such object.
    ///
    /// # Errors
    /// When it cannot be asked for.
    pub fn size(&self, bucket: &str, key: &str) -> Result<Option<u64>, ConnectorError> {
        let what = &format!("reading {}", url(bucket, key));
        self.aws.block_on(retry(&self.policy, || async move {
            match self
                .client
                .head_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
            {
                Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
                Err(e) => {
                    let f = Failure::of(&e);
                    if f.status == Some(404) {
                        Ok(None)
                    } else {
                        Err(f.to_error(what, bucket, &self.aws))
                    }
                }
            }
        }))
    }

    /// Objects under `prefix`, in key order; at most `limit` of them.
    ///
    /// # Errors
    /// When the bucket cannot be listed.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        limit: Option<usize>,
    ) -> Result<Vec<ObjectInfo>, ConnectorError> {
        let what = &format!("listing {}", url(bucket, prefix));
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let current = &token;
            let page = self.aws.block_on(retry(&self.policy, || async move {
                let mut request = self.client.list_objects_v2().bucket(bucket).prefix(prefix);
                if let Some(t) = current {
                    request = request.continuation_token(t);
                }
                if let Some(l) = limit {
                    request = request.max_keys(l.clamp(1, 1000) as i32);
                }
                request
                    .send()
                    .await
                    .map_err(|e| self.fail(&e, what, bucket))
            }))?;
            for o in page.contents() {
                if let Some(key) = o.key() {
                    objects.push(ObjectInfo {
                        key: key.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
            if limit.is_some_and(|l| objects.len() >= l) {
                objects.truncate(limit.unwrap_or(usize::MAX));
                break;
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(objects)
    }

    /// Deletes objects (a thousand per request).
    ///
    /// # Errors
    /// When one cannot be deleted.
    pub fn delete(&self, bucket: &str, keys: &[String]) -> Result<(), ConnectorError> {
        for chunk in keys.chunks(1000) {
            let what = &format!("deleting {} objects in s3://{bucket}/", chunk.len());
            let objects: Vec<ObjectIdentifier> = chunk
                .iter()
                .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
                .collect();
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| ConnectorError::internal(format!("{what}: {e}")))?;
            let delete = &delete;
            let out = self.aws.block_on(retry(&self.policy, || async move {
                self.client
                    .delete_objects()
                    .bucket(bucket)
                    .delete(delete.clone())
                    .send()
                    .await
                    .map_err(|e| self.fail(&e, what, bucket))
            }))?;
            if let Some(e) = out.errors().first() {
                return Err(ConnectorError::external(
                    format!(
                        "{what}: {} could not be deleted: {}",
                        url(bucket, e.key().unwrap_or("?")),
                        e.message().or(e.code()).unwrap_or("unknown error")
                    ),
                    false,
                ));
            }
        }
        Ok(())
    }

    /// Starts a multipart upload; returns its id.
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn create_upload(&self, bucket: &str, key: &str) -> Result<String, ConnectorError> {
        let what = &format!("starting an upload of {}", url(bucket, key));
        self.aws.block_on(retry(&self.policy, || async move {
            let out = self
                .client
                .create_multipart_upload()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| self.fail(&e, what, bucket))?;
            out.upload_id().map(str::to_string).ok_or_else(|| {
                ConnectorError::external(format!("{what}: S3 returned no upload id"), false)
            })
        }))
    }

    /// Uploads part `number` (1-based) of an upload; returns its ETag.
    ///
    /// # Errors
    /// When it cannot be uploaded.
    pub fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload: &str,
        number: i32,
        body: Bytes,
    ) -> Result<String, ConnectorError> {
        let what = &format!("uploading part {number} of {}", url(bucket, key));
        let body = &body;
        self.aws.block_on(retry(&self.policy, || async move {
            let out = self
                .client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload)
                .part_number(number)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .map_err(|e| self.fail(&e, what, bucket))?;
            out.e_tag().map(str::to_string).ok_or_else(|| {
                ConnectorError::external(format!("{what}: S3 returned no ETag"), false)
            })
        }))
    }

    /// Completes an upload from its parts' ETags (in order), making the object visible.
    ///
    /// # Errors
    /// When it cannot be completed (a missing upload is [`Completion::NoSuchUpload`]).
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload: &str,
        etags: &[String],
    ) -> Result<Completion, ConnectorError> {
        let what = &format!("completing the upload of {}", url(bucket, key));
        let parts: Vec<CompletedPart> = etags
            .iter()
            .enumerate()
            .map(|(i, etag)| {
                CompletedPart::builder()
                    .part_number(i as i32 + 1)
                    .e_tag(etag)
                    .build()
            })
            .collect();
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let completed = &completed;
        self.aws.block_on(retry(&self.policy, || async move {
            match self
                .client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload)
                .multipart_upload(completed.clone())
                .send()
                .await
            {
                Ok(_) => Ok(Completion::Completed),
                Err(e) if Failure::of(&e).code.as_deref() == Some("NoSuchUpload") => {
                    Ok(Completion::NoSuchUpload)
                }
                Err(e) => Err(self.fail(&e, what, bucket)),
            }
        }))
    }

    /// Aborts an upload (one that is already gone is fine).
    ///
    /// # Errors
    /// When it cannot be aborted.
    pub fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload: &str,
    ) -> Result<(), ConnectorError> {
        let what = &format!("aborting the upload of {}", url(bucket, key));
        self.aws.block_on(retry(&self.policy, || async move {
            match self
                .client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if Failure::of(&e).code.as_deref() == Some("NoSuchUpload") => Ok(()),
                Err(e) => Err(self.fail(&e, what, bucket)),
            }
        }))
    }

    /// Open multipart uploads under `prefix`: (key, upload id).
    ///
    /// # Errors
    /// When they cannot be listed.
    pub fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, ConnectorError> {
        let what = &format!("listing uploads under {}", url(bucket, prefix));
        let mut uploads = Vec::new();
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            let current = &markers;
            let page = self.aws.block_on(retry(&self.policy, || async move {
                self.client
                    .list_multipart_uploads()
                    .bucket(bucket)
                    .prefix(prefix)
                    .set_key_marker(current.0.clone())
                    .set_upload_id_marker(current.1.clone())
                    .send()
                    .await
                    .map_err(|e| self.fail(&e, what, bucket))
            }))?;
            for u in page.uploads() {
                if let (Some(k), Some(id)) = (u.key(), u.upload_id()) {
                    uploads.push((k.to_string(), id.to_string()));
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            let next = (
                page.next_key_marker().map(str::to_string),
                page.next_upload_id_marker().map(str::to_string),
            );
            if next == markers || next.0.is_none() {
                break;
            }
            markers = next;
        }
        Ok(uploads)
    }

    /// A reader of an object from byte `offset`, which picks up where it broke off when a
    /// download fails midway.
    ///
    /// # Errors
    /// When the object cannot be opened.
    pub fn open_read(
        &self,
        bucket: &str,
        key: &str,
        offset: u64,
    ) -> Result<ObjectReader, ConnectorError> {
        let mut reader = ObjectReader {
            s3: self.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            position: offset,
            end: None,
            body: None,
            chunk: Bytes::new(),
        };
        reader.reopen()?;
        Ok(reader)
    }
}

/// Streams one object; a broken download is resumed with a ranged GET from where it stopped.
pub struct ObjectReader {
    s3: S3,
    bucket: String,
    key: String,
    /// Absolute offset of the next byte to hand out.
    position: u64,
    /// The object's size, once known.
    end: Option<u64>,
    body: Option<ByteStream>,
    chunk: Bytes,
}

impl ObjectReader {
    fn reopen(&mut self) -> Result<(), ConnectorError> {
        self.body = None;
        if self.end.is_some_and(|end| self.position >= end) {
            return Ok(());
        }
        let what = &format!("reading {}", url(&self.bucket, &self.key));
        let s3 = &self.s3;
        let (bucket, key, position) = (&self.bucket, &self.key, self.position);
        let out = s3.aws.block_on(retry(&s3.policy, || async move {
            let mut request = s3.client.get_object().bucket(bucket).key(key);
            if position > 0 {
                request = request.range(format!("bytes={position}-"));
            }
            match request.send().await {
                Ok(out) => Ok(Some(out)),
                // Ranged past the end: nothing left.
                Err(e) if Failure::of(&e).status == Some(416) => Ok(None),
                Err(e) => Err(s3.fail(&e, what, bucket)),
            }
        }))?;
        let Some(out) = out else {
            self.end = Some(self.position);
            return Ok(());
        };
        if self.end.is_none() {
            let length = out.content_length().unwrap_or(0).max(0) as u64;
            self.end = Some(self.position + length);
        }
        self.body = Some(out.body);
        Ok(())
    }

    /// The next piece of the body, resuming a broken download.
    fn next_chunk(&mut self) -> Result<Option<Bytes>, ConnectorError> {
        let mut failures = 0;
        loop {
            if self.end.is_some_and(|end| self.position >= end) {
                return Ok(None);
            }
            let Some(body) = self.body.as_mut() else {
                self.reopen()?;
                if self.body.is_none() {
                    return Ok(None);
                }
                continue;
            };
            let next = self.s3.aws.block_on(body.next());
            match next {
                Some(Ok(bytes)) if bytes.is_empty() => {}
                Some(Ok(bytes)) => return Ok(Some(bytes)),
                // Ended early, or broke off: ask again from here.
                None | Some(Err(_)) => {
                    failures += 1;
                    if failures > self.s3.policy.attempts {
                        return Err(ConnectorError::external(
                            format!(
                                "reading {}: the download broke off {failures} times",
                                url(&self.bucket, &self.key)
                            ),
                            true,
                        ));
                    }
                    let pause = self.s3.policy.backoff(failures);
                    self.s3.aws.block_on(tokio::time::sleep(pause));
                    self.reopen()?;
                }
            }
        }
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.chunk.is_empty() {
            match self.next_chunk() {
                Ok(Some(c)) => self.chunk = c,
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        self.position += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_bucket_and_prefix() {
        let u = S3Url::parse("s3://b/x/y").unwrap();
        assert_eq!((u.bucket.as_str(), u.key.as_str()), ("b", "x/y"));
        assert_eq!(u.prefix(), "x/y/");
        assert_eq!(S3Url::parse("s3://b").unwrap().prefix(), "");
        assert_eq!(S3Url::parse("s3://b/p/").unwrap().prefix(), "p/");
        assert!(S3Url::parse("s3:///x").is_none());
        assert!(S3Url::parse("file:///x").is_none());
    }
}
