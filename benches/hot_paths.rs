//! Criterion benches of the pure hot paths: routing, header rewriting, multipart policy,
//! and image validation + metadata stripping (the CPU cost of one upload).
//!
//! `cargo bench --bench hot_paths`. Compare runs on the same machine only; on a 2-core
//! box absolute numbers are noisy.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gatehouse::config::{Route, Upstream};
use gatehouse::proxy::headers::{upstream_request, Forwarding};
use gatehouse::router::Router;
use gatehouse::upload::{image, policy};

fn routes() -> Vec<Route> {
    [
        "/",
        "/api",
        "/api/v2/",
        "/static/",
        "/products",
        "/admin/",
        "/media/",
        "/search",
    ]
    .iter()
    .enumerate()
    .map(|(i, p)| Route {
        path: (*p).to_owned(),
        host: (i % 3 == 0).then(|| "shop.example.com".to_owned()),
        upstream: Upstream {
            scheme: http::uri::Scheme::HTTP,
            authority: format!("127.0.0.1:{}", 3000 + i)
                .parse()
                .expect("authority"),
        },
        cache: None,
    })
    .collect()
}

fn router(c: &mut Criterion) {
    let router = Router::new(&routes());
    c.bench_function("router/find", |b| {
        b.iter(|| {
            router.find(
                Some("shop.example.com:443"),
                std::hint::black_box("/api/v2/items/42"),
            )
        })
    });
}

fn headers(c: &mut Criterion) {
    let fwd = Forwarding {
        client_ip: "203.0.113.7".parse().expect("ip"),
        proto: "https",
        trust_forwarded: false,
    };
    let mut base = http::HeaderMap::new();
    for (k, v) in [
        ("accept", "text/html,application/xhtml+xml"),
        ("accept-encoding", "gzip, br"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"),
        ("connection", "keep-alive"),
        ("x-forwarded-for", "1.2.3.4"),
        ("cookie", "session=abc"),
    ] {
        base.insert(
            http::header::HeaderName::from_static(k),
            http::HeaderValue::from_static(v),
        );
    }
    c.bench_function("headers/upstream_request", |b| {
        b.iter_batched(
            || base.clone(),
            |mut h| {
                upstream_request(
                    &mut h,
                    Some("shop.example.com"),
                    http::Version::HTTP_2,
                    &fwd,
                )
            },
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("policy/parse_disposition", |b| {
        b.iter(|| {
            policy::parse_disposition(std::hint::black_box(
                b"form-data; name=\"image\"; filename=\"caf\xc3\xa9 menu (1).png\"",
            ))
        })
    });
}

fn images(c: &mut Criterion) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let mut group = c.benchmark_group("image/validate_and_strip");
    group.sample_size(20);
    for file in [
        "public/exif-samples/DSCN0010.jpg",
        "public/image-rs/cat.jpg",
        "generated/accept_png_exactly_2MiB.png",
    ] {
        let bytes = std::fs::read(corpus.join(file)).expect("corpus file");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(file), &bytes, |b, bytes| {
            b.iter(|| {
                let info = image::validate(bytes, 40_000_000).expect("valid");
                image::strip_metadata(bytes, info.kind).expect("strip")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, router, headers, images);
criterion_main!(benches);
