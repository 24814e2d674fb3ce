//! kubesim's fidelity suite against a genuine kube-apiserver: every test of
//! `fidelity/suite.rs`, against the cluster LIFEBOAT_TEST_KUBECONFIG names.
//! Not run by a plain `cargo test` (`test = false` in Cargo.toml): `.ci/test`
//! runs it under `with-control-plane`, which starts kube-apiserver and
//! kube-controller-manager and sets the variable.

/// Whether the suite runs against a real server (kube-apiserver).
const REAL_SERVER: bool = true;

#[path = "fidelity/suite.rs"]
mod on_kube_apiserver;
