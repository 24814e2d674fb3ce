//! What a person (or a log collector) reads on the console: `lifeboat
//! agent` writes text with its node as a prefix, or JSON naming the node,
//! as `--log-format` (or `LIFEBOAT_LOG_FORMAT`, which `lifeboat demo` sets
//! to its own format) asks; `auto` writes JSON when stderr is not a
//! terminal. The agent here asks a server that is not there, so its first
//! line is the warning that says so.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

/// The first line the agent logs about asking for work, with `format`
/// given as a flag (`Some`) or through the environment (`None` plus `env`).
fn first_warning(flag: Option<&str>, env: Option<&str>) -> Result<String> {
    // A port nothing listens on: bound, then closed.
    let port = lifeboat_e2e::free_port()?;
    let mut command = Command::new(lifeboat_e2e::lifeboat_bin()?);
    command
        .args(["agent", "--server", &format!("http://127.0.0.1:{port}")])
        .args(["--node", "node-7", "--token", "not-used"])
        .env_remove("LIFEBOAT_LOG_FORMAT")
        .env_remove("LIFEBOAT_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(format) = flag {
        command.args(["--log-format", format]);
    }
    if let Some(format) = env {
        command.env("LIFEBOAT_LOG_FORMAT", format);
    }
    let mut child = command.spawn().context("starting lifeboat agent")?;
    let stderr = child.stderr.take().context("stderr")?;
    // The reader ends when the child is killed, whatever it printed.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("asking the server for work failed") {
                let _ = tx.send(line);
                return;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    line.context("the agent never said that asking for work failed")
}

#[test]
fn the_agent_logs_text_with_its_node_as_a_prefix() -> Result<()> {
    let line = first_warning(Some("text"), None)?;
    assert!(
        serde_json::from_str::<serde_json::Value>(&line).is_err(),
        "text, not JSON: {line}"
    );
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("agent{node=node-7}"), "{line}");
    Ok(())
}

#[test]
fn the_agent_logs_json_naming_its_node_when_not_on_a_terminal() -> Result<()> {
    // From the environment, as `lifeboat demo` passes its format on, and
    // by default on a pipe.
    for (flag, env) in [(None, Some("json")), (None, None), (Some("auto"), None)] {
        let line = first_warning(flag, env)?;
        let record: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{flag:?}/{env:?}: not JSON: {line}"))?;
        assert_eq!(record["level"], "WARN", "{line}");
        assert_eq!(record["span"]["node"], "node-7", "{line}");
        assert_eq!(record["span"]["name"], "agent", "{line}");
    }
    Ok(())
}
