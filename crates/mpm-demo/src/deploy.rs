//! Step 3: deploy agents: render and validate each, write its file atomically into the project,
//! record the deployment in the database; sequentially, and with bounded concurrency.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::Error;
use crate::agents::Agent;
use crate::atomic::write_atomic;

/// One deployment, as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    /// The run's deployment id (one per deploy call).
    pub id: String,
    /// The agent deployed.
    pub agent: String,
    /// The template's version.
    pub version: String,
    /// The model the agent runs on.
    pub model: String,
    /// The file written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Where deployments are recorded: the database behind a pool.
pub trait DeploymentLog: Send + Sync {
    /// Records one deployment.
    fn record<'a>(&'a self, deployment: &'a Deployment) -> BoxFuture<'a, Result<(), Error>>;
}

/// What one deploy call did.
#[derive(Clone, Debug)]
pub struct Deployed {
    /// Agents deployed, in the order asked.
    pub deployments: Vec<Deployment>,
    /// Wall time of the whole call.
    pub elapsed: Duration,
}

/// Renders, validates, writes and records one agent.
async fn deploy_one(
    agent: &Agent,
    id: &str,
    dir: &Path,
    log: &dyn DeploymentLog,
) -> Result<Deployment, Error> {
    let text = agent.render(id);
    let path = dir.join(format!("{}.md", agent.meta.name));
    // The rendered file must parse back to the same agent.
    let back = Agent::parse(&path, &strip_stamp(&text))?;
    if back.meta != agent.meta {
        return Err(Error::Template {
            path,
            why: "the rendered file does not parse back to its template".into(),
        });
    }
    let bytes = text.len() as u64;
    let path_owned = path.clone();
    tokio::task::spawn_blocking(move || write_atomic(&path_owned, text.as_bytes()))
        .await
        .map_err(|e| Error::io(&path, std::io::Error::other(e)))??;
    let deployment = Deployment {
        id: id.to_owned(),
        agent: agent.meta.name.clone(),
        version: agent.meta.version.clone(),
        model: agent.meta.model.clone(),
        path,
        bytes,
    };
    log.record(&deployment).await?;
    Ok(deployment)
}

/// The rendered file without the deployment stamp, so it parses as a template.
fn strip_stamp(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_front = false;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line == "---\n" {
            in_front = i == 0;
        }
        if in_front && line.starts_with("deployment: ") {
            continue;
        }
        out.push_str(line);
    }
    out
}

/// Deploys `agents` one after another.
pub async fn deploy_sequential(
    agents: &[Arc<Agent>],
    id: &str,
    dir: &Path,
    log: &dyn DeploymentLog,
) -> Result<Deployed, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let started = Instant::now();
    let mut deployments = Vec::with_capacity(agents.len());
    for agent in agents {
        deployments.push(deploy_one(agent, id, dir, log).await?);
    }
    Ok(Deployed {
        deployments,
        elapsed: started.elapsed(),
    })
}

/// Deploys `agents` with at most `limit` at once (`mpm_core::batch::run_bounded`, the guide's
/// semaphore of 5): every result comes back; the first failure is returned after all finished.
pub async fn deploy_concurrent(
    agents: &[Arc<Agent>],
    id: &str,
    dir: &Path,
    log: &Arc<dyn DeploymentLog>,
    limit: NonZeroUsize,
) -> Result<Deployed, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let started = Instant::now();
    let results = mpm_core::batch::run_bounded(agents.iter().cloned(), limit, |agent| {
        let id = id.to_owned();
        let dir = dir.to_path_buf();
        let log = Arc::clone(log);
        async move { deploy_one(&agent, &id, &dir, &*log).await }
    })
    .await;
    let elapsed = started.elapsed();
    let mut deployments = Vec::with_capacity(results.len());
    for r in results {
        deployments.push(r.map_err(|e| Error::Batch(e.to_string()))?);
    }
    Ok(Deployed {
        deployments,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Memory(Mutex<Vec<Deployment>>);

    impl DeploymentLog for Memory {
        fn record<'a>(&'a self, d: &'a Deployment) -> BoxFuture<'a, Result<(), Error>> {
            Box::pin(async move {
                self.0.lock().push(d.clone());
                Ok(())
            })
        }
    }

    fn agents() -> Vec<Arc<Agent>> {
        crate::agents::TEMPLATES
            .iter()
            .map(|(name, text)| Arc::new(Agent::parse(Path::new(name), text).unwrap()))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_deploys_write_every_file_and_record_each_once() {
        let tmp = tempfile::tempdir().unwrap();
        let log = Arc::new(Memory::default());
        let dyn_log: Arc<dyn DeploymentLog> = log.clone();
        let all = agents();
        let d = deploy_concurrent(
            &all,
            "d1",
            tmp.path(),
            &dyn_log,
            NonZeroUsize::new(5).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(d.deployments.len(), 15);
        for (dep, agent) in d.deployments.iter().zip(&all) {
            assert_eq!(dep.agent, agent.meta.name);
            let text = std::fs::read_to_string(&dep.path).unwrap();
            assert_eq!(text, agent.render("d1"));
            assert_eq!(dep.bytes, text.len() as u64);
        }
        let mut recorded: Vec<String> = log.0.lock().iter().map(|d| d.agent.clone()).collect();
        recorded.sort();
        let names: Vec<String> = all.iter().map(|a| a.meta.name.clone()).collect();
        assert_eq!(recorded, names);
        // Nothing but the agent files is left behind (no temporary files).
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 15);
    }

    #[tokio::test]
    async fn a_failing_database_fails_the_deployment() {
        struct Down;
        impl DeploymentLog for Down {
            fn record<'a>(&'a self, _: &'a Deployment) -> BoxFuture<'a, Result<(), Error>> {
                Box::pin(async { Err(Error::Database("down".into())) })
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let e = deploy_sequential(&agents()[..2], "d", tmp.path(), &Down)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("down"), "{e}");
    }

    #[test]
    fn a_rendered_file_parses_back() {
        for a in agents() {
            let text = a.render("x");
            let back = Agent::parse(
                Path::new(&format!("{}.md", a.meta.name)),
                &strip_stamp(&text),
            )
            .unwrap();
            assert_eq!(back.meta, a.meta);
        }
    }
}
