//! Build-time facts: the catalog's migrations (embedded by `sqlx::migrate!`)
//! and the git commit `lifeboat version` prints.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    // `.ci/package` (and so the image) passes the commit; a build from a
    // checkout asks git, and is rebuilt when HEAD moves.
    println!("cargo:rerun-if-env-changed=LIFEBOAT_GIT_COMMIT");
    let commit = std::env::var("LIFEBOAT_GIT_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .or_else(checkout_commit)
        .unwrap_or_default();
    println!("cargo:rustc-env=LIFEBOAT_GIT_COMMIT={commit}");
}

/// What `git` prints for `args` in this package's directory, if it runs.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// HEAD's commit, watching the files that move it (HEAD, the branch's ref,
/// packed refs). None outside a checkout or without git.
fn checkout_commit() -> Option<String> {
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for file in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &file])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    git(&["rev-parse", "HEAD"])
}
