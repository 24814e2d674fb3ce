//! HTTPS on Lifeboat's listener: `lifeboat serve` with a certificate from PEM
//! files answers over TLS, serves a renewed certificate once its files change
//! (without a restart), and refuses to start with a certificate that does not read.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A new CA and a server certificate for 127.0.0.1 signed by it, written
/// to `dir`; returns the CA's PEM.
fn write_certificate(dir: &Path) -> String {
    let made = kubesim::tls::generate().unwrap();
    // The key first: a reader that catches the files between the two writes
    // sees a pair that does not match and keeps the old one.
    std::fs::write(
        dir.join("tls.key"),
        pem("PRIVATE KEY", &made.server_key_der),
    )
    .unwrap();
    std::fs::write(
        dir.join("tls.crt"),
        pem("CERTIFICATE", &made.server_cert_der),
    )
    .unwrap();
    made.ca_pem
}

fn trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_and_picks_up_a_renewed_certificate() {
    lifeboat::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let first_ca = write_certificate(dir.path());
    let env = [
        (
            "LIFEBOAT_TLS_CERT_FILE",
            dir.path().join("tls.crt").display().to_string(),
        ),
        (
            "LIFEBOAT_TLS_KEY_FILE",
            dir.path().join("tls.key").display().to_string(),
        ),
    ];
    let server = lifeboat_e2e::LifeboatProcess::start(dir.path(), &env).unwrap();
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let health = format!("{}/healthz", server.url);
    let answer = trusting(&first_ca).get(&health).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(health.replace("https://", "http://"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()));

    // Renewed: a certificate from another CA replaces the files.
    let second_ca = write_certificate(dir.path());
    assert!(
        trusting(&second_ca).get(&health).send().await.is_err(),
        "not yet: the old certificate is still served"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = trusting(&second_ca).get(&health).send().await {
            assert_eq!(r.status(), 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(trusting(&first_ca).get(&health).send().await.is_err());

    // A renewal that does not read keeps the certificate being served.
    std::fs::write(dir.path().join("tls.crt"), "not a certificate").unwrap();
    tokio::time::sleep(lifeboat::tls::RELOAD_EVERY + Duration::from_secs(1)).await;
    assert_eq!(
        trusting(&second_ca)
            .get(&health)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn a_certificate_that_does_not_read_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), "garbage").unwrap();
    std::fs::write(dir.path().join("tls.key"), "garbage").unwrap();
    let out = std::process::Command::new(lifeboat_e2e::lifeboat_bin().unwrap())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("LIFEBOAT_TLS_CERT_FILE", dir.path().join("tls.crt"))
        .env("LIFEBOAT_TLS_KEY_FILE", dir.path().join("tls.key"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("tls.crt") && said.contains("LIFEBOAT_TLS_CERT_FILE"),
        "{said}"
    );
    // One without the other is a configuration error.
    let out = std::process::Command::new(lifeboat_e2e::lifeboat_bin().unwrap())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("LIFEBOAT_TLS_CERT_FILE", dir.path().join("tls.crt"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
