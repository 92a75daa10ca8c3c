//! `mpm demo`: the agent-orchestration scenario, measured, beside the performance guide's figures.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use clap::Args;
use mpm_demo::scenario::{Options, Progress, Scale};

/// `mpm demo` options.
#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// How big a run: `small` (quick), `normal`, or a number N (normal times N).
    #[arg(long, default_value = "normal", value_parser = parse_scale)]
    scale: Scale,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Record deployments in this PostgreSQL database instead of an embedded SQLite file.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Put the profile cache's shared tier on this Redis server (instead of the disk), with
    /// the invalidation bus attached, and add Redis figures to the report (hit rate, get
    /// latency, an invalidation seen by a second instance).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Write the run's Prometheus exposition to FILE.
    #[arg(long, value_name = "FILE")]
    metrics_out: Option<PathBuf>,
    /// Check these budgets instead of the shipped ones (mpm-metrics budget TOML).
    #[arg(long, value_name = "FILE")]
    budgets: Option<PathBuf>,
    /// After the run, keep the service running and serve the live dashboard and /metrics on
    /// ADDR (default 127.0.0.1:8787; loopback unless you name another address), until Ctrl-C.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8787")]
    serve: Option<SocketAddr>,
}

/// The hidden service process the start-up step times.
#[derive(Args, Debug)]
pub(crate) struct ServiceArgs {
    /// The service's state folder (templates and the cache's L2).
    #[arg(long)]
    state: PathBuf,
}

/// The hidden `demo-table` command: the table of a report saved with `mpm demo --json`.
#[derive(Args, Debug)]
pub(crate) struct TableArgs {
    /// Print the README's demo block (marker lines, introduction, table) instead.
    #[arg(long)]
    readme: bool,
    /// The saved report.
    report: PathBuf,
}

/// Prints the table of a saved report, as the run that saved it printed it.
pub(crate) fn run_table(args: TableArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.report) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mpm demo-table: cannot read {}: {e}", args.report.display());
            return ExitCode::from(1);
        }
    };
    match mpm_demo::report::Report::from_json(&text) {
        Ok(report) if args.readme => {
            println!("{}", report.readme_block());
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", report.to_table());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mpm demo-table: {}: {e}", args.report.display());
            ExitCode::from(1)
        }
    }
}

fn parse_scale(s: &str) -> Result<Scale, String> {
    match s {
        "small" => Ok(Scale::Small),
        "normal" => Ok(Scale::Normal),
        n => NonZeroUsize::from_str(n).map(Scale::Times).map_err(|_| {
            format!("{n:?} is not a scale: use small, normal or a positive whole number")
        }),
    }
}

struct Steps;

impl Progress for Steps {
    fn step(&self, n: usize, of: usize, what: &str) {
        eprintln!("[{n}/{of}] {what}");
    }
}

/// Runs `mpm demo`.
pub(crate) fn run(args: DemoArgs) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("mpm demo: cannot find the mpm program itself to start the service: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mpm demo: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let mut options = Options::new(exe);
        options.scale = args.scale;
        options.postgres = args.postgres.clone();
        options.redis = args.redis.clone();
        options.budgets = args.budgets.clone();
        let quiet = args.json && !std::io::stderr().is_terminal();
        let demo = if quiet {
            mpm_demo::scenario::run(&options, &()).await
        } else {
            mpm_demo::scenario::run(&options, &Steps).await
        };
        let demo = match demo {
            Ok(d) => d,
            Err(e) => {
                eprintln!("mpm demo: {e}");
                return ExitCode::from(1);
            }
        };
        let mut out = std::io::stdout().lock();
        let text = if args.json {
            demo.report.to_json()
        } else {
            demo.report.to_table()
        };
        let _ = writeln!(out, "{text}");
        drop(out);
        if let Some(path) = &args.metrics_out {
            let exposition = demo.mpm.render_prometheus();
            if let Err(e) = std::fs::write(path, exposition) {
                eprintln!("mpm demo: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
        let code = if demo.report.budgets_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
        if let Some(addr) = args.serve {
            let live = match mpm_demo::live_service::LiveService::start(&demo, addr).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("mpm demo: {e}");
                    return ExitCode::from(1);
                }
            };
            println!(
                "dashboard: http://{}/  (metrics: http://{}/metrics; Ctrl-C stops)",
                live.addr(),
                live.addr()
            );
            let _ = std::io::stdout().flush();
            let _ = tokio::signal::ctrl_c().await;
            live.shutdown().await;
        }
        code
    })
}

/// Runs the hidden service process.
pub(crate) fn run_service(args: ServiceArgs) -> ExitCode {
    match mpm_demo::service_process::main(&args.state) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpm demo-service: {e}");
            ExitCode::from(1)
        }
    }
}
