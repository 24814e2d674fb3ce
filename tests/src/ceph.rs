//! A throwaway single-node Ceph cluster with a radosgw S3 endpoint, from
//! Debian's packages: one monitor, one memstore OSD, one radosgw, cephx keys
//! generated here, everything on 127.0.0.1 in a temp dir.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{Guard, READY_DEADLINE, S3Server, free_port, random_hex};

/// Runs a command to completion; its stdout, or an error with its output.
fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn spawn(cmd: &mut Command, log: &Path) -> Result<Guard> {
    let file = std::fs::File::create(log)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    Ok(Guard(Some(child)))
}

/// Retries `attempt` until it succeeds or the deadline passes, checking the daemon is alive.
async fn until_ok<T>(
    what: &str,
    guard: &mut Guard,
    log: &Path,
    mut attempt: impl FnMut() -> Result<T>,
) -> Result<T> {
    let started = Instant::now();
    loop {
        guard.ensure_running(what, log)?;
        match attempt() {
            Ok(v) => return Ok(v),
            Err(e) if started.elapsed() > READY_DEADLINE => {
                bail!("{what} was not ready after {READY_DEADLINE:?}: {e:#}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

pub(crate) async fn start() -> Result<S3Server> {
    for tool in [
        "ceph-mon",
        "ceph-osd",
        "radosgw",
        "radosgw-admin",
        "ceph",
        "ceph-authtool",
        "monmaptool",
    ] {
        if run(Command::new("which").arg(tool)).is_err() {
            bail!(
                "`{tool}` was not found: install Ceph with `apt-get install ceph-mon ceph-osd \
                 radosgw ceph-common` (`.ci/setup --tests` does), or point the tests at another \
                 S3 server with LIFEBOAT_TEST_S3_ENDPOINT"
            );
        }
    }
    let dir = tempfile::Builder::new().prefix("lifeboat-ceph").tempdir()?;
    let d = dir.path();
    for sub in ["run", "log", "mon/ceph-a", "osd/ceph-0", "rgw"] {
        std::fs::create_dir_all(d.join(sub))?;
    }
    let (mon_port, rgw_port) = (free_port()?, free_port()?);
    let fsid = uuid::Uuid::new_v4().to_string();
    let conf = d.join("ceph.conf");
    let keyring = d.join("keyring");
    std::fs::write(
        &conf,
        format!(
            "[global]\nfsid = {fsid}\nmon_host = [v2:127.0.0.1:{mon_port}]\npublic_addr = 127.0.0.1\n\
             keyring = {keyring}\nosd_pool_default_size = 1\nosd_pool_default_min_size = 1\n\
             mon_allow_pool_size_one = true\nmon_warn_on_pool_no_redundancy = false\n\
             osd_pool_default_pg_num = 8\nosd_pool_default_pgp_num = 8\nmon_max_pg_per_osd = 1000\n\
             osd_objectstore = memstore\nmemstore_device_bytes = 4294967296\n\
             run_dir = {d}/run\nadmin_socket = {d}/run/$name.asok\nlog_file = {d}/log/$name.log\n\
             mon_data = {d}/mon/$cluster-$id\nosd_data = {d}/osd/$cluster-$id\n\
             ms_bind_msgr1 = false\nosd_crush_chooseleaf_type = 0\n\
             [client.rgw.gw]\nrgw_frontends = beast endpoint=127.0.0.1:{rgw_port}\nrgw_data = {d}/rgw\n",
            keyring = keyring.display(),
            d = d.display(),
        ),
    )?;
    let authtool = |args: &[&str]| run(Command::new("ceph-authtool").arg(&keyring).args(args));
    authtool(&[
        "--create-keyring",
        "--gen-key",
        "-n",
        "mon.",
        "--cap",
        "mon",
        "allow *",
    ])?;
    authtool(&[
        "--gen-key",
        "-n",
        "client.admin",
        "--cap",
        "mon",
        "allow *",
        "--cap",
        "osd",
        "allow *",
        "--cap",
        "mgr",
        "allow *",
    ])?;
    authtool(&[
        "--gen-key",
        "-n",
        "client.rgw.gw",
        "--cap",
        "mon",
        "allow rw",
        "--cap",
        "osd",
        "allow rwx",
        "--cap",
        "mgr",
        "allow rw",
    ])?;
    authtool(&[
        "--gen-key",
        "-n",
        "osd.0",
        "--cap",
        "mon",
        "allow profile osd",
        "--cap",
        "osd",
        "allow *",
        "--cap",
        "mgr",
        "allow profile osd",
    ])?;
    let monmap = d.join("monmap");
    run(Command::new("monmaptool")
        .args([
            "--create",
            "--addv",
            "a",
            &format!("[v2:127.0.0.1:{mon_port}]"),
            "--fsid",
            &fsid,
        ])
        .arg(&monmap))?;
    run(Command::new("ceph-mon")
        .args(["--mkfs", "-i", "a", "-c"])
        .arg(&conf)
        .arg("--monmap")
        .arg(&monmap)
        .arg("--keyring")
        .arg(&keyring))?;
    let ceph = |args: &[&str]| {
        run(Command::new("timeout")
            .args(["10", "ceph", "-c"])
            .arg(&conf)
            .args(args))
    };

    let mon_log = d.join("log/mon.out");
    let mut mon = spawn(
        Command::new("ceph-mon")
            .args(["-i", "a", "-f", "-c"])
            .arg(&conf),
        &mon_log,
    )?;
    until_ok("ceph-mon", &mut mon, &mon_log, || ceph(&["health"])).await?;

    let osd_secret = authtool(&["-n", "osd.0", "-p"])?;
    let osd_uuid = uuid::Uuid::new_v4().to_string();
    let secret_file = d.join("osd-secret.json");
    std::fs::write(
        &secret_file,
        format!("{{\"cephx_secret\": \"{osd_secret}\"}}"),
    )?;
    let secret_arg = secret_file.display().to_string();
    let id = until_ok("ceph-mon", &mut mon, &mon_log, || {
        ceph(&["osd", "new", &osd_uuid, "-i", &secret_arg])
    })
    .await?;
    if id != "0" {
        bail!("expected OSD id 0, the monitor gave {id}");
    }
    run(Command::new("ceph-osd")
        .args(["-i", "0", "--mkfs", "--osd-uuid", &osd_uuid, "-c"])
        .arg(&conf))?;
    let osd_log = d.join("log/osd.out");
    let mut osd = spawn(
        Command::new("ceph-osd")
            .args(["-i", "0", "-f", "-c"])
            .arg(&conf),
        &osd_log,
    )?;
    let keyring_arg = keyring.display().to_string();
    ceph(&["auth", "import", "-i", &keyring_arg])?;
    until_ok("ceph-osd", &mut osd, &osd_log, || {
        let dump = ceph(&["osd", "dump"])?;
        if dump.lines().any(|l| l.starts_with("osd.0 up")) {
            Ok(())
        } else {
            bail!("osd.0 is not up yet")
        }
    })
    .await?;

    let rgw_log = d.join("log/rgw.out");
    let mut rgw = spawn(
        Command::new("radosgw")
            .args(["-n", "client.rgw.gw", "-f", "-c"])
            .arg(&conf),
        &rgw_log,
    )?;
    let access_key_id = format!("LB{}", random_hex(9).to_uppercase());
    let secret_access_key = random_hex(20);
    until_ok("radosgw", &mut rgw, &rgw_log, || {
        run(Command::new("timeout")
            .args(["20", "radosgw-admin", "-c"])
            .arg(&conf)
            .args([
                "user",
                "create",
                "--uid",
                "lifeboat",
                "--display-name",
                "lifeboat",
            ])
            .args([
                "--access-key",
                &access_key_id,
                "--secret",
                &secret_access_key,
            ]))
    })
    .await?;

    let server = S3Server {
        endpoint: format!("http://127.0.0.1:{rgw_port}"),
        region: "us-east-1".into(),
        bucket: "lifeboat-test".into(),
        access_key_id,
        secret_access_key,
        kind: "ceph-rgw",
        _guards: vec![rgw, osd, mon],
        _dir: Some(dir),
    };
    // Ready when the bucket can be created over S3.
    let client = crate::raw_client(&server);
    let started = Instant::now();
    loop {
        match client.create_bucket().bucket(&server.bucket).send().await {
            Ok(_) => break,
            Err(e) if started.elapsed() > READY_DEADLINE => {
                bail!("radosgw did not accept CreateBucket after {READY_DEADLINE:?}: {e:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    Ok(server)
}
