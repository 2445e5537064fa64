//! TEMPORARY STUB: replaced by the real validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Jpeg,
    Png,
}
impl Kind {
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Jpeg => "jpg",
            Kind::Png => "png",
        }
    }
    pub fn mime(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
        }
    }
    pub fn from_extension(ext: &str) -> Option<Kind> {
        match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Some(Kind::Jpeg),
            "png" => Some(Kind::Png),
            _ => None,
        }
    }
}
pub fn sniff(prefix: &[u8]) -> Option<Kind> {
    if prefix.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Kind::Jpeg)
    } else if prefix.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Kind::Png)
    } else {
        None
    }
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub kind: Kind,
    pub width: u32,
    pub height: u32,
}
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not an image")]
    NotAnImage,
}
pub fn validate(bytes: &[u8], _max_pixels: u64) -> Result<Info, Error> {
    let kind = sniff(bytes).ok_or(Error::NotAnImage)?;
    Ok(Info {
        kind,
        width: 1,
        height: 1,
    })
}
pub fn strip_metadata(bytes: &[u8], _kind: Kind) -> Result<Vec<u8>, Error> {
    Ok(bytes.to_vec())
}
