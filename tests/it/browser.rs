//! The built-in upload page in a real browser: headless Chromium, over HTTPS and h2,
//! trusting exactly this Gatehouse's self-signed certificate. A real JPEG goes in and is
//! shown from its stored URL; a PHP script named `.jpg` is refused with the contract's
//! message. Screenshots of both land in `tests/artifacts/`.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::chromium::{self, Browser};
use crate::support::gatehouse::{Gatehouse, LISTENERS};
use crate::support::{artifacts_dir, corpus_dir};

/// The whole test, browser start included, ends within this.
const TEST_BUDGET: Duration = Duration::from_secs(120);
/// One upload, from the click to a final `#result[data-state]`.
const UPLOAD_WAIT: Duration = Duration::from_secs(20);

/// A real camera JPEG (EXIF makernote, ICC) and its natural size.
const JPEG: &str = "public/exif-samples/Canon_40D.jpg";
const JPEG_SIZE: (u64, u64) = (100, 68);
/// PHP source with a `.jpg` name.
const PHP: &str = "generated/reject_php_script.jpg";

fn config() -> String {
    format!(
        r#"{LISTENERS}
[upload]
route = "/products"
forward = false

[storage]
backend = "memory"

[demo]
page = true
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_page_in_headless_chromium() {
    let gh = Gatehouse::start(&config()).await;
    let browser = Browser::start(&gh.cert_pem(), "upload_page").await;
    // On timeout or panic `browser` drops: the session is deleted, Chromium killed.
    tokio::time::timeout(TEST_BUDGET, upload_page(&gh, &browser))
        .await
        .unwrap_or_else(|_| panic!("the browser test did not finish within {TEST_BUDGET:?}"));
    browser.quit().await;
}

async fn upload_page(gh: &Gatehouse, browser: &Browser) {
    let origin = gh.url("");
    let started = std::time::Instant::now();

    // The page, over HTTP/2, styled and scripted under its strict CSP.
    browser
        .client
        .goto(&gh.url("/"))
        .await
        .unwrap_or_else(|e| panic!("navigate to {}: {e}", gh.url("/")));
    let page = browser
        .eval(
            r#"
            const nav = performance.getEntriesByType("navigation")[0];
            const button = document.getElementById("submit");
            return {
                url: location.href,
                title: document.title,
                protocol: nav ? nav.nextHopProtocol : null,
                secure: window.isSecureContext,
                action: document.getElementById("upload").getAttribute("action"),
                buttonBackground: getComputedStyle(button).backgroundColor,
            };
            "#,
            vec![],
        )
        .await;
    assert_eq!(page["url"], json!(gh.url("/")), "{page}");
    assert_eq!(
        page["protocol"], "h2",
        "the page must load over HTTP/2: {page}"
    );
    assert_eq!(page["secure"], true, "{page}");
    assert_eq!(page["action"], "/products", "{page}");
    assert!(
        page["title"].as_str().is_some_and(|t| t.contains("upload")),
        "{page}"
    );
    // The inline stylesheet applied (its CSP hash matched): the button is the page's blue.
    assert_eq!(page["buttonBackground"], "rgb(37, 99, 235)", "{page}");
    // From here on, record any CSP violation the page would cause.
    browser
        .eval(
            r#"
            window.__cspViolations = [];
            document.addEventListener("securitypolicyviolation", function (e) {
                window.__cspViolations.push(e.violatedDirective + " blocked " + e.blockedURI);
            });
            "#,
            vec![],
        )
        .await;

    // A real JPEG: stored, its URL shown, the image loaded from that URL; the browser's
    // decode of the served bytes agrees with the size the server reported.
    let name = find(browser, "#name").await;
    name.send_keys("Desk lamp")
        .await
        .expect("type the product name");
    let result = upload(browser, &corpus_dir().join(JPEG)).await;
    assert_eq!(result["state"], "loaded", "the JPEG upload: {result}");
    assert_eq!(result["title"], "Stored", "{result}");
    let (width, height) = JPEG_SIZE;
    assert!(result["naturalWidth"].as_u64().unwrap_or(0) > 0, "{result}");
    assert_eq!(result["naturalWidth"], json!(width), "{result}");
    assert_eq!(result["naturalHeight"], json!(height), "{result}");
    assert_eq!(result["imageHidden"], false, "{result}");
    assert!(
        result["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!("{width}×{height} image/jpeg, "))),
        "{result}"
    );
    let url = result["url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with(&format!("{origin}/media/products/")) && url.ends_with(".jpg"),
        "the stored URL {url:?} must be under {origin}/media/products/: {result}"
    );
    assert_eq!(result["href"], json!(url), "{result}");
    assert_eq!(
        result["src"],
        json!(url),
        "the image is loaded from the shown URL: {result}"
    );
    assert!(find(browser, "#result-image")
        .await
        .is_displayed()
        .await
        .expect("displayed"));
    let shot = browser.screenshot("browser-upload-ok").await;
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/upload-page.png");
    if !docs.exists() {
        std::fs::create_dir_all(docs.parent().expect("docs/")).expect("create docs/");
        std::fs::copy(&shot, &docs).expect("copy the screenshot to docs/upload-page.png");
    }

    // A PHP script named .jpg: refused, with the contract's code and message shown.
    let result = upload(browser, &corpus_dir().join(PHP)).await;
    assert_eq!(result["state"], "error", "the PHP upload: {result}");
    let code = result["code"].as_str().unwrap_or_default();
    assert!(
        code == "unsupported_type" || code == "type_mismatch",
        "data-code {code:?}: {result}"
    );
    assert_eq!(
        result["title"],
        json!(format!("Refused ({code})")),
        "{result}"
    );
    assert!(
        result["message"]
            .as_str()
            .is_some_and(|m| !m.trim().is_empty()),
        "{result}"
    );
    assert_eq!(result["imageHidden"], true, "{result}");
    assert_eq!(
        result["imageDisplay"], "none",
        "no broken image is shown: {result}"
    );
    assert_eq!(
        result["url"], "",
        "no URL is shown for a refused file: {result}"
    );
    let message = find(browser, "#result-message").await;
    assert!(message.is_displayed().await.expect("displayed"), "{result}");
    assert_eq!(
        message.text().await.expect("message text"),
        result["message"].as_str().unwrap_or_default()
    );
    browser.screenshot("browser-upload-error").await;

    // Nothing was blocked by the CSP, and the console holds no warning or error but the
    // refused upload's 400 and Chromium's own request for /favicon.ico (which Gatehouse
    // does not serve; the page cannot point it elsewhere without allowing data: images).
    let violations = browser.eval("return window.__cspViolations;", vec![]).await;
    assert_eq!(violations, json!([]), "CSP violations");
    let console = browser.console().await;
    let refused = |message: &str| {
        message.starts_with(&format!("{origin}/products ")) && message.contains(" 400 ")
    };
    let favicon = |message: &str| {
        message.starts_with(&format!("{origin}/favicon.ico ")) && message.contains(" 404 ")
    };
    assert!(
        console.iter().any(|(_, message)| refused(message)),
        "the browser log shows the refused upload (so the log is being read): {console:#?}"
    );
    let unexpected: Vec<_> = console
        .iter()
        .filter(|(level, message)| {
            message.contains("Content Security Policy")
                || (!matches!(level.as_str(), "INFO" | "DEBUG")
                    && !refused(message)
                    && !favicon(message))
        })
        .collect();
    assert!(unexpected.is_empty(), "browser console: {unexpected:#?}");

    // Exactly that certificate: another Gatehouse's self-signed one gets Chromium's
    // certificate interstitial, not the page.
    let other = Gatehouse::start(&config()).await;
    // Chromium answers the navigation with its error page; chromedriver may or may not
    // report that as an error, so judge by what is shown.
    let _ = browser.client.goto(&other.url("/")).await;
    let shown = browser
        .eval(
            "return { url: location.href, title: document.title, \
             form: document.getElementById('upload') !== null };",
            vec![],
        )
        .await;
    assert_eq!(
        shown["form"], false,
        "an untrusted certificate was accepted: {shown}"
    );
    assert!(
        shown["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("chrome-error://")),
        "expected Chromium's certificate error page: {shown}"
    );

    eprintln!(
        "browser test: page, two uploads and an untrusted origin in {:.1?}; screenshots in {}",
        started.elapsed(),
        artifacts_dir().display()
    );
}

async fn find(browser: &Browser, css: &str) -> fantoccini::elements::Element {
    browser
        .client
        .find(fantoccini::Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("find {css}: {e}"))
}

/// Pick `file` and submit; wait (bounded) for a final `#result[data-state]`; return what
/// the result section shows.
async fn upload(browser: &Browser, file: &Path) -> Value {
    let file = file
        .canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let input = find(browser, "#image").await;
    input.clear().await.expect("clear the file input");
    input
        .send_keys(&file.display().to_string())
        .await
        .unwrap_or_else(|e| panic!("pick {}: {e}", file.display()));
    let picked = find(browser, "#picked")
        .await
        .text()
        .await
        .expect("picked text");
    let file_name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        picked.starts_with(&file_name),
        "the page shows the picked file: {picked:?}"
    );
    // Forget the previous outcome, so only this upload's can satisfy the wait.
    browser
        .eval(
            "const r = document.getElementById('result'); delete r.dataset.state; delete r.dataset.code;",
            vec![],
        )
        .await;
    find(browser, "#submit")
        .await
        .click()
        .await
        .expect("click Upload");

    let deadline = tokio::time::Instant::now() + UPLOAD_WAIT;
    loop {
        let result = browser
            .eval(
                r#"
                const r = document.getElementById("result");
                const img = document.getElementById("result-image");
                const link = document.getElementById("result-url");
                return {
                    state: r.dataset.state || null,
                    code: r.dataset.code || null,
                    hidden: r.hidden,
                    title: document.getElementById("result-title").textContent,
                    message: document.getElementById("result-message").textContent,
                    url: link.textContent,
                    href: link.getAttribute("href"),
                    src: img.getAttribute("src"),
                    imageHidden: img.hidden,
                    imageDisplay: getComputedStyle(img).display,
                    naturalWidth: img.naturalWidth,
                    naturalHeight: img.naturalHeight,
                    submitDisabled: document.getElementById("submit").disabled,
                };
                "#,
                vec![],
            )
            .await;
        let state = result["state"].as_str();
        if matches!(state, Some("loaded" | "image-error" | "error")) {
            assert_eq!(result["hidden"], false, "the result is shown: {result}");
            return result;
        }
        if tokio::time::Instant::now() >= deadline {
            let shot = browser.screenshot("browser-upload-timeout").await;
            panic!(
                "no final #result[data-state] within {UPLOAD_WAIT:?} after uploading {}: {result} \
                 (screenshot {})",
                file.display(),
                shot.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The SPKI walk agrees with rcgen's own encoding of the public key.
#[test]
fn browser_spki_pin_is_the_certificates_public_key() {
    use rcgen::PublicKeyData;

    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    assert_eq!(
        chromium::subject_public_key_info(cert.der()).expect("spki"),
        key.subject_public_key_info().as_slice()
    );
    let pin = chromium::spki_sha256_base64(cert.pem().as_bytes());
    assert_eq!(pin.len(), 44, "base64 of 32 bytes: {pin}");
}
