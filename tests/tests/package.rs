//! What users deploy: the release archive `.ci/package` makes (the image is
//! that archive unpacked, `docker/Dockerfile`). No container engine runs
//! here, so the archive stands in for the image: it is unpacked into an
//! empty directory and its `lifeboat` serves a kubesim cluster, used in
//! headless Chromium. `.ci/test` packages before the tests (`--profile dev`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lifeboat_e2e::LifeboatProcess;
use sha2::{Digest, Sha256};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The archive's name for this version.
fn archive_name() -> String {
    format!("lifeboat-{}-linux-amd64", lifeboat::VERSION)
}

/// Unpacks the archive (`LIFEBOAT_ARCHIVE`, or `dist/` of this checkout)
/// into `into`; the directory it holds.
fn unpack(into: &Path) -> PathBuf {
    let archive = std::env::var_os("LIFEBOAT_ARCHIVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(format!("dist/{}.tar.gz", archive_name())));
    assert!(
        archive.is_file(),
        "{} does not exist: run .ci/package --profile dev (.ci/test does)",
        archive.display()
    );
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(into)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let top: Vec<String> = std::fs::read_dir(into)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        top,
        [archive_name()],
        "one directory, named for the version"
    );
    into.join(archive_name())
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_archive_unpacked_serves_the_hydrated_dashboard() {
    lifeboat::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let unpacked_root = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked_root).unwrap();
    let home = unpack(&unpacked_root);

    // What it holds.
    for file in [
        "lifeboat",
        "site/pkg/lifeboat.js",
        "site/pkg/lifeboat_bg.wasm",
        "docker/Dockerfile",
        "docker/lifeboat.yaml",
        "docker/rbac.yaml",
        "docker/agent.yaml",
        "docker/kustomization.yaml",
        "LICENSE",
        "README",
    ] {
        assert!(home.join(file).is_file(), "the archive has no {file}");
    }
    let readme = std::fs::read_to_string(home.join("README")).unwrap();
    assert!(
        readme.contains(&format!("Lifeboat {}", lifeboat::VERSION))
            && readme.contains(&format!("REGISTRY/lifeboat:{}", lifeboat::VERSION))
            && !readme.contains('@'),
        "the README names the version and how to run it in a cluster:\n{readme}"
    );
    assert!(
        std::fs::read_to_string(home.join("LICENSE"))
            .unwrap()
            .contains("Apache License"),
        "LICENSE is Apache-2.0, as Cargo.toml says"
    );
    let bin = home.join("lifeboat");

    // `lifeboat version`: this checkout's commit and the bundle next to it.
    let out = Command::new(&bin)
        .arg("version")
        .env_remove("LIFEBOAT_SITE_DIR")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(workspace())
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert_eq!(
        printed,
        format!(
            "lifeboat {}\ncommit: {head}\nbrowser bundle: found in {}\n",
            lifeboat::VERSION,
            home.join("site").display()
        ),
        "an archive of another commit, or without its bundle: run .ci/package --profile dev"
    );
    // Built without the simulator.
    let out = Command::new(&bin).arg("demo").output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("built without the simulated demo cluster"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The UI's files are read from the unpacked directory and nowhere
    // else: its JavaScript gets a mark no other copy has, and the server
    // must serve that copy (and the wasm beside it).
    let js_path = home.join("site/pkg/lifeboat.js");
    let mark = format!(
        "\n// unpacked from the release archive in {}\n",
        dir.path().display()
    );
    let mut js = std::fs::read(&js_path).unwrap();
    js.extend_from_slice(mark.as_bytes());
    std::fs::write(&js_path, &js).unwrap();
    let wasm = std::fs::read(home.join("site/pkg/lifeboat_bg.wasm")).unwrap();

    let (sim, _client) = lifeboat_e2e::kubesim(kubesim::Options::default(), true)
        .await
        .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig_for(&kubeconfig, &sim.token).unwrap();
    // Run from elsewhere: nothing is found through the working directory.
    let cwd = dir.path().join("elsewhere");
    std::fs::create_dir(&cwd).unwrap();
    let server = LifeboatProcess::start_binary(
        &bin,
        &cwd,
        "serve",
        &lifeboat_e2e::serve_env(&cwd, &kubeconfig),
    )
    .unwrap();
    let served_js = lifeboat_e2e::get(format!("{}/pkg/lifeboat.js", server.url))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        sha256(&served_js),
        sha256(&js),
        "the JavaScript served is not the unpacked copy"
    );
    let served_wasm = lifeboat_e2e::get(format!("{}/pkg/lifeboat_bg.wasm", server.url))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256(&served_wasm), sha256(&wasm));
    let (ready, ui) = ui_once_ready(&server.url).await;
    assert_eq!(ui["ready"], true, "{ready}");
    assert_eq!(
        ui["detail"],
        format!("browser bundle in {}", home.join("site").display()),
        "{ready}"
    );

    // In Chromium: sign in, hydrate, Back up now, the wizard's plan.
    lifeboat_e2e::run_browser("artefact", &server.url, &cwd, &sim.token);
    let backup: serde_json::Value =
        lifeboat_e2e::get(format!("{}/api/v1/backups/archive-shop-1", server.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(backup["phase"], "Completed", "{backup}");
    assert!(
        cwd.join("data/backups").is_dir(),
        "the backup went to the embedded default location under the data directory"
    );
    drop(server);

    // Without the bundle the API serves and /readyz warns: `ui` is not
    // ready, and not required.
    let empty = dir.path().join("no-site");
    std::fs::create_dir(&empty).unwrap();
    let mut env = lifeboat_e2e::serve_env(&cwd, &kubeconfig);
    env.push(("LIFEBOAT_SITE_DIR", empty.display().to_string()));
    let bare = LifeboatProcess::start_binary(&bin, &cwd, "serve", &env).unwrap();
    let (ready, ui) = ui_once_ready(&bare.url).await;
    assert_eq!(ui["ready"], false, "{ready}");
    assert_eq!(ui["required"], false, "{ready}");
    assert!(
        ui["detail"]
            .as_str()
            .is_some_and(|d| d.contains("do not hydrate") && d.contains(&*empty.to_string_lossy())),
        "{ready}"
    );
}

/// `/readyz` of the Lifeboat at `url` once it is ready, and its `ui` component.
async fn ui_once_ready(url: &str) -> (serde_json::Value, serde_json::Value) {
    let ready = lifeboat_e2e::poll_json(&format!("{url}/readyz"), Duration::from_secs(60), |r| {
        r["ready"] == true
    })
    .await
    .expect("the unpacked lifeboat became ready (with or without its bundle)");
    let ui = ready["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "ui"))
        .cloned()
        .unwrap_or_else(|| panic!("no ui component: {ready}"));
    (ready, ui)
}

/// The image is the archive: the Dockerfile builds it with `.ci/package`
/// and copies the unpacked archive, the binary's `site/` beside it. A
/// Dockerfile that builds its own way fails here.
#[test]
fn the_dockerfile_builds_the_image_from_the_release_archive() {
    let dockerfile = std::fs::read_to_string(workspace().join("docker/Dockerfile")).unwrap();
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let run = instructions
        .iter()
        .position(|l| l.starts_with("RUN") && dockerfile_line_runs(&dockerfile, l, ".ci/package"))
        .expect("the Dockerfile's build stage runs .ci/package");
    assert!(
        !dockerfile.contains("cargo build"),
        "the Dockerfile builds only through .ci/package"
    );
    assert!(
        dockerfile
            .contains("tar -xzf dist/lifeboat-*-linux-amd64.tar.gz -C /out --strip-components=1"),
        "the image's files come from the archive"
    );
    let copy = instructions
        .iter()
        .position(|l| *l == "COPY --from=build /out/ /opt/lifeboat/")
        .expect("the runtime stage copies the unpacked archive");
    assert!(run < copy);
    assert!(
        instructions.contains(&r#"ENTRYPOINT ["/opt/lifeboat/lifeboat"]"#),
        "the entrypoint is the archive's binary, with site/ beside it"
    );
    let package = std::fs::read_to_string(workspace().join(".ci/package")).unwrap();
    assert!(
        package.contains(
            "cargo build --locked --profile \"$profile\" -p lifeboat --no-default-features"
        ),
        ".ci/package builds the binary without the demo"
    );
    assert!(
        package.contains(r#"cp "$CARGO_TARGET_DIR/$out/lifeboat" "$stage/lifeboat""#)
            && package.contains(r#""$stage/site/pkg/""#),
        ".ci/package puts site/pkg next to the binary, where lifeboat looks"
    );
    // The test above runs on the archive .ci/test makes first.
    let test = std::fs::read_to_string(workspace().join(".ci/test")).unwrap();
    let packaged = test.find(".ci/package").expect(".ci/test packages");
    let tested = test.find("cargo test").expect(".ci/test tests");
    assert!(packaged < tested, ".ci/test packages before it tests");
}

/// Whether the instruction starting at `first` (continued over `\` lines)
/// mentions `what`.
fn dockerfile_line_runs(dockerfile: &str, first: &str, what: &str) -> bool {
    let mut lines = dockerfile
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != first);
    let mut joined = String::new();
    for line in lines.by_ref() {
        joined.push_str(line);
        if !line.ends_with('\\') {
            break;
        }
    }
    joined.contains(what)
}
