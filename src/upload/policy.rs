//! Pure upload rules: reading a part's `Content-Disposition` (including RFC 5987
//! `filename*=`), judging the filename's extension, and sanitising the name kept in the
//! ledger. The filename is never used as a storage path.

use percent_encoding::percent_decode;

/// The `name` and `filename` of a part. `filename*` (RFC 5987, UTF-8 or ISO-8859-1) wins
/// over `filename`, as RFC 6266 says. Quoted values may contain `\"` escapes; raw UTF-8
/// bytes in a quoted value are taken as UTF-8 (what browsers send).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disposition {
    pub name: Option<String>,
    pub filename: Option<String>,
}

/// Why a `Content-Disposition` is refused: ambiguity is how filters get bypassed (one
/// parser reads `filename="a.php"`, another the later `filename="b.jpg"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispositionError {
    NotFormData,
    RepeatedParameter,
    ControlCharacter,
}

impl DispositionError {
    pub fn message(self) -> &'static str {
        match self {
            DispositionError::NotFormData => "a part's Content-Disposition is not form-data",
            DispositionError::RepeatedParameter => {
                "a part's Content-Disposition repeats a parameter"
            }
            DispositionError::ControlCharacter => {
                "a part's name or filename contains control characters"
            }
        }
    }
}

pub fn parse_disposition(value: &[u8]) -> Result<Disposition, DispositionError> {
    let mut out = Disposition::default();
    let mut extended: Option<String> = None;
    let mut rest = value;
    let kind_end = rest.iter().position(|b| *b == b';').unwrap_or(rest.len());
    if !trim_end(trim_start(&rest[..kind_end])).eq_ignore_ascii_case(b"form-data") {
        return Err(DispositionError::NotFormData);
    }
    rest = rest.get(kind_end + 1..).unwrap_or(&[]);
    while !rest.is_empty() {
        let trimmed = trim_start(rest);
        let Some(eq) = trimmed.iter().position(|b| *b == b'=') else {
            break;
        };
        let key = String::from_utf8_lossy(trim_end(&trimmed[..eq])).to_ascii_lowercase();
        let after = trim_start(&trimmed[eq + 1..]);
        let (raw, next) = if after.first() == Some(&b'"') {
            let mut value = Vec::new();
            let mut i = 1;
            while i < after.len() {
                match after[i] {
                    b'\\' if i + 1 < after.len() => {
                        value.push(after[i + 1]);
                        i += 2;
                    }
                    b'"' => break,
                    b => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
            let next = after[(i + 1).min(after.len())..]
                .iter()
                .position(|b| *b == b';')
                .map_or(&after[after.len()..], |j| &after[i + 1 + j + 1..]);
            (value, next)
        } else {
            let end = after.iter().position(|b| *b == b';').unwrap_or(after.len());
            let next = if end < after.len() {
                &after[end + 1..]
            } else {
                &after[end..]
            };
            (trim_end(&after[..end]).to_vec(), next)
        };
        let slot = match key.as_str() {
            "name" => Some(&mut out.name),
            "filename" => Some(&mut out.filename),
            "filename*" => Some(&mut extended),
            _ => None,
        };
        if let Some(slot) = slot {
            if slot.is_some() {
                return Err(DispositionError::RepeatedParameter);
            }
            let value = if key == "filename*" {
                decode_ext_value(&raw)
            } else {
                Some(String::from_utf8_lossy(&raw).into_owned())
            };
            if value
                .as_deref()
                .is_some_and(|v| v.chars().any(char::is_control))
            {
                return Err(DispositionError::ControlCharacter);
            }
            *slot = value.or(Some(String::new()));
        }
        rest = next;
    }
    if extended.as_deref().is_some_and(|e| !e.is_empty()) {
        out.filename = extended;
    }
    Ok(out)
}

/// RFC 5987 `charset'lang'percent-encoded`.
fn decode_ext_value(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut pieces = text.splitn(3, '\'');
    let charset = pieces.next()?.to_ascii_lowercase();
    let _language = pieces.next()?;
    let encoded = pieces.next()?;
    let bytes: Vec<u8> = percent_decode(encoded.as_bytes()).collect();
    match charset.as_str() {
        "utf-8" => String::from_utf8(bytes).ok(),
        "iso-8859-1" => Some(bytes.iter().map(|b| char::from(*b)).collect()),
        _ => None,
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let i = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[i..]
}

fn trim_end(b: &[u8]) -> &[u8] {
    let i = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..i]
}

/// The final extension of `filename`, lowercase: `photo.JPG` -> `jpg`,
/// `photo.jpg.exe` -> `exe`, `photo` -> `None`. Directory parts a client may send
/// (`C:\Users\x\photo.jpg`) are ignored.
pub fn extension(filename: &str) -> Option<String> {
    let base = base_name(filename);
    let (stem, ext) = base.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        return None;
    }
    Some(ext.trim_end().to_ascii_lowercase())
}

/// The last path component, without control characters, at most 255 characters: safe to
/// show, never used as a path.
pub fn sanitise_filename(filename: &str) -> String {
    base_name(filename)
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn base_name(filename: &str) -> &str {
    filename.rsplit(['/', '\\']).next().unwrap_or(filename)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(v: &str) -> Disposition {
        parse_disposition(v.as_bytes()).expect("valid disposition")
    }

    #[test]
    fn ambiguous_dispositions_are_refused() {
        let e = |v: &str| parse_disposition(v.as_bytes()).expect_err(v);
        assert_eq!(
            e(r#"form-data; name="image"; filename="a.php"; filename="b.jpg""#),
            DispositionError::RepeatedParameter
        );
        assert_eq!(
            e(r#"form-data; name="a"; name="b""#),
            DispositionError::RepeatedParameter
        );
        assert_eq!(
            e(r#"attachment; name="image"; filename="a.jpg""#),
            DispositionError::NotFormData
        );
        assert_eq!(
            e("form-data; name=\"image\"; filename*=UTF-8''shell.php%00.jpg"),
            DispositionError::ControlCharacter
        );
        assert_eq!(
            e("form-data; name=\"image\"; filename=\"a\rb.jpg\""),
            DispositionError::ControlCharacter
        );
    }

    #[test]
    fn quoted_and_unquoted_values() {
        assert_eq!(
            d(r#"form-data; name="image"; filename="photo.jpg""#),
            Disposition {
                name: Some("image".into()),
                filename: Some("photo.jpg".into())
            }
        );
        assert_eq!(
            d("form-data; name=image; filename=photo.jpg"),
            Disposition {
                name: Some("image".into()),
                filename: Some("photo.jpg".into())
            }
        );
        assert_eq!(d(r#"form-data; name="a\"b""#).name.as_deref(), Some("a\"b"));
        assert_eq!(
            d(r#"form-data; name="x"; filename="""#).filename.as_deref(),
            Some("")
        );
    }

    #[test]
    fn rfc5987_filename_star_wins() {
        let v = d("form-data; name=\"image\"; filename*=UTF-8''caf%C3%A9%20menu.png; filename=\"cafe.png\"");
        assert_eq!(v.filename.as_deref(), Some("café menu.png"));
        let v = d(
            "form-data; name=\"image\"; filename=\"cafe.png\"; filename*=iso-8859-1'en'caf%E9.png",
        );
        assert_eq!(v.filename.as_deref(), Some("café.png"));
    }

    #[test]
    fn raw_utf8_filename() {
        let v = d("form-data; name=\"image\"; filename=\"café menu (1).png\"");
        assert_eq!(v.filename.as_deref(), Some("café menu (1).png"));
    }

    #[test]
    fn extension_is_the_last_one_lowercased() {
        assert_eq!(extension("PHOTO.JPEG").as_deref(), Some("jpeg"));
        assert_eq!(extension("a.Jpg").as_deref(), Some("jpg"));
        assert_eq!(extension("photo.jpg.exe").as_deref(), Some("exe"));
        assert_eq!(extension("shell.php").as_deref(), Some("php"));
        assert_eq!(extension("photo"), None);
        assert_eq!(extension(".png"), None);
        assert_eq!(extension("photo."), None);
        assert_eq!(extension("C:\\x\\photo.png").as_deref(), Some("png"));
    }

    #[test]
    fn sanitised_names_are_not_paths() {
        assert_eq!(sanitise_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitise_filename("a\r\nb.png"), "ab.png");
        assert_eq!(sanitise_filename("C:\\Users\\me\\café.png"), "café.png");
    }
}
