//! A Redis server that requires a password: the store takes it from `SKILLHOST_STATE_PASSWORD_FILE`
//! or `SKILLHOST_STATE_PASSWORD`, and says what to do when it is missing or wrong. Its own test
//! binary, since it sets this process's environment; one test, since the steps share it. Without a
//! server installed it says it was skipped and passes, except under `CI`, where it fails.

mod support;

use skillhost_state::redis::{PASSWORD_FILE_VAR, PASSWORD_VAR};
use skillhost_state::{Scope, Store, StoreError, Write};
use support::{RedisServer, TempDir, redis_binary};

const PASSWORD: &str = "correct horse battery staple";

/// Opens the store and writes `key` (new), then reads it back.
async fn open_and_write(url: &skillhost_state::StoreUrl, key: &str) -> Result<Vec<u8>, StoreError> {
    let store = Store::open(url).await?;
    let scope = Scope::new("acme", "sim", "skill").expect("scope");
    store
        .commit(&scope, &[Write::set(key, None, b"v".to_vec())])
        .await?;
    let read = store
        .get(&scope, key)
        .await?
        .expect("the value just written");
    Ok(read.value)
}

// One thread: the environment is changed while nothing else of this process runs.
#[tokio::test(flavor = "current_thread")]
async fn a_server_requiring_a_password_is_reached_with_the_one_from_the_environment_only() {
    let Some(binary) = redis_binary() else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set, and the Redis tests may not be skipped: no redis-server on PATH");
        }
        eprintln!("skipped: neither redis-server nor valkey-server is on PATH");
        return;
    };
    let server = RedisServer::start_with(&binary, &["--requirepass", PASSWORD]).expect("server");
    let url = server.url();

    // SAFETY (for `set_var`/`remove_var`): this test binary has this one test, on one thread,
    // and the store reads the variables only within it.
    unsafe {
        std::env::remove_var(PASSWORD_FILE_VAR);
        std::env::remove_var(PASSWORD_VAR);
    }
    let Err(StoreError::Unavailable(without)) = open_and_write(&url, "a").await else {
        panic!("a server requiring a password was reached without one");
    };
    assert!(
        without.contains(&format!(
            "the server's password is missing or wrong: put it in a file named by \
             {PASSWORD_FILE_VAR} (or in {PASSWORD_VAR})"
        )),
        "{without}"
    );

    unsafe { std::env::set_var(PASSWORD_VAR, "wrong-password") };
    let Err(StoreError::Unavailable(wrong)) = open_and_write(&url, "b").await else {
        panic!("a server requiring a password was reached with a wrong one");
    };
    assert!(
        wrong.contains("the server's password is missing or wrong"),
        "{wrong}"
    );

    unsafe { std::env::set_var(PASSWORD_VAR, PASSWORD) };
    assert_eq!(open_and_write(&url, "c").await, Ok(b"v".to_vec()));

    // From a file, its line break not part of it; both variables at once are refused.
    let dir = TempDir::new("redis-password");
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).expect("password file");
    unsafe { std::env::set_var(PASSWORD_FILE_VAR, &file) };
    let Err(StoreError::Invalid(both)) = open_and_write(&url, "d").await else {
        panic!("both variables set was not refused");
    };
    assert_eq!(
        both,
        format!("state store: both {PASSWORD_FILE_VAR} and {PASSWORD_VAR} are set; set one")
    );
    unsafe { std::env::remove_var(PASSWORD_VAR) };
    assert_eq!(open_and_write(&url, "e").await, Ok(b"v".to_vec()));

    // A file that cannot be read is named by its variable, not its path (put there by mistake,
    // the path would be the password).
    let mistaken = dir.path().join(PASSWORD);
    unsafe { std::env::set_var(PASSWORD_FILE_VAR, &mistaken) };
    assert_eq!(
        open_and_write(&url, "f").await,
        Err(StoreError::Invalid(format!(
            "state store: cannot read the password file {PASSWORD_FILE_VAR} names: entity not found"
        )))
    );
}
