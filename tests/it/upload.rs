//! Uploads through the real server: the whole corpus manifest (memory and local backends
//! here, S3 in `s3.rs`), malformed forms, limits, forwarding, and storage outages.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use gatehouse::upload::image;
use serde_json::Value;

use crate::support::client::{self, Proto};
use crate::support::corpus::{self, Row};
use crate::support::form::{self, Form};
use crate::support::gatehouse::{upload_config, Gatehouse, LISTENERS};
use crate::support::upstream::Upstream;

/// POST a body to /products; return status, parsed JSON (or Null), and headers.
pub async fn post(client: &reqwest::Client, gh: &Gatehouse, body: Vec<u8>) -> (u16, Value) {
    post_to(client, &gh.url("/products"), body).await
}

pub async fn post_to(client: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, Value) {
    let response = client
        .post(url)
        .header("content-type", form::content_type())
        .body(body)
        .send()
        .await
        .expect("upload request");
    let status = response.status().as_u16();
    let is_json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let text = response.text().await.expect("body");
    let json = if is_json {
        serde_json::from_str(&text).expect("JSON body")
    } else {
        Value::Null
    };
    (status, json)
}

fn code(json: &Value) -> &str {
    json["error"]["code"].as_str().unwrap_or("<none>")
}

/// The code a refused corpus row must get, where the row says which rule it breaks.
fn expected_code(row: &Row) -> Option<&'static [&'static str]> {
    let name = row.path.rsplit('/').next().unwrap_or("");
    Some(match name {
        "reject_png_2MiB_plus_1.png" | "HMD_Nokia_8.3_5G.jpg" => &["file_too_large"],
        "reject_png_bytes_jpg_name.jpg" => &["type_mismatch"],
        "reject_valid_jpeg_php_name.jpg" | "reject_valid_jpeg_double_ext.jpg" => {
            &["unsupported_type"]
        }
        "reject_php_script.jpg"
        | "reject_svg_html.png"
        | "reject_gif_as_jpg.jpg"
        | "reject_webp_as_jpg.jpg"
        | "reject_bmp_as_jpg.jpg" => &["unsupported_type"],
        "simple-rgb.webp" | "ycbcr_jpeg_8bit.tif" | "png_rgb8.ico" => &["unsupported_type"],
        // 65535x65535 declared in 186 bytes: refused before decoding.
        "max_size.jpg" => &["image_too_large"],
        "reject_png_sig_garbage.png" | "reject_jpeg_soi_only.jpg" | "reject_empty.png" => {
            &["corrupt_image"]
        }
        _ => return None,
    })
}

/// Metadata that must be gone from a stored image when stripping is on.
pub fn assert_metadata_stripped(bytes: &[u8], what: &str) {
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        !has(b"http://ns.adobe.com/xap"),
        "{what}: XMP left in the stored object"
    );
    assert!(
        !has(b"Photoshop 3.0"),
        "{what}: IPTC left in the stored object"
    );
    if bytes.starts_with(b"\x89PNG") {
        for chunk in [b"tEXt", b"iTXt", b"zTXt", b"eXIf"] {
            assert!(
                !has(chunk),
                "{what}: PNG {} chunk left",
                String::from_utf8_lossy(chunk)
            );
        }
    } else if let Some(at) = bytes.windows(6).position(|w| w == b"Exif\0\0") {
        // Only a minimal orientation-only Exif block may remain.
        let len = u16::from_be_bytes([bytes[at - 2], bytes[at - 1]]);
        assert!(
            len < 64,
            "{what}: an Exif block of {len} bytes is left (GPS, camera data)"
        );
    }
}

/// How a test reads a stored object back from its public URL.
pub enum Fetch<'a> {
    /// Through Gatehouse (`/media/...`) with its trusted client.
    Gatehouse(&'a reqwest::Client),
    /// Anonymously from the S3-compatible server.
    Anonymous,
}

/// Every manifest row through `gh`; returns the ids of accepted uploads.
pub async fn run_manifest(gh: &Gatehouse, client: &reqwest::Client, fetch: Fetch<'_>) -> Vec<u64> {
    let mut accepted = Vec::new();
    let mut failures = Vec::new();
    for row in corpus::manifest() {
        let bytes = row.bytes();
        let body = Form::new()
            .text("name", "Lamp")
            .file("image", &row.filename, &row.content_type, &bytes)
            .finish();
        let (status, json) = post(client, gh, body).await;
        match row.expected {
            Some(want) if want != status => {
                failures.push(format!(
                    "{}: got {status} {json}, want {want} ({})",
                    row.path, row.reason
                ));
                continue;
            }
            None => eprintln!("either: {} -> {status} {}", row.path, code(&json)),
            _ => {}
        }
        if status == 400 {
            let got = code(&json);
            let allowed = expected_code(&row).unwrap_or(&["corrupt_image", "unsupported_type"]);
            if !allowed.contains(&got) {
                failures.push(format!("{}: code {got}, want one of {allowed:?}", row.path));
            }
            assert!(
                json["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{}: no message",
                row.path
            );
            continue;
        }
        assert_eq!(status, 201, "{}: {json}", row.path);
        let url = json["url"].as_str().expect("url").to_owned();
        let key = json["key"].as_str().expect("key");
        let sha = json["sha256"].as_str().expect("sha256");
        let kind = image::sniff(&bytes).expect("accepted files are JPEG or PNG");
        assert_eq!(
            key,
            format!("products/{sha}.{}", kind.extension()),
            "{}",
            row.path
        );
        let stored: Bytes = match &fetch {
            Fetch::Gatehouse(c) => {
                let r = c.get(&url).send().await.expect("GET media");
                assert_eq!(r.status(), 200, "{url}");
                assert_eq!(r.headers()["content-type"], kind.mime());
                r.bytes().await.expect("media body")
            }
            Fetch::Anonymous => {
                let r = reqwest::get(&url).await.expect("anonymous GET");
                assert_eq!(r.status(), 200, "anonymous read of {url}");
                assert_eq!(r.headers()["content-type"], kind.mime());
                r.bytes().await.expect("object body")
            }
        };
        let info = image::validate(&stored, 40_000_000)
            .unwrap_or_else(|e| panic!("{}: stored object is not a valid image: {e}", row.path));
        assert_eq!(info.kind, kind, "{}", row.path);
        assert_eq!(json["width"], info.width, "{}", row.path);
        assert_eq!(json["height"], info.height, "{}", row.path);
        assert_eq!(json["bytes"], stored.len(), "{}", row.path);
        assert_metadata_stripped(&stored, &row.path);
        let id = json["id"].as_u64().expect("id");
        let record = gh.admin_json(&format!("/uploads/{id}")).await;
        assert_eq!(
            record, json,
            "{}: ledger record differs from the answer",
            row.path
        );
        accepted.push(id);
    }
    assert!(
        failures.is_empty(),
        "{} manifest rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Nothing refused was recorded: the ledger holds exactly the accepted uploads.
    let listed = gh.admin_json("/uploads?limit=1000").await;
    let ids: Vec<u64> = listed["uploads"]
        .as_array()
        .expect("uploads")
        .iter()
        .map(|r| r["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(
        ids, accepted,
        "ledger must hold exactly the accepted uploads, in order"
    );
    assert!(
        accepted.len() >= 37,
        "only {} rows accepted",
        accepted.len()
    );
    accepted
}

#[tokio::test]
async fn manifest_memory_backend_h2() {
    let gh = Gatehouse::start(&upload_config("[storage]\nbackend = \"memory\"")).await;
    let c = client::client(&gh, Proto::H2);
    run_manifest(&gh, &c, Fetch::Gatehouse(&c)).await;
}

#[tokio::test]
async fn manifest_local_backend_h1_stores_each_image_once() {
    let gh = Gatehouse::start(&upload_config(
        "[storage]\nbackend = \"local\"\ndir = \"media\"",
    ))
    .await;
    let c = client::client(&gh, Proto::H1);
    let ids = run_manifest(&gh, &c, Fetch::Gatehouse(&c)).await;
    let files: Vec<_> = std::fs::read_dir(gh.data_dir().join("media/products"))
        .expect("media dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    // Uploading the same image twice stores it once.
    let (_, json) = post(
        &c,
        &gh,
        Form::new()
            .file(
                "image",
                "again.jpg",
                "image/jpeg",
                &corpus::manifest()[0].bytes(),
            )
            .finish(),
    )
    .await;
    let again: Vec<_> = std::fs::read_dir(gh.data_dir().join("media/products"))
        .expect("dir")
        .collect();
    assert_eq!(
        again.len(),
        files.len(),
        "a repeated image must not add an object ({json})"
    );
    assert!(files.len() <= ids.len());
    assert!(
        !files.iter().any(|f| f.to_string_lossy().contains("tmp")),
        "no partial objects: {files:?}"
    );
}

#[tokio::test]
async fn media_is_served_with_type_etag_and_immutable_caching() {
    let gh = Gatehouse::start(&upload_config("[storage]\nbackend = \"local\"")).await;
    let c = client::client(&gh, Proto::H2);
    let jpeg = crate::support::corpus_file("generated/accept_plain.jpg");
    let (status, json) = post(
        &c,
        &gh,
        Form::new()
            .file("image", "p.jpg", "image/jpeg", &jpeg)
            .finish(),
    )
    .await;
    assert_eq!(status, 201, "{json}");
    let url = json["url"].as_str().expect("url");
    assert!(url.starts_with(&gh.url("/media/products/")), "{url}");
    let r = c.get(url).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
    assert_eq!(
        etag,
        format!("\"{}\"", json["sha256"].as_str().expect("sha"))
    );
    let r = c
        .get(url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 304);
    let r = c
        .get(gh.url("/media/../proxy.toml"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    let r = c
        .get(gh.url("/media/products/0000.jpg"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
}

async fn memory_gatehouse() -> (Gatehouse, reqwest::Client) {
    let gh = Gatehouse::start(&upload_config("[storage]\nbackend = \"memory\"")).await;
    let c = client::client(&gh, Proto::H2);
    (gh, c)
}

fn plain_jpeg() -> Vec<u8> {
    crate::support::corpus_file("generated/accept_plain.jpg")
}

#[tokio::test]
async fn malformed_forms_each_get_their_code_and_record_nothing() {
    let (gh, c) = memory_gatehouse().await;
    let jpeg = plain_jpeg();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "no closing boundary",
            Form::new().file("image", "a.jpg", "image/jpeg", &jpeg).unfinished(),
            "malformed_multipart",
        ),
        (
            "body ends inside the file",
            Form::new().file("image", "a.jpg", "image/jpeg", &jpeg).unfinished()[..600].to_vec(),
            "malformed_multipart",
        ),
        ("no file part", Form::new().text("name", "Lamp").finish(), "missing_file"),
        (
            "browser form with no file chosen",
            Form::new().file("image", "", "application/octet-stream", b"").finish(),
            "missing_file",
        ),
        (
            "two files in the field",
            Form::new()
                .file("image", "a.jpg", "image/jpeg", &jpeg)
                .file("image", "b.jpg", "image/jpeg", &jpeg)
                .finish(),
            "duplicate_file",
        ),
        (
            "file in another field",
            Form::new()
                .file("manual", "a.pdf", "application/pdf", b"%PDF-1.4")
                .file("image", "a.jpg", "image/jpeg", &jpeg)
                .finish(),
            "unexpected_file",
        ),
        (
            "too many parts",
            (0..40).fold(Form::new(), |f, i| f.text(&format!("f{i}"), "x")).finish(),
            "too_many_parts",
        ),
        (
            "oversized text field",
            Form::new().text("description", &"x".repeat(70 * 1024)).file("image", "a.jpg", "image/jpeg", &jpeg).finish(),
            "field_too_large",
        ),
        (
            "oversized part headers",
            Form::new()
                .raw(
                    format!(
                        "--{}\r\nContent-Disposition: form-data; name=\"n\"\r\nX-Pad: {}\r\n\r\nv\r\n",
                        form::BOUNDARY,
                        "p".repeat(9000)
                    )
                    .as_bytes(),
                )
                .file("image", "a.jpg", "image/jpeg", &jpeg)
                .finish(),
            "part_header_too_large",
        ),
        (
            "no extension",
            Form::new().file("image", "photo", "image/jpeg", &jpeg).finish(),
            "unsupported_type",
        ),
    ];
    for (what, body, want) in cases {
        let (status, json) = post(&c, &gh, body).await;
        assert_eq!((status, code(&json)), (400, want), "{what}: {json}");
    }
    let r = c
        .post(gh.url("/products"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let json: Value = r.json().await.expect("json");
    assert_eq!(code(&json), "malformed_multipart");
    assert_eq!(
        gh.ledger_len().await,
        0,
        "refused uploads must not be recorded"
    );
}

#[tokio::test]
async fn form_variants_are_accepted() {
    let (gh, c) = memory_gatehouse().await;
    let jpeg = plain_jpeg();
    // File field last, RFC 5987 filename*, quoted boundary, uppercase extension.
    let mut body = Form::new().text("name", "Lamp").unfinished();
    body.extend_from_slice(
        format!(
            "--{}\r\nContent-Disposition: form-data; name=\"image\"; filename*=UTF-8''caf%C3%A9%20photo.JPG\r\n\r\n",
            form::BOUNDARY
        )
        .as_bytes(),
    );
    body.extend_from_slice(&jpeg);
    body.extend_from_slice(format!("\r\n--{}--\r\n", form::BOUNDARY).as_bytes());
    let r = c
        .post(gh.url("/products"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary=\"{}\"", form::BOUNDARY),
        )
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 201);
    let json: Value = r.json().await.expect("json");
    assert_eq!(json["filename"], "café photo.JPG");
    assert_eq!(json["type"], "image/jpeg");
}

#[tokio::test]
async fn size_limit_is_exact() {
    let (gh, c) = memory_gatehouse().await;
    let dir = crate::support::corpus_dir().join("generated");
    let exact = std::fs::read(dir.join("accept_png_exactly_2MiB.png")).expect("file");
    let over = std::fs::read(dir.join("reject_png_2MiB_plus_1.png")).expect("file");
    assert_eq!(exact.len(), 2_097_152);
    let (status, json) = post(
        &c,
        &gh,
        Form::new()
            .file("image", "a.png", "image/png", &exact)
            .finish(),
    )
    .await;
    assert_eq!(status, 201, "{json}");
    let (status, json) = post(
        &c,
        &gh,
        Form::new()
            .file("image", "a.png", "image/png", &over)
            .finish(),
    )
    .await;
    assert_eq!((status, code(&json)), (400, "file_too_large"));
}

#[tokio::test]
async fn content_length_over_the_cap_is_refused_before_the_body() {
    let (gh, c) = memory_gatehouse().await;
    // A body that sends one chunk and then never ends: the answer must not wait for it.
    let stream = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(Bytes::from_static(b"--x\r\n"))
    })
    .chain(futures_util::stream::pending());
    let request = c
        .post(gh.url("/products"))
        .header("content-type", form::content_type())
        .header("content-length", (100u64 << 20).to_string())
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let response = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("answered without reading the body")
        .expect("response");
    assert_eq!(response.status(), 400);
    let json: Value = response.json().await.expect("json");
    assert_eq!(code(&json), "file_too_large");
}

use futures_util::StreamExt;

#[tokio::test]
async fn forwarded_form_keeps_every_field_in_order() {
    let upstream = Upstream::start().await;
    let toml = format!(
        "{LISTENERS}\n[[route]]\npath = \"/\"\nupstream = \"{}\"\n[upload]\nforward = true\n[storage]\nbackend = \"memory\"\n",
        upstream.url()
    );
    let gh = Gatehouse::start(&toml).await;
    let c = client::client(&gh, Proto::H2);
    let jpeg = plain_jpeg();
    let body = Form::new()
        .text("name", "Lamp")
        .file("image", "lamp.jpg", "image/jpeg", &jpeg)
        .text("price", "12.50")
        .text("note", "multi\r\nline")
        .finish();
    let (status, json) = post(&c, &gh, body).await;
    assert_eq!(status, 200, "the client gets the upstream's answer: {json}");
    assert_eq!(json["path"], "/products");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    let sent = &seen[0];
    let ct = sent.headers["content-type"].to_str().expect("ct");
    let boundary = multer::parse_boundary(ct).expect("boundary");
    let mut multipart = multer::Multipart::new(
        futures_util::stream::once({
            let b = sent.body.clone();
            async move { Ok::<_, std::io::Error>(b) }
        }),
        boundary,
    );
    let mut fields = Vec::new();
    while let Some(field) = multipart.next_field().await.expect("valid multipart") {
        let name = field.name().expect("name").to_owned();
        assert!(field.file_name().is_none(), "no file reaches the upstream");
        fields.push((name, field.text().await.expect("text")));
    }
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "name",
            "image_url",
            "image_url_key",
            "image_url_type",
            "image_url_bytes",
            "price",
            "note"
        ]
    );
    assert_eq!(fields[0].1, "Lamp");
    assert!(
        fields[1].1.starts_with(&gh.url("/media/products/")),
        "{}",
        fields[1].1
    );
    assert!(fields[1].1.ends_with(&fields[2].1), "url ends with the key");
    assert_eq!(fields[3].1, "image/jpeg");
    assert_eq!(fields[4].1, jpeg.len().to_string());
    assert_eq!(fields[5].1, "12.50");
    assert_eq!(fields[6].1, "multi\r\nline");
    assert_eq!(sent.headers["x-forwarded-proto"], "https");
    assert_eq!(gh.ledger_len().await, 1);
}

#[tokio::test]
async fn upstream_error_reaches_the_client_and_the_upload_stays() {
    let upstream = Upstream::start().await;
    let toml = format!(
        "{LISTENERS}\n[[route]]\npath = \"/\"\nupstream = \"{}\"\n[upload]\nroute = \"/status/500\"\n[storage]\nbackend = \"memory\"\n",
        upstream.url()
    );
    let gh = Gatehouse::start(&toml).await;
    let c = client::client(&gh, Proto::H1);
    let (status, _) = post_to(
        &c,
        &gh.url("/status/500"),
        Form::new()
            .file("image", "a.jpg", "image/jpeg", &plain_jpeg())
            .finish(),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        gh.ledger_len().await,
        1,
        "the stored object stays recorded (content-addressed)"
    );
}

#[tokio::test]
async fn upstream_down_gives_502_after_storing() {
    let port = crate::support::process::free_port();
    let toml = format!(
        "{LISTENERS}\n[[route]]\npath = \"/\"\nupstream = \"http://127.0.0.1:{port}\"\n[upload]\n[storage]\nbackend = \"memory\"\n"
    );
    let gh = Gatehouse::start(&toml).await;
    let c = client::client(&gh, Proto::H2);
    let (status, _) = post(
        &c,
        &gh,
        Form::new()
            .file("image", "a.jpg", "image/jpeg", &plain_jpeg())
            .finish(),
    )
    .await;
    assert_eq!(status, 502);
}

#[tokio::test]
async fn storage_outage_gives_503_and_records_nothing() {
    let port = crate::support::process::free_port();
    let storage = format!(
        "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"bkt\"\nendpoint = \"http://127.0.0.1:{port}\"\n[timeouts]\nstorage = \"3s\"\n"
    );
    crate::s3::require_aws_test_credentials();
    let gh = Gatehouse::start(&upload_config(&storage)).await;
    let c = client::client(&gh, Proto::H2);
    let (status, json) = post(
        &c,
        &gh,
        Form::new()
            .file("image", "a.jpg", "image/jpeg", &plain_jpeg())
            .finish(),
    )
    .await;
    assert_eq!(
        (status, code(&json)),
        (503, "storage_unavailable"),
        "{json}"
    );
    assert_eq!(gh.ledger_len().await, 0);
}

#[tokio::test]
async fn concurrent_uploads_of_distinct_images_all_land() {
    let (gh, c) = memory_gatehouse().await;
    let rows: Vec<Row> = corpus::manifest()
        .into_iter()
        .filter(|r| r.expected == Some(201) && r.path.starts_with("public/pngsuite"))
        .collect();
    let futures = rows.iter().map(|row| {
        let body = Form::new()
            .file("image", &row.filename, &row.content_type, &row.bytes())
            .finish();
        post(&c, &gh, body)
    });
    let results = futures_util::future::join_all(futures).await;
    let mut keys = HashSet::new();
    for (status, json) in results {
        assert_eq!(status, 201, "{json}");
        keys.insert(json["key"].as_str().expect("key").to_owned());
    }
    assert_eq!(keys.len(), rows.len());
    assert_eq!(gh.ledger_len().await, rows.len());
}

#[tokio::test]
async fn path_and_method_variants_cannot_bypass_validation() {
    let upstream = Upstream::start().await;
    let toml = format!(
        "{LISTENERS}\n[[route]]\npath = \"/\"\nupstream = \"{}\"\n[upload]\nforward = true\n[storage]\nbackend = \"memory\"\n",
        upstream.url()
    );
    let gh = Gatehouse::start(&toml).await;
    let php = b"<?php system($_GET['c']); ?>";
    for path in [
        "/products",
        "/products/",
        "/PRODUCTS",
        "//products",
        "/./products",
        "/x/../products",
        "/%70roducts",
        "/products;x",
        "/products/.",
        "/products/42",
        "/Products/42/image",
    ] {
        for method in ["POST", "PUT", "PATCH"] {
            let body = Form::new()
                .file("image", "shell.php", "image/jpeg", php)
                .finish();
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                form::content_type(),
                body.len()
            );
            let response = client::raw_exchange(&gh, request.as_bytes(), &body).await;
            assert!(
                response.starts_with("HTTP/1.1 400") && response.contains("unsupported_type"),
                "{method} {path}: {}",
                response.lines().next().unwrap_or("")
            );
        }
    }
    assert!(
        upstream.seen().is_empty(),
        "no raw file reached the application"
    );
    // Requests without a file still reach the application.
    let c = client::client(&gh, Proto::H2);
    let r = c
        .put(gh.url("/products/42"))
        .json(&serde_json::json!({"name": "Lamp"}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 200);
    let r = c.get(gh.url("/products")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(upstream.seen().len(), 2);
}

#[tokio::test]
async fn a_stalled_upload_body_is_cut_off_with_408() {
    let gh = Gatehouse::start(&upload_config(
        "[storage]\nbackend = \"memory\"\n[timeouts]\nupload_body = \"1s\"\n",
    ))
    .await;
    let head = format!(
        "POST /products HTTP/1.1\r\nHost: localhost\r\nContent-Type: {}\r\nContent-Length: 100000\r\n\r\n",
        form::content_type()
    );
    let started = std::time::Instant::now();
    // Ten bytes of a 100000-byte body, then nothing.
    let response = client::raw_exchange(
        &gh,
        head.as_bytes(),
        &format!("--{}", form::BOUNDARY).as_bytes()[..10],
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("request_timeout"), "{response}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "answered at the deadline"
    );
    assert_eq!(gh.ledger_len().await, 0);
}

#[tokio::test]
async fn stored_urls_never_name_a_host_the_client_chose() {
    let gh = Gatehouse::start(&upload_config("[storage]\nbackend = \"memory\"")).await;
    let body = Form::new()
        .file("image", "a.jpg", "image/jpeg", &plain_jpeg())
        .finish();
    let head = format!(
        "POST /products HTTP/1.1\r\nHost: evil.example\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        form::content_type(),
        body.len()
    );
    let response = client::raw_exchange(&gh, head.as_bytes(), &body).await;
    assert!(
        response.starts_with("HTTP/1.1 400") && response.contains("untrusted_host"),
        "{response}"
    );
    assert_eq!(gh.ledger_len().await, 0);

    // With a public_url the request host does not matter: the URL names the CDN.
    let gh = Gatehouse::start(&upload_config(
        "[storage]\nbackend = \"memory\"\npublic_url = \"https://cdn.example.com\"",
    ))
    .await;
    let head = head.replace("evil.example", "whatever.example");
    let response = client::raw_exchange(&gh, head.as_bytes(), &body).await;
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(
        response.contains("\"url\":\"https://cdn.example.com/media/products/"),
        "{response}"
    );
}

#[tokio::test]
async fn ambiguous_parts_are_refused() {
    let (gh, c) = memory_gatehouse().await;
    let jpeg = plain_jpeg();
    let part = |disposition: &str| {
        let mut body = format!(
            "--{}\r\n{disposition}\r\nContent-Type: image/jpeg\r\n\r\n",
            form::BOUNDARY
        )
        .into_bytes();
        body.extend_from_slice(&jpeg);
        body.extend_from_slice(format!("\r\n--{}--\r\n", form::BOUNDARY).as_bytes());
        body
    };
    for (disposition, want) in [
        (
            r#"Content-Disposition: form-data; name="image"; filename="a.php"; filename="b.jpg""#,
            "malformed_multipart",
        ),
        (
            r#"Content-Disposition: attachment; name="image"; filename="b.jpg""#,
            "malformed_multipart",
        ),
        (
            "Content-Disposition: form-data; name=\"image\"; filename*=UTF-8''shell.php%00.jpg",
            "malformed_multipart",
        ),
        (
            r#"Content-Disposition: form-data; name="image""#,
            "missing_file",
        ),
    ] {
        let (status, json) = post(&c, &gh, part(disposition)).await;
        assert_eq!((status, code(&json)), (400, want), "{disposition}: {json}");
    }
    let mut many = format!(
        "--{}\r\nContent-Disposition: form-data; name=\"n\"\r\n",
        form::BOUNDARY
    );
    for i in 0..100 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str(&format!("\r\nv\r\n--{}--\r\n", form::BOUNDARY));
    let (status, json) = post(&c, &gh, many.into_bytes()).await;
    assert_eq!(
        (status, code(&json)),
        (400, "part_header_too_large"),
        "{json}"
    );
    assert_eq!(gh.ledger_len().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_uploads_all_get_answered() {
    // 40 at a time used to wedge sled's flush_async (every later upload hung).
    let gh = Gatehouse::start(&upload_config("[storage]\nbackend = \"memory\"")).await;
    let c = client::client(&gh, Proto::H2);
    let png = crate::support::corpus_file("generated/accept_plain.png");
    let body = Form::new()
        .file("image", "a.png", "image/png", &png)
        .finish();
    let uploads = futures_util::stream::iter(0..400)
        .map(|_| post(&c, &gh, body.clone()))
        .buffer_unordered(40)
        .collect::<Vec<_>>();
    let results = tokio::time::timeout(Duration::from_secs(90), uploads)
        .await
        .expect("every upload is answered");
    assert!(
        results.iter().all(|(status, _)| *status == 201),
        "{:?}",
        results.iter().find(|(s, _)| *s != 201)
    );
    assert_eq!(gh.ledger_len().await, 400);
    // And the server still stops cleanly.
    tokio::time::timeout(Duration::from_secs(20), gh.stop())
        .await
        .expect("drains");
}
