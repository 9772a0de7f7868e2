//! Pacing kept in a shared store: connectors that share one store (as separate processes
//! would, each with its own handle) share each (tenant, app)'s window, and a store that cannot
//! be reached fails calls unsent instead of letting them through unpaced.

#[path = "../../state/tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use skillhost_contract::types::{HttpError, HttpRequest, Method};
use skillhost_simulator::{DEFAULT_CLIENT_SECRET, SecretRef, Simulator, SimulatorConfig};
use skillhost_state::Store;
use skillhost_upstream::connections::{Config, Connection};
use skillhost_upstream::outbound::{BoundConnection, Connector};
use skillhost_upstream::pacing::PacingBackend;
use support::{Backend, TempDir};

/// The simulator's minute lasts 1 s; its list calls are limited to 50 in it.
const TIME_SCALE: f64 = 60.0;

fn simulator() -> Simulator {
    let config = SimulatorConfig {
        time_scale: TIME_SCALE,
        ..SimulatorConfig::default()
    };
    Simulator::start(config, "127.0.0.1:0").expect("start the simulator")
}

/// The simulator's connection, paced at the published limits on its time scale.
fn connection(sim: &Simulator, dir: &TempDir) -> Connection {
    let secret = dir.path().join("secret");
    std::fs::write(&secret, DEFAULT_CLIENT_SECRET).unwrap();
    let pacing = format!("[connections.sim.pacing]\ntime_scale = {TIME_SCALE}");
    let toml = sim.connection_toml("sim", "acme", "defender", SecretRef::File(&secret), &pacing);
    Config::parse(&toml)
        .unwrap()
        .connection("sim")
        .unwrap()
        .clone()
}

fn list_call() -> HttpRequest {
    HttpRequest {
        service: "defender".into(),
        method: Method::Get,
        path_and_query: "/api/incidents?$top=1".into(),
        headers: vec![],
        body: None,
    }
}

fn bind(connector: &Arc<Connector>, connection: &Connection) -> Arc<BoundConnection> {
    connector
        .bind(connection.clone(), Instant::now() + Duration::from_secs(30))
        .unwrap()
}

/// Two connectors, each sending `calls` list calls at once; returns the simulator's 429 count.
async fn two_processes_send(pacing: [PacingBackend; 2], calls: usize) -> u64 {
    let sim = simulator();
    let dir = TempDir::new("pacing-conn");
    let connection = connection(&sim, &dir);
    let mut tasks = Vec::new();
    for backend in pacing {
        let connector = Connector::new(None);
        assert!(connector.set_pacing(backend));
        let bound = bind(&connector, &connection);
        for _ in 0..calls {
            let bound = bound.clone();
            tasks.push(tokio::spawn(async move {
                bound.send("test", list_call()).await.map(|r| r.status)
            }));
        }
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(200));
    }
    sim.stats().throttled.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_sharing_a_store_share_the_window_and_earn_no_429() {
    let store_dir = TempDir::new("pacing-store");
    let url = skillhost_state::StoreUrl::Sqlite {
        path: store_dir.path().join("state.db"),
    };
    // One handle each, as two processes would open the file.
    let a = Store::open(&url).await.unwrap();
    let b = Store::open(&url).await.unwrap();
    let started = Instant::now();
    let throttled =
        two_processes_send([PacingBackend::Store(a), PacingBackend::Store(b)], 40).await;
    assert_eq!(throttled, 0);
    // 80 calls at 50 a (scaled, 1.15 s with the margin) minute: the last 30 waited for it.
    assert!(
        started.elapsed() >= Duration::from_millis(1150),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_pacing_in_memory_each_overfill_the_shared_window() {
    // The contrast that makes the test above mean something: 80 calls at once from two
    // processes pacing alone are 30 more than the window holds.
    let throttled =
        two_processes_send([PacingBackend::InMemory, PacingBackend::InMemory], 40).await;
    assert!(throttled > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_be_reached_fails_the_call_unsent() {
    let Some(Backend::Redis { mut server, url }) =
        Backend::redis("a_store_that_cannot_be_reached_fails_the_call_unsent")
    else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    let sim = simulator();
    let dir = TempDir::new("pacing-down");
    let connector = Connector::new(None);
    assert!(connector.set_pacing(PacingBackend::Store(store)));
    let bound = bind(&connector, &connection(&sim, &dir));
    server.stop();
    let Err(HttpError::Transport(why)) = bound.send("test", list_call()).await else {
        panic!("the call went through an unreachable pacing store");
    };
    assert!(
        why.starts_with("the call was not sent: connection `sim` is paced through the state store, and the state store is unavailable: "),
        "{why}"
    );
    // Neither a token nor an API call was asked for.
    assert_eq!(sim.stats().calls(), 0);
    assert_eq!(sim.stats().tokens(), 0);
}
