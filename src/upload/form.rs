//! The multipart form sent on to the upstream: the client's parts in their order, the
//! file part replaced by text fields carrying the stored object's URL, key, type and size.

use bytes::{BufMut, Bytes, BytesMut};

/// One part as received (non-file fields are kept whole; they are small by limit).
#[derive(Debug, Clone)]
pub enum Part {
    Field {
        name: String,
        filename: Option<String>,
        content_type: Option<String>,
        data: Bytes,
    },
    /// Where the file was; replaced by the URL fields.
    File,
}

/// Encode `parts` with `boundary`, putting `file_fields` where the file was.
pub fn encode(parts: &[Part], file_fields: &[(String, String)], boundary: &str) -> Bytes {
    let mut out = BytesMut::new();
    for part in parts {
        match part {
            Part::Field {
                name,
                filename,
                content_type,
                data,
            } => write_part(
                &mut out,
                boundary,
                name,
                filename.as_deref(),
                content_type.as_deref(),
                data,
            ),
            Part::File => {
                for (name, value) in file_fields {
                    write_part(&mut out, boundary, name, None, None, value.as_bytes());
                }
            }
        }
    }
    out.put_slice(b"--");
    out.put_slice(boundary.as_bytes());
    out.put_slice(b"--\r\n");
    out.freeze()
}

fn write_part(
    out: &mut BytesMut,
    boundary: &str,
    name: &str,
    filename: Option<&str>,
    content_type: Option<&str>,
    data: &[u8],
) {
    out.put_slice(b"--");
    out.put_slice(boundary.as_bytes());
    out.put_slice(b"\r\nContent-Disposition: form-data; name=\"");
    out.put_slice(escape(name).as_bytes());
    out.put_slice(b"\"");
    if let Some(filename) = filename {
        out.put_slice(b"; filename=\"");
        out.put_slice(escape(filename).as_bytes());
        out.put_slice(b"\"");
    }
    out.put_slice(b"\r\n");
    if let Some(ct) = content_type {
        out.put_slice(b"Content-Type: ");
        out.put_slice(ct.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// The HTML form-encoding rule for names in `Content-Disposition`: `"` and line breaks are
/// percent-encoded.
fn escape(value: &str) -> String {
    value
        .replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// True when `boundary` occurs in any kept part (then another boundary must be chosen).
pub fn collides(parts: &[Part], boundary: &str) -> bool {
    parts.iter().any(|p| match p {
        Part::Field { data, .. } => memchr_find(data, boundary.as_bytes()),
        Part::File => false,
    })
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_is_replaced_in_place_and_order_is_kept() {
        let parts = vec![
            Part::Field {
                name: "name".into(),
                filename: None,
                content_type: None,
                data: Bytes::from_static(b"Lamp"),
            },
            Part::File,
            Part::Field {
                name: "price".into(),
                filename: None,
                content_type: Some("text/plain".into()),
                data: Bytes::from_static(b"12"),
            },
        ];
        let body = encode(
            &parts,
            &[("image_url".into(), "https://x/a.jpg".into())],
            "B",
        );
        let expected = "--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nLamp\r\n\
--B\r\nContent-Disposition: form-data; name=\"image_url\"\r\n\r\nhttps://x/a.jpg\r\n\
--B\r\nContent-Disposition: form-data; name=\"price\"\r\nContent-Type: text/plain\r\n\r\n12\r\n--B--\r\n";
        assert_eq!(std::str::from_utf8(&body).expect("utf8"), expected);
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape("a\"b\r\nc"), "a%22b%0D%0Ac");
    }
}
