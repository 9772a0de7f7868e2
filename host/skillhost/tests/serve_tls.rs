//! `skillhost serve` over TLS: a certificate made by `openssl` for 127.0.0.1, and a client
//! (`curl`) that trusts only that certificate.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Host, TempDir};

const KEY: &str = "tls-test-key-0123456789abcdef";

fn tool(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        || Command::new(name)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn config(dir: &Path) -> String {
    let key = dir.join("caller.key");
    std::fs::write(&key, KEY).unwrap();
    let path = dir.join("serve.toml");
    std::fs::write(
        &path,
        format!(
            "[callers.soc]\nkey = {{ file = {:?} }}\ntenants = [\"acme\"]\n",
            key.display().to_string()
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn serve_with_a_certificate_answers_over_https_and_authenticates_inside_tls() {
    if !tool("openssl") || !tool("curl") {
        // .ci/run installs both; a machine without them cannot run this test.
        eprintln!("skipped: openssl and curl are needed to make a certificate and call over TLS");
        return;
    }
    let dir = TempDir::new("serve-tls");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "openssl could not make a certificate");
    let host = Host::with(&["noop"]);
    let config = config(dir.path());
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let served = host.serve(&[
        "--config",
        &config,
        "--tls-cert",
        &cert_arg,
        "--tls-key",
        &key_arg,
    ]);
    assert!(
        served
            .stderr()
            .contains(&format!(" on https://127.0.0.1:{}", served.port)),
        "{}",
        served.stderr()
    );
    let url = format!("https://127.0.0.1:{}", served.port);
    let curl = |extra: &[&str], path: &str| {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                "--cacert",
                &cert_arg,
            ])
            .args(extra)
            .arg(format!("{url}{path}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let bearer = format!("Authorization: Bearer {KEY}");
    let invoked = curl(
        &["-H", &bearer, "-X", "POST", "-d", "{}"],
        "/v1/skills/noop/invoke",
    );
    assert_eq!(invoked, "{}\n\n200");
    let refused = curl(&[], "/v1/skills");
    assert!(refused.ends_with("\n401"), "{refused}");
    // Plain HTTP to the TLS port gets no answer of the API.
    let plain = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{}/healthz", url.replace("https://", "http://")))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "000");
}
