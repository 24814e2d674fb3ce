//! Backup hooks: commands run in a pod's container just before its volumes
//! are read (`pre`) and right after (`post`, also when the read failed), so
//! that what is read is consistent (a checkpoint, a flush, a freeze).
//!
//! Where they come from: the pod's annotations, Lifeboat's names
//! (`pre.hook.backup.lifeboat.io/{container,command,on-error,timeout}`,
//! `post.hook.backup.lifeboat.io/…`) or Velero's (`pre.hook.backup.velero.io/…`),
//! read as the same; Lifeboat's win where both are set. `command` is a JSON
//! array or a single string, as Velero takes it; `on-error` is `Fail` (the
//! default) or `Continue`; `timeout` a duration (`30s`, `2m`; default 30 s).
//!
//! What they print is kept bounded (`cluster::exec::OUTPUT_LIMIT`), and the
//! values of the container's Secret-backed environment are redacted from it
//! before it is logged.

use std::time::Duration;

use serde_json::Value;

use frontend::model::{BackupHook, BackupHookResource};

use crate::cluster::exec::{self, Command, ExecError};

/// Lifeboat's annotation prefixes, then Velero's.
const PREFIXES: [&str; 2] = ["hook.backup.lifeboat.io", "hook.backup.velero.io"];

/// Velero's default hook timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Before or after a pod's volumes are read, or in a restored pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Pre,
    Post,
    /// In a restored pod once it runs (the restore's hooks).
    PostRestore,
}

impl When {
    pub fn as_str(self) -> &'static str {
        match self {
            When::Pre => "pre",
            When::Post => "post",
            When::PostRestore => "post-restore",
        }
    }
}

pub use crate::selection::hooks::OnError;
pub(crate) use crate::selection::hooks::{command, duration};

/// One hook of one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    pub when: When,
    /// `None`: the pod's first container.
    pub container: Option<String>,
    pub command: Vec<String>,
    pub on_error: OnError,
    pub timeout: Duration,
}

/// A pod's hooks, and what to redact from their output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodHooks {
    pub namespace: String,
    pub pod: String,
    /// The pod's first container (the default for hooks that name none).
    pub first_container: String,
    /// Run in order before the volumes are read.
    pub pre: Vec<Hook>,
    /// Run in order after.
    pub post: Vec<Hook>,
    /// Secrets the hooks' containers read (`valueFrom.secretKeyRef`,
    /// `envFrom.secretRef`): (name, key; `None` for all keys).
    pub secret_refs: Vec<(String, Option<String>)>,
}

/// A hook annotation that does not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{annotation}: {problem}")]
pub struct BadAnnotation {
    pub annotation: String,
    pub problem: String,
}

pub(crate) fn bad(annotation: impl Into<String>, problem: impl Into<String>) -> BadAnnotation {
    BadAnnotation {
        annotation: annotation.into(),
        problem: problem.into(),
    }
}

/// The hook `when` a pod's annotations describe, if any; a bad value is
/// an error naming the annotation.
fn from_annotations(annotations: &Value, when: When) -> Result<Option<Hook>, BadAnnotation> {
    let get = |field: &str| {
        PREFIXES.iter().find_map(|prefix| {
            let key = format!("{}.{prefix}/{field}", when.as_str());
            annotations[key.as_str()]
                .as_str()
                .map(|v| (key, v.to_string()))
        })
    };
    let Some((key, text)) = get("command") else {
        return Ok(None);
    };
    let argv = command(&text);
    if !crate::selection::hooks::runnable(&argv) {
        return Err(bad(key, "the command is empty"));
    }
    let on_error = match get("on-error") {
        None => OnError::Fail,
        Some((key, v)) => OnError::parse(&v)
            .ok_or_else(|| bad(key, format!("`{v}` is neither Fail nor Continue")))?,
    };
    let timeout = match get("timeout") {
        None => DEFAULT_TIMEOUT,
        Some((key, v)) => duration(&v)
            .ok_or_else(|| bad(key, format!("`{v}` is not a duration; use e.g. 30s or 2m")))?,
    };
    Ok(Some(Hook {
        when,
        container: get("container").map(|(_, c)| c),
        command: argv,
        on_error,
        timeout,
    }))
}

/// The hooks the spec's rules give a pod, in the rules' order.
fn from_rules(pod: &Value, rules: &[BackupHookResource]) -> (Vec<Hook>, Vec<Hook>) {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let labels = &pod["metadata"]["labels"];
    let (mut pre, mut post) = (Vec::new(), Vec::new());
    for rule in rules {
        let ns_ok = (rule.included_namespaces.is_empty()
            || rule.included_namespaces.iter().any(|n| n == "*" || n == ns))
            && !rule.excluded_namespaces.iter().any(|n| n == ns);
        let labels_ok = rule
            .label_selector
            .as_ref()
            .is_none_or(|s| crate::selection::hooks::selector(s).is_ok_and(|s| s.matches(labels)));
        if !ns_ok || !labels_ok {
            continue;
        }
        // Checked when the backup was asked for; the defaults stand in.
        let hook = |when, h: &BackupHook| Hook {
            when,
            container: h.exec.container.clone(),
            command: h.exec.command.clone(),
            on_error: h
                .exec
                .on_error
                .as_deref()
                .and_then(OnError::parse)
                .unwrap_or(OnError::Fail),
            timeout: h
                .exec
                .timeout
                .as_deref()
                .and_then(duration)
                .unwrap_or(DEFAULT_TIMEOUT),
        };
        pre.extend(rule.pre.iter().map(|h| hook(When::Pre, h)));
        post.extend(rule.post.iter().map(|h| hook(When::Post, h)));
    }
    (pre, post)
}

/// A listed pod's hooks (`Ok(None)` without any), or what is wrong with
/// them: its annotations', else those the spec's `rules` select it for.
pub fn of_pod(
    pod: &Value,
    rules: &[BackupHookResource],
) -> Result<Option<PodHooks>, BadAnnotation> {
    let annotations = &pod["metadata"]["annotations"];
    let pre = from_annotations(annotations, When::Pre)?;
    let post = from_annotations(annotations, When::Post)?;
    // A pod's own annotations win over the spec, as in Velero.
    let (pre, post) = if pre.is_none() && post.is_none() {
        from_rules(pod, rules)
    } else {
        (pre.into_iter().collect(), post.into_iter().collect())
    };
    if pre.is_empty() && post.is_empty() {
        return Ok(None);
    }
    let containers: Vec<&Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let first_container = containers
        .first()
        .and_then(|c| c["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let used: Vec<&str> = pre
        .iter()
        .chain(&post)
        .map(|h| h.container.as_deref().unwrap_or(&first_container))
        .collect();
    let secret_refs = secret_refs(pod, &used);
    Ok(Some(PodHooks {
        namespace: pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        pod: pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        first_container,
        pre,
        post,
        secret_refs,
    }))
}

/// The Secrets these containers of a pod read into their environment
/// (`valueFrom.secretKeyRef`, `envFrom.secretRef`): (name, key; `None` for
/// all its keys).
pub fn secret_refs(pod: &Value, containers: &[&str]) -> Vec<(String, Option<String>)> {
    let mut secret_refs = Vec::new();
    for c in pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"].as_str().is_some_and(|n| containers.contains(&n)))
    {
        for var in c["env"].as_array().into_iter().flatten() {
            let r = &var["valueFrom"]["secretKeyRef"];
            if let (Some(name), Some(key)) = (r["name"].as_str(), r["key"].as_str()) {
                secret_refs.push((name.to_string(), Some(key.to_string())));
            }
        }
        for from in c["envFrom"].as_array().into_iter().flatten() {
            if let Some(name) = from["secretRef"]["name"].as_str() {
                secret_refs.push((name.to_string(), None));
            }
        }
    }
    secret_refs
}

/// How a hook's command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    /// It has no exit code: it timed out, or the API server refused it.
    NotRun(String),
}

/// How one hook went, as the backup's log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ran {
    pub when: When,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub command: Vec<String>,
    pub on_error: OnError,
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
}

impl Ran {
    pub fn succeeded(&self) -> bool {
        self.exit == Exit::Code(0)
    }

    /// As the manifest keeps it.
    pub fn record(&self) -> frontend::model::HookRun {
        let (exit_code, error) = match &self.exit {
            Exit::Code(code) => (Some(*code), None),
            Exit::NotRun(why) => (None, Some(why.clone())),
        };
        frontend::model::HookRun {
            when: self.when.as_str().into(),
            namespace: self.namespace.clone(),
            pod: self.pod.clone(),
            container: self.container.clone(),
            command: self.command.clone(),
            on_error: self.on_error.as_str().into(),
            exit_code,
            error,
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
            duration_ms: u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// One line for the backup's log.
    pub fn describe(&self) -> String {
        let what = format!(
            "{} hook in {}/{} container {} ({})",
            self.when.as_str(),
            self.namespace,
            self.pod,
            self.container,
            self.command.join(" ")
        );
        let outcome = match &self.exit {
            Exit::Code(code) => format!("exit code {code}"),
            Exit::NotRun(why) => why.clone(),
        };
        let mut line = format!("{what}: {outcome} after {} ms", self.duration.as_millis());
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if !text.trim().is_empty() {
                line.push_str(&format!("; {name}: {}", text.trim_end()));
            }
        }
        line
    }
}

/// The values to redact from a pod's hook output: those of the Secrets
/// (`refs`, from [`secret_refs`]) its hooks' containers read into their
/// environment.
pub async fn secret_values(
    client: &kube::Client,
    namespace: &str,
    refs: &[(String, Option<String>)],
) -> Vec<String> {
    use k8s_openapi::api::core::v1::Secret;
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
    let mut out = Vec::new();
    for (name, key) in refs {
        let Ok(secret) = secrets.get(name).await else {
            continue;
        };
        for (k, v) in secret.data.unwrap_or_default() {
            if key.as_ref().is_none_or(|key| *key == k)
                && let Ok(text) = String::from_utf8(v.0)
                && text.len() >= 4
            {
                out.push(text);
            }
        }
    }
    // Longer first, so that a value containing another is redacted whole.
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out
}

fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "[redacted]"))
}

/// Runs one of a pod's hooks; `secrets` are redacted from what it prints.
async fn run(client: &kube::Client, hooks: &PodHooks, hook: &Hook, secrets: &[String]) -> Ran {
    let container = hook
        .container
        .clone()
        .unwrap_or_else(|| hooks.first_container.clone());
    run_in(
        client,
        (&hooks.namespace, &hooks.pod),
        container,
        hook,
        secrets,
    )
    .await
}

/// Runs `hook` in `container` of the pod `(namespace, name)`; `secrets`
/// are redacted from what it prints.
pub async fn run_in(
    client: &kube::Client,
    (namespace, pod): (&str, &str),
    container: String,
    hook: &Hook,
    secrets: &[String],
) -> Ran {
    let outcome = exec::run(
        client,
        &Command {
            namespace,
            pod,
            container: Some(&container),
            argv: &hook.command,
            timeout: hook.timeout,
        },
    )
    .await;
    let (exit, stdout, stderr, duration) = match outcome {
        Ok(o) => (Exit::Code(o.exit_code), o.stdout, o.stderr, o.duration),
        Err(e @ ExecError::TimedOut(t)) => {
            (Exit::NotRun(e.to_string()), String::new(), String::new(), t)
        }
        Err(e) => (
            Exit::NotRun(e.to_string()),
            String::new(),
            String::new(),
            Duration::ZERO,
        ),
    };
    Ran {
        when: hook.when,
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        container,
        command: hook.command.clone(),
        on_error: hook.on_error,
        exit,
        stdout: redact(&stdout, secrets),
        stderr: redact(&stderr, secrets),
        duration,
    }
}

/// Runs a pod's `pre` hooks in order, then `work` unless one failed with
/// `Fail` (which stops the rest of them), then its `post` hooks (whatever
/// `work` did). `None`: `work` did not run.
pub async fn around<T>(
    client: &kube::Client,
    hooks: &PodHooks,
    work: impl std::future::Future<Output = T>,
) -> (Option<T>, Vec<Ran>) {
    let mut ran = Vec::new();
    // The pod's Secrets are read once, for both hooks.
    let secrets = secret_values(client, &hooks.namespace, &hooks.secret_refs).await;
    let mut go = true;
    for hook in &hooks.pre {
        let r = run(client, hooks, hook, &secrets).await;
        go = r.succeeded() || r.on_error == OnError::Continue;
        ran.push(r);
        if !go {
            break;
        }
    }
    let done = if go { Some(work.await) } else { None };
    for hook in &hooks.post {
        ran.push(run(client, hooks, hook, &secrets).await);
    }
    (done, ran)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(annotations: Value) -> Value {
        json!({"metadata": {"name": "db-0", "namespace": "data", "annotations": annotations},
               "spec": {"containers": [
                   {"name": "db", "env": [{"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]},
                   {"name": "exporter", "envFrom": [{"secretRef": {"name": "exporter-keys"}}]}]}})
    }

    #[test]
    fn velero_and_lifeboat_annotations_read_the_same_and_lifeboat_wins() {
        let velero = of_pod(&pod(json!({
            "pre.hook.backup.velero.io/command": "[\"/bin/sh\", \"-c\", \"psql -c CHECKPOINT\"]",
            "pre.hook.backup.velero.io/timeout": "2m",
            "post.hook.backup.velero.io/command": "resume",
            "post.hook.backup.velero.io/on-error": "Continue",
        })), &[])
        .unwrap()
        .unwrap();
        let pre = velero.pre[0].clone();
        assert_eq!(pre.command, ["/bin/sh", "-c", "psql -c CHECKPOINT"]);
        assert_eq!(
            (pre.on_error, pre.timeout),
            (OnError::Fail, Duration::from_secs(120))
        );
        assert_eq!(pre.container, None);
        let post = velero.post[0].clone();
        assert_eq!(post.command, ["resume"]);
        assert_eq!(
            (post.on_error, post.timeout),
            (OnError::Continue, DEFAULT_TIMEOUT)
        );
        assert_eq!(velero.first_container, "db");
        // Only the Secrets of the containers the hooks run in.
        assert_eq!(
            velero.secret_refs,
            [("db".to_string(), Some("password".to_string()))]
        );

        let both = of_pod(
            &pod(json!({
                "pre.hook.backup.velero.io/command": "velero-way",
                "pre.hook.backup.lifeboat.io/command": "lifeboat-way",
                "pre.hook.backup.lifeboat.io/container": "exporter",
            })),
            &[],
        )
        .unwrap()
        .unwrap();
        let pre = both.pre[0].clone();
        assert_eq!(pre.command, ["lifeboat-way"]);
        assert_eq!(pre.container.as_deref(), Some("exporter"));
        assert!(both.post.is_empty());
        assert_eq!(both.secret_refs, [("exporter-keys".to_string(), None)]);
    }

    #[test]
    fn spec_rules_give_hooks_to_the_pods_they_select_unless_annotations_do() {
        let rules: Vec<BackupHookResource> = serde_json::from_value(json!([
            {"name": "freeze", "includedNamespaces": ["data"],
             "labelSelector": {"matchLabels": {"app": "db"}},
             "pre": [{"exec": {"command": ["fsfreeze", "--freeze", "/data"], "timeout": "1m"}},
                     {"exec": {"command": ["sync"], "onError": "Continue"}}],
             "post": [{"exec": {"command": ["fsfreeze", "--unfreeze", "/data"], "container": "exporter"}}]},
            {"name": "elsewhere", "includedNamespaces": ["shop"], "pre": [{"exec": {"command": ["never"]}}]}
        ]))
        .unwrap();
        let mut labelled = pod(json!({}));
        labelled["metadata"]["labels"] = json!({"app": "db"});
        let hooks = of_pod(&labelled, &rules).unwrap().unwrap();
        let commands: Vec<&str> = hooks.pre.iter().map(|h| h.command[0].as_str()).collect();
        assert_eq!(commands, ["fsfreeze", "sync"]);
        assert_eq!(
            (hooks.pre[0].on_error, hooks.pre[0].timeout),
            (OnError::Fail, Duration::from_secs(60))
        );
        assert_eq!(hooks.pre[1].on_error, OnError::Continue);
        assert_eq!(hooks.post[0].container.as_deref(), Some("exporter"));
        // The Secrets of both containers the hooks run in.
        assert_eq!(hooks.secret_refs.len(), 2);
        // Unlabelled: no rule selects it.
        assert_eq!(of_pod(&pod(json!({})), &rules).unwrap(), None);
        // Its own annotations win over every rule.
        labelled["metadata"]["annotations"] =
            json!({"pre.hook.backup.lifeboat.io/command": "mine"});
        let own = of_pod(&labelled, &rules).unwrap().unwrap();
        assert_eq!(own.pre.len(), 1);
        assert_eq!(own.pre[0].command, ["mine"]);
        assert!(own.post.is_empty());
    }

    #[test]
    fn pods_without_hooks_have_none_and_bad_values_say_which() {
        assert_eq!(of_pod(&pod(json!({"app": "db"})), &[]).unwrap(), None);
        let bad = of_pod(
            &pod(json!({
                "pre.hook.backup.lifeboat.io/command": "sync",
                "pre.hook.backup.lifeboat.io/on-error": "Retry",
            })),
            &[],
        )
        .unwrap_err();
        assert_eq!(bad.annotation, "pre.hook.backup.lifeboat.io/on-error");
        assert!(bad.to_string().contains("Retry"), "{bad}");
        let bad = of_pod(
            &pod(json!({
                "post.hook.backup.velero.io/command": "sync",
                "post.hook.backup.velero.io/timeout": "soon",
            })),
            &[],
        )
        .unwrap_err();
        assert_eq!(bad.annotation, "post.hook.backup.velero.io/timeout");
        assert!(bad.problem.contains("soon"), "{bad}");
    }

    #[test]
    fn secret_values_are_redacted_longest_first() {
        let secrets = vec!["hunter22-extended".to_string(), "hunter22".to_string()];
        assert_eq!(
            redact("PGPASSWORD=hunter22-extended other=hunter22", &secrets),
            "PGPASSWORD=[redacted] other=[redacted]"
        );
    }
}
