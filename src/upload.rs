//! The upload interceptor: `POST <upload.route>` with a multipart form.
//!
//! Stages, in order (each a failure with its own `code`, nothing stored before stage 5):
//! 1. **Framing**: `multipart/form-data` with a boundary; a `Content-Length` over the body
//!    cap is refused before a byte of body is read.
//! 2. **Streaming parse** (multer, fed by a bounded pump that counts every body byte):
//!    part count, part header size and text-field size are capped; a part with a filename
//!    in another field is refused; the file field may come anywhere, once.
//! 3. **File checks while it streams**: the filename's extension is allowed, the first
//!    bytes are a JPEG or PNG signature, the detected type agrees with the extension, and
//!    the byte count never passes `max_size` (the read stops at the first byte over).
//! 4. **Image validation** off the async threads: the image decodes (dimensions checked
//!    before allocating), then metadata is stripped losslessly.
//! 5. **Store** under `<prefix><sha256>.<ext>`; only after the store confirms, **record**
//!    in the ledger (flushed).
//! 6. **Answer**: forward the rewritten form to the route's upstream, or `201` with the record.
//!
//! The client's `Content-Type` for the part is never trusted; it is not even read.

pub mod form;
pub mod image;
pub mod policy;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::header::{
    HeaderValue, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, LOCATION,
};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, Semaphore};

use crate::config::{self, Upstream};
use crate::http::error::{Fault, RequestError};
use crate::http::{full, json, Body};
use crate::ledger::{self, Ledger};
use crate::proxy::{Forwarding, Proxy};
use crate::storage::{self, Store};
use form::Part;

/// Part headers larger than this are refused (multer itself caps them at 32 headers).
pub const MAX_PART_HEADER_BYTES: usize = 8 * 1024;
/// After refusing a body, read and discard at most this much more of it (or for
/// [`LINGER_TIME`]) so the client sees the answer instead of a reset; then close.
const LINGER_BYTES: u64 = 4 * 1024 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(2);
/// Uploads handled at once; each holds at most `max_body` bytes (about 4 MiB with the
/// defaults) in memory, so this bounds upload memory near 1 GiB.
const MAX_CONCURRENT_UPLOADS: usize = 256;
/// How long an upload waits for a slot before `503 busy`.
const SLOT_WAIT: Duration = Duration::from_secs(10);

/// Why an upload was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("request is not multipart/form-data with a boundary")]
    NotMultipart,
    #[error("host {host:?} is not one stored URLs may name")]
    UntrustedHost { host: String },
    #[error("malformed multipart body")]
    Malformed(#[source] multer::Error),
    #[error("malformed form part: {reason}")]
    BadPart { reason: &'static str },
    #[error("request body ended before the multipart form was complete")]
    Truncated(#[source] multer::Error),
    #[error("no file in field {field:?}")]
    MissingFile { field: String },
    #[error("more than one file in field {field:?}")]
    DuplicateFile { field: String },
    #[error("file in unexpected field {field:?}")]
    UnexpectedFile { field: String },
    #[error("more than {limit} form parts")]
    TooManyParts { limit: usize },
    #[error("part headers over {limit} bytes")]
    PartHeaderTooLarge { limit: usize },
    #[error("form field {field:?} over {limit} bytes")]
    FieldTooLarge { field: String, limit: u64 },
    #[error("file over {limit} bytes")]
    FileTooLarge { limit: u64 },
    #[error("request body over {limit} bytes")]
    BodyTooLarge { limit: u64 },
    #[error("request body not received within {after:?}")]
    BodyTimeout { after: Duration },
    #[error("file type not allowed: {reason}")]
    UnsupportedType { reason: String },
    #[error("file content is {detected} but the name says {declared}")]
    TypeMismatch {
        declared: &'static str,
        detected: &'static str,
    },
    #[error("image refused by validation")]
    CorruptImage(#[source] image::Error),
    #[error("the file is empty")]
    EmptyFile,
    #[error("all upload slots are taken")]
    Busy,
    #[error("storing the upload failed")]
    Storage(#[source] storage::Error),
    #[error("recording the upload failed")]
    Ledger(#[source] ledger::Error),
    #[error("image validation task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl Error {
    pub fn fault(&self) -> Fault {
        match self.status_and_code().0 {
            StatusCode::BAD_REQUEST | StatusCode::REQUEST_TIMEOUT => Fault::Client,
            _ => Fault::Internal,
        }
    }

    /// The status and the contract's `code`. Exhaustive on purpose.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        let bad = StatusCode::BAD_REQUEST;
        match self {
            Error::NotMultipart
            | Error::Malformed(_)
            | Error::Truncated(_)
            | Error::BadPart { .. } => (bad, "malformed_multipart"),
            Error::UntrustedHost { .. } => (bad, "untrusted_host"),
            Error::MissingFile { .. } => (bad, "missing_file"),
            Error::DuplicateFile { .. } => (bad, "duplicate_file"),
            Error::UnexpectedFile { .. } => (bad, "unexpected_file"),
            Error::TooManyParts { .. } => (bad, "too_many_parts"),
            Error::PartHeaderTooLarge { .. } => (bad, "part_header_too_large"),
            Error::FieldTooLarge { .. } => (bad, "field_too_large"),
            Error::FileTooLarge { .. } | Error::BodyTooLarge { .. } => (bad, "file_too_large"),
            Error::BodyTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Error::UnsupportedType { .. } => (bad, "unsupported_type"),
            Error::TypeMismatch { .. } => (bad, "type_mismatch"),
            Error::CorruptImage(e) => match e {
                image::Error::NotAnImage
                | image::Error::KindMismatch { .. }
                | image::Error::Unsupported { .. } => (bad, "unsupported_type"),
                image::Error::TooManyPixels { .. } | image::Error::AnimationTooLarge { .. } => {
                    (bad, "image_too_large")
                }
                image::Error::Malformed { .. }
                | image::Error::TooManyScans { .. }
                | image::Error::Undecodable { .. } => (bad, "corrupt_image"),
            },
            Error::EmptyFile => (bad, "corrupt_image"),
            Error::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            Error::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Error::Ledger(_) | Error::Task(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
            }
        }
    }

    /// What the client reads: says what to fix, never internal detail.
    pub fn client_message(&self) -> String {
        match self {
            Error::NotMultipart => "send the upload as multipart/form-data".to_owned(),
            Error::UntrustedHost { host } => format!(
                "uploads through the host {host:?} are not accepted: stored URLs would name it \
                 (the operator sets storage.public_url, or a [[route]] host)"
            ),
            Error::Malformed(e) => format!("the multipart form is malformed: {e}"),
            Error::BadPart { reason } => format!("the multipart form is malformed: {reason}"),
            Error::Truncated(_) => {
                "the request body ended before the multipart form was complete".to_owned()
            }
            Error::UnsupportedType { reason } => {
                format!("{reason}; only JPEG and PNG images are accepted")
            }
            Error::CorruptImage(e) => match e {
                image::Error::Unsupported { .. } => format!("this image cannot be accepted: {e}"),
                image::Error::TooManyPixels { .. } | image::Error::AnimationTooLarge { .. } => {
                    format!("the image is too large: {e}")
                }
                _ => format!("the image is corrupt or truncated: {e}"),
            },
            Error::Storage(_) => "storage is unavailable; try again later".to_owned(),
            Error::Busy => "too many uploads at once; try again in a moment".to_owned(),
            Error::Ledger(_) | Error::Task(_) => "internal error; try again later".to_owned(),
            Error::FileTooLarge { limit } => {
                format!("the file is larger than the limit of {limit} bytes")
            }
            Error::BodyTooLarge { limit } => {
                format!("the request body is larger than the limit of {limit} bytes for an upload")
            }
            Error::BodyTimeout { after } => {
                format!(
                    "the upload did not arrive within {} seconds",
                    after.as_secs()
                )
            }
            Error::TypeMismatch { declared, detected } => {
                format!("the file name says {declared} but the content is {detected}")
            }
            Error::EmptyFile => "the file is empty".to_owned(),
            Error::MissingFile { field } => format!("no file was sent in the field {field:?}"),
            Error::DuplicateFile { field } => {
                format!("send one file in the field {field:?}, not several")
            }
            Error::UnexpectedFile { field } => {
                format!("a file was sent in the field {field:?}; only the image field takes a file")
            }
            Error::TooManyParts { limit } => format!("the form has more than {limit} parts"),
            Error::PartHeaderTooLarge { limit } => {
                format!("a part's headers are larger than {limit} bytes")
            }
            Error::FieldTooLarge { field, limit } => {
                format!("the field {field:?} is larger than {limit} bytes")
            }
        }
    }
}

/// Everything forwarding needs from the request path.
pub struct Forward<'a> {
    pub proxy: &'a Proxy,
    /// The upstream of the route that matches `upload.route`, when forwarding is on.
    pub upstream: Option<&'a Upstream>,
    pub fwd: &'a Forwarding,
}

/// The upload interceptor for one configuration.
#[derive(Debug)]
pub struct Handler {
    config: config::Upload,
    body_deadline: Duration,
    /// Hosts a stored URL may name when it is built from the request (lowercase, no port).
    trusted_hosts: Vec<String>,
    store: Store,
    ledger: Ledger,
    slots: Semaphore,
    validators: Arc<Semaphore>,
}

/// The accepted file, before storing.
struct Received {
    filename: String,
    kind: image::Kind,
    data: Bytes,
}

impl Handler {
    /// `trusted_hosts`: besides loopback names, the hosts a URL built from the request may
    /// name (the configured route hosts).
    pub fn new(
        config: config::Upload,
        body_deadline: Duration,
        trusted_hosts: Vec<String>,
        store: Store,
        ledger: Ledger,
    ) -> Handler {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        if store.url_uses_request_host() {
            tracing::warn!(
                "stored URLs are built from the request host (localhost or a [[route]] host); \
                 set storage.public_url for a public site"
            );
        }
        Handler {
            config,
            body_deadline,
            trusted_hosts: trusted_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            store,
            ledger,
            slots: Semaphore::new(MAX_CONCURRENT_UPLOADS),
            validators: Arc::new(Semaphore::new(cpus)),
        }
    }

    /// Is `path` (already normalized) the upload route or under it? Compared the way
    /// lenient application frameworks route: case-insensitively, ignoring a trailing
    /// slash and `;params` in segments. Anything such a framework would hand to its
    /// upload handler must come through here first.
    pub fn covers(&self, path: &str) -> bool {
        let (route, path) = (canonical(&self.config.route), canonical(path));
        path == route
            || path
                .strip_prefix(&route)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// Is `path` the upload route itself (where any POST is an upload, multipart or not)?
    pub fn is_route(&self, path: &str) -> bool {
        canonical(path) == canonical(&self.config.route)
    }

    /// May a URL built from this request host name it? Loopback names, and the hosts
    /// the configuration names; never whatever a client happens to send.
    fn host_trusted(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return false };
        let name = crate::router::strip_port(host).to_ascii_lowercase();
        let ip = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>();
        name == "localhost"
            || ip.is_ok_and(|ip| ip.is_loopback())
            || self.trusted_hosts.contains(&name)
    }

    pub fn forwards(&self) -> bool {
        self.config.forward
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn handle(
        &self,
        req: Request<Incoming>,
        host: Option<&str>,
        forward: Forward<'_>,
    ) -> Result<Response<Body>, RequestError> {
        let (parts, body) = req.into_parts();
        let max_body = self.config.max_body();
        let boundary = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| multer::parse_boundary(ct).ok());
        let declared_length = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let untrusted = self.store.url_uses_request_host() && !self.host_trusted(host);
        let early = match (&boundary, declared_length) {
            _ if untrusted => Some(Error::UntrustedHost {
                host: host.unwrap_or("").to_owned(),
            }),
            (None, _) => Some(Error::NotMultipart),
            (_, Some(n)) if n > max_body => Some(Error::BodyTooLarge { limit: max_body }),
            _ => None,
        };
        if let Some(error) = early {
            // A client waiting on `100-continue` never sends the body: don't ask for it.
            if !parts.headers.contains_key(EXPECT) {
                tokio::spawn(linger(body));
            }
            return Err(error.into());
        }
        let boundary = boundary.expect("checked above");
        let Ok(slot) = tokio::time::timeout(SLOT_WAIT, self.slots.acquire()).await else {
            tokio::spawn(linger(body));
            return Err(Error::Busy.into());
        };
        let _slot = slot.expect("the upload semaphore is never closed");

        let flags = Arc::new(PumpFlags::default());
        let stream = pump(body, max_body, self.body_deadline, Arc::clone(&flags));
        let mut multipart = multer::Multipart::new(stream, boundary);
        let (received, kept) = self.read_form(&mut multipart, &flags).await?;
        drop(multipart);

        let record = self.store_and_record(received, host).await?;
        match forward.upstream.filter(|_| self.config.forward) {
            Some(upstream) => {
                let upstream_req = self.rewritten_form(parts, &kept, &record);
                Ok(forward
                    .proxy
                    .forward(upstream_req, upstream, host, forward.fwd)
                    .await?)
            }
            None => {
                let value = serde_json::to_value(&record).expect("a record always serialises");
                let mut response = json(StatusCode::CREATED, &value);
                if let Ok(location) = HeaderValue::from_str(&record.url) {
                    response.headers_mut().insert(LOCATION, location);
                }
                Ok(response)
            }
        }
    }

    /// Stages 4 and 5: validate and strip, store, and only then record.
    async fn store_and_record(
        &self,
        received: Received,
        host: Option<&str>,
    ) -> Result<ledger::Record, Error> {
        let (data, info) = self.validate(received.data, received.kind).await?;
        let sha256 = hex::encode(Sha256::digest(&data));
        let key = self.store.key_for(&sha256, info.kind.extension());
        let bytes = data.len() as u64;
        self.store
            .put(&key, data, info.kind.mime())
            .await
            .map_err(Error::Storage)?;
        let record = self
            .ledger
            .insert(ledger::NewRecord {
                url: self.store.public_url(&key, host),
                key,
                bytes,
                content_type: info.kind.mime().to_owned(),
                width: info.width,
                height: info.height,
                sha256,
                filename: policy::sanitise_filename(&received.filename),
            })
            .await
            .map_err(Error::Ledger)?;
        tracing::info!(id = record.id, key = %record.key, bytes, kind = info.kind.extension(), "upload stored");
        Ok(record)
    }

    /// The request for the upstream: the client's method, URI and headers with the form
    /// rebuilt around the stored object's URL fields.
    fn rewritten_form(
        &self,
        parts: http::request::Parts,
        kept: &[Part],
        record: &ledger::Record,
    ) -> Request<Body> {
        let url_field = &self.config.url_field;
        let fields = vec![
            (url_field.clone(), record.url.clone()),
            (format!("{url_field}_key"), record.key.clone()),
            (format!("{url_field}_type"), record.content_type.clone()),
            (format!("{url_field}_bytes"), record.bytes.to_string()),
        ];
        let mut boundary = format!("gatehouse-{}", &record.sha256[..32]);
        let mut salt = record.id;
        while form::collides(kept, &boundary) {
            salt = salt.wrapping_add(1);
            boundary = format!(
                "gatehouse-{:032x}",
                u128::from(salt) * 0x9E37_79B9_7F4A_7C15
            );
        }
        let body = form::encode(kept, &fields, &boundary);
        let length = body.len();
        let mut request = Request::from_parts(parts, full(body));
        let headers = request.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
                .expect("boundary is ASCII hex"),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        request
    }

    /// Stage 2 and 3: read every part; keep the small ones, check the file as it streams.
    async fn read_form(
        &self,
        multipart: &mut multer::Multipart<'_>,
        flags: &PumpFlags,
    ) -> Result<(Received, Vec<Part>), Error> {
        let classify = |e: multer::Error| {
            if flags.over_limit.load(Ordering::Relaxed) {
                return Error::BodyTooLarge {
                    limit: self.config.max_body(),
                };
            }
            if flags.timed_out.load(Ordering::Relaxed) {
                return Error::BodyTimeout {
                    after: self.body_deadline,
                };
            }
            match e {
                multer::Error::ReadHeaderFailed(httparse::Error::TooManyHeaders) => {
                    Error::PartHeaderTooLarge {
                        limit: MAX_PART_HEADER_BYTES,
                    }
                }
                multer::Error::IncompleteStream
                | multer::Error::IncompleteFieldData { .. }
                | multer::Error::IncompleteHeaders
                | multer::Error::StreamReadFailed(_) => Error::Truncated(e),
                e => Error::Malformed(e),
            }
        };
        let mut kept = Vec::new();
        let mut file: Option<Received> = None;
        let mut count = 0usize;
        while let Some(mut field) = multipart.next_field().await.map_err(classify)? {
            count += 1;
            if count > self.config.max_fields {
                return Err(Error::TooManyParts {
                    limit: self.config.max_fields,
                });
            }
            let header_bytes: usize = field
                .headers()
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 4)
                .sum();
            if header_bytes > MAX_PART_HEADER_BYTES {
                return Err(Error::PartHeaderTooLarge {
                    limit: MAX_PART_HEADER_BYTES,
                });
            }
            let mut dispositions = field.headers().get_all(CONTENT_DISPOSITION).iter();
            let (Some(value), None) = (dispositions.next(), dispositions.next()) else {
                return Err(Error::BadPart {
                    reason: "each part needs exactly one Content-Disposition",
                });
            };
            let disposition =
                policy::parse_disposition(value.as_bytes()).map_err(|e| Error::BadPart {
                    reason: e.message(),
                })?;
            let name = disposition.name.unwrap_or_default();
            if name == self.config.field {
                if file.is_some() {
                    return Err(Error::DuplicateFile { field: name });
                }
                let filename = disposition.filename.unwrap_or_default();
                file = Some(self.read_file(&mut field, filename, &classify).await?);
                kept.push(Part::File);
            } else if disposition.filename.is_some() {
                return Err(Error::UnexpectedFile { field: name });
            } else {
                let content_type = field
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let limit = self.config.max_field_size;
                let mut data = BytesMut::new();
                while let Some(chunk) = field.chunk().await.map_err(classify)? {
                    if (data.len() + chunk.len()) as u64 > limit {
                        return Err(Error::FieldTooLarge { field: name, limit });
                    }
                    data.extend_from_slice(&chunk);
                }
                kept.push(Part::Field {
                    name,
                    filename: None,
                    content_type,
                    data: data.freeze(),
                });
            }
        }
        let Some(file) = file else {
            return Err(Error::MissingFile {
                field: self.config.field.clone(),
            });
        };
        Ok((file, kept))
    }

    async fn read_file(
        &self,
        field: &mut multer::Field<'_>,
        filename: String,
        classify: &impl Fn(multer::Error) -> Error,
    ) -> Result<Received, Error> {
        if filename.is_empty() {
            // No filename: a browser form submitted with no file chosen, or a text field
            // where the file belongs. Either way there is no file.
            return Err(Error::MissingFile {
                field: self.config.field.clone(),
            });
        }
        let first = field.chunk().await.map_err(classify)?;
        let extension = policy::extension(&filename).ok_or_else(|| Error::UnsupportedType {
            reason: format!("the file name {filename:?} has no extension"),
        })?;
        let declared = if self.config.types.contains(&extension) {
            image::Kind::from_extension(&extension)
        } else {
            None
        }
        .ok_or_else(|| Error::UnsupportedType {
            reason: format!("files ending in .{extension} are not accepted"),
        })?;

        let limit = self.config.max_size;
        let mut data = BytesMut::with_capacity(usize::try_from(limit.min(256 * 1024)).unwrap_or(0));
        let mut sniffed = false;
        let mut next = first;
        while let Some(chunk) = next {
            if (data.len() + chunk.len()) as u64 > limit {
                return Err(Error::FileTooLarge { limit });
            }
            data.extend_from_slice(&chunk);
            if !sniffed && data.len() >= 8 {
                check_type(&data, declared)?;
                sniffed = true;
            }
            next = field.chunk().await.map_err(classify)?;
        }
        if data.is_empty() {
            return Err(Error::EmptyFile);
        }
        if !sniffed {
            check_type(&data, declared)?;
        }
        Ok(Received {
            filename,
            kind: declared,
            data: data.freeze(),
        })
    }

    /// Stage 4, on the blocking pool, at most one per CPU at a time.
    async fn validate(
        &self,
        data: Bytes,
        kind: image::Kind,
    ) -> Result<(Bytes, image::Info), Error> {
        let max_pixels = self.config.max_pixels;
        let strip = self.config.strip_metadata;
        let permit = Arc::clone(&self.validators)
            .acquire_owned()
            .await
            .expect("the validator semaphore is never closed");
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let info = image::validate(&data, max_pixels).map_err(Error::CorruptImage)?;
            if info.kind != kind {
                return Err(mismatch(kind, info.kind));
            }
            let data = if strip {
                Bytes::from(image::strip_metadata(&data, info.kind).map_err(Error::CorruptImage)?)
            } else {
                data
            };
            Ok((data, info))
        })
        .await;
        result.map_err(Error::Task)?
    }
}

/// Lowercase, `;params` dropped from each segment, no trailing slash.
///
/// Deliberately more aggressive than routing: every escape is decoded (`%2F` and `%5C`
/// too, which WSGI servers and nginx turn into separators), backslashes count as
/// slashes, dot segments are resolved after that, and a format suffix on the segment
/// (`/products.json`, as Rails routes it) is ignored.
fn canonical(path: &str) -> String {
    let decoded: Vec<u8> = percent_encoding::percent_decode(path.as_bytes()).collect();
    let decoded = String::from_utf8_lossy(&decoded).replace('\\', "/");
    let normalized = crate::router::normalize_path(&decoded);
    let joined = normalized
        .split('/')
        .map(|segment| {
            let segment = segment.split(';').next().unwrap_or("");
            // `name.ext` -> `name`, but a bare `.ext` segment stays as it is.
            match segment.rsplit_once('.') {
                Some((stem, _)) if !stem.is_empty() => stem,
                _ => segment,
            }
        })
        .collect::<Vec<_>>()
        .join("/")
        .to_ascii_lowercase();
    joined.trim_end_matches('/').to_owned()
}

fn check_type(data: &[u8], declared: image::Kind) -> Result<(), Error> {
    match image::sniff(data) {
        None => Err(Error::UnsupportedType {
            reason: "the content is not a JPEG or PNG image".to_owned(),
        }),
        Some(detected) if detected != declared => Err(mismatch(declared, detected)),
        Some(_) => Ok(()),
    }
}

fn mismatch(declared: image::Kind, detected: image::Kind) -> Error {
    let name = |k: image::Kind| match k {
        image::Kind::Jpeg => "JPEG",
        image::Kind::Png => "PNG",
    };
    Error::TypeMismatch {
        declared: name(declared),
        detected: name(detected),
    }
}

/// Marker error: the body passed its cap or its deadline (the flags say which).
#[derive(Debug, thiserror::Error)]
#[error("request body refused by the pump")]
struct Refused;

/// What the pump saw, for the parser's error to be classified.
#[derive(Debug, Default)]
struct PumpFlags {
    over_limit: AtomicBool,
    timed_out: AtomicBool,
}

/// Feed the body to the multipart parser through a small channel, counting bytes. Past
/// `max` it flags `over_limit`, ends the stream with an error and lingers; when the parser
/// stops early (the channel closes) it lingers too. Memory stays at a few frames.
fn pump(
    body: Incoming,
    max: u64,
    within: Duration,
    flags: Arc<PumpFlags>,
) -> impl futures_util::Stream<Item = Result<Bytes, crate::http::BoxError>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<Result<Bytes, crate::http::BoxError>>(4);
    tokio::spawn(async move {
        let mut body = body;
        let mut total = 0u64;
        // The whole body must arrive by then: a stalled or trickling client cannot hold
        // an upload slot (and, on HTTP/1.1, its connection) open for ever.
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let Ok(frame) = tokio::time::timeout_at(deadline, body.frame()).await else {
                flags.timed_out.store(true, Ordering::Relaxed);
                let _ = tx.send(Err(Box::new(Refused))).await;
                return;
            };
            match frame {
                None => return,
                Some(Err(e)) => {
                    let _ = tx.send(Err(Box::new(e))).await;
                    return;
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    total += data.len() as u64;
                    if total > max {
                        flags.over_limit.store(true, Ordering::Relaxed);
                        let _ = tx.send(Err(Box::new(Refused))).await;
                        drop(tx);
                        linger(body).await;
                        return;
                    }
                    if tx.send(Ok(data)).await.is_err() {
                        linger(body).await;
                        return;
                    }
                }
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

/// Read and discard a refused body for a little while, so that an HTTP/1.1 client still
/// sending gets to read the answer before the connection closes.
async fn linger(mut body: Incoming) {
    let drain = async {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len() as u64;
                if seen > LINGER_BYTES {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}
