//! The `crosstalk` command line: turns flags into a library session
//! ([`crosstalk::session`]), prints what it returns and exits with its code:
//! 0 clean, 1 findings, 2 bad input or unreachable target, 3 incomplete
//! (work not done, no verdict), 130 interrupted.

mod args;

use std::process::ExitCode;

use args::{Cli, Command, SnapshotAction, SnapshotArgs};
use clap::Parser;
use crosstalk::safety::terminal_safe;
use crosstalk::session::{Exit, SessionError, Stop};
use tokio::signal::unix::{SignalKind, signal};

// A run allocates and frees a few small buffers per request across two
// threads; glibc's allocator spent a fifth of the CPU of a large run on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CROSSTALK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.command.threads() {
        runtime.worker_threads(threads);
    }
    let runtime = runtime.enable_all().build().expect("a tokio runtime");
    // The session runs as a task on the runtime's workers, not on this
    // thread: every request's completion wakes whoever awaits it, and
    // waking a worker is cheap where waking a parked thread is a syscall.
    let session = runtime.spawn(async move {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Fuzz(args) => fuzz(args).await,
            Command::Replay(args) => replay(args).await,
            Command::Check(args) => check(args),
            Command::Init(args) => init(args).await,
            Command::Merge(args) => merge(args),
            Command::Schema => {
                let schema = crosstalk::scenario::schema();
                println!("{}", serde_json::to_string_pretty(&schema).expect("JSON"));
                Exit::Clean
            }
            Command::Snapshots(SnapshotArgs {
                action: SnapshotAction::Accept { snapshots },
            }) => accept(&snapshots),
        }
    });
    let exit = match runtime.block_on(session) {
        Ok(exit) => exit,
        Err(failed) => std::panic::resume_unwind(failed.into_panic()),
    };
    ExitCode::from(exit.code())
}

async fn run(args: args::RunArgs) -> Exit {
    let session = match args.session(stop_on_signals()) {
        Ok(session) => session,
        Err(message) => return failed(SessionError::Input(message)),
    };
    match session.execute().await {
        Ok(outcome) => {
            print_out(&terminal_safe(&outcome.report.summary()));
            if let Some(problem) = &outcome.problem {
                eprintln!("error: {problem}");
            }
            outcome.exit
        }
        Err(err) => failed(err),
    }
}

fn merge(args: args::MergeArgs) -> Exit {
    match args.session().execute() {
        Ok(outcome) => {
            print_out(&terminal_safe(&outcome.report.summary()));
            if let Some(problem) = &outcome.problem {
                eprintln!("error: {problem}");
            }
            outcome.exit
        }
        Err(err) => failed(err),
    }
}

async fn init(args: args::InitArgs) -> Exit {
    match args.session().execute().await {
        Ok(done) => {
            println!("wrote {} ({} steps)", done.path.display(), done.steps);
            println!("{}", done.account);
            for why in &done.unplaced {
                println!("not placed: {why}");
            }
            println!(
                "next: crosstalk check {0}, then crosstalk run {0}",
                done.path.display()
            );
            Exit::Clean
        }
        Err(err) => failed(err),
    }
}

fn check(args: args::CheckArgs) -> Exit {
    match args
        .session()
        .map_err(SessionError::Input)
        .and_then(|c| c.execute())
    {
        Ok(plans) => {
            print!("{}", terminal_safe(&plans));
            Exit::Clean
        }
        Err(err) => failed(err),
    }
}

async fn fuzz(args: args::FuzzArgs) -> Exit {
    let session = match args.session(stop_on_signals()) {
        Ok(session) => session,
        Err(message) => return failed(SessionError::Input(message)),
    };
    match session.execute().await {
        Ok(outcome) => {
            println!("{}", outcome.describe());
            outcome.exit
        }
        Err(err) => failed(err),
    }
}

async fn replay(args: args::ReplayArgs) -> Exit {
    let session = match args.session() {
        Ok(session) => session,
        Err(message) => return failed(SessionError::Input(message)),
    };
    let outcome = match session.execute().await {
        Ok(outcome) => outcome,
        Err(err) => return failed(err),
    };
    print_out(&terminal_safe(&outcome.describe()));
    outcome.exit
}

/// Prints a session's report to stdout. A stdout that cannot take it (a
/// file on a full disk, a closed pipe) is a warning on stderr, not a panic:
/// the exit code must still say what the session found.
fn print_out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        eprintln!("warning: cannot print the report to stdout: {err}");
    }
}

fn accept(snapshots: &std::path::Path) -> Exit {
    match crosstalk::contract::accept(snapshots) {
        Ok(n) => {
            println!("accepted {n} snapshot(s) in {}", snapshots.display());
            Exit::Clean
        }
        Err(err) => {
            let dir = snapshots.display();
            eprintln!("error: cannot accept snapshots in {dir}: {err}");
            Exit::BadInput
        }
    }
}

/// Prints why a session could not run; a scenario error with its snippet.
fn failed(err: SessionError) -> Exit {
    // One unwrapped line for scripts and editors, then the annotated
    // snippet and its help, without saying the message a second time.
    eprintln!("error: {err}");
    if let SessionError::Scenario(err) = err {
        let report = format!("{:?}", miette::Report::new(err));
        let snippet = report
            .lines()
            .skip_while(|line| !line.contains(",-[") && !line.contains("╭─["));
        for line in snippet {
            eprintln!("{line}");
        }
    }
    Exit::BadInput
}

/// First SIGINT or SIGTERM (Ctrl-C, or a CI system cancelling): the
/// session stops its flow, runs teardown and writes its reports. Second:
/// stop at once, with 1 if anything was found so far, else 130. Findings
/// and requests are on disk as they happen, so nothing is lost either way.
fn stop_on_signals() -> Stop {
    let stop = Stop::default();
    let handle = stop.clone();
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("warning: cannot handle SIGINT and SIGTERM; a signal stops at once");
        return stop;
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        eprintln!(
            "\ninterrupted: cancelling requests in flight and running teardown (again to stop now)"
        );
        handle.cancel.cancel();
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        std::process::exit(handle.exit_now().code().into());
    });
    stop
}
