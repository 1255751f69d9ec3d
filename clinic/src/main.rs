//! `clinic`: serve the reference telehealth API, or list its fault catalog.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clinic::{Clinic, Config, FAULTS_ENV, Fault, Faults};

#[derive(Parser)]
#[command(
    name = "clinic",
    version,
    about = "Reference telehealth staging API with a catalog of patient-data leak faults"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API over HTTP.
    Serve {
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to bind; loopback unless you mean otherwise.
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        bind: IpAddr,
        /// SQLite file to persist to (in memory when absent).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Faults to switch on, by name (repeat or separate with commas).
        #[arg(long = "fault", value_name = "NAME[,NAME]", env = FAULTS_ENV, value_delimiter = ',')]
        faults: Vec<String>,
        /// How callers carry their session: `bearer` (a token from the
        /// login's body) or `cookie` (a session cookie the login sets).
        #[arg(long, default_value = "bearer")]
        sessions: clinic::auth::Sessions,
    },
    /// List the fault catalog: one fault a line, its name then a description.
    Faults,
    /// Print the OpenAPI document (as served at /openapi.json).
    Openapi,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "clinic=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Openapi => {
            println!("{}", clinic::openapi::document_json());
            Ok(())
        }
        Command::Faults => {
            let width = Fault::ALL.iter().map(|f| f.name().len()).max().unwrap_or(0);
            for fault in Fault::ALL {
                println!("{:width$}  {}", fault.name(), fault.description());
            }
            Ok(())
        }
        Command::Serve {
            port,
            bind,
            db,
            faults,
            sessions,
        } => {
            let faults = Faults::parse_list(&faults.join(","))?;
            let clinic = Clinic::new(Config {
                db: db.clone(),
                faults: faults.clone(),
                sessions,
            })
            .with_context(|| match &db {
                Some(path) => format!("cannot open database {}", path.display()),
                None => "cannot open the in-memory database".to_string(),
            })?;
            let listener = tokio::net::TcpListener::bind(SocketAddr::new(bind, port))
                .await
                .with_context(|| format!("cannot listen on {bind}:{port}"))?;
            let addr = listener.local_addr()?;
            // The first line of stdout is the address, for scripts and tests.
            println!("clinic listening on http://{addr}");
            if !faults.is_empty() {
                eprintln!("faults on: {faults}");
            }
            clinic.serve(listener).await?;
            Ok(())
        }
    }
}
