//! The `gatehouse` binary: parse the command line, load the configuration (before
//! binding anything), and run the command. Exit codes: 0 success; 1 a failed command or
//! `check` finding problems; 2 usage; 78 (EX_CONFIG) `run` refusing an invalid configuration.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use gatehouse::cli::{Args, Command, UploadsCommand};
use gatehouse::{config, error_chain, ledger, App, Config};
use tokio_util::sync::CancellationToken;

const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.command.unwrap_or(Command::Run) {
        Command::Run => runtime.block_on(run(&args.config)),
        Command::Check => check(&args.config),
        Command::S3Policy => report(s3_policy(&args.config)),
        Command::Uploads {
            command: UploadsCommand::List { json },
        } => report(runtime.block_on(uploads_list(&args.config, json))),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &std::path::Path) -> Result<Config, config::Error> {
    Config::load(path)
}

fn check(path: &std::path::Path) -> ExitCode {
    match load(path) {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", e.render());
            ExitCode::FAILURE
        }
    }
}

async fn run(path: &std::path::Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{}", e.render());
            eprintln!("gatehouse: not starting: fix the configuration (try `gatehouse check`)");
            return ExitCode::from(EX_CONFIG);
        }
    };
    let app = match App::bind(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let token = CancellationToken::new();
    gatehouse::shutdown::spawn(token.clone());
    app.run(token).await;
    ExitCode::SUCCESS
}

fn s3_policy(path: &std::path::Path) -> anyhow::Result<()> {
    let config = load(path).map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    let config::StorageBackend::S3 { bucket, .. } = &config.storage.backend else {
        anyhow::bail!(
            "storage.backend is not \"s3\" in {}: there is no bucket to write a policy for",
            path.display()
        );
    };
    print!(
        "{}",
        gatehouse::storage::policy::render(bucket, &config.storage.prefix)
    );
    Ok(())
}

async fn uploads_list(path: &std::path::Path, as_json: bool) -> anyhow::Result<()> {
    let config = load(path).map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    let records = match ledger::Ledger::open(&config.ledger.path) {
        Ok(ledger) => ledger
            .list(None, usize::MAX)
            .context("reading the ledger")?,
        Err(e) if e.is_locked() => {
            // A running server holds sled's lock: ask it over the admin listener.
            let admin = config
                .server
                .admin
                .context("the ledger is in use by a running gatehouse and server.admin is off")?;
            fetch_from_admin(admin).await?
        }
        Err(e) => return Err(anyhow::Error::new(e)),
    };
    if as_json {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    println!(
        "{:>6}  {:>9}  {:<10}  {:<20}  url",
        "id", "bytes", "type", "created"
    );
    for r in &records {
        println!(
            "{:>6}  {:>9}  {:<10}  {:<20}  {}",
            r.id, r.bytes, r.content_type, r.created, r.url
        );
    }
    Ok(())
}

async fn fetch_from_admin(admin: std::net::SocketAddr) -> anyhow::Result<Vec<ledger::Record>> {
    use http_body_util::BodyExt;
    let host = if admin.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), admin.port())
    } else {
        admin
    };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let mut all = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let query = after.map_or(String::new(), |a| format!("&after={a}"));
        let uri: http::Uri =
            format!("http://{host}/uploads?limit={}{query}", ledger::MAX_LIST).parse()?;
        let response = client
            .get(uri)
            .await
            .context("asking the running gatehouse")?;
        anyhow::ensure!(
            response.status().is_success(),
            "admin listener answered {}",
            response.status()
        );
        let body = response.into_body().collect().await?.to_bytes();
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        let records: Vec<ledger::Record> = serde_json::from_value(page["uploads"].clone())?;
        all.extend(records);
        match page["next_after"].as_u64() {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}
