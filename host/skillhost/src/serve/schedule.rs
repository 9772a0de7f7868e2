//! Who runs next: a global concurrency limit, a per-tenant one, and fair queueing across tenants.
//!
//! Threat: one tenant (or one caller) flooding the service must not starve the others. Each
//! tenant has its own queue; a freed slot goes to the tenant after the one served last that has
//! work waiting and is under its own limit (round robin), so a tenant with a thousand queued
//! invocations delays another tenant's first by at most one turn. The queues are bounded, in
//! total and per tenant: past either bound a request is refused at once (429 with `Retry-After`)
//! instead of holding a connection and memory. A waiter that goes away (its client disconnected)
//! leaves the queue at once, and a slot handed to it just before is handed on.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// The scheduler's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleLimits {
    /// Invocations running at once, all tenants together.
    pub max_running: usize,
    /// Invocations of one tenant running at once.
    pub max_running_per_tenant: usize,
    /// Invocations waiting, all tenants together.
    pub max_queued: usize,
    /// Invocations of one tenant waiting.
    pub max_queued_per_tenant: usize,
}

impl Default for ScheduleLimits {
    /// Sized for a 2-core machine: an invocation mostly waits on HTTP, so more run than there are
    /// cores; a CPU-bound skill is bounded by its own deadline.
    fn default() -> Self {
        ScheduleLimits {
            max_running: 32,
            max_running_per_tenant: 8,
            max_queued: 1024,
            max_queued_per_tenant: 256,
        }
    }
}

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The tenant's own queue is full.
    TenantQueueFull,
    /// The queue of all tenants is full.
    QueueFull,
}

/// Counts for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Invocations running.
    pub running: usize,
    /// Invocations waiting.
    pub queued: usize,
}

/// The scheduler shared by every request of a server.
pub struct Scheduler {
    limits: ScheduleLimits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: usize,
    queued: usize,
    tenants: HashMap<String, Tenant>,
    /// Tenants with waiters, in the order their turn comes.
    turns: VecDeque<String>,
    next_waiter: u64,
}

#[derive(Default)]
struct Tenant {
    running: usize,
    waiters: VecDeque<(u64, oneshot::Sender<()>)>,
}

/// A running slot; dropping it frees the slot for the next tenant in turn.
pub struct Permit {
    scheduler: Arc<Scheduler>,
    tenant: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.scheduler.release(&self.tenant);
    }
}

impl Scheduler {
    /// A scheduler with `limits` (each at least 1).
    pub fn new(limits: ScheduleLimits) -> Arc<Self> {
        let limits = ScheduleLimits {
            max_running: limits.max_running.max(1),
            max_running_per_tenant: limits.max_running_per_tenant.max(1),
            ..limits
        };
        Arc::new(Scheduler {
            limits,
            state: Mutex::new(State::default()),
        })
    }

    /// How many run and wait now.
    pub fn load(&self) -> Load {
        let state = self.lock();
        Load {
            running: state.running,
            queued: state.queued,
        }
    }

    /// A running slot for `tenant`: at once when there is one and no one of the tenant is
    /// waiting, else after waiting its turn. Refused at once when the queues are full.
    pub async fn admit(self: &Arc<Self>, tenant: &str) -> Result<Permit, Refused> {
        let (id, receiver) = {
            let mut state = self.lock();
            let limits = self.limits;
            let global_free = state.running < limits.max_running;
            let entry = state.tenants.entry(tenant.to_string()).or_default();
            if global_free
                && entry.running < limits.max_running_per_tenant
                && entry.waiters.is_empty()
            {
                entry.running += 1;
                state.running += 1;
                return Ok(self.permit(tenant));
            }
            if entry.waiters.len() >= limits.max_queued_per_tenant {
                return Err(Refused::TenantQueueFull);
            }
            if state.queued >= limits.max_queued {
                return Err(Refused::QueueFull);
            }
            let id = state.next_waiter;
            state.next_waiter += 1;
            let (sender, receiver) = oneshot::channel();
            let entry = state.tenants.entry(tenant.to_string()).or_default();
            let first = entry.waiters.is_empty();
            entry.waiters.push_back((id, sender));
            state.queued += 1;
            if first {
                state.turns.push_back(tenant.to_string());
            }
            (id, receiver)
        };
        let mut waiting = Waiting {
            scheduler: self,
            tenant,
            id,
            receiver,
            granted: false,
        };
        match (&mut waiting.receiver).await {
            Ok(()) => {
                waiting.granted = true;
                Ok(self.permit(tenant))
            }
            // The sender is dropped only with the scheduler's state, which outlives this call;
            // treated as full rather than trusted.
            Err(_) => {
                waiting.granted = true;
                Err(Refused::QueueFull)
            }
        }
    }

    fn permit(self: &Arc<Self>, tenant: &str) -> Permit {
        Permit {
            scheduler: self.clone(),
            tenant: tenant.to_string(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements; a panic elsewhere cannot leave it half
        // updated, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Frees one of `tenant`'s running slots and hands free slots on.
    fn release(&self, tenant: &str) {
        let mut state = self.lock();
        state.running = state.running.saturating_sub(1);
        if let Some(entry) = state.tenants.get_mut(tenant) {
            entry.running = entry.running.saturating_sub(1);
            if entry.running == 0 && entry.waiters.is_empty() {
                state.tenants.remove(tenant);
            }
        }
        self.dispatch(&mut state);
    }

    /// Hands free slots to waiters, one tenant per turn.
    fn dispatch(&self, state: &mut State) {
        let limits = self.limits;
        let mut passes = state.turns.len();
        while state.running < limits.max_running && passes > 0 {
            let Some(tenant) = state.turns.pop_front() else {
                break;
            };
            let Some(entry) = state.tenants.get_mut(&tenant) else {
                passes = state.turns.len();
                continue;
            };
            if entry.running >= limits.max_running_per_tenant {
                // Its turn comes again once one of its own finishes.
                state.turns.push_back(tenant);
                passes -= 1;
                continue;
            }
            let mut granted = false;
            while let Some((_, sender)) = entry.waiters.pop_front() {
                state.queued = state.queued.saturating_sub(1);
                if sender.send(()).is_ok() {
                    granted = true;
                    break;
                }
            }
            if granted {
                entry.running += 1;
                state.running += 1;
            }
            if !entry.waiters.is_empty() {
                state.turns.push_back(tenant);
            } else if entry.running == 0 {
                state.tenants.remove(&tenant);
            }
            passes = state.turns.len();
        }
    }

    /// Takes waiter `id` of `tenant` out of the queue (its caller went away); true if it was
    /// still waiting.
    fn withdraw(&self, tenant: &str, id: u64) -> bool {
        let mut state = self.lock();
        let Some(entry) = state.tenants.get_mut(tenant) else {
            return false;
        };
        let Some(at) = entry.waiters.iter().position(|(w, _)| *w == id) else {
            return false;
        };
        entry.waiters.remove(at);
        let empty = entry.waiters.is_empty();
        let idle = empty && entry.running == 0;
        state.queued = state.queued.saturating_sub(1);
        if empty {
            state.turns.retain(|t| t != tenant);
        }
        if idle {
            state.tenants.remove(tenant);
        }
        true
    }
}

/// A waiter in the queue; dropped before it got its slot (the client went away), it leaves the
/// queue, or hands on the slot it was given in the meantime.
struct Waiting<'a> {
    scheduler: &'a Arc<Scheduler>,
    tenant: &'a str,
    id: u64,
    receiver: oneshot::Receiver<()>,
    granted: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.granted || self.scheduler.withdraw(self.tenant, self.id) {
            return;
        }
        // Not in the queue any more: a slot was sent; take it and free it at once.
        self.receiver.close();
        if self.receiver.try_recv().is_ok() {
            self.scheduler.release(self.tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(running: usize, per_tenant: usize, queued: usize) -> ScheduleLimits {
        ScheduleLimits {
            max_running: running,
            max_running_per_tenant: per_tenant,
            max_queued: queued,
            max_queued_per_tenant: queued,
        }
    }

    #[tokio::test]
    async fn a_tenant_with_a_long_queue_does_not_delay_another_tenants_first() {
        let scheduler = Scheduler::new(limits(1, 1, 100));
        let running = scheduler.admit("a").await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for tenant in ["a"; 10].into_iter().chain(["b"]) {
            let (s, order) = (scheduler.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let permit = s.admit(tenant).await;
                order.lock().unwrap().push(tenant);
                permit.map(|_| ())
            }));
            // Queued in this order: ten of `a`, then `b`.
            while scheduler.load().queued < waiters.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(running);
        for waiter in waiters {
            waiter.await.unwrap().unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order.len(), 11);
        // The freed slot goes to `a`'s first waiter, the next one to `b`: second, not eleventh.
        assert_eq!(&order[..2], &["a", "b"]);
        assert_eq!(scheduler.load(), Load::default());
    }

    #[tokio::test]
    async fn a_full_tenant_queue_refuses_at_once() {
        let scheduler = Scheduler::new(ScheduleLimits {
            max_running: 1,
            max_running_per_tenant: 1,
            max_queued: 10,
            max_queued_per_tenant: 1,
        });
        let _running = scheduler.admit("a").await.unwrap();
        let s = scheduler.clone();
        let _queued = tokio::spawn(async move { s.admit("a").await.map(|_| ()) });
        while scheduler.load().queued < 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            scheduler.admit("a").await.err(),
            Some(Refused::TenantQueueFull)
        );
        // Another tenant still queues.
        let s = scheduler.clone();
        let _other = tokio::spawn(async move { s.admit("b").await.map(|_| ()) });
        while scheduler.load().queued < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(scheduler.load().queued, 2);
    }

    #[tokio::test]
    async fn a_waiter_that_goes_away_leaves_the_queue() {
        let scheduler = Scheduler::new(limits(1, 1, 1));
        let running = scheduler.admit("a").await.unwrap();
        let s = scheduler.clone();
        let waiter = tokio::spawn(async move { s.admit("b").await.map(|_| ()) });
        while scheduler.load().queued < 1 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(scheduler.load().queued, 0);
        drop(running);
        assert_eq!(scheduler.load(), Load::default());
        // The slot is free for the next caller.
        let _again = scheduler.admit("c").await.unwrap();
        assert_eq!(scheduler.load().running, 1);
    }

    #[tokio::test]
    async fn the_per_tenant_limit_holds_while_the_global_one_has_room() {
        let scheduler = Scheduler::new(limits(4, 2, 10));
        let _a1 = scheduler.admit("a").await.unwrap();
        let _a2 = scheduler.admit("a").await.unwrap();
        let s = scheduler.clone();
        let third = tokio::spawn(async move { s.admit("a").await.map(|_| ()) });
        while scheduler.load().queued < 1 {
            tokio::task::yield_now().await;
        }
        let _b = scheduler.admit("b").await.unwrap();
        assert_eq!(
            scheduler.load(),
            Load {
                running: 3,
                queued: 1
            }
        );
        assert!(!third.is_finished());
        drop(_a1);
        third.await.unwrap().unwrap();
    }
}
