//! The command line (see DESIGN.md): `run` (default), `check`, `s3-policy`, `uploads list`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "HTTPS edge for a web shop: TLS, reverse proxy, safe image uploads"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The configuration file (for the default `run`).
    #[arg(long, global = true, default_value = "proxy.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve (the default).
    Run,
    /// Validate the configuration; print every problem as file:line:column; exit 1 on error.
    Check,
    /// Print the S3 bucket policy (public read of the upload prefix) and the writer's IAM policy.
    S3Policy,
    /// The uploads ledger.
    Uploads {
        #[command(subcommand)]
        command: UploadsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UploadsCommand {
    /// Print every record: id, url, size, type, time.
    List {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}
