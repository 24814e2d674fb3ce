//! A certificate authority and a server certificate made at start, and the
//! kubeconfig that trusts them.

use std::path::Path;

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use serde_json::json;

#[derive(Clone, Debug)]
pub struct Certificates {
    pub ca_pem: String,
    pub server_cert_der: Vec<u8>,
    pub server_key_der: Vec<u8>,
}

/// A CA, and a server certificate for 127.0.0.1 and localhost signed by it
/// (clients reject a self-signed CA certificate used directly by a server).
pub fn generate() -> Result<Certificates, rcgen::Error> {
    let a = authority("kubesim-ca", &["localhost", "kubesim"])?;
    Ok(Certificates {
        ca_pem: a.ca_pem,
        server_cert_der: a.server_cert_der,
        server_key_der: a.server_key_der,
    })
}

/// A CA (its key included, for whoever signs more with it) and a serving
/// certificate it signed, for 127.0.0.1 and `names`.
#[derive(Clone, Debug)]
pub struct Authority {
    pub ca_pem: String,
    pub ca_key_pem: String,
    pub server_pem: String,
    pub server_key_pem: String,
    pub server_cert_der: Vec<u8>,
    pub server_key_der: Vec<u8>,
}

/// Makes an [`Authority`] whose CA is called `ca_name`: kubesim's own, and
/// the genuine control plane's in the tests.
pub fn authority(ca_name: &str, names: &[&str]) -> Result<Authority, rcgen::Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Authority {
        ca_pem: ca.pem(),
        ca_key_pem,
        server_pem: cert.pem(),
        server_key_pem: key.serialize_pem(),
        server_cert_der: cert.der().to_vec(),
        server_key_der: key.serialize_der(),
    })
}

/// Writes a kubeconfig (JSON, which every kubeconfig reader accepts as YAML).
pub fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_pem: Option<&str>,
    token: &str,
) -> std::io::Result<()> {
    let mut cluster = json!({"server": server});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "kubesim",
        "clusters": [{"name": "kubesim", "cluster": cluster}],
        "contexts": [{"name": "kubesim", "context": {"cluster": "kubesim", "user": "kubesim", "namespace": "default"}}],
        "users": [{"name": "kubesim", "user": {"token": token}}],
    });
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap_or_default())
}
