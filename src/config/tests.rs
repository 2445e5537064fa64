//! One test per validation rule, named after the rule.

use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, Error> {
    Config::parse(text, Path::new("/etc/gatehouse/proxy.toml"))
}

/// The diagnostics of an invalid config, as rendered lines.
fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn committed_proxy_toml_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy.toml");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(config.demo_page);
    let upload = config.upload.expect("upload configured");
    assert_eq!(upload.max_size, 2 * 1024 * 1024);
    assert!(!upload.forward);
    assert!(matches!(config.tls.mode, TlsMode::SelfSigned));
    assert!(matches!(
        config.storage.backend,
        StorageBackend::Local { .. }
    ));
}

#[test]
fn empty_file_gets_documented_defaults() {
    let c = parse("").expect("empty is valid");
    assert_eq!(c.server.https, "0.0.0.0:8443".parse().expect("addr"));
    assert_eq!(c.server.http, Some("0.0.0.0:8080".parse().expect("addr")));
    assert_eq!(
        c.server.admin,
        Some("127.0.0.1:9090".parse().expect("addr"))
    );
    assert!(c.server.hsts.is_none());
    assert!(c.upload.is_none());
    assert!(!c.demo_page);
    assert_eq!(c.tls.dir, Path::new("/etc/gatehouse/certs"));
    assert_eq!(c.ledger.path, Path::new("/etc/gatehouse/data/ledger"));
}

#[test]
fn unknown_key_is_rejected_with_line_and_column() {
    let p = problems("[server]\nhttps = \"127.0.0.1:1\"\nhtps = \"x\"\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("3:1: "), "{p:?}");
    assert!(p[0].contains("unknown field `htps`"), "{p:?}");
}

#[test]
fn bad_socket_address_names_the_key() {
    let p = problems("[server]\nhttps = \"localhost\"\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("2:9: server.https: "), "{p:?}");
    assert!(p[0].contains("IP:PORT"), "{p:?}");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let p = problems(
        "[server]\nhttps = \"nope\"\nadmin = \"also nope\"\n[timeouts]\nidle = \"forever\"\n[upload]\nmax_size = \"2 parsecs\"\n",
    );
    assert_eq!(p.len(), 4, "{p:?}");
    assert!(p[0].starts_with("2:9: server.https"));
    assert!(p[1].starts_with("3:9: server.admin"));
    assert!(p[2].starts_with("5:8: timeouts.idle"));
    assert!(p[3].starts_with("7:12: upload.max_size"));
}

#[test]
fn bad_duration_is_rejected() {
    let p = problems("[timeouts]\nupstream_response = \"ten seconds\"\n");
    assert!(
        p[0].contains("timeouts.upstream_response") && p[0].contains("not a duration"),
        "{p:?}"
    );
}

#[test]
fn zero_duration_is_rejected() {
    let p = problems("[timeouts]\nidle = \"0s\"\n");
    assert!(p[0].contains("greater than zero"), "{p:?}");
}

#[test]
fn sizes_accept_units_and_integers() {
    assert_eq!(parse_size("2MiB"), Ok(2 * 1024 * 1024));
    assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
    assert_eq!(parse_size("10MB"), Ok(10_000_000));
    assert_eq!(parse_size("2097152"), Ok(2_097_152));
    assert!(parse_size("2 parsecs").is_err());
    let c = parse("[upload]\nmax_size = 1000\n").expect("integer size");
    assert_eq!(c.upload.expect("upload").max_size, 1000);
}

#[test]
fn negative_size_is_rejected() {
    let p = problems("[upload]\nmax_size = -1\n");
    assert!(p[0].contains("must not be negative"), "{p:?}");
}

#[test]
fn route_without_upstream_is_rejected() {
    let p = problems("[[route]]\npath = \"/\"\n");
    assert!(
        p[0].starts_with("2:8: route[0].upstream: route has no upstream"),
        "{p:?}"
    );
}

#[test]
fn route_upstream_scheme_must_be_http_or_https() {
    let p = problems("[[route]]\npath = \"/\"\nupstream = \"htp://127.0.0.1:3000\"\n");
    assert!(
        p[0].contains("route[0].upstream") && p[0].contains("use http or https"),
        "{p:?}"
    );
}

#[test]
fn route_upstream_with_a_path_is_rejected() {
    let p = problems("[[route]]\npath = \"/\"\nupstream = \"http://127.0.0.1:3000/app\"\n");
    assert!(p[0].contains("has a path"), "{p:?}");
}

#[test]
fn duplicate_route_is_rejected() {
    let p = problems(
        "[[route]]\npath = \"/a\"\nupstream = \"http://127.0.0.1:1\"\n[[route]]\npath = \"/a\"\nupstream = \"http://127.0.0.1:2\"\n",
    );
    assert!(p[0].starts_with("5:8: route[1].path"), "{p:?}");
}

#[test]
fn route_path_must_start_with_slash() {
    let p = problems("[[route]]\npath = \"api\"\nupstream = \"http://127.0.0.1:1\"\n");
    assert!(p[0].contains("must start with \"/\""), "{p:?}");
}

#[test]
fn files_mode_needs_existing_cert_and_key() {
    let p = problems("[tls]\nmode = \"files\"\ncert = \"/nonexistent/fullchain.pem\"\n");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p.iter().any(|l| l.contains("tls.cert") && l.contains("cannot read /nonexistent/fullchain.pem")), "{p:?}");
    assert!(
        p.iter()
            .any(|l| l.contains("tls.key") && l.contains("needs tls.key")),
        "{p:?}"
    );
}

#[test]
fn unknown_tls_mode_is_rejected() {
    let p = problems("[tls]\nmode = \"letsencrypt\"\n");
    assert!(p[0].contains("unknown mode \"letsencrypt\""), "{p:?}");
}

#[test]
fn upload_types_must_be_known() {
    let p = problems("[upload]\ntypes = [\"jpg\", \"gif\"]\n");
    assert!(
        p[0].starts_with("2:17: upload.types: \"gif\" cannot be validated"),
        "{p:?}"
    );
    let c = parse("[upload]\ntypes = [\".PNG\"]\n").expect("case and dot tolerated");
    assert_eq!(c.upload.expect("upload").types, vec!["png".to_owned()]);
}

#[test]
fn s3_backend_needs_a_bucket() {
    let p = problems("[storage]\nbackend = \"s3\"\n[storage.s3]\nregion = \"eu-west-1\"\n");
    assert!(p[0].contains("storage.s3.bucket"), "{p:?}");
}

#[test]
fn s3_endpoint_must_be_a_url() {
    let p = problems("[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"bkt\"\nendpoint = \"127.0.0.1:9000\"\n");
    assert!(p[0].contains("storage.s3.endpoint"), "{p:?}");
}

#[test]
fn hsts_false_disables_and_bad_value_is_rejected() {
    assert!(parse("[server]\nhsts = false\n")
        .expect("valid")
        .server
        .hsts
        .is_none());
    let p = problems("[server]\nhsts = \"forever\"\n");
    assert!(p[0].contains("server.hsts"), "{p:?}");
}

#[test]
fn listeners_can_be_turned_off() {
    let c = parse("[server]\nhttp = \"off\"\nadmin = \"off\"\n").expect("valid");
    assert!(c.server.http.is_none() && c.server.admin.is_none());
}

#[test]
fn https_and_http_must_differ() {
    let p = problems("[server]\nhttps = \"127.0.0.1:8443\"\nhttp = \"127.0.0.1:8443\"\n");
    assert!(p[0].contains("must differ"), "{p:?}");
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let c = parse("[storage]\ndir = \"media\"\n[ledger]\npath = \"/var/lib/gh/ledger\"\n")
        .expect("valid");
    match c.storage.backend {
        StorageBackend::Local { dir } => assert_eq!(dir, Path::new("/etc/gatehouse/media")),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.ledger.path, Path::new("/var/lib/gh/ledger"));
}

#[test]
fn syntax_error_reports_its_place() {
    let p = problems("[server\nhttps = 1\n");
    assert!(p[0].starts_with("1:"), "{p:?}");
}

#[test]
fn s3_bucket_name_must_follow_s3_rules() {
    let p = problems("[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"Bad_Bucket\"\n");
    assert!(
        p[0].starts_with("4:10: storage.s3.bucket: \"Bad_Bucket\" is not an S3 bucket name"),
        "{p:?}"
    );
}
