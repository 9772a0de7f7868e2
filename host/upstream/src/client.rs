//! The HTTP client of one connection, and how its errors are told.
//!
//! Threat: a client that follows redirects would carry the bearer token wherever a redirect
//! points, and one that takes a proxy from the environment would route a tenant's traffic where
//! the config did not say. Redirects are off, TLS is 1.2 or later, and the only proxy is the
//! connection's `remote_agent`.

use std::time::Duration;

use crate::connections::Connection;

/// Builds the client `connection` uses for its token and API calls.
pub fn build(connection: &Connection) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_version_min(reqwest::tls::Version::TLS_1_2)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("skillhost/", env!("CARGO_PKG_VERSION")));
    let uses_tls = std::iter::once(connection.login_base())
        .chain(
            connection
                .services()
                .iter()
                .filter_map(|s| connection.service_base(s)),
        )
        .any(|base| base.starts_with("https://"));
    if !uses_tls {
        // Every endpoint is plain http (a simulator, a relay on loopback): the client never
        // verifies a certificate, so it need not read the system's trust store, which is most
        // of a CLI run's system time (measured: ~300 files read per run).
        builder = builder.tls_certs_only(Vec::<reqwest::Certificate>::new());
    }
    builder = match &connection.remote_agent {
        Some(agent) => builder.proxy(reqwest::Proxy::all(agent).map_err(|e| {
            format!(
                "connection `{}`: remote_agent {agent:?}: {e}",
                connection.name
            )
        })?),
        // Never pick a proxy up from the environment: routing is the config's decision.
        None => builder.no_proxy(),
    };
    builder.build().map_err(|e| {
        format!(
            "connection `{}`: cannot build an HTTP client: {}",
            connection.name,
            error_chain(&e)
        )
    })
}

/// An error and its causes on one line (reqwest hides TLS and connection causes in `source()`).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
