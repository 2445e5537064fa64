//! The upload suite against a real S3-compatible server (moto), with the bucket policy
//! `gatehouse s3-policy` prints applied, so stored URLs are fetched anonymously.

use crate::support::client::{self, Proto};
use crate::support::gatehouse::{upload_config, Gatehouse};
use crate::support::moto::Moto;
use crate::upload::{run_manifest, Fetch};

/// S3 credentials must come from the environment (scripts/test.sh exports the fake pair
/// moto accepts). Without them object_store would try instance metadata, which is not a
/// loopback address: refuse instead.
pub fn require_aws_test_credentials() {
    assert!(
        std::env::var_os("AWS_ACCESS_KEY_ID").is_some() && std::env::var_os("AWS_SECRET_ACCESS_KEY").is_some(),
        "set AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test for the S3 tests (scripts/test.sh does)"
    );
}

#[tokio::test]
async fn manifest_against_s3_with_public_read_policy() {
    require_aws_test_credentials();
    let moto = Moto::start("shop-uploads").await;
    let anonymous = reqwest::Client::new();
    let gh = Gatehouse::start(&upload_config(&moto.storage_toml())).await;
    let c = client::client(&gh, Proto::H2);

    // Before the policy, a stored object is not readable anonymously.
    let jpeg = crate::support::corpus_file("generated/accept_plain.jpg");
    let body = crate::support::form::Form::new()
        .file("image", "a.jpg", "image/jpeg", &jpeg)
        .finish();
    let (status, first) = crate::upload::post(&c, &gh, body).await;
    assert_eq!(status, 201, "{first}");
    let url = first["url"].as_str().expect("url");
    let probe = anonymous.get(url).send().await.expect("probe");
    assert_eq!(
        probe.status(),
        403,
        "anonymous read must be refused before the policy"
    );
    moto.put_policy(&gatehouse::storage::policy::bucket_policy(
        "shop-uploads",
        "products/",
    ))
    .await;
    let probe = anonymous.get(url).send().await.expect("probe");
    assert_eq!(
        probe.status(),
        200,
        "anonymous read must work with the policy"
    );
    // A fresh Gatehouse (empty ledger) for the whole manifest.
    drop(gh);
    let gh = Gatehouse::start(&upload_config(&moto.storage_toml())).await;
    let c = client::client(&gh, Proto::H2);
    let ids = run_manifest(&gh, &c, Fetch::Anonymous).await;
    assert!(!ids.is_empty());

    // The objects carry their type and immutable caching, and URLs are path-style.
    let record = gh.admin_json(&format!("/uploads/{}", ids[0])).await;
    let url = record["url"].as_str().expect("url");
    assert!(
        url.starts_with(&format!("{}/shop-uploads/products/", moto.endpoint())),
        "{url}"
    );
    let r = anonymous.get(url).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    // Gatehouse does not serve S3 objects itself.
    let r = c
        .get(gh.url("/media/products/x.jpg"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn s3_outage_mid_run_gives_503_then_recovers_nothing_recorded() {
    require_aws_test_credentials();
    let moto = Moto::start("outage").await;
    let storage = format!("{}\n[timeouts]\nstorage = \"3s\"\n", moto.storage_toml());
    let gh = Gatehouse::start(&upload_config(&storage)).await;
    let c = client::client(&gh, Proto::H1);
    let jpeg = crate::support::corpus_file("generated/accept_plain.jpg");
    let body = || {
        crate::support::form::Form::new()
            .file("image", "a.jpg", "image/jpeg", &jpeg)
            .finish()
    };
    let (status, _) = crate::upload::post(&c, &gh, body()).await;
    assert_eq!(status, 201);
    drop(moto);
    let (status, json) = crate::upload::post(&c, &gh, body()).await;
    assert_eq!(status, 503, "{json}");
    assert_eq!(json["error"]["code"], "storage_unavailable");
    assert_eq!(
        gh.ledger_len().await,
        1,
        "the failed upload is not recorded"
    );
}
