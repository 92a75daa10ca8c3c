//! Runs one operation of `mpm_benches::ops` a given number of times, for callgrind.
//!
//! - `mpm-ops OP N`: the set-up of `OP`, then `OP` `N` times.
//! - `mpm-ops --list`: every operation's name and what it does.
//! - `mpm-ops --cpu`: `avx2` or `scalar`, the path mpm-memory-opt takes in this process.
//! - `mpm-ops --memory-file BYTES PATH`: writes the generated memory file the benches use.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use mpm_benches::ops;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--list"] => {
            for op in ops::OPS {
                println!("{}\t{}", op.name, op.what);
            }
            ExitCode::SUCCESS
        }
        ["--cpu"] => {
            println!("{}", if ops::avx2() { "avx2" } else { "scalar" });
            ExitCode::SUCCESS
        }
        ["--memory-file", bytes, path] => {
            let Ok(bytes) = bytes.parse::<usize>() else {
                eprintln!("mpm-ops: {bytes:?} is not a byte count");
                return ExitCode::FAILURE;
            };
            match mpm_memory_opt::write_atomic(
                std::path::Path::new(path),
                ops::memory_file(bytes).as_bytes(),
            ) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mpm-ops: could not write {path}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        [name, n] => {
            let Some(op) = ops::find(name) else {
                eprintln!("mpm-ops: no operation {name:?} (see --list)");
                return ExitCode::FAILURE;
            };
            let Ok(n) = n.parse::<u64>() else {
                eprintln!("mpm-ops: {n:?} is not a count");
                return ExitCode::FAILURE;
            };
            (op.run)(n);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: mpm-ops OP N | --list | --cpu | --memory-file BYTES PATH");
            ExitCode::FAILURE
        }
    }
}
