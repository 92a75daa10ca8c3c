//! The mpm demo: an agent-orchestration service in miniature, built with mpm and measured.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

pub mod agents;
mod atomic;
pub mod database;
pub mod deploy;
pub mod discover;
mod error;
pub mod events;
pub mod figures;
mod frame;
pub mod hub;
pub mod live;
pub mod live_service;
pub mod machine;
pub mod memory_files;
pub mod memory_step;
pub mod memory_use;
pub mod percentile;
pub mod profiles;
pub mod report;
pub mod scenario;
pub mod server;
pub mod service_process;
pub mod shared_tier;
pub mod start;

pub use error::Error;
