//! `with-control-plane COMMAND [ARGS…]`: starts the genuine control plane
//! (`KUBEBUILDER_ASSETS`, see `lifeboat_e2e::control_plane`), runs COMMAND
//! with `LIFEBOAT_TEST_KUBECONFIG` naming its admin kubeconfig, stops it, and
//! exits as COMMAND did. `.ci/test` runs kubesim's fidelity suite this way,
//! so the suite's expectations are checked against kube-apiserver too.
//! Without `KUBEBUILDER_ASSETS` it says so and exits 0.

use std::process::ExitCode;

use lifeboat_e2e::control_plane::{ControlPlane, Options};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("usage: with-control-plane COMMAND [ARGS…]");
        return ExitCode::from(2);
    };
    lifeboat::install_crypto_provider();
    let plane = match ControlPlane::start_or_skip(&args.join(" "), Options::default()).await {
        Ok(Some(plane)) => plane,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("with-control-plane: the control plane did not start: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "with-control-plane: {} at {}; running {}",
        plane.version,
        plane.url,
        args.join(" ")
    );
    let status = tokio::process::Command::new(command)
        .args(rest)
        .env("LIFEBOAT_TEST_KUBECONFIG", &plane.kubeconfig)
        .status()
        .await;
    drop(plane);
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("with-control-plane: {command} did not run: {e}");
            ExitCode::FAILURE
        }
    }
}
