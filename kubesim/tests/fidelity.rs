//! kubesim's fidelity suite against kubesim: every test of
//! `fidelity/suite.rs`, each against a fresh simulator. The same suite runs
//! against a genuine kube-apiserver as `fidelity_kube_apiserver`.

/// Whether the suite runs against a real server (kube-apiserver).
const REAL_SERVER: bool = false;

#[path = "fidelity/suite.rs"]
mod on_kubesim;
