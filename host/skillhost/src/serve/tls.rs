//! TLS for the listener: rustls with the certificate chain and key the operator gives.
//!
//! Threat: API keys travel in a header. On any address other than loopback the server refuses
//! to start without TLS, unless `--insecure-http` says in so many words that the network path
//! is trusted (a TLS-terminating proxy on the same host, a private link).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use skillhost_contract::error::Failure;
use tokio_rustls::TlsAcceptor;

use super::ServeArgs;

/// The TLS acceptor the arguments ask for; `None` for plain HTTP, which only a loopback
/// address or `--insecure-http` allows.
pub fn acceptor(args: &ServeArgs) -> Result<Option<TlsAcceptor>, Failure> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        if !args.listen.ip().is_loopback() && !args.insecure_http {
            return Err(Failure::usage(format!(
                "{} is not a loopback address: serving it in plain HTTP would send API keys in \
                 clear",
                args.listen
            ))
            .with_hint(
                "give --tls-cert and --tls-key, or --insecure-http if a TLS proxy or a private \
                 link protects the path",
            ));
        }
        return Ok(None);
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| {
            Failure::usage(format!(
                "--tls-cert {}: cannot read a PEM certificate chain: {e}",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(Failure::usage(format!(
            "--tls-cert {}: no certificate in the file",
            cert.display()
        )));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        Failure::usage(format!(
            "--tls-key {}: cannot read a PEM private key: {e}",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
        .map_err(|e| {
            Failure::usage(format!(
                "--tls-cert/--tls-key: the certificate and key do not make a TLS config: {e}"
            ))
        })?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}
