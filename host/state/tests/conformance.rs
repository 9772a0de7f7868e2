//! One conformance suite, run against both backends: each behaviour below is an async function
//! over a [`Backend`], and `conformance!` makes one test of it per backend (`sqlite::NAME`,
//! `redis::NAME`). The Redis tests start their own server; without one installed they say they
//! were skipped and pass, except under `CI`, where they fail.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use skillhost_state::{
    Admission, Entry, LeaseInfo, MAX_KEY_BYTES, MAX_KEYS_PER_SCOPE, MAX_VALUE_BYTES, PacingWindows,
    Reset, Scope, ScopeSummary, Store, StoreError, StoreUrl, Versioned, Window, Write,
};
use support::{Backend, TempDir};

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let backend = crate::support::Backend::sqlite();
                    crate::$name(&backend).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(backend) = crate::support::Backend::redis(stringify!($name)) else {
                        return;
                    };
                    crate::$name(&backend).await;
                }
            )*
        }
    };
}

conformance!(
    a_missing_key_reads_as_none,
    a_set_reads_back_with_its_version,
    a_write_expecting_absence_conflicts_when_the_key_exists,
    a_write_against_a_stale_version_conflicts_and_writes_nothing,
    a_batch_with_one_stale_write_applies_none_of_it,
    a_batch_applies_every_write_and_returns_their_versions,
    a_key_deleted_and_written_again_never_reuses_a_version,
    scopes_are_isolated,
    list_and_list_scopes_show_what_is_stored,
    reset_removes_one_key_or_all_and_then_commits_conflict,
    an_oversized_value_or_key_is_refused_with_the_limit,
    a_scope_holds_at_most_its_key_limit_counted_atomically,
    a_key_written_twice_in_one_batch_is_invalid,
    concurrent_increments_from_several_handles_lose_no_update,
    a_held_lease_is_refused_to_another_holder_with_its_expiry,
    the_holder_asking_again_renews_the_same_lease,
    an_expired_lease_is_taken_by_another_holder,
    renew_keeps_a_lease_past_its_first_expiry_and_fails_once_lost,
    release_frees_a_lease_at_once_and_a_lost_lease_is_not_released,
    a_commit_holding_a_lease_applies_only_while_it_is_held,
    list_leases_shows_the_leases_in_force,
    pacing_admits_the_minute_limit_then_waits_for_the_oldest_call,
    pacing_refuses_for_the_hour_when_the_hour_is_full,
    pacing_keys_are_independent,
    concurrent_admitters_on_several_handles_never_exceed_the_limit,
    state_leases_and_pacing_survive_reopening,
);

fn scope() -> Scope {
    Scope::new("acme", "acme-defender", "list_incidents").unwrap()
}

fn set(key: &str, expected: Option<u64>, value: &str) -> Write {
    Write::set(key, expected, value.as_bytes().to_vec())
}

async fn version_of(store: &Store, scope: &Scope, key: &str) -> Option<u64> {
    store.get(scope, key).await.unwrap().map(|v| v.version)
}

async fn a_missing_key_reads_as_none(backend: &Backend) {
    let store = backend.open().await;
    assert_eq!(store.get(&scope(), "cursor").await, Ok(None));
}

async fn a_set_reads_back_with_its_version(backend: &Backend) {
    let store = backend.open().await;
    let versions = store
        .commit(&scope(), &[set("cursor", None, "t1")])
        .await
        .unwrap();
    let [Some(version)] = versions[..] else {
        panic!("{versions:?}")
    };
    assert_eq!(
        store.get(&scope(), "cursor").await,
        Ok(Some(Versioned {
            value: b"t1".to_vec(),
            version
        }))
    );
}

async fn a_write_expecting_absence_conflicts_when_the_key_exists(backend: &Backend) {
    let store = backend.open().await;
    store
        .commit(&scope(), &[set("cursor", None, "t1")])
        .await
        .unwrap();
    assert_eq!(
        store.commit(&scope(), &[set("cursor", None, "t2")]).await,
        Err(StoreError::Conflict {
            key: "cursor".into()
        })
    );
    assert_eq!(
        store.get(&scope(), "cursor").await.unwrap().unwrap().value,
        b"t1"
    );
}

async fn a_write_against_a_stale_version_conflicts_and_writes_nothing(backend: &Backend) {
    let store = backend.open().await;
    let v1 = store
        .commit(&scope(), &[set("cursor", None, "t1")])
        .await
        .unwrap()[0];
    let v2 = store
        .commit(&scope(), &[set("cursor", v1, "t2")])
        .await
        .unwrap()[0];
    assert!(v2 > v1);
    // A second writer that read v1 is too late.
    assert_eq!(
        store.commit(&scope(), &[set("cursor", v1, "t3")]).await,
        Err(StoreError::Conflict {
            key: "cursor".into()
        })
    );
    assert_eq!(
        store.commit(&scope(), &[Write::delete("cursor", v1)]).await,
        Err(StoreError::Conflict {
            key: "cursor".into()
        })
    );
    assert_eq!(
        store.get(&scope(), "cursor").await.unwrap(),
        Some(Versioned {
            value: b"t2".to_vec(),
            version: v2.unwrap()
        })
    );
}

async fn a_batch_with_one_stale_write_applies_none_of_it(backend: &Backend) {
    let store = backend.open().await;
    let b = store
        .commit(&scope(), &[set("b", None, "b1")])
        .await
        .unwrap()[0];
    store.commit(&scope(), &[set("b", b, "b2")]).await.unwrap();
    let result = store
        .commit(
            &scope(),
            &[
                set("a", None, "a1"),
                set("b", b, "stale"),
                set("c", None, "c1"),
            ],
        )
        .await;
    assert_eq!(result, Err(StoreError::Conflict { key: "b".into() }));
    assert_eq!(store.get(&scope(), "a").await, Ok(None));
    assert_eq!(store.get(&scope(), "c").await, Ok(None));
    assert_eq!(
        store.get(&scope(), "b").await.unwrap().unwrap().value,
        b"b2"
    );
}

async fn a_batch_applies_every_write_and_returns_their_versions(backend: &Backend) {
    let store = backend.open().await;
    let first = store
        .commit(&scope(), &[set("gone", None, "x"), set("kept", None, "k1")])
        .await
        .unwrap();
    let versions = store
        .commit(
            &scope(),
            &[
                Write::delete("gone", first[0]),
                set("kept", first[1], "k2"),
                set("new", None, "n1"),
                Write::delete("never-was", None),
            ],
        )
        .await
        .unwrap();
    assert_eq!(versions.len(), 4);
    assert_eq!(versions[0], None);
    assert_eq!(versions[3], None);
    assert_eq!(store.get(&scope(), "gone").await, Ok(None));
    assert_eq!(
        store.get(&scope(), "kept").await.unwrap(),
        Some(Versioned {
            value: b"k2".to_vec(),
            version: versions[1].unwrap()
        })
    );
    assert_eq!(version_of(&store, &scope(), "new").await, versions[2]);
    assert_ne!(versions[1], versions[2]);
}

async fn a_key_deleted_and_written_again_never_reuses_a_version(backend: &Backend) {
    let store = backend.open().await;
    let v1 = store
        .commit(&scope(), &[set("cursor", None, "t1")])
        .await
        .unwrap()[0];
    store
        .commit(&scope(), &[Write::delete("cursor", v1)])
        .await
        .unwrap();
    let again = store
        .commit(&scope(), &[set("cursor", None, "other")])
        .await
        .unwrap()[0];
    assert_ne!(again, v1);
    // A writer that read the first incarnation cannot overwrite the second.
    assert_eq!(
        store.commit(&scope(), &[set("cursor", v1, "late")]).await,
        Err(StoreError::Conflict {
            key: "cursor".into()
        })
    );
}

async fn scopes_are_isolated(backend: &Backend) {
    let store = backend.open().await;
    let acme = scope();
    let globex = Scope::new("globex", "acme-defender", "list_incidents").unwrap();
    let other_skill = Scope::new("acme", "acme-defender", "get_incident").unwrap();
    store
        .commit(&acme, &[set("cursor", None, "acme")])
        .await
        .unwrap();
    assert_eq!(store.get(&globex, "cursor").await, Ok(None));
    assert_eq!(store.get(&other_skill, "cursor").await, Ok(None));
    // The same key is absent elsewhere, so expecting absence there succeeds.
    store
        .commit(&globex, &[set("cursor", None, "globex")])
        .await
        .unwrap();
    assert_eq!(
        store.get(&acme, "cursor").await.unwrap().unwrap().value,
        b"acme"
    );
    assert_eq!(
        store.get(&globex, "cursor").await.unwrap().unwrap().value,
        b"globex"
    );
    // Parts holding the separators of the Redis encoding stay apart too.
    let tricky_a = Scope::new("a:b", "c", "d").unwrap();
    let tricky_b = Scope::new("a", "b:c", "d").unwrap();
    store
        .commit(&tricky_a, &[set("k", None, "a")])
        .await
        .unwrap();
    assert_eq!(store.get(&tricky_b, "k").await, Ok(None));
}

async fn list_and_list_scopes_show_what_is_stored(backend: &Backend) {
    let store = backend.open().await;
    let other = Scope::new("acme", "acme-graph", "list_incidents").unwrap();
    let versions = store
        .commit(&scope(), &[set("b", None, "2"), set("a", None, "1")])
        .await
        .unwrap();
    store
        .commit(&other, &[set("x:y", None, "3")])
        .await
        .unwrap();
    assert_eq!(
        store.list(&scope()).await.unwrap(),
        vec![
            Entry {
                key: "a".into(),
                value: Versioned {
                    value: b"1".to_vec(),
                    version: versions[1].unwrap()
                }
            },
            Entry {
                key: "b".into(),
                value: Versioned {
                    value: b"2".to_vec(),
                    version: versions[0].unwrap()
                }
            },
        ]
    );
    assert_eq!(
        store.list_scopes().await.unwrap(),
        vec![
            ScopeSummary {
                scope: scope(),
                keys: 2
            },
            ScopeSummary {
                scope: other.clone(),
                keys: 1
            },
        ]
    );
    // A scope whose last key is deleted is no longer listed.
    let x = version_of(&store, &other, "x:y").await;
    store
        .commit(&other, &[Write::delete("x:y", x)])
        .await
        .unwrap();
    assert_eq!(store.list_scopes().await.unwrap().len(), 1);
    assert_eq!(store.list(&other).await.unwrap(), vec![]);
}

async fn reset_removes_one_key_or_all_and_then_commits_conflict(backend: &Backend) {
    let store = backend.open().await;
    let versions = store
        .commit(
            &scope(),
            &[
                set("a", None, "1"),
                set("b", None, "2"),
                set("c", None, "3"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(store.reset(&scope(), &Reset::Key("a".into())).await, Ok(1));
    assert_eq!(store.reset(&scope(), &Reset::Key("a".into())).await, Ok(0));
    assert_eq!(store.get(&scope(), "a").await, Ok(None));
    assert_eq!(store.reset(&scope(), &Reset::All).await, Ok(2));
    assert_eq!(store.list(&scope()).await.unwrap(), vec![]);
    assert_eq!(store.list_scopes().await.unwrap(), vec![]);
    // A run that read before the reset cannot write its stale cursor back.
    assert_eq!(
        store
            .commit(&scope(), &[set("b", versions[1], "late")])
            .await,
        Err(StoreError::Conflict { key: "b".into() })
    );
}

async fn an_oversized_value_or_key_is_refused_with_the_limit(backend: &Backend) {
    let store = backend.open().await;
    let big = vec![b'x'; MAX_VALUE_BYTES + 1];
    let error = store
        .commit(&scope(), &[Write::set("cursor", None, big)])
        .await
        .unwrap_err();
    assert_eq!(
        error,
        StoreError::Limit(format!(
            "the value of state key `cursor` is {} bytes; the limit is {MAX_VALUE_BYTES} bytes",
            MAX_VALUE_BYTES + 1
        ))
    );
    // Exactly at the limit is fine.
    store
        .commit(
            &scope(),
            &[Write::set("cursor", None, vec![b'x'; MAX_VALUE_BYTES])],
        )
        .await
        .unwrap();
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    assert_eq!(
        store.commit(&scope(), &[set(&long, None, "v")]).await,
        Err(StoreError::Limit(format!(
            "the state key is {} bytes; the limit is {MAX_KEY_BYTES} bytes",
            MAX_KEY_BYTES + 1
        )))
    );
    assert!(matches!(
        store.get(&scope(), &long).await,
        Err(StoreError::Limit(_))
    ));
    assert!(matches!(
        store.get(&scope(), "").await,
        Err(StoreError::Invalid(_))
    ));
}

async fn a_scope_holds_at_most_its_key_limit_counted_atomically(backend: &Backend) {
    let store = backend.open().await;
    let writes: Vec<Write> = (0..MAX_KEYS_PER_SCOPE - 1)
        .map(|i| set(&format!("k{i}"), None, "v"))
        .collect();
    store.commit(&scope(), &writes).await.unwrap();
    // Two more keys would be one too many: neither is written.
    assert_eq!(
        store
            .commit(&scope(), &[set("x", None, "v"), set("y", None, "v")])
            .await,
        Err(StoreError::Limit(format!(
            "the commit would leave {} keys in the scope; the limit is {MAX_KEYS_PER_SCOPE} keys \
             per scope (delete keys that are no longer needed)",
            MAX_KEYS_PER_SCOPE + 1
        )))
    );
    assert_eq!(store.get(&scope(), "x").await, Ok(None));
    // Deleting one in the same batch makes room.
    let k0 = version_of(&store, &scope(), "k0").await;
    store
        .commit(
            &scope(),
            &[
                Write::delete("k0", k0),
                set("x", None, "v"),
                set("y", None, "v"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store.list(&scope()).await.unwrap().len(),
        MAX_KEYS_PER_SCOPE
    );
    // Overwriting an existing key at the limit is fine.
    let x = version_of(&store, &scope(), "x").await;
    store.commit(&scope(), &[set("x", x, "v2")]).await.unwrap();
}

async fn a_key_written_twice_in_one_batch_is_invalid(backend: &Backend) {
    let store = backend.open().await;
    assert_eq!(
        store
            .commit(&scope(), &[set("a", None, "1"), set("a", None, "2")])
            .await,
        Err(StoreError::Invalid(
            "state key `a` is written twice in one commit; write each key once".into()
        ))
    );
    assert_eq!(store.get(&scope(), "a").await, Ok(None));
}

async fn concurrent_increments_from_several_handles_lose_no_update(backend: &Backend) {
    const HANDLES: usize = 3;
    const TASKS_PER_HANDLE: usize = 3;
    const INCREMENTS: usize = 20;
    let mut tasks = Vec::new();
    for _ in 0..HANDLES {
        let store = backend.open().await;
        for _ in 0..TASKS_PER_HANDLE {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut conflicts = 0;
                for _ in 0..INCREMENTS {
                    loop {
                        let read = store.get(&scope(), "counter").await.unwrap();
                        let (n, expected) = match &read {
                            Some(v) => (
                                String::from_utf8(v.value.clone())
                                    .unwrap()
                                    .parse::<usize>()
                                    .unwrap(),
                                Some(v.version),
                            ),
                            None => (0, None),
                        };
                        match store
                            .commit(&scope(), &[set("counter", expected, &(n + 1).to_string())])
                            .await
                        {
                            Ok(_) => break,
                            Err(StoreError::Conflict { .. }) => conflicts += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                conflicts
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let store = backend.open().await;
    let total = HANDLES * TASKS_PER_HANDLE * INCREMENTS;
    assert_eq!(
        store.get(&scope(), "counter").await.unwrap().unwrap().value,
        total.to_string().into_bytes()
    );
}

const TTL: Duration = Duration::from_millis(400);

async fn a_held_lease_is_refused_to_another_holder_with_its_expiry(backend: &Backend) {
    let store = backend.open().await;
    store
        .acquire_lease(&scope(), "cursor:default", "run-1", TTL)
        .await
        .unwrap();
    match store
        .acquire_lease(&scope(), "cursor:default", "run-2", TTL)
        .await
    {
        Err(StoreError::Held {
            name,
            holder,
            expires_in,
        }) => {
            assert_eq!(name, "cursor:default");
            assert_eq!(holder, "run-1");
            assert!(
                expires_in > Duration::ZERO && expires_in <= TTL,
                "{expires_in:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Another name, or the same name in another scope, is free.
    store
        .acquire_lease(&scope(), "cursor:other", "run-2", TTL)
        .await
        .unwrap();
    let globex = Scope::new("globex", "acme-defender", "list_incidents").unwrap();
    store
        .acquire_lease(&globex, "cursor:default", "run-2", TTL)
        .await
        .unwrap();
}

async fn the_holder_asking_again_renews_the_same_lease(backend: &Backend) {
    let store = backend.open().await;
    let first = store
        .acquire_lease(&scope(), "cursor", "run-1", TTL)
        .await
        .unwrap();
    let again = store
        .acquire_lease(&scope(), "cursor", "run-1", TTL)
        .await
        .unwrap();
    assert_eq!(again, first);
}

async fn an_expired_lease_is_taken_by_another_holder(backend: &Backend) {
    let store = backend.open().await;
    let old = store
        .acquire_lease(&scope(), "cursor", "run-1", Duration::from_millis(100))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let new = store
        .acquire_lease(&scope(), "cursor", "run-2", TTL)
        .await
        .unwrap();
    assert_eq!(new.holder(), "run-2");
    assert_ne!(new.token(), old.token());
    // The old holder coming back finds it lost, and even the same holder id gets a new token.
    assert_eq!(
        store.renew_lease(&old, TTL).await,
        Err(StoreError::LeaseLost {
            name: "cursor".into()
        })
    );
}

async fn renew_keeps_a_lease_past_its_first_expiry_and_fails_once_lost(backend: &Backend) {
    let store = backend.open().await;
    let lease = store
        .acquire_lease(&scope(), "cursor", "run-1", TTL)
        .await
        .unwrap();
    tokio::time::sleep(TTL / 2).await;
    store.renew_lease(&lease, TTL).await.unwrap();
    tokio::time::sleep(TTL * 3 / 4).await;
    // Past the first expiry, still held thanks to the renewal.
    assert!(matches!(
        store.acquire_lease(&scope(), "cursor", "run-2", TTL).await,
        Err(StoreError::Held { .. })
    ));
    tokio::time::sleep(TTL).await;
    assert_eq!(
        store.renew_lease(&lease, TTL).await,
        Err(StoreError::LeaseLost {
            name: "cursor".into()
        })
    );
}

async fn release_frees_a_lease_at_once_and_a_lost_lease_is_not_released(backend: &Backend) {
    let store = backend.open().await;
    let lease = store
        .acquire_lease(&scope(), "cursor", "run-1", Duration::from_secs(60))
        .await
        .unwrap();
    store.release_lease(lease.clone()).await.unwrap();
    let taken = store
        .acquire_lease(&scope(), "cursor", "run-2", Duration::from_secs(60))
        .await
        .unwrap();
    // Releasing the old lease again must not free run-2's.
    assert_eq!(
        store.release_lease(lease).await,
        Err(StoreError::LeaseLost {
            name: "cursor".into()
        })
    );
    assert!(matches!(
        store.acquire_lease(&scope(), "cursor", "run-3", TTL).await,
        Err(StoreError::Held { holder, .. }) if holder == "run-2"
    ));
    store.release_lease(taken).await.unwrap();
}

async fn a_commit_holding_a_lease_applies_only_while_it_is_held(backend: &Backend) {
    let store = backend.open().await;
    let lease = store
        .acquire_lease(&scope(), "cursor", "run-1", Duration::from_millis(150))
        .await
        .unwrap();
    let v = store
        .commit_holding(&lease, &[set("cursor", None, "t1")])
        .await
        .unwrap()[0];
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Expired, not yet taken: still refused.
    assert_eq!(
        store
            .commit_holding(&lease, &[set("cursor", v, "t2")])
            .await,
        Err(StoreError::LeaseLost {
            name: "cursor".into()
        })
    );
    let thief = store
        .acquire_lease(&scope(), "cursor", "run-2", TTL)
        .await
        .unwrap();
    assert_eq!(
        store
            .commit_holding(&lease, &[set("cursor", v, "t2")])
            .await,
        Err(StoreError::LeaseLost {
            name: "cursor".into()
        })
    );
    assert_eq!(
        store.get(&scope(), "cursor").await.unwrap().unwrap().value,
        b"t1"
    );
    store
        .commit_holding(&thief, &[set("cursor", v, "t2")])
        .await
        .unwrap();
}

async fn list_leases_shows_the_leases_in_force(backend: &Backend) {
    let store = backend.open().await;
    store
        .acquire_lease(&scope(), "b", "run-2", Duration::from_secs(60))
        .await
        .unwrap();
    store
        .acquire_lease(&scope(), "a", "run-1", Duration::from_secs(60))
        .await
        .unwrap();
    store
        .acquire_lease(&scope(), "gone", "run-3", Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let leases = store.list_leases(&scope()).await.unwrap();
    let names: Vec<(&str, &str)> = leases
        .iter()
        .map(|LeaseInfo { name, holder, .. }| (name.as_str(), holder.as_str()))
        .collect();
    assert_eq!(names, vec![("a", "run-1"), ("b", "run-2")]);
    assert!(
        leases
            .iter()
            .all(|l| l.expires_in > Duration::from_secs(50)
                && l.expires_in <= Duration::from_secs(60))
    );
}

/// Windows short enough for a test: 3 calls per 300 ms, 100 per 10 s.
const FAST: PacingWindows = PacingWindows {
    minute: Duration::from_millis(300),
    per_minute: 3,
    hour: Duration::from_secs(10),
    per_hour: 100,
};

async fn pacing_admits_the_minute_limit_then_waits_for_the_oldest_call(backend: &Backend) {
    let store = backend.open().await;
    let first = Instant::now();
    for _ in 0..3 {
        assert_eq!(
            store.admit("tenant/app", &FAST).await,
            Ok(Admission::Admitted)
        );
    }
    let Ok(Admission::Wait { wait, window }) = store.admit("tenant/app", &FAST).await else {
        panic!("the fourth call was admitted");
    };
    assert_eq!(window, Window::Minute);
    // Until the first call is 300 ms old.
    let elapsed = first.elapsed();
    assert!(
        wait <= Duration::from_millis(300) && wait + elapsed >= Duration::from_millis(250),
        "wait {wait:?} after {elapsed:?}"
    );
    tokio::time::sleep(wait).await;
    assert_eq!(
        store.admit("tenant/app", &FAST).await,
        Ok(Admission::Admitted)
    );
}

async fn pacing_refuses_for_the_hour_when_the_hour_is_full(backend: &Backend) {
    let store = backend.open().await;
    let windows = PacingWindows {
        minute: Duration::from_millis(100),
        per_minute: 10,
        hour: Duration::from_secs(30),
        per_hour: 2,
    };
    for _ in 0..2 {
        assert_eq!(store.admit("k", &windows).await, Ok(Admission::Admitted));
    }
    let Ok(Admission::Wait { wait, window }) = store.admit("k", &windows).await else {
        panic!("the third call was admitted");
    };
    assert_eq!(window, Window::Hour);
    assert!(
        wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
        "{wait:?}"
    );
}

async fn pacing_keys_are_independent(backend: &Backend) {
    let store = backend.open().await;
    for _ in 0..3 {
        store.admit("tenant-a/app", &FAST).await.unwrap();
    }
    assert!(matches!(
        store.admit("tenant-a/app", &FAST).await,
        Ok(Admission::Wait { .. })
    ));
    assert_eq!(
        store.admit("tenant-b/app", &FAST).await,
        Ok(Admission::Admitted)
    );
}

async fn concurrent_admitters_on_several_handles_never_exceed_the_limit(backend: &Backend) {
    // Long windows: every task stops at its first wait, all well inside one minute-window, so
    // exactly the limit must have been admitted however the calls interleave.
    let windows = PacingWindows {
        minute: Duration::from_secs(20),
        per_minute: 40,
        hour: Duration::from_secs(40),
        per_hour: 1000,
    };
    let admitted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = backend.open().await;
        for _ in 0..4 {
            let (store, admitted) = (store.clone(), admitted.clone());
            tasks.push(tokio::spawn(async move {
                while let Admission::Admitted = store.admit("shared", &windows).await.unwrap() {
                    admitted.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(admitted.load(Ordering::SeqCst), 40);
}

/// Windows no test outlives: 3 calls per 30 s.
const SLOW: PacingWindows = PacingWindows {
    minute: Duration::from_secs(30),
    per_minute: 3,
    hour: Duration::from_secs(60),
    per_hour: 100,
};

async fn state_leases_and_pacing_survive_reopening(backend: &Backend) {
    {
        let store = backend.open().await;
        store
            .commit(&scope(), &[set("cursor", None, "t1")])
            .await
            .unwrap();
        store
            .acquire_lease(&scope(), "cursor", "run-1", Duration::from_secs(60))
            .await
            .unwrap();
        for _ in 0..3 {
            store.admit("tenant/app", &SLOW).await.unwrap();
        }
    }
    let store = backend.open().await;
    assert_eq!(
        store.get(&scope(), "cursor").await.unwrap().unwrap().value,
        b"t1"
    );
    assert!(matches!(
        store.acquire_lease(&scope(), "cursor", "run-2", TTL).await,
        Err(StoreError::Held { .. })
    ));
    assert!(matches!(
        store.admit("tenant/app", &SLOW).await,
        Ok(Admission::Wait {
            window: Window::Minute,
            ..
        })
    ));
}

// What only one backend has.

#[tokio::test]
async fn sqlite_an_unwritable_path_is_unavailable_and_names_it() {
    let dir = TempDir::new("unwritable");
    // A regular file where the folder should be: refused even to root.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"").unwrap();
    let path = blocker.join("state.db");
    let url = StoreUrl::Sqlite { path: path.clone() };
    let Err(StoreError::Unavailable(why)) = Store::open(&url).await else {
        panic!("opened a store under a file");
    };
    assert!(why.contains(&blocker.display().to_string()), "{why}");
    assert!(why.contains("sqlite:PATH"), "{why}");
}

#[tokio::test]
async fn sqlite_the_file_and_its_new_folder_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("modes");
    let path = dir.path().join("new").join("state.db");
    Store::open(&StoreUrl::Sqlite { path: path.clone() })
        .await
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn sqlite_a_file_that_is_not_a_database_is_refused() {
    let dir = TempDir::new("garbage");
    let path = dir.path().join("state.db");
    std::fs::write(&path, vec![0x42; 8192]).unwrap();
    assert!(matches!(
        Store::open(&StoreUrl::Sqlite { path }).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn redis_a_closed_port_is_unavailable_quickly() {
    // A port that was free a moment ago and that nothing listens on.
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = StoreUrl::Redis {
        host: "127.0.0.1".into(),
        port,
        db: 0,
    };
    let started = Instant::now();
    let Err(StoreError::Unavailable(why)) = Store::open(&url).await else {
        panic!("connected to a closed port");
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        why.contains(&format!("redis://127.0.0.1:{port}/0")),
        "{why}"
    );
}

#[tokio::test]
async fn redis_a_server_that_goes_away_makes_every_operation_unavailable() {
    let Some(Backend::Redis { mut server, url }) =
        Backend::redis("redis_a_server_that_goes_away_makes_every_operation_unavailable")
    else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    store.admit("k", &FAST).await.unwrap();
    server.stop();
    let started = Instant::now();
    assert!(matches!(
        store.admit("k", &FAST).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.get(&scope(), "cursor").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.commit(&scope(), &[set("cursor", None, "x")]).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn redis_a_restarted_server_is_reached_again_without_reopening() {
    let Some(Backend::Redis { mut server, url }) =
        Backend::redis("redis_a_restarted_server_is_reached_again_without_reopening")
    else {
        return;
    };
    let StoreUrl::Redis { port, .. } = url else {
        unreachable!()
    };
    let store = Store::open(&url).await.unwrap();
    store
        .commit(&scope(), &[set("cursor", None, "t1")])
        .await
        .unwrap();
    server.stop();
    assert!(matches!(
        store.get(&scope(), "cursor").await,
        Err(StoreError::Unavailable(_))
    ));
    let binary = support::redis_binary().unwrap();
    let _again = support::RedisServer::start_on(&binary, port).unwrap();
    // The server kept nothing (no persistence): the point is that the handle works again.
    let mut answer = store.get(&scope(), "cursor").await;
    let started = Instant::now();
    while answer.is_err() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer = store.get(&scope(), "cursor").await;
    }
    assert_eq!(answer, Ok(None));
}

/// Set in the children of `sqlite_several_processes_share_one_file_safely` to the file they
/// open; without it, `sqlite_child_process` is a no-op.
const CHILD_DB: &str = "SKILLHOST_STATE_TEST_CHILD_DB";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_several_processes_share_one_file_safely() {
    // In-process connections share SQLite's own lock bookkeeping; separate processes rely on
    // the file locks alone, so this runs this test binary three times over one file.
    const CHILDREN: usize = 3;
    let dir = TempDir::new("processes");
    let path = dir.path().join("state.db");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--exact", "sqlite_child_process", "--nocapture"])
                .env(CHILD_DB, &path)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut admitted = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let stdout = String::from_utf8(output.stdout).unwrap();
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("admitted "))
            .unwrap_or_else(|| panic!("no count in {stdout:?}"));
        eprintln!("a child process admitted {line}");
        admitted += line.parse::<usize>().unwrap();
    }
    assert_eq!(admitted, CHILD_WINDOWS.per_minute as usize);
    let store = Store::open(&StoreUrl::Sqlite { path }).await.unwrap();
    assert_eq!(
        store.get(&scope(), "counter").await.unwrap().unwrap().value,
        (CHILDREN * CHILD_INCREMENTS).to_string().into_bytes()
    );
}

const CHILD_WINDOWS: PacingWindows = PacingWindows {
    minute: Duration::from_secs(20),
    per_minute: 40,
    hour: Duration::from_secs(40),
    per_hour: 1000,
};
const CHILD_INCREMENTS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_child_process() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let store = Store::open(&StoreUrl::Sqlite { path: path.into() })
        .await
        .unwrap();
    let mut admitted = 0;
    while store.admit("shared", &CHILD_WINDOWS).await.unwrap() == Admission::Admitted {
        admitted += 1;
    }
    for _ in 0..CHILD_INCREMENTS {
        loop {
            let read = store.get(&scope(), "counter").await.unwrap();
            let n: usize = read
                .as_ref()
                .map_or(0, |v| String::from_utf8_lossy(&v.value).parse().unwrap());
            let write = set("counter", read.map(|v| v.version), &(n + 1).to_string());
            match store.commit(&scope(), &[write]).await {
                Ok(_) => break,
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => panic!("{e}"),
            }
        }
    }
    println!("admitted {admitted}");
}
