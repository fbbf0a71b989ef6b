//! `recordsync-bench`: see the crate docs in `lib.rs` and `bench/README.md`.

/// The same allocator as the `recordsync` binary, so that the servers this binary runs
/// (`serve recordsync`, `serve ceiling`) allocate as the shipped server does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use recordsync_bench::compare::{self, Peer, Plan, Scale, Scenario};
use recordsync_bench::{ceiling, report, soak, targets};
use recordsync_server::{Config, Server, StorageKind};

#[derive(Parser)]
#[command(
    name = "recordsync-bench",
    about = "Load generator: recordsync side by side with deepstream, ShareDB and a bare broadcaster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scenarios against recordsync and its peers; print and write the report.
    Compare {
        /// `small` (the sizes, about 3 minutes) or `large`.
        #[arg(long, value_enum, default_value = "small")]
        scale: Scale,
        /// Scenarios to run (default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<Scenario>,
        /// Servers to run them against (default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        targets: Vec<Peer>,
        /// Override the length of each measured window, in seconds.
        #[arg(long)]
        seconds: Option<f64>,
        /// Unacknowledged writes each fan-out writer keeps in flight when unthrottled.
        #[arg(long)]
        window: Option<usize>,
        /// Where the report goes.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
        out: PathBuf,
        /// The npm package of the peer servers.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/peers"))]
        peers: PathBuf,
        /// Do not run bench/peers/install.sh first.
        #[arg(long)]
        no_install: bool,
    },
    /// Overwrite a few records for minutes with the real `recordsync` binary and sample
    /// its memory: it must level off (see bench/README.md, "Soak").
    Soak {
        /// Minutes of writing.
        #[arg(long, default_value_t = 3.0)]
        minutes: f64,
        /// Seconds of sampling after the writes stop.
        #[arg(long, default_value_t = 20.0)]
        settle: f64,
        /// Seconds between two samples.
        #[arg(long, default_value_t = 5.0)]
        every: f64,
        /// Storages to run, one after the other.
        #[arg(long, value_delimiter = ',', default_value = "embedded,memory")]
        storage: Vec<String>,
        /// The server binary [default: `recordsync` next to this binary].
        #[arg(long, value_name = "PATH")]
        server: Option<PathBuf>,
        /// Passed to the server as `--cache-size` (omit for builds before the setting).
        #[arg(long, value_name = "SIZE")]
        cache_size: Option<String>,
        /// Writing connections.
        #[arg(long, default_value_t = 4)]
        writers: usize,
        /// Records they write (writer `w` writes `soak/<w mod records>`).
        #[arg(long, default_value_t = 1)]
        records: usize,
        /// Unacknowledged writes per writer.
        #[arg(long, default_value_t = 32)]
        window: usize,
        /// Bytes per value.
        #[arg(long, default_value_t = 1024)]
        value_bytes: usize,
        /// Where `soak-latest.md` and `soak-latest.jsonl` go.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
        out: PathBuf,
    },
    /// Internal: run one server under test on 127.0.0.1 (prints `LISTENING addr`).
    #[command(hide = true)]
    Serve {
        #[command(subcommand)]
        what: Serve,
    },
}

#[derive(Subcommand)]
enum Serve {
    Recordsync {
        #[arg(long, default_value = "memory")]
        storage: String,
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// The bus joining this node to others (`redis://…`, `nats://…`).
        #[arg(long)]
        cluster: Option<String>,
        /// Journal entries kept per record, or `all` (as `recordsync serve`'s flag).
        #[arg(long, value_name = "N|all")]
        keep_history: Option<String>,
    },
    Ceiling,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { what } => serve(what).await,
        Command::Soak {
            minutes,
            settle,
            every,
            storage,
            server,
            cache_size,
            writers,
            records,
            window,
            value_bytes,
            out,
        } => {
            let server = match server {
                Some(path) => path,
                None => match std::env::current_exe() {
                    Ok(exe) => exe.with_file_name("recordsync"),
                    Err(e) => {
                        eprintln!("recordsync-bench: cannot find the recordsync binary: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            };
            tokio::spawn(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("\ninterrupted: stopping the server");
                    targets::kill_all();
                    soak::clean_up();
                    std::process::exit(130);
                }
            });
            let params = soak::SoakParams {
                server,
                storages: storage,
                cache_size,
                duration: Duration::from_secs_f64(minutes * 60.0),
                settle: Duration::from_secs_f64(settle),
                every: Duration::from_secs_f64(every.max(0.1)),
                writers: writers.max(1),
                records: records.max(1),
                window,
                value_bytes,
            };
            match soak::run(&params).await {
                Ok(runs) => {
                    println!("{}", soak::markdown(&runs));
                    match soak::write(&runs, &out) {
                        Ok(files) => {
                            for f in files {
                                eprintln!("wrote {}", f.display());
                            }
                        }
                        Err(e) => eprintln!("could not write to {}: {e}", out.display()),
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    targets::kill_all();
                    eprintln!("recordsync-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Compare {
            scale,
            only,
            targets: peers,
            seconds,
            window,
            out,
            peers: peers_dir,
            no_install,
        } => {
            tokio::spawn(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("\ninterrupted: stopping the servers");
                    targets::kill_all();
                    std::process::exit(130);
                }
            });
            let mut plan = Plan::new(scale, peers_dir, out.clone());
            if !only.is_empty() {
                plan.scenarios = only;
            }
            if !peers.is_empty() {
                plan.peers = peers;
            }
            if let Some(s) = seconds {
                let d = Duration::from_secs_f64(s);
                plan.fanout.duration = d;
                plan.rate_duration = d;
                plan.durable_duration = d;
                plan.query.duration = d;
            }
            if let Some(w) = window {
                plan.fanout.window = w.max(1);
            }
            plan.install = !no_install;
            let result = compare::run(&plan).await;
            targets::kill_all();
            match result {
                Ok(report) => {
                    println!("{}", report.markdown());
                    match compare::write(&report, &out) {
                        Ok(files) => {
                            for f in files {
                                eprintln!("wrote {}", f.display());
                            }
                        }
                        Err(e) => eprintln!("could not write the report to {}: {e}", out.display()),
                    }
                    let missed = report::GOALS
                        .iter()
                        .filter(|g| report.goal(g).is_some_and(|(_, met)| !met))
                        .count();
                    if missed > 0 {
                        eprintln!("{missed} target(s) missed (see the table)");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("recordsync-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(what: Serve) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RECORDSYNC_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    match what {
        Serve::Ceiling => {
            let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("ceiling: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!("LISTENING {}", listener.local_addr().expect("bound"));
            tokio::select! {
                _ = ceiling::serve(listener) => {}
                _ = shutdown => {}
            }
            ExitCode::SUCCESS
        }
        Serve::Recordsync {
            storage,
            data_dir,
            cluster,
            keep_history,
        } => {
            let storage = match storage.parse::<StorageKind>() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut config = Config {
                host: "127.0.0.1".into(),
                port: 0,
                storage,
                data_dir,
                cluster,
                ..Config::default()
            };
            if let Some(keep) = keep_history {
                match recordsync_server::parse_keep_ops(&keep) {
                    Ok(keep_ops) => config.history.keep_ops = keep_ops,
                    Err(e) => {
                        eprintln!("--keep-history: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            let server = match Server::bind(config).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("recordsync: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!("LISTENING {}", server.local_addr());
            match server.run(shutdown).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("recordsync: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
