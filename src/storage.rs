//! The object store behind uploads: S3 (or any S3-compatible endpoint), the local
//! filesystem, or memory (tests), all through `object_store`.
//!
//! Owns object keys and public URLs. Keys are never steered by the client: they are
//! `<prefix><sha256>.<ext>` with the extension of the *detected* type, so the same image
//! uploaded twice is one object. Credentials for S3 come from the usual AWS environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, web identity, ECS or
//! instance metadata) and are never logged.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::config;

pub mod policy;

/// `Cache-Control` of stored objects: content-addressed, so they never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Characters left as they are in a URL path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the {backend} object store")]
    Open {
        backend: &'static str,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot create {}", dir.display())]
    CreateDir {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("object store write of {key} failed")]
    Put {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("object store read of {key} failed")]
    Get {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("object store did not answer within {after:?}")]
    Timeout { after: Duration },
}

/// Where public URLs point.
#[derive(Debug, Clone)]
enum PublicBase {
    /// A fixed base: a CDN, or the bucket's own URL; the key is appended.
    Fixed(String),
    /// Gatehouse serves the objects itself at `/media/<key>` on the request's host, or
    /// under `public_url` when one is set.
    Media(Option<String>),
}

/// A configured object store.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    prefix: String,
    base: PublicBase,
    attributes: bool,
    timeout: Duration,
}

impl Store {
    pub fn from_config(cfg: &config::Storage, timeout: Duration) -> Result<Store, Error> {
        let (inner, base, attributes): (Arc<dyn ObjectStore>, _, _) = match &cfg.backend {
            config::StorageBackend::Local { dir } => {
                std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
                    dir: dir.clone(),
                    source,
                })?;
                let fs = LocalFileSystem::new_with_prefix(dir).map_err(|source| Error::Open {
                    backend: "local",
                    source,
                })?;
                // The local store keeps no attributes; /media derives them from the key.
                (
                    Arc::new(fs),
                    PublicBase::Media(cfg.public_url.clone()),
                    false,
                )
            }
            config::StorageBackend::Memory => (
                Arc::new(InMemory::new()),
                PublicBase::Media(cfg.public_url.clone()),
                true,
            ),
            config::StorageBackend::S3 {
                bucket,
                region,
                endpoint,
            } => {
                // Retries stay inside the request's storage deadline: a client waits for
                // `timeouts.storage` at most, then gets 503.
                let retry = object_store::RetryConfig {
                    max_retries: 3,
                    retry_timeout: timeout,
                    ..Default::default()
                };
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_retry(retry);
                let base = match endpoint {
                    Some(endpoint) => {
                        builder = builder
                            .with_endpoint(endpoint)
                            .with_allow_http(endpoint.starts_with("http://"))
                            .with_virtual_hosted_style_request(false);
                        format!("{endpoint}/{}", utf8_percent_encode(bucket, SEGMENT))
                    }
                    None => format!("https://{bucket}.s3.{region}.amazonaws.com"),
                };
                let s3 = builder.build().map_err(|source| Error::Open {
                    backend: "s3",
                    source,
                })?;
                let base = cfg.public_url.clone().unwrap_or(base);
                (Arc::new(s3), PublicBase::Fixed(base), true)
            }
        };
        Ok(Store {
            inner,
            prefix: cfg.prefix.clone(),
            base,
            attributes,
            timeout,
        })
    }

    /// Does Gatehouse itself serve these objects at `/media/`?
    pub fn serves_media(&self) -> bool {
        matches!(self.base, PublicBase::Media(_))
    }

    /// Are public URLs built from the request's host (no `public_url`, objects served by
    /// Gatehouse itself)?
    pub fn url_uses_request_host(&self) -> bool {
        matches!(self.base, PublicBase::Media(None))
    }

    /// The key for content with this hash and detected extension.
    pub fn key_for(&self, sha256_hex: &str, extension: &str) -> String {
        format!("{}{sha256_hex}.{extension}", self.prefix)
    }

    /// The URL the world fetches `key` from. `host` is the request's host, used when
    /// Gatehouse serves the object itself and no `public_url` is set.
    pub fn public_url(&self, key: &str, host: Option<&str>) -> String {
        let path: Vec<String> = key
            .split('/')
            .map(|segment| utf8_percent_encode(segment, SEGMENT).to_string())
            .collect();
        let path = path.join("/");
        match &self.base {
            PublicBase::Fixed(base) => format!("{base}/{path}"),
            PublicBase::Media(Some(base)) => format!("{base}/media/{path}"),
            PublicBase::Media(None) => {
                format!("https://{}/media/{path}", host.unwrap_or("localhost"))
            }
        }
    }

    /// Store `bytes` under `key` with its content type and immutable cache headers.
    pub async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &'static str,
    ) -> Result<(), Error> {
        let mut options = PutOptions::default();
        if self.attributes {
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::ContentType, content_type.into());
            attributes.insert(Attribute::CacheControl, IMMUTABLE.into());
            options.attributes = attributes;
        }
        let path = ObjectPath::from(key);
        let put = self
            .inner
            .put_opts(&path, PutPayload::from_bytes(bytes), options);
        match tokio::time::timeout(self.timeout, put).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(Error::Put {
                key: key.to_owned(),
                source,
            }),
            Err(_) => Err(Error::Timeout {
                after: self.timeout,
            }),
        }
    }

    /// Read a whole object; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, Error> {
        let path = ObjectPath::from(key);
        let get = async { self.inner.get(&path).await?.bytes().await };
        match tokio::time::timeout(self.timeout, get).await {
            Ok(Ok(bytes)) => Ok(Some(bytes)),
            Ok(Err(object_store::Error::NotFound { .. })) => Ok(None),
            Ok(Err(source)) => Err(Error::Get {
                key: key.to_owned(),
                source,
            }),
            Err(_) => Err(Error::Timeout {
                after: self.timeout,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(backend: config::StorageBackend, public_url: Option<&str>) -> Store {
        Store::from_config(
            &config::Storage {
                backend,
                prefix: "products/".to_owned(),
                public_url: public_url.map(str::to_owned),
            },
            Duration::from_secs(5),
        )
        .expect("store")
    }

    #[test]
    fn urls_per_backend() {
        let s3 = |endpoint: Option<&str>| config::StorageBackend::S3 {
            bucket: "shop-uploads".to_owned(),
            region: "eu-west-1".to_owned(),
            endpoint: endpoint.map(str::to_owned),
        };
        let key = "products/ab.jpg";
        assert_eq!(
            store(s3(None), None).public_url(key, None),
            "https://shop-uploads.s3.eu-west-1.amazonaws.com/products/ab.jpg"
        );
        assert_eq!(
            store(s3(Some("http://127.0.0.1:9000")), None).public_url(key, None),
            "http://127.0.0.1:9000/shop-uploads/products/ab.jpg"
        );
        assert_eq!(
            store(s3(None), Some("https://cdn.example.com")).public_url(key, None),
            "https://cdn.example.com/products/ab.jpg"
        );
        assert_eq!(
            store(config::StorageBackend::Memory, None).public_url(key, Some("shop.example:8443")),
            "https://shop.example:8443/media/products/ab.jpg"
        );
    }

    #[test]
    fn key_segments_are_percent_encoded() {
        let s = store(
            config::StorageBackend::Memory,
            Some("https://cdn.example.com"),
        );
        assert_eq!(
            s.public_url("a b/c?d.png", None),
            "https://cdn.example.com/media/a%20b/c%3Fd.png"
        );
    }

    #[tokio::test]
    async fn memory_put_then_get() {
        let s = store(config::StorageBackend::Memory, None);
        let key = s.key_for("00ff", "png");
        assert_eq!(key, "products/00ff.png");
        s.put(&key, Bytes::from_static(b"x"), "image/png")
            .await
            .expect("put");
        assert_eq!(s.get(&key).await.expect("get").as_deref(), Some(&b"x"[..]));
        assert_eq!(s.get("products/none.png").await.expect("get"), None);
    }
}
