//! The uploads ledger: one record per accepted upload, in an embedded sled database.
//!
//! A record is written only after the object store confirmed the write, and flushed to
//! disk before the client hears "created". Ids are sled's monotonic ids, stored big-endian
//! so iteration order is upload order. Values are JSON, so the format can grow fields
//! without a migration. sled is kept behind this module so it can be swapped: nothing
//! else names it. S3 stays the source of truth for the objects themselves.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

const TREE: &str = "uploads/v1";
/// How long one flush to disk may take before the upload is answered with an error.
const FLUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
/// The most records one listing returns.
pub const MAX_LIST: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the ledger at {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("ledger storage failed")]
    Storage(#[from] sled::Error),
    #[error("ledger flush did not complete within {FLUSH_DEADLINE:?}")]
    FlushFailed,
    #[error("ledger record {id} is unreadable")]
    Decode {
        id: u64,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// True when another process holds the database (sled takes an exclusive lock).
    pub fn is_locked(&self) -> bool {
        match self {
            Error::Open {
                source: sled::Error::Io(io),
                ..
            } => io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock"),
            _ => false,
        }
    }
}

/// What the upload path knows when it records an upload.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub key: String,
    pub url: String,
    pub bytes: u64,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub sha256: String,
    pub filename: String,
}

/// One accepted upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: u64,
    pub key: String,
    pub url: String,
    pub bytes: u64,
    #[serde(rename = "type")]
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub sha256: String,
    /// The client's filename, sanitised (for display only; never a path).
    pub filename: String,
    /// RFC 3339, UTC.
    pub created: String,
}

#[derive(Debug, Clone)]
pub struct Ledger {
    db: sled::Db,
    tree: sled::Tree,
    /// The next id: one past the last record, so ids are dense across restarts (sled's
    /// own `generate_id` jumps by a million-sized block at every open).
    next_id: std::sync::Arc<AtomicU64>,
    /// Flushes run one at a time (see [`Ledger::flush`]).
    flushing: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Ledger {
    pub fn open(path: &Path) -> Result<Ledger, Error> {
        let open = || -> Result<Ledger, sled::Error> {
            let db = sled::Config::new()
                .path(path)
                .cache_capacity(16 * 1024 * 1024)
                .open()?;
            let tree = db.open_tree(TREE)?;
            let last = match tree.last()? {
                Some((key, _)) => u64::from_be_bytes(key.as_ref().try_into().unwrap_or([0; 8])),
                None => 0,
            };
            Ok(Ledger {
                db,
                tree,
                next_id: std::sync::Arc::new(AtomicU64::new(last + 1)),
                flushing: std::sync::Arc::new(tokio::sync::Mutex::new(())),
            })
        };
        open().map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })
    }

    /// Record an upload and flush it to disk.
    pub async fn insert(&self, new: NewRecord) -> Result<Record, Error> {
        // Ids start at 1, so `after=0` means "from the beginning".
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let record = Record {
            id,
            key: new.key,
            url: new.url,
            bytes: new.bytes,
            content_type: new.content_type,
            width: new.width,
            height: new.height,
            sha256: new.sha256,
            filename: new.filename,
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        };
        let value = serde_json::to_vec(&record).expect("a record always serialises");
        self.tree.insert(id.to_be_bytes(), value)?;
        self.flush().await?;
        Ok(record)
    }

    pub fn get(&self, id: u64) -> Result<Option<Record>, Error> {
        self.tree
            .get(id.to_be_bytes())?
            .map(|value| decode(id, &value))
            .transpose()
    }

    /// Records with ids greater than `after`, oldest first, at most `limit` (capped at
    /// [`MAX_LIST`]).
    pub fn list(&self, after: Option<u64>, limit: usize) -> Result<Vec<Record>, Error> {
        let start = after.map_or(0, |a| a.saturating_add(1));
        let mut out = Vec::new();
        for entry in self
            .tree
            .range(start.to_be_bytes()..)
            .take(limit.min(MAX_LIST))
        {
            let (key, value) = entry?;
            let id = u64::from_be_bytes(key.as_ref().try_into().unwrap_or([0; 8]));
            out.push(decode(id, &value)?);
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Flush everything to disk: after each insert, and at shutdown.
    ///
    /// sled 0.34's `flush_async` can deadlock when called concurrently (spacejam/sled#1308;
    /// found here by 40 concurrent uploads), so this runs the blocking `flush` on the
    /// blocking pool, one at a time (a flush also covers every insert before it), under a
    /// deadline.
    pub async fn flush(&self) -> Result<(), Error> {
        let _turn = self.flushing.lock().await;
        let db = self.db.clone();
        let flush = tokio::task::spawn_blocking(move || db.flush());
        match tokio::time::timeout(FLUSH_DEADLINE, flush).await {
            Ok(Ok(Ok(_))) => Ok(()),
            Ok(Ok(Err(e))) => Err(Error::Storage(e)),
            Ok(Err(_panicked)) => Err(Error::FlushFailed),
            Err(_) => Err(Error::FlushFailed),
        }
    }
}

fn decode(id: u64, value: &[u8]) -> Result<Record, Error> {
    serde_json::from_slice(value).map_err(|source| Error::Decode { id, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_record(n: u8) -> NewRecord {
        NewRecord {
            key: format!("products/{n}.png"),
            url: format!("https://x/media/products/{n}.png"),
            bytes: u64::from(n),
            content_type: "image/png".to_owned(),
            width: 1,
            height: 2,
            sha256: "00".repeat(32),
            filename: "a.png".to_owned(),
        }
    }

    #[tokio::test]
    async fn insert_get_list_in_order_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ids = {
            let ledger = Ledger::open(dir.path()).expect("open");
            let mut ids = Vec::new();
            for n in 0..5 {
                ids.push(ledger.insert(new_record(n)).await.expect("insert").id);
            }
            ids
        };
        // sled releases its file lock from a background thread after the drop.
        let mut reopened = Ledger::open(dir.path());
        for _ in 0..100 {
            match &reopened {
                Err(e) if e.is_locked() => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    reopened = Ledger::open(dir.path());
                }
                _ => break,
            }
        }
        let ledger = reopened.expect("reopen");
        assert_eq!(ledger.len(), 5);
        let got = ledger.get(ids[2]).expect("get").expect("present");
        assert_eq!(got.key, "products/2.png");
        let listed: Vec<u64> = ledger
            .list(None, 10)
            .expect("list")
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(listed, ids);
        let page: Vec<u64> = ledger
            .list(Some(ids[1]), 2)
            .expect("list")
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(page, ids[2..4].to_vec());
        assert_eq!(ledger.get(u64::MAX).expect("get"), None);
    }

    #[test]
    fn second_open_reports_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = Ledger::open(dir.path()).expect("open");
        let err = Ledger::open(dir.path()).expect_err("sled locks its directory");
        assert!(err.is_locked(), "{err:?}");
    }
}
