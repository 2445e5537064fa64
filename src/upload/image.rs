//! Upload image checks: what a file really is, whether it really decodes, and lossless
//! removal of privacy-relevant metadata.
//!
//! This module owns the byte-level rules for the two image kinds Gatehouse accepts (JPEG and
//! PNG). It is pure: no I/O, no async, no global state. The caller (the upload handler) owns the
//! size limit, the filename-extension rule and the "declared kind must match detected kind" rule.
//!
//! Invariants:
//! - [`validate`] walks the container structure itself first (JPEG markers, PNG chunks with their
//!   CRCs) and checks the declared dimensions against `max_pixels` *before* any decoder runs, so
//!   nothing proportional to the declared size is allocated for an oversized header.
//! - It then decodes every pixel (every frame of an APNG) and discards it, so "valid headers,
//!   garbage data" and truncated files are rejected. The decoders also get their own limits.
//! - Only what web browsers render is accepted: 8-bit Huffman-coded JPEG (baseline, extended,
//!   progressive) and standard PNG/APNG. Arithmetic, lossless, hierarchical and 12-bit JPEG are
//!   [`Error::Unsupported`].
//! - Nothing here panics on hostile input: every read is bounds-checked and decoder failures are
//!   returned as errors.
//! - [`strip_metadata`] never re-encodes pixels: it copies the image-relevant segments and chunks
//!   byte for byte and drops the rest, including anything after the JPEG EOI / PNG IEND.
//!
//! Cost, for the caller: both functions are CPU-bound and synchronous, so run them off the async
//! executor (`spawn_blocking`). A JPEG decode holds the whole frame in memory (about 5 bytes per
//! pixel for a baseline colour JPEG, more for progressive), so at 40 Mpx one validation can take
//! a few hundred MB; bound the number of concurrent validations. PNG decodes row by row and stays
//! small whatever its size.

use std::fmt;

/// The pixel limit the upload handler uses unless configured otherwise.
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

/// Memory limit handed to the PNG decoder for its internal buffers (row buffers, decompressed
/// ancillary chunks). The pixel pre-check bounds the image itself; this bounds a single row.
const PNG_DECODER_MEMORY_LIMIT: usize = 64 * 1024 * 1024;

/// An APNG may decode at most this many times `max_pixels` over all of its frames. Every frame
/// needs its own compressed data, so honest animations stay far below this; it stops a small file
/// from making the proxy inflate hundreds of full-size frames.
const ANIMATION_PIXEL_FACTOR: u64 = 4;

/// At most this many scans (SOS segments) per JPEG. Each progressive scan walks every block of
/// its components, so a small file with thousands of scans could pin a core; real encoders write
/// about 10. Same cap as zune-jpeg's default.
const MAX_JPEG_SCANS: usize = 100;

/// The 8-byte PNG file signature.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// Image kinds Gatehouse accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// JPEG (JFIF/Exif), 8-bit Huffman-coded.
    Jpeg,
    /// PNG, including animated PNG (APNG).
    Png,
}

impl Kind {
    /// The canonical filename extension, without the dot: `"jpg"` or `"png"`.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Jpeg => "jpg",
            Kind::Png => "png",
        }
    }

    /// The MIME type: `"image/jpeg"` or `"image/png"`.
    pub fn mime(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
        }
    }

    /// From a filename extension without the dot, case-insensitive: `jpg`/`jpeg` give
    /// [`Kind::Jpeg`], `png` gives [`Kind::Png`], anything else `None`.
    pub fn from_extension(ext: &str) -> Option<Kind> {
        if ext.eq_ignore_ascii_case("jpg") || ext.eq_ignore_ascii_case("jpeg") {
            Some(Kind::Jpeg)
        } else if ext.eq_ignore_ascii_case("png") {
            Some(Kind::Png)
        } else {
            None
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Jpeg => "jpeg",
            Kind::Png => "png",
        })
    }
}

/// Sniffs the magic bytes; needs at most the first 8 bytes.
///
/// Returns `None` unless the prefix starts with the JPEG SOI plus a marker byte (`FF D8 FF`) or the
/// full 8-byte PNG signature. A match says nothing about the rest of the file: use [`validate`].
pub fn sniff(prefix: &[u8]) -> Option<Kind> {
    if prefix.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Kind::Jpeg)
    } else if prefix.starts_with(&PNG_SIGNATURE) {
        Some(Kind::Png)
    } else {
        None
    }
}

/// What [`validate`] learned about an image that decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The detected kind (from the bytes, not from any name).
    pub kind: Kind,
    /// Width in pixels, as stored (before any EXIF orientation is applied).
    pub width: u32,
    /// Height in pixels, as stored (before any EXIF orientation is applied).
    pub height: u32,
}

/// Why a file is not an acceptable image. Every variant is the uploader's fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The magic bytes are neither JPEG nor PNG.
    #[error("not a jpeg or png image")]
    NotAnImage,
    /// [`strip_metadata`] was asked for one kind and given bytes of another (or of none).
    #[error("expected {expected} bytes")]
    KindMismatch {
        /// The kind the caller asked for.
        expected: Kind,
        /// What the magic bytes say.
        found: Option<Kind>,
    },
    /// The container structure is broken: truncated, bad chunk CRC, missing frame or scan, ...
    #[error("malformed {kind} image: {reason}")]
    Malformed {
        /// The kind the magic bytes announced.
        kind: Kind,
        /// What is wrong, as a short lowercase phrase.
        reason: &'static str,
    },
    /// A well-formed image that uses a coding feature browsers do not render.
    #[error("unsupported {kind} feature: {feature}")]
    Unsupported {
        /// The kind the magic bytes announced.
        kind: Kind,
        /// The feature, as a short lowercase phrase.
        feature: &'static str,
    },
    /// The declared dimensions exceed the pixel limit (checked before decoding).
    #[error("{kind} image of {width}x{height} pixels exceeds the limit of {limit} pixels")]
    TooManyPixels {
        /// The kind the magic bytes announced.
        kind: Kind,
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The `max_pixels` the caller passed.
        limit: u64,
    },
    /// A JPEG with more scans than allowed (a CPU-exhaustion shape, not a real encoder's output).
    #[error("jpeg image has more than {limit} scans")]
    TooManyScans {
        /// The scan limit.
        limit: usize,
    },
    /// The frames of an animated PNG add up to more pixels than allowed.
    #[error("animated png frames exceed the limit of {limit} decoded pixels")]
    AnimationTooLarge {
        /// The total pixel budget over all frames.
        limit: u64,
    },
    /// The structure looked right but the decoder rejected the data.
    #[error("{kind} image data does not decode")]
    Undecodable {
        /// The kind the magic bytes announced.
        kind: Kind,
        /// The decoder's error (its type is not part of this API).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl Error {
    fn malformed(kind: Kind, reason: &'static str) -> Self {
        Error::Malformed { kind, reason }
    }
}

/// Fully validates a complete file: magic bytes, container structure, declared dimensions
/// against `max_pixels`, and a full decode of every pixel (discarded).
///
/// Data after the JPEG EOI or PNG IEND is tolerated (phones append such trailers; browsers ignore
/// them); [`strip_metadata`] removes it.
pub fn validate(bytes: &[u8], max_pixels: u64) -> Result<Info, Error> {
    match sniff(bytes) {
        Some(Kind::Jpeg) => jpeg::validate(bytes, max_pixels),
        Some(Kind::Png) => png_image::validate(bytes, max_pixels),
        None => Err(Error::NotAnImage),
    }
}

/// Removes metadata losslessly (no pixel re-encoding) and returns the new bytes.
///
/// JPEG keeps SOI, APP0 JFIF (without its thumbnail), APP0 AVI1, APP2 ICC_PROFILE, APP14 Adobe,
/// every non-APP segment and the entropy-coded data byte for byte; it drops APP1 (Exif, XMP),
/// APP13 (IPTC), COM and every other APPn. PNG keeps the chunks that affect decoding or rendering
/// (IHDR, PLTE, IDAT, IEND, tRNS, gAMA, cHRM, sRGB, iCCP, sBIT, bKGD, pHYs, cICP, mDCV, cLLI and the
/// APNG chunks acTL/fcTL/fdAT) verbatim and drops the rest. An EXIF orientation other than 1 is
/// kept as a new minimal Exif block holding only that tag, so photos do not turn sideways.
///
/// Only the container structure is checked here, not the pixels: run [`validate`] first.
pub fn strip_metadata(bytes: &[u8], kind: Kind) -> Result<Vec<u8>, Error> {
    let found = sniff(bytes);
    if found != Some(kind) {
        return Err(Error::KindMismatch {
            expected: kind,
            found,
        });
    }
    match kind {
        Kind::Jpeg => jpeg::strip(bytes),
        Kind::Png => png_image::strip(bytes),
    }
}

/// Checks declared dimensions against the limit before anything is allocated for them.
fn check_pixels(kind: Kind, width: u32, height: u32, max_pixels: u64) -> Result<(), Error> {
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(Error::TooManyPixels {
            kind,
            width,
            height,
            limit: max_pixels,
        });
    }
    Ok(())
}

fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let slice = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes(slice.try_into().ok()?))
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(slice.try_into().ok()?))
}

/// EXIF (TIFF-structured) helpers shared by JPEG APP1 and PNG eXIf.
mod exif {
    /// The EXIF orientation tag in IFD0.
    const ORIENTATION_TAG: u16 = 0x0112;
    /// TIFF field type SHORT.
    const TYPE_SHORT: u16 = 3;

    /// Reads the Orientation tag (1..=8) from IFD0 of a TIFF structure, if present and sane.
    pub(super) fn orientation(tiff: &[u8]) -> Option<u16> {
        let big_endian = match tiff.get(..2)? {
            b"MM" => true,
            b"II" => false,
            _ => return None,
        };
        let u16_at = |at: usize| -> Option<u16> {
            let bytes: [u8; 2] = tiff.get(at..at.checked_add(2)?)?.try_into().ok()?;
            Some(if big_endian {
                u16::from_be_bytes(bytes)
            } else {
                u16::from_le_bytes(bytes)
            })
        };
        let u32_at = |at: usize| -> Option<u32> {
            let bytes: [u8; 4] = tiff.get(at..at.checked_add(4)?)?.try_into().ok()?;
            Some(if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            })
        };
        if u16_at(2)? != 42 {
            return None;
        }
        let ifd0 = usize::try_from(u32_at(4)?).ok()?;
        let entries = u16_at(ifd0)?;
        for index in 0..usize::from(entries) {
            let entry = ifd0.checked_add(2)?.checked_add(index.checked_mul(12)?)?;
            if u16_at(entry)? != ORIENTATION_TAG {
                continue;
            }
            if u16_at(entry + 2)? != TYPE_SHORT || u32_at(entry + 4)? == 0 {
                return None;
            }
            let value = u16_at(entry + 8)?;
            return (1..=8).contains(&value).then_some(value);
        }
        None
    }

    /// A minimal big-endian TIFF structure whose IFD0 holds only the Orientation tag.
    pub(super) fn orientation_only(orientation: u16) -> [u8; 26] {
        let [hi, lo] = orientation.to_be_bytes();
        [
            b'M', b'M', 0, 42, // byte order, magic
            0, 0, 0, 8, // offset of IFD0
            0, 1, // one entry
            0x01, 0x12, 0, 3, 0, 0, 0, 1, hi, lo, 0, 0, // Orientation, SHORT, count 1, value
            0, 0, 0, 0, // no next IFD
        ]
    }
}

/// JPEG: marker walk, validation and stripping.
mod jpeg {
    use super::{be_u16, check_pixels, exif, Error, Info, Kind, MAX_JPEG_SCANS};

    const KIND: Kind = Kind::Jpeg;
    const SOI: u8 = 0xD8;
    const EOI: u8 = 0xD9;
    const SOS: u8 = 0xDA;
    const APP0: u8 = 0xE0;
    const APP1: u8 = 0xE1;
    const APP2: u8 = 0xE2;
    const APP14: u8 = 0xEE;
    const COM: u8 = 0xFE;
    /// The APP1 identifier of an Exif block.
    const EXIF_ID: &[u8] = b"Exif\0\0";

    /// One piece of the file, in order.
    enum Item<'a> {
        /// A marker segment: `payload` excludes the marker and the length field.
        Segment { marker: u8, payload: &'a [u8] },
        /// A marker without a length (RSTn or TEM outside a scan).
        Standalone(u8),
        /// Entropy-coded data after an SOS header, up to the next marker.
        Entropy(&'a [u8]),
    }

    /// The frame header (SOFn).
    struct Frame {
        marker: u8,
        precision: u8,
        height: u16,
        width: u16,
        components: u8,
    }

    /// A walked file: SOI, the items, then EOI (anything after EOI is not part of it).
    struct Layout<'a> {
        items: Vec<Item<'a>>,
        frame: Frame,
        /// Offset just past EOI (read by the truncation tests).
        #[cfg_attr(not(test), allow(dead_code))]
        end: usize,
    }

    fn is_sof(marker: u8) -> bool {
        matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
    }

    /// Walks the marker structure from SOI to EOI. Garbage bytes between segments are skipped
    /// the way libjpeg and jpeg-decoder do.
    fn walk(bytes: &[u8]) -> Result<Layout<'_>, Error> {
        if !bytes.starts_with(&[0xFF, SOI]) {
            return Err(Error::NotAnImage);
        }
        let mut items = Vec::new();
        let mut frame = None;
        let mut scans = 0usize;
        let mut pos = 2;
        let end = loop {
            // Find the next marker: skip extraneous bytes, then fill bytes (0xFF).
            let Some(offset) = bytes[pos..].iter().position(|&b| b == 0xFF) else {
                return Err(Error::malformed(KIND, "truncated before end of image"));
            };
            pos += offset;
            while bytes.get(pos) == Some(&0xFF) {
                pos += 1;
            }
            let Some(&marker) = bytes.get(pos) else {
                return Err(Error::malformed(KIND, "truncated before end of image"));
            };
            pos += 1;
            match marker {
                // A stuffed zero outside a scan is garbage, as for the decoders.
                0x00 => continue,
                SOI => return Err(Error::malformed(KIND, "second start of image")),
                EOI => break pos,
                0x01 | 0xD0..=0xD7 => {
                    items.push(Item::Standalone(marker));
                    continue;
                }
                _ => {}
            }
            let Some(length) = be_u16(bytes, pos).map(usize::from) else {
                return Err(Error::malformed(KIND, "truncated segment"));
            };
            if length < 2 {
                return Err(Error::malformed(KIND, "segment length below 2"));
            }
            let Some(payload) = bytes.get(pos + 2..pos + length) else {
                return Err(Error::malformed(KIND, "truncated segment"));
            };
            pos += length;
            items.push(Item::Segment { marker, payload });
            if is_sof(marker) {
                if frame.is_some() {
                    return Err(Error::malformed(KIND, "more than one frame header"));
                }
                frame = Some(parse_frame(marker, payload)?);
            } else if marker == SOS {
                if frame.is_none() {
                    return Err(Error::malformed(KIND, "scan before frame header"));
                }
                scans += 1;
                if scans > MAX_JPEG_SCANS {
                    return Err(Error::TooManyScans {
                        limit: MAX_JPEG_SCANS,
                    });
                }
                let end = entropy_end(bytes, pos)?;
                items.push(Item::Entropy(&bytes[pos..end]));
                pos = end;
            }
        };
        let Some(frame) = frame else {
            return Err(Error::malformed(KIND, "no frame header"));
        };
        if scans == 0 {
            return Err(Error::malformed(KIND, "no scan"));
        }
        Ok(Layout { items, frame, end })
    }

    /// Returns the offset of the 0xFF that starts the first marker after entropy-coded data
    /// beginning at `start`. Stuffed zeros (FF 00), restart markers and fill bytes are data.
    fn entropy_end(bytes: &[u8], start: usize) -> Result<usize, Error> {
        let mut pos = start;
        loop {
            let Some(offset) = bytes[pos..].iter().position(|&b| b == 0xFF) else {
                return Err(Error::malformed(KIND, "truncated scan"));
            };
            let ff = pos + offset;
            let mut next = ff + 1;
            while bytes.get(next) == Some(&0xFF) {
                next += 1;
            }
            match bytes.get(next) {
                None => return Err(Error::malformed(KIND, "truncated scan")),
                Some(0x00 | 0xD0..=0xD7) => pos = next + 1,
                Some(_) => return Ok(ff),
            }
        }
    }

    fn parse_frame(marker: u8, payload: &[u8]) -> Result<Frame, Error> {
        let (Some(&precision), Some(height), Some(width), Some(&components)) = (
            payload.first(),
            be_u16(payload, 1),
            be_u16(payload, 3),
            payload.get(5),
        ) else {
            return Err(Error::malformed(KIND, "short frame header"));
        };
        if payload.len() != 6 + 3 * usize::from(components) {
            return Err(Error::malformed(KIND, "frame header length mismatch"));
        }
        Ok(Frame {
            marker,
            precision,
            height,
            width,
            components,
        })
    }

    /// Rejects what browsers do not render and what is too large, before any decoding.
    fn check_frame(frame: &Frame, max_pixels: u64) -> Result<(), Error> {
        let unsupported = |feature| {
            Err(Error::Unsupported {
                kind: KIND,
                feature,
            })
        };
        match frame.marker {
            0xC0..=0xC2 => {}
            0xC3 => return unsupported("lossless coding"),
            0xC5..=0xC7 => return unsupported("hierarchical coding"),
            _ => return unsupported("arithmetic coding"),
        }
        match frame.precision {
            8 => {}
            12 | 16 => return unsupported("sample precision other than 8 bits"),
            _ => return Err(Error::malformed(KIND, "invalid sample precision")),
        }
        if frame.width == 0 {
            return Err(Error::malformed(KIND, "zero width"));
        }
        if frame.height == 0 {
            return unsupported("height defined by a dnl marker");
        }
        if !matches!(frame.components, 1 | 3 | 4) {
            return unsupported("component count other than 1, 3 or 4");
        }
        check_pixels(
            KIND,
            u32::from(frame.width),
            u32::from(frame.height),
            max_pixels,
        )
    }

    pub(super) fn validate(bytes: &[u8], max_pixels: u64) -> Result<Info, Error> {
        let layout = walk(bytes)?;
        let frame = &layout.frame;
        check_frame(frame, max_pixels)?;
        let (width, height) = (u32::from(frame.width), u32::from(frame.height));
        // 8-bit samples, one byte per component: the exact size of the decoded buffer.
        let expected = u64::from(width) * u64::from(height) * u64::from(frame.components);
        let mut decoder = jpeg_decoder::Decoder::new(bytes);
        decoder.set_max_decoding_buffer_size(usize::try_from(expected).unwrap_or(usize::MAX));
        let pixels = decoder.decode().map_err(decode_error)?;
        if u64::try_from(pixels.len()).ok() != Some(expected) {
            return Err(Error::malformed(
                KIND,
                "decoded size differs from frame header",
            ));
        }
        Ok(Info {
            kind: KIND,
            width,
            height,
        })
    }

    fn decode_error(error: jpeg_decoder::Error) -> Error {
        use jpeg_decoder::UnsupportedFeature as F;
        let feature = match error {
            jpeg_decoder::Error::Unsupported(ref feature) => match feature {
                F::Hierarchical => "hierarchical coding",
                F::ArithmeticEntropyCoding => "arithmetic coding",
                F::SamplePrecision(_) => "sample precision other than 8 bits",
                F::ComponentCount(_) => "component count other than 1, 3 or 4",
                F::DNL => "height defined by a dnl marker",
                F::SubsamplingRatio | F::NonIntegerSubsamplingRatio => "chroma subsampling ratio",
                F::ColorTransform(_) => "colour transform",
            },
            _ => {
                return Error::Undecodable {
                    kind: KIND,
                    source: Box::new(error),
                }
            }
        };
        Error::Unsupported {
            kind: KIND,
            feature,
        }
    }

    /// What happens to a segment when stripping.
    enum Keep<'a> {
        Verbatim,
        Replace(Vec<u8>),
        Drop,
        /// An Exif block: dropped, but its orientation may be carried over.
        Exif(&'a [u8]),
    }

    fn classify(marker: u8, payload: &[u8]) -> Keep<'_> {
        match marker {
            APP0 if payload.starts_with(b"JFIF\0") => jfif_without_thumbnail(payload),
            // Motion-JPEG frames: tells decoders to use the default Huffman tables.
            APP0 if payload.starts_with(b"AVI1") => Keep::Verbatim,
            APP1 if payload.starts_with(EXIF_ID) => Keep::Exif(&payload[EXIF_ID.len()..]),
            APP2 if payload.starts_with(b"ICC_PROFILE\0") => Keep::Verbatim,
            APP14 if payload.starts_with(b"Adobe") => Keep::Verbatim,
            0xE0..=0xEF | COM => Keep::Drop,
            _ => Keep::Verbatim,
        }
    }

    /// JFIF 1.02 may embed an uncompressed thumbnail after the 14 fixed bytes.
    fn jfif_without_thumbnail(payload: &[u8]) -> Keep<'_> {
        match payload.get(..14) {
            Some(fixed) if payload.len() > 14 || fixed[12] != 0 || fixed[13] != 0 => {
                let mut fixed = fixed.to_vec();
                fixed[12] = 0;
                fixed[13] = 0;
                Keep::Replace(fixed)
            }
            _ => Keep::Verbatim,
        }
    }

    fn push_segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) -> Result<(), Error> {
        let Ok(length) = u16::try_from(payload.len() + 2) else {
            return Err(Error::malformed(KIND, "segment too long"));
        };
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(payload);
        Ok(())
    }

    pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, Error> {
        let layout = walk(bytes)?;
        let orientation = layout.items.iter().find_map(|item| match item {
            Item::Segment { marker, payload } => match classify(*marker, payload) {
                Keep::Exif(tiff) => Some(exif::orientation(tiff)),
                _ => None,
            },
            _ => None,
        });
        // Only the first Exif block counts, as for viewers; orientation 1 needs no block.
        let orientation_block = match orientation.flatten() {
            Some(value) if value != 1 => {
                let mut payload = EXIF_ID.to_vec();
                payload.extend_from_slice(&exif::orientation_only(value));
                Some(payload)
            }
            _ => None,
        };
        let mut out = Vec::with_capacity(bytes.len());
        out.extend_from_slice(&[0xFF, SOI]);
        let mut pending_exif = orientation_block.as_deref();
        for (index, item) in layout.items.iter().enumerate() {
            // The new Exif block goes right after SOI, or after a leading JFIF APP0.
            let leading_jfif = index == 0
                && matches!(item, Item::Segment { marker: APP0, payload } if payload.starts_with(b"JFIF\0"));
            if !leading_jfif {
                if let Some(payload) = pending_exif.take() {
                    push_segment(&mut out, APP1, payload)?;
                }
            }
            match item {
                Item::Segment { marker, payload } => match classify(*marker, payload) {
                    Keep::Verbatim => push_segment(&mut out, *marker, payload)?,
                    Keep::Replace(new) => push_segment(&mut out, *marker, &new)?,
                    Keep::Drop | Keep::Exif(_) => {}
                },
                Item::Standalone(marker) => out.extend_from_slice(&[0xFF, *marker]),
                Item::Entropy(data) => out.extend_from_slice(data),
            }
        }
        out.extend_from_slice(&[0xFF, EOI]);
        Ok(out)
    }

    /// Offset just past EOI, for tests that cut files short.
    #[cfg(test)]
    pub(super) fn structure_end(bytes: &[u8]) -> Option<usize> {
        walk(bytes).ok().map(|layout| layout.end)
    }
}

/// PNG: chunk walk (with CRCs), validation and stripping.
mod png_image {
    use std::io::Cursor;

    use super::{
        be_u32, check_pixels, exif, Error, Info, Kind, ANIMATION_PIXEL_FACTOR,
        PNG_DECODER_MEMORY_LIMIT, PNG_SIGNATURE,
    };

    const KIND: Kind = Kind::Png;

    /// Chunks that affect decoding or rendering; everything else is metadata and dropped.
    const KEPT_CHUNKS: [&[u8; 4]; 18] = [
        b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
        b"bKGD", b"pHYs", b"cICP", b"mDCV", b"cLLI", b"acTL", b"fcTL", b"fdAT",
    ];

    /// One chunk; `raw` is the whole chunk (length, type, data, CRC).
    struct Chunk<'a> {
        kind: [u8; 4],
        data: &'a [u8],
        raw: &'a [u8],
    }

    /// A walked file: every chunk from IHDR to IEND, CRCs checked.
    struct Layout<'a> {
        chunks: Vec<Chunk<'a>>,
        width: u32,
        height: u32,
        /// Offset just past IEND (read by the truncation tests).
        #[cfg_attr(not(test), allow(dead_code))]
        end: usize,
    }

    fn walk(bytes: &[u8]) -> Result<Layout<'_>, Error> {
        if !bytes.starts_with(&PNG_SIGNATURE) {
            return Err(Error::NotAnImage);
        }
        let mut chunks: Vec<Chunk<'_>> = Vec::new();
        let mut pos = PNG_SIGNATURE.len();
        let mut seen_plte = false;
        let mut seen_idat = false;
        let end = loop {
            let Some(length) = be_u32(bytes, pos) else {
                return Err(Error::malformed(KIND, "truncated before iend"));
            };
            if length > 0x7FFF_FFFF {
                return Err(Error::malformed(KIND, "chunk length above 2^31-1"));
            }
            let Some(end) = usize::try_from(length)
                .ok()
                .and_then(|length| pos.checked_add(12)?.checked_add(length))
            else {
                return Err(Error::malformed(KIND, "chunk length overflows"));
            };
            let Some(raw) = bytes.get(pos..end) else {
                return Err(Error::malformed(KIND, "truncated chunk"));
            };
            let (kind, data, crc) = (&raw[4..8], &raw[8..raw.len() - 4], &raw[raw.len() - 4..]);
            if !kind.iter().all(u8::is_ascii_alphabetic) {
                return Err(Error::malformed(KIND, "invalid chunk type"));
            }
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(kind);
            hasher.update(data);
            if hasher.finalize().to_be_bytes() != crc {
                return Err(Error::malformed(KIND, "chunk crc mismatch"));
            }
            let kind: [u8; 4] = [kind[0], kind[1], kind[2], kind[3]];
            if chunks.is_empty() != (&kind == b"IHDR") {
                return Err(Error::malformed(KIND, "ihdr missing or repeated"));
            }
            match &kind {
                b"PLTE" => seen_plte = true,
                b"IDAT" => seen_idat = true,
                _ => {}
            }
            chunks.push(Chunk { kind, data, raw });
            pos = end;
            if &kind == b"IEND" {
                break end;
            }
        };
        let header = chunks.first().map(|chunk| chunk.data).unwrap_or_default();
        let (Some(width), Some(height), Some(&color_type), true) = (
            be_u32(header, 0),
            be_u32(header, 4),
            header.get(9),
            header.len() == 13,
        ) else {
            return Err(Error::malformed(KIND, "bad ihdr length"));
        };
        if width == 0 || height == 0 {
            return Err(Error::malformed(KIND, "zero width or height"));
        }
        if !seen_idat {
            return Err(Error::malformed(KIND, "no idat chunk"));
        }
        if color_type == 3 && !seen_plte {
            return Err(Error::malformed(KIND, "palette image without plte"));
        }
        Ok(Layout {
            chunks,
            width,
            height,
            end,
        })
    }

    fn undecodable(error: png::DecodingError) -> Error {
        Error::Undecodable {
            kind: KIND,
            source: Box::new(error),
        }
    }

    pub(super) fn validate(bytes: &[u8], max_pixels: u64) -> Result<Info, Error> {
        let layout = walk(bytes)?;
        let (width, height) = (layout.width, layout.height);
        check_pixels(KIND, width, height, max_pixels)?;
        decode_all_frames(bytes, max_pixels, |_| {})?;
        Ok(Info {
            kind: KIND,
            width,
            height,
        })
    }

    /// Decodes every row of every frame, handing each row to `row` (validation discards them).
    /// Rows are raw samples (no transformations), so only one row is ever buffered.
    pub(super) fn decode_all_frames(
        bytes: &[u8],
        max_pixels: u64,
        mut row: impl FnMut(&[u8]),
    ) -> Result<(), Error> {
        let mut options = png::DecodeOptions::default();
        // Every chunk's CRC must be right, as in the structural walk (the default skips bad
        // ancillary chunks). Text and ICC payloads are never needed to decide validity.
        options.set_skip_ancillary_crc_failures(false);
        options.set_ignore_text_chunk(true);
        options.set_ignore_iccp_chunk(true);
        let mut decoder = png::Decoder::new_with_options(Cursor::new(bytes), options);
        decoder.set_limits(png::Limits {
            bytes: PNG_DECODER_MEMORY_LIMIT,
        });
        decoder.set_transformations(png::Transformations::IDENTITY);
        let mut reader = decoder.read_info().map_err(undecodable)?;
        let info = reader.info();
        let frames = match &info.animation_control {
            None => 1,
            // Without an fcTL before IDAT the IDAT image is an extra default image.
            Some(control) => {
                u64::from(control.num_frames) + u64::from(info.frame_control.is_none())
            }
        };
        let budget = max_pixels.saturating_mul(ANIMATION_PIXEL_FACTOR);
        let mut decoded = 0u64;
        for index in 0..frames.max(1) {
            let (width, height) = if index == 0 {
                info_size(&reader)
            } else {
                let control = reader.next_frame_info().map_err(undecodable)?;
                (control.width, control.height)
            };
            decoded = decoded.saturating_add(u64::from(width) * u64::from(height));
            if decoded > budget {
                return Err(Error::AnimationTooLarge { limit: budget });
            }
            while let Some(decoded_row) = reader.next_row().map_err(undecodable)? {
                row(decoded_row.data());
            }
        }
        reader.finish().map_err(undecodable)
    }

    fn info_size<R: std::io::BufRead + std::io::Seek>(reader: &png::Reader<R>) -> (u32, u32) {
        let info = reader.info();
        match &info.frame_control {
            Some(control) => (control.width, control.height),
            None => (info.width, info.height),
        }
    }

    pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, Error> {
        let layout = walk(bytes)?;
        let orientation = layout
            .chunks
            .iter()
            .find(|chunk| &chunk.kind == b"eXIf")
            .and_then(|chunk| {
                // Some writers keep the JPEG-style prefix; the PNG spec says the TIFF starts here.
                let tiff = chunk.data.strip_prefix(b"Exif\0\0").unwrap_or(chunk.data);
                exif::orientation(tiff)
            })
            .filter(|&value| value != 1);
        let mut out = Vec::with_capacity(bytes.len());
        out.extend_from_slice(&PNG_SIGNATURE);
        for chunk in &layout.chunks {
            let keep = is_kept(&chunk.kind);
            if !keep && chunk.kind[0].is_ascii_uppercase() {
                return Err(Error::Unsupported {
                    kind: KIND,
                    feature: "unknown critical chunk",
                });
            }
            if keep {
                out.extend_from_slice(chunk.raw);
            }
            if &chunk.kind == b"IHDR" {
                if let Some(value) = orientation {
                    push_chunk(&mut out, b"eXIf", &exif::orientation_only(value));
                }
            }
        }
        Ok(out)
    }

    /// Whether stripping keeps a chunk of this type.
    pub(super) fn is_kept(kind: &[u8; 4]) -> bool {
        KEPT_CHUNKS.contains(&kind)
    }

    pub(super) fn push_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(kind);
        hasher.update(data);
        // Callers only pass small fixed-size chunks, far below u32::MAX.
        let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&hasher.finalize().to_be_bytes());
    }

    /// Offset just past IEND, for tests that cut files short.
    #[cfg(test)]
    pub(super) fn structure_end(bytes: &[u8]) -> Option<usize> {
        walk(bytes).ok().map(|layout| layout.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared corpus; the same relative path holds in the scratch crate and in Gatehouse.
    const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");
    const SIZE_LIMIT: usize = 2 * 1024 * 1024;

    /// The manifest's `either` rows and the verdict this module gives (a change must be deliberate).
    const EITHER_VERDICTS: [(&str, u16); 6] = [
        ("public/libjpeg-turbo/testimgari.jpg", 400), // arithmetic coding: unsupported
        ("public/libjpeg-turbo/monkey12.jpg", 400),   // 12-bit: unsupported
        ("public/jpeg-decoder/jpeg_lossless_sel1.jpg", 400), // lossless: unsupported
        ("public/jpeg-decoder/extraneous-data.jpg", 201), // decoders skip the stray bytes
        ("public/image-rs/issue#2026.png", 201),      // text chunks are not inspected
        ("generated/either_png_bad_crc_ancillary.png", 400), // every CRC is checked
    ];

    struct Row {
        path: String,
        filename: String,
        expected: String,
        tool_verdict: String,
    }

    fn rows() -> Vec<Row> {
        let manifest = std::fs::read_to_string(format!("{CORPUS}/manifest.tsv"))
            .expect("corpus manifest is readable");
        let rows: Vec<Row> = manifest
            .lines()
            .skip(1)
            .filter(|line| !line.is_empty())
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                assert_eq!(fields.len(), 6, "manifest row has 6 fields: {line}");
                Row {
                    path: fields[0].to_owned(),
                    filename: fields[1].to_owned(),
                    expected: fields[3].to_owned(),
                    tool_verdict: fields[5].to_owned(),
                }
            })
            .collect();
        assert!(rows.len() >= 78, "manifest has only {} rows", rows.len());
        rows
    }

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(format!("{CORPUS}/{path}")).expect("corpus file is readable")
    }

    /// Dimensions that jpeginfo / pngcheck printed, when they printed any.
    fn tool_dimensions(verdict: &str) -> Option<(u32, u32)> {
        if let Some(rest) = verdict.split("jpeginfo: ").nth(1) {
            let mut words = rest.split_whitespace();
            let width = words.next()?.parse().ok()?;
            (words.next()? == "x").then_some(())?;
            let height = words.next()?.parse().ok()?;
            return (width > 0 && height > 0).then_some((width, height));
        }
        let rest = verdict.split("pngcheck: OK (").nth(1)?;
        let (width, height) = rest.split(',').next()?.split_once('x')?;
        Some((width.parse().ok()?, height.parse().ok()?))
    }

    /// The upload endpoint's decision, with this module deciding the byte-level part.
    fn endpoint_verdict(row: &Row, bytes: &[u8], result: &Result<Info, Error>) -> u16 {
        let extension = row.filename.rsplit_once('.').map(|(_, ext)| ext);
        let declared = extension.and_then(Kind::from_extension);
        match (bytes.len() > SIZE_LIMIT, declared, result) {
            (false, Some(declared), Ok(info)) if info.kind == declared => 201,
            _ => 400,
        }
    }

    #[test]
    fn every_manifest_row_gets_its_expected_verdict() {
        let mut failures = Vec::new();
        let mut either_seen = Vec::new();
        for row in rows() {
            let bytes = read(&row.path);
            let result = validate(&bytes, DEFAULT_MAX_PIXELS);
            let verdict = endpoint_verdict(&row, &bytes, &result);
            let wanted = match row.expected.as_str() {
                "201" => 201,
                "400" => 400,
                "either" => {
                    either_seen.push(row.path.clone());
                    match EITHER_VERDICTS.iter().find(|(path, _)| *path == row.path) {
                        Some(&(_, verdict)) => verdict,
                        None => {
                            failures.push(format!(
                                "{}: either row without a recorded verdict",
                                row.path
                            ));
                            continue;
                        }
                    }
                }
                other => panic!("unknown expected_status {other:?} for {}", row.path),
            };
            if verdict != wanted {
                failures.push(format!(
                    "{}: got {verdict}, want {wanted} ({result:?})",
                    row.path
                ));
            }
            // Files the tools call valid (including those rejected for their name or size, and
            // the CMYK file jpeginfo cannot convert) must validate with the tools' dimensions.
            let must_decode = row.tool_verdict.starts_with("valid ") || row.expected == "201";
            if must_decode && row.expected != "either" {
                match (&result, tool_dimensions(&row.tool_verdict)) {
                    (Ok(info), Some(dims)) if (info.width, info.height) == dims => {
                        let sniffed = sniff(&bytes);
                        if sniffed != Some(info.kind) {
                            failures.push(format!(
                                "{}: kind {:?} vs sniff {sniffed:?}",
                                row.path, info.kind
                            ));
                        }
                    }
                    (other, dims) => {
                        failures.push(format!("{}: {other:?}, tool says {dims:?}", row.path))
                    }
                }
            }
        }
        let mut recorded: Vec<String> = EITHER_VERDICTS
            .iter()
            .map(|(path, _)| (*path).to_owned())
            .collect();
        recorded.sort();
        either_seen.sort();
        assert_eq!(
            either_seen, recorded,
            "either rows in the manifest vs recorded verdicts"
        );
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn rejections_name_the_right_reason() {
        /// The error a corpus file must produce.
        enum Want {
            NotAnImage,
            Malformed(&'static str),
            Unsupported(&'static str),
            Undecodable,
            TooManyPixels(u32, u32),
        }
        use Want::*;
        let cases = [
            (
                "public/jpeg-decoder/max_size.jpg",
                TooManyPixels(65535, 65535),
            ),
            (
                "public/jpeg-decoder/null_height.jpg",
                Malformed("zero width"),
            ),
            (
                "public/jpeg-decoder/missing-sof.jpg",
                Malformed("truncated segment"),
            ),
            ("public/jpeg-decoder/missing-sos.jpg", Malformed("no scan")),
            (
                "generated/reject_jpeg_soi_only.jpg",
                Malformed("truncated before end of image"),
            ),
            (
                "public/image-rs/oss-fuzz-36829.jpeg",
                Malformed("truncated scan"),
            ),
            (
                "public/libjpeg-turbo/testimgari.jpg",
                Unsupported("arithmetic coding"),
            ),
            (
                "public/libjpeg-turbo/monkey12.jpg",
                Unsupported("sample precision other than 8 bits"),
            ),
            (
                "public/jpeg-decoder/jpeg_lossless_sel1.jpg",
                Unsupported("lossless coding"),
            ),
            (
                "public/pngsuite/xcsn0g01.png",
                Malformed("chunk crc mismatch"),
            ),
            (
                "public/pngsuite/xhdn0g08.png",
                Malformed("chunk crc mismatch"),
            ),
            (
                "generated/either_png_bad_crc_ancillary.png",
                Malformed("chunk crc mismatch"),
            ),
            ("public/pngsuite/xdtn0g01.png", Malformed("no idat chunk")),
            ("public/pngsuite/xc1n0g08.png", Undecodable),
            ("public/pngsuite/xd0n2c08.png", Undecodable),
            ("public/pngsuite/xs2n0g01.png", NotAnImage),
            ("public/pngsuite/xcrn0g04.png", NotAnImage),
            (
                "generated/reject_png_sig_garbage.png",
                Malformed("truncated chunk"),
            ),
            ("generated/reject_empty.png", NotAnImage),
            ("generated/reject_gif_as_jpg.jpg", NotAnImage),
            ("generated/reject_webp_as_jpg.jpg", NotAnImage),
            ("generated/reject_bmp_as_jpg.jpg", NotAnImage),
            ("generated/reject_php_script.jpg", NotAnImage),
            ("generated/reject_svg_html.png", NotAnImage),
            ("public/image-rs/simple-rgb.webp", NotAnImage),
            ("public/image-rs/ycbcr_jpeg_8bit.tif", NotAnImage),
            ("public/image-rs/png_rgb8.ico", NotAnImage),
        ];
        for (path, want) in cases {
            let error = match validate(&read(path), DEFAULT_MAX_PIXELS) {
                Err(error) => error,
                Ok(info) => panic!("{path}: accepted as {info:?}"),
            };
            let matched = match (&want, &error) {
                (NotAnImage, Error::NotAnImage) | (Undecodable, Error::Undecodable { .. }) => true,
                (Malformed(want), Error::Malformed { reason, .. }) => want == reason,
                (Unsupported(want), Error::Unsupported { feature, .. }) => want == feature,
                (
                    TooManyPixels(w, h),
                    Error::TooManyPixels {
                        width,
                        height,
                        limit,
                        ..
                    },
                ) => (w, h, *limit) == (width, height, DEFAULT_MAX_PIXELS),
                _ => false,
            };
            assert!(matched, "{path}: unexpected error {error:?}");
        }
    }

    #[test]
    fn decoder_rejects_what_the_structure_walk_cannot_see() {
        let plain = read("generated/accept_plain.jpg");
        let sos = plain
            .windows(2)
            .position(|pair| pair == [0xFF, 0xDA])
            .expect("fixture has a scan");
        // SOS: FF DA, length (2), component count (1), then the first component id.
        let mut bad_id = plain.clone();
        bad_id[sos + 5] = 93;
        assert!(
            matches!(
                validate(&bad_id, DEFAULT_MAX_PIXELS),
                Err(Error::Undecodable {
                    kind: Kind::Jpeg,
                    ..
                })
            ),
            "bad scan component id"
        );
        // Valid headers, garbage entropy-coded data (without 0xFF so the structure stays intact).
        let mut garbage = plain.clone();
        let eoi = garbage.len() - 2;
        let scan_data = sos + 2 + usize::from(u16::from_be_bytes([plain[sos + 2], plain[sos + 3]]));
        for (i, byte) in garbage[scan_data..eoi].iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(37) % 0xFE;
        }
        assert!(
            validate(&garbage, DEFAULT_MAX_PIXELS).is_err(),
            "garbage scan data"
        );
        // PNG: a valid chunk layout whose IDAT holds a deflate stream of the wrong size.
        let png = read("generated/accept_plain.png");
        let idat = png_chunk(&png, b"IDAT").expect("fixture has IDAT");
        let short = &idat[..idat.len() / 2];
        let idat_start = png.windows(4).position(|w| w == b"IDAT").expect("IDAT") - 4;
        let rebuilt = [
            &png[..idat_start],
            &png_chunk_bytes(b"IDAT", short),
            &png[idat_start + 12 + idat.len()..],
        ]
        .concat();
        assert!(
            matches!(
                validate(&rebuilt, DEFAULT_MAX_PIXELS),
                Err(Error::Undecodable {
                    kind: Kind::Png,
                    ..
                })
            ),
            "truncated deflate stream in a well-formed chunk"
        );
    }

    #[test]
    fn work_limits_stop_cheap_cpu_exhaustion() {
        let plain = read("generated/accept_plain.jpg");
        let sos = plain
            .windows(2)
            .position(|pair| pair == [0xFF, 0xDA])
            .expect("fixture has a scan");
        let scan = &plain[sos..plain.len() - 2];
        for (copies, limited) in [(100, false), (101, true)] {
            let mut many = plain[..sos].to_vec();
            for _ in 0..copies {
                many.extend_from_slice(scan);
            }
            many.extend_from_slice(&[0xFF, 0xD9]);
            let result = validate(&many, DEFAULT_MAX_PIXELS);
            // 100 repeated baseline scans pass the walk and are then judged by the decoder.
            assert_eq!(
                matches!(result, Err(Error::TooManyScans { limit: 100 })),
                limited,
                "{copies} scans: {result:?}"
            );
        }
        let ball = read("public/image-rs/ball.png");
        validate(&ball, DEFAULT_MAX_PIXELS).expect("apng within budget");
        assert!(matches!(
            validate(&ball, 10_000),
            Err(Error::AnimationTooLarge { limit: 40_000 })
        ));
    }

    #[test]
    fn pixel_limit_is_inclusive_and_checked_per_kind() {
        for (path, kind, width, height) in [
            ("generated/accept_plain.jpg", Kind::Jpeg, 64, 48),
            ("generated/accept_plain.png", Kind::Png, 64, 48),
        ] {
            let bytes = read(path);
            let exact = u64::from(width) * u64::from(height);
            let info = validate(&bytes, exact).expect("fits exactly");
            assert_eq!(
                info,
                Info {
                    kind,
                    width,
                    height
                }
            );
            let error = validate(&bytes, exact - 1).expect_err("one pixel over");
            assert!(
                matches!(error, Error::TooManyPixels { kind: k, width: w, height: h, limit }
                    if k == kind && w == width && h == height && limit == exact - 1),
                "{error:?}"
            );
        }
    }

    #[test]
    fn kind_names_and_sniffing() {
        assert_eq!(
            (Kind::Jpeg.extension(), Kind::Jpeg.mime()),
            ("jpg", "image/jpeg")
        );
        assert_eq!(
            (Kind::Png.extension(), Kind::Png.mime()),
            ("png", "image/png")
        );
        for (ext, kind) in [
            ("jpg", Some(Kind::Jpeg)),
            ("JPEG", Some(Kind::Jpeg)),
            ("JpG", Some(Kind::Jpeg)),
            ("PNG", Some(Kind::Png)),
            ("gif", None),
            ("", None),
            (".png", None),
            ("jpe", None),
            ("pngx", None),
        ] {
            assert_eq!(Kind::from_extension(ext), kind, "{ext:?}");
        }
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Kind::Jpeg));
        assert_eq!(sniff(&[0xFF, 0xD8]), None);
        assert_eq!(sniff(&PNG_SIGNATURE), Some(Kind::Png));
        assert_eq!(sniff(&PNG_SIGNATURE[..7]), None);
        assert_eq!(sniff(b"GIF89a\0\0"), None);
        assert_eq!(sniff(&[]), None);
        assert_eq!(Kind::Png.to_string(), "png");
        assert_eq!(
            Error::TooManyPixels {
                kind: Kind::Jpeg,
                width: 2,
                height: 3,
                limit: 5
            }
            .to_string(),
            "jpeg image of 2x3 pixels exceeds the limit of 5 pixels"
        );
    }

    // ---- JPEG helpers for the stripping tests -------------------------------------------------

    /// (marker, payload) of every segment before the first SOS.
    fn jpeg_header_segments(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut segments = Vec::new();
        let mut pos = 2;
        while pos + 4 <= bytes.len() && bytes[pos] == 0xFF {
            let marker = bytes[pos + 1];
            let length = usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
            segments.push((marker, bytes[pos + 4..pos + 2 + length].to_vec()));
            if marker == 0xDA {
                break;
            }
            pos += 2 + length;
        }
        segments
    }

    fn jpeg_pixels(bytes: &[u8]) -> Vec<u8> {
        jpeg_decoder::Decoder::new(bytes).decode().expect("decodes")
    }

    fn png_pixels(bytes: &[u8]) -> Vec<u8> {
        let mut pixels = Vec::new();
        png_image::decode_all_frames(bytes, DEFAULT_MAX_PIXELS, |row| {
            pixels.extend_from_slice(row)
        })
        .expect("decodes");
        pixels
    }

    fn png_chunk_types(bytes: &[u8]) -> Vec<[u8; 4]> {
        let mut types = Vec::new();
        let mut pos = 8;
        while pos + 12 <= bytes.len() {
            let length = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
            types.push(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
            pos += 12 + length as usize;
        }
        types
    }

    fn png_chunk<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
        let mut pos = 8;
        while pos + 12 <= bytes.len() {
            let length =
                u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
            if &bytes[pos + 4..pos + 8] == kind {
                return Some(&bytes[pos + 8..pos + 8 + length]);
            }
            pos += 12 + length;
        }
        None
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }

    fn minimal_exif_app1(orientation: u16) -> Vec<u8> {
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(&exif::orientation_only(orientation));
        payload
    }

    /// Checks the stripped JPEG keeps only allowed segments; returns its orientation, if any.
    fn assert_clean_jpeg(path: &str, stripped: &[u8]) -> Option<u16> {
        let mut orientation = None;
        for (marker, payload) in jpeg_header_segments(stripped) {
            match marker {
                0xE0 => assert!(
                    payload.starts_with(b"JFIF\0") || payload.starts_with(b"AVI1"),
                    "{path}: APP0"
                ),
                0xE1 => {
                    assert!(orientation.is_none(), "{path}: two APP1");
                    let value = exif::orientation(&payload[6..]).expect("orientation block");
                    assert_eq!(
                        payload,
                        minimal_exif_app1(value),
                        "{path}: APP1 is not minimal"
                    );
                    orientation = Some(value);
                }
                0xE2 => assert!(payload.starts_with(b"ICC_PROFILE\0"), "{path}: APP2"),
                0xEE => assert!(payload.starts_with(b"Adobe"), "{path}: APP14"),
                0xE3..=0xEF | 0xFE => panic!("{path}: marker {marker:02X} survived"),
                _ => {}
            }
        }
        for needle in [
            &b"http://ns.adobe.com/xap"[..],
            b"Photoshop 3.0",
            b"GPS",
            b"Nikon",
            b"Canon",
        ] {
            assert!(
                !contains(stripped, needle),
                "{path}: {:?} survived",
                String::from_utf8_lossy(needle)
            );
        }
        orientation
    }

    #[test]
    fn strip_keeps_every_valid_corpus_image_identical() {
        let mut checked = 0;
        for row in rows() {
            let bytes = read(&row.path);
            let Ok(info) = validate(&bytes, DEFAULT_MAX_PIXELS) else {
                continue;
            };
            let stripped = strip_metadata(&bytes, info.kind).expect("strips");
            assert_eq!(
                validate(&stripped, DEFAULT_MAX_PIXELS).expect("still valid"),
                info,
                "{}",
                row.path
            );
            assert!(stripped.len() <= bytes.len() + 34, "{} grew", row.path);
            assert_eq!(
                strip_metadata(&stripped, info.kind).expect("strips again"),
                stripped,
                "{}: not idempotent",
                row.path
            );
            match info.kind {
                Kind::Jpeg => {
                    assert_eq!(
                        jpeg_pixels(&stripped),
                        jpeg_pixels(&bytes),
                        "{}: pixels",
                        row.path
                    );
                    assert_clean_jpeg(&row.path, &stripped);
                    let icc = |b: &[u8]| {
                        let mut decoder = jpeg_decoder::Decoder::new(b);
                        decoder.read_info().expect("headers");
                        decoder.icc_profile()
                    };
                    assert_eq!(icc(&stripped), icc(&bytes), "{}: icc profile", row.path);
                }
                Kind::Png => {
                    assert_eq!(
                        png_pixels(&stripped),
                        png_pixels(&bytes),
                        "{}: pixels",
                        row.path
                    );
                    for kind in png_chunk_types(&stripped) {
                        assert!(
                            png_image::is_kept(&kind),
                            "{}: {:?} survived",
                            row.path,
                            String::from_utf8_lossy(&kind)
                        );
                    }
                    for kind in png_chunk_types(&bytes) {
                        if png_image::is_kept(&kind) {
                            assert!(
                                png_chunk_types(&stripped).contains(&kind),
                                "{}: lost {kind:?}",
                                row.path
                            );
                        }
                    }
                }
            }
            checked += 1;
        }
        assert!(checked >= 40, "only {checked} valid corpus images");
    }

    #[test]
    fn strip_removes_named_metadata_and_keeps_orientation() {
        for (path, orientation) in [
            ("generated/accept_exif_gps.jpg", None),
            ("public/exif-samples/DSCN0010.jpg", None),
            ("public/exif-samples/landscape_6.jpg", Some(6)),
            ("public/exif-samples/BlueSquare.jpg", None),
            ("public/exif-samples/Canon_40D.jpg", None),
            ("public/image-rs/portrait_2.jpg", Some(2)),
            ("public/image-rs/iptc.jpg", None),
            ("public/image-rs/cat.jpg", None),
            ("public/image-rs/exif-xmp-metadata.jpg", None),
        ] {
            let bytes = read(path);
            assert!(
                contains(&bytes, b"Exif\0\0")
                    || contains(&bytes, b"http://ns.adobe.com/xap")
                    || contains(&bytes, b"Photoshop 3.0"),
                "{path}: fixture has no metadata to strip"
            );
            let stripped = strip_metadata(&bytes, Kind::Jpeg).expect("strips");
            assert_eq!(assert_clean_jpeg(path, &stripped), orientation, "{path}");
            let mut decoder = jpeg_decoder::Decoder::new(&stripped[..]);
            decoder.decode().expect("decodes");
            let exif = decoder.exif_data().map(exif::orientation);
            assert_eq!(
                exif.flatten(),
                orientation,
                "{path}: orientation seen by a decoder"
            );
        }
        // The GPS fixture really had GPS before.
        assert!(contains(
            &read("generated/accept_exif_gps.jpg"),
            b"Exif\0\0"
        ));
        let cmyk = strip_metadata(&read("public/jpeg-decoder/jpg-cmyk-1.jpg"), Kind::Jpeg)
            .expect("strips");
        assert!(jpeg_header_segments(&cmyk)
            .iter()
            .any(|(marker, payload)| *marker == 0xEE && payload.starts_with(b"Adobe")));

        for path in [
            "public/image-rs/iptc.png",
            "public/image-rs/tp1n3p08_xmp.png",
            "public/pngsuite/ctjn0g04.png",
            "public/pngsuite/exif2c08.png",
            "generated/accept_png_exactly_2MiB.png",
        ] {
            let bytes = read(path);
            let before = png_chunk_types(&bytes);
            assert!(
                before
                    .iter()
                    .any(|kind| [b"tEXt", b"zTXt", b"iTXt", b"eXIf"].contains(&kind)),
                "{path}: fixture has no metadata chunk"
            );
            let stripped = strip_metadata(&bytes, Kind::Png).expect("strips");
            for kind in png_chunk_types(&stripped) {
                assert!(
                    ![b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"].contains(&&kind),
                    "{path}: {kind:?}"
                );
            }
            assert!(
                !contains(&stripped, b"http://ns.adobe.com/xap"),
                "{path}: xmp survived"
            );
        }
        let ball = strip_metadata(&read("public/image-rs/ball.png"), Kind::Png).expect("strips");
        for kind in [b"acTL", b"fcTL", b"fdAT"] {
            assert!(png_chunk_types(&ball).contains(kind), "apng lost {kind:?}");
        }
    }

    /// A little-endian TIFF with Make (ASCII, out of line) and the given Orientation.
    fn tiff_le(orientation: u16) -> Vec<u8> {
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&2u16.to_le_bytes());
        // Make: ASCII, 6 bytes at offset 38.
        tiff.extend_from_slice(&[0x0F, 0x01, 2, 0, 6, 0, 0, 0, 38, 0, 0, 0]);
        tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0]);
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        tiff.extend_from_slice(b"Nikon\0");
        tiff
    }

    #[test]
    fn exif_orientation_parsing() {
        assert_eq!(exif::orientation(&tiff_le(8)), Some(8));
        assert_eq!(exif::orientation(&tiff_le(1)), Some(1));
        assert_eq!(exif::orientation(&tiff_le(9)), None, "out of range");
        assert_eq!(exif::orientation(&exif::orientation_only(6)), Some(6));
        let mut wrong_magic = tiff_le(6);
        wrong_magic[2] = 43;
        assert_eq!(exif::orientation(&wrong_magic), None);
        let full = tiff_le(6);
        for cut in 0..full.len() {
            let _ = exif::orientation(&full[..cut]);
        }
        assert_eq!(
            exif::orientation(&full[..28]),
            None,
            "cut inside the orientation entry"
        );
    }

    fn png_chunk_bytes(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        png_image::push_chunk(&mut out, kind, data);
        out
    }

    /// Inserts a chunk right after IHDR.
    fn with_chunk_after_ihdr(png: &[u8], chunk: &[u8]) -> Vec<u8> {
        let ihdr_end = 8 + 12 + 13;
        [&png[..ihdr_end], chunk, &png[ihdr_end..]].concat()
    }

    #[test]
    fn png_exif_orientation_survives_as_a_minimal_chunk() {
        let plain = read("generated/accept_plain.png");
        for (orientation, expected) in [(8, Some(exif::orientation_only(8).to_vec())), (1, None)] {
            let mut tiff = b"Exif\0\0".to_vec(); // a prefix some writers add
            tiff.extend_from_slice(&tiff_le(orientation));
            let tagged = with_chunk_after_ihdr(&plain, &png_chunk_bytes(b"eXIf", &tiff));
            let info = validate(&tagged, DEFAULT_MAX_PIXELS).expect("valid");
            let stripped = strip_metadata(&tagged, Kind::Png).expect("strips");
            assert_eq!(png_chunk(&stripped, b"eXIf").map(<[u8]>::to_vec), expected);
            assert!(!contains(&stripped, b"Nikon"));
            assert_eq!(
                validate(&stripped, DEFAULT_MAX_PIXELS).expect("valid"),
                info
            );
            assert_eq!(png_pixels(&stripped), png_pixels(&plain));
        }
    }

    #[test]
    fn jfif_thumbnail_and_trailers_are_removed() {
        let plain = read("generated/accept_plain.jpg");
        let segments = jpeg_header_segments(&plain);
        assert_eq!(segments[0].0, 0xE0, "fixture starts with APP0");
        assert_eq!(segments[0].1.len(), 14, "fixture has no thumbnail");
        // Rebuild APP0 with a 2x1 RGB thumbnail, and append a trailer after EOI.
        let old_app0_end = 2 + 2 + 2 + 14;
        let mut app0 = segments[0].1.clone();
        app0[12] = 2;
        app0[13] = 1;
        app0.extend_from_slice(b"PRIVAT");
        let mut thumbed = vec![0xFF, 0xD8, 0xFF, 0xE0];
        thumbed.extend_from_slice(&(u16::try_from(app0.len()).expect("small") + 2).to_be_bytes());
        thumbed.extend_from_slice(&app0);
        thumbed.extend_from_slice(&plain[old_app0_end..]);
        thumbed.extend_from_slice(b"motion-photo-trailer");
        let info = validate(&thumbed, DEFAULT_MAX_PIXELS).expect("trailer tolerated");
        let stripped = strip_metadata(&thumbed, Kind::Jpeg).expect("strips");
        assert_eq!(
            stripped, plain,
            "thumbnail and trailer gone, the rest byte for byte"
        );
        assert_eq!(
            validate(&stripped, DEFAULT_MAX_PIXELS).expect("valid"),
            info
        );

        let png = read("generated/accept_plain.png");
        let trailed = [&png[..], b"<?php echo 1; ?>"].concat();
        validate(&trailed, DEFAULT_MAX_PIXELS).expect("trailer tolerated");
        assert_eq!(strip_metadata(&trailed, Kind::Png).expect("strips"), png);
    }

    #[test]
    fn strip_refuses_the_wrong_kind() {
        let png = read("generated/accept_plain.png");
        assert!(matches!(
            strip_metadata(&png, Kind::Jpeg),
            Err(Error::KindMismatch {
                expected: Kind::Jpeg,
                found: Some(Kind::Png)
            })
        ));
        assert!(matches!(
            strip_metadata(b"GIF89a", Kind::Png),
            Err(Error::KindMismatch {
                expected: Kind::Png,
                found: None
            })
        ));
    }

    /// Deterministic xorshift so the mutation test needs no extra crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Runs both entry points on hostile bytes; any panic fails the test. Whatever validates must
    /// also strip into something that validates to the same info.
    fn exercise(bytes: &[u8]) -> Option<Info> {
        let _ = strip_metadata(bytes, Kind::Jpeg);
        let _ = strip_metadata(bytes, Kind::Png);
        let info = validate(bytes, DEFAULT_MAX_PIXELS).ok()?;
        let stripped = strip_metadata(bytes, info.kind).expect("a valid image strips");
        assert_eq!(
            validate(&stripped, DEFAULT_MAX_PIXELS).ok().as_ref(),
            Some(&info)
        );
        Some(info)
    }

    #[test]
    fn hostile_truncations_and_bit_flips_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut mutants = 0usize;
        for row in rows() {
            let bytes = read(&row.path);
            let structure_end = match sniff(&bytes) {
                Some(Kind::Jpeg) => jpeg::structure_end(&bytes),
                Some(Kind::Png) => png_image::structure_end(&bytes),
                None => None,
            };
            let valid = validate(&bytes, DEFAULT_MAX_PIXELS).is_ok();
            // Large files decode slowly in debug builds: sample them more sparsely.
            let (cuts, flips) = match bytes.len() {
                0..=2_048 => (bytes.len(), 150),
                2_049..=65_536 => (96, 40),
                _ => (12, 6),
            };
            let mut offsets: Vec<usize> =
                (0..cuts).map(|i| i * bytes.len() / cuts.max(1)).collect();
            offsets.extend(bytes.len().saturating_sub(8)..bytes.len());
            for cut in offsets {
                let truncated = &bytes[..cut];
                let result = exercise(truncated);
                if valid && structure_end.is_some_and(|end| cut < end) {
                    assert!(
                        result.is_none(),
                        "{} cut at {cut} still validates",
                        row.path
                    );
                }
                mutants += 1;
            }
            if bytes.is_empty() {
                continue;
            }
            for _ in 0..flips {
                let mut mutant = bytes.clone();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(mutant.len());
                    mutant[at] ^= 1 << rng.below(8);
                }
                exercise(&mutant);
                mutants += 1;
            }
        }
        assert!(mutants > 10_000, "only {mutants} mutants");
    }
}
