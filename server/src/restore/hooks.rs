//! Restore hooks, as Velero has them.
//!
//! - **Init containers**, put first among a restored pod's (or pod
//!   template's) init containers before it is created:
//!   `init.hook.restore.lifeboat.io/{container-image,container-name,command}`
//!   or Velero's `init.hook.restore.velero.io/…`; or the restore spec's
//!   `hooks.resources[].postHooks[].init.initContainers`.
//! - **Commands run in restored pods** once they are Running (or Ready,
//!   with `wait-for-ready`):
//!   `post.hook.restore.lifeboat.io/{container,command,on-error,exec-timeout,wait-timeout,wait-for-ready}`
//!   or Velero's `post.hook.restore.velero.io/…`; or the spec's
//!   `postHooks[].exec`. Each run is recorded on the item that made the pod;
//!   one that fails with `on-error: Fail` fails that item.
//!
//! A pod's (template's) own annotations win over the spec's rules, as in
//! Velero. Lifeboat restores workloads, not the pods their controllers
//! make, so hooks read from a workload's pod template go into the template
//! (init containers) and run in the pods the workload makes (commands).

use std::time::Duration;

use frontend::model::{ExecHook, RestoreHookResource, RestoreSpec};
use serde_json::{Value, json};

use super::items::{template, template_mut};
use crate::backup::hooks::{self as backup_hooks, BadAnnotation, Hook, OnError, Ran, When, bad};
use crate::selection::hooks::{HookRuleError, selector};

const INIT_PREFIXES: [&str; 2] = [
    "init.hook.restore.lifeboat.io",
    "init.hook.restore.velero.io",
];
const POST_PREFIXES: [&str; 2] = [
    "post.hook.restore.lifeboat.io",
    "post.hook.restore.velero.io",
];

/// How long a command waits for its pod to run, by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// How long a command may run, by default (Velero's).
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// The init container's name when the annotations give none (Velero's).
const DEFAULT_INIT_NAME: &str = "restore-hook";

/// One command to run in a restored pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostHook {
    /// `when` is [`When::PostRestore`]; `timeout` is the exec timeout.
    pub hook: Hook,
    pub wait_timeout: Duration,
    pub wait_for_ready: bool,
    /// Where it comes from: an annotation, or the spec's rule by name.
    pub source: String,
}

fn annotation<'a>(
    annotations: &'a Value,
    prefixes: &[&str],
    field: &str,
) -> Option<(String, &'a str)> {
    prefixes.iter().find_map(|prefix| {
        let key = format!("{prefix}/{field}");
        annotations[key.as_str()].as_str().map(|v| (key, v))
    })
}

fn on_error(key: &str, text: Option<&str>) -> Result<OnError, BadAnnotation> {
    match text {
        // Velero's default for restore hooks.
        None => Ok(OnError::Continue),
        Some(v) => {
            OnError::parse(v).ok_or_else(|| bad(key, format!("`{v}` is neither Fail nor Continue")))
        }
    }
}

fn duration_or(
    key: &str,
    text: Option<&str>,
    default: Duration,
) -> Result<Duration, BadAnnotation> {
    match text {
        None => Ok(default),
        Some(v) => backup_hooks::duration(v)
            .ok_or_else(|| bad(key, format!("`{v}` is not a duration; use e.g. 30s or 2m"))),
    }
}

fn nonempty(key: &str, argv: Vec<String>) -> Result<Vec<String>, BadAnnotation> {
    if !crate::selection::hooks::runnable(&argv) {
        Err(bad(key, "the command is empty"))
    } else {
        Ok(argv)
    }
}

/// Whether a spec rule selects a template from `namespace` (the backup's)
/// with these labels.
fn selects(rule: &RestoreHookResource, namespace: Option<&str>, labels: &Value) -> bool {
    let ns_ok = namespace.is_none_or(|ns| {
        (rule.included_namespaces.is_empty()
            || rule.included_namespaces.iter().any(|n| n == ns || n == "*"))
            && !rule.excluded_namespaces.iter().any(|n| n == ns)
    });
    ns_ok
        && rule
            .label_selector
            .as_ref()
            .is_none_or(|s| selector(s).is_ok_and(|s| s.matches(labels)))
}

/// The spec's hooks that are wrong, named by rule (checked before a
/// restore starts).
pub fn check_spec(spec: &RestoreSpec) -> Result<(), HookRuleError> {
    let Some(hooks) = &spec.hooks else {
        return Ok(());
    };
    for (i, rule) in hooks.resources.iter().enumerate() {
        let name = crate::selection::hooks::rule_name(i, &rule.name);
        if let Some(s) = &rule.label_selector {
            selector(s)
                .map_err(|e| HookRuleError::new(format!("{name}.labelSelector"), e.to_string()))?;
        }
        if rule.post_hooks.is_empty() {
            return Err(HookRuleError::new(format!("{name}.postHooks"), "is empty"));
        }
        for (j, hook) in rule.post_hooks.iter().enumerate() {
            let at = format!("{name}.postHooks[{j}]");
            match (&hook.init, &hook.exec) {
                (Some(init), None) => {
                    if init.init_containers.is_empty() {
                        return Err(HookRuleError::new(
                            format!("{at}.init.initContainers"),
                            "is empty",
                        ));
                    }
                    for (k, c) in init.init_containers.iter().enumerate() {
                        if c["name"].as_str().is_none_or(str::is_empty)
                            || c["image"].as_str().is_none_or(str::is_empty)
                        {
                            return Err(HookRuleError::new(
                                format!("{at}.init.initContainers[{k}]"),
                                "a container needs a name and an image",
                            ));
                        }
                    }
                }
                (None, Some(exec)) => {
                    exec_hook(exec, &at)
                        .map_err(|e| HookRuleError::new(e.annotation, e.problem))?;
                }
                _ => return Err(HookRuleError::new(at, "give exactly one of init and exec")),
            }
        }
    }
    Ok(())
}

fn exec_hook(exec: &ExecHook, at: &str) -> Result<PostHook, BadAnnotation> {
    Ok(PostHook {
        hook: Hook {
            when: When::PostRestore,
            container: exec.container.clone(),
            command: nonempty(&format!("{at}.exec.command"), exec.command.clone())?,
            on_error: on_error(&format!("{at}.exec.onError"), exec.on_error.as_deref())?,
            timeout: duration_or(
                &format!("{at}.exec.execTimeout"),
                exec.exec_timeout.as_deref(),
                DEFAULT_EXEC_TIMEOUT,
            )?,
        },
        wait_timeout: duration_or(
            &format!("{at}.exec.waitTimeout"),
            exec.wait_timeout.as_deref(),
            DEFAULT_WAIT,
        )?,
        wait_for_ready: exec.wait_for_ready,
        source: at.to_string(),
    })
}

/// What an object's pod template asks of the restore.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TemplateHooks {
    pub init_containers: Vec<Value>,
    pub post: Vec<PostHook>,
}

/// The restore hooks of an object from the backup's `namespace`: its pod
/// template's annotations, else the spec's rules that select it. `None`
/// for objects without a pod template.
pub fn of_object(
    obj: &Value,
    group_resource: &str,
    namespace: Option<&str>,
    spec: &RestoreSpec,
) -> Option<Result<TemplateHooks, BadAnnotation>> {
    let template = template(obj, group_resource)?;
    let annotations = &template["metadata"]["annotations"];
    Some((|| {
        let mut out = TemplateHooks::default();
        // Init containers: the annotations, else the rules.
        if let Some((key, image)) = annotation(annotations, &INIT_PREFIXES, "container-image") {
            let name = annotation(annotations, &INIT_PREFIXES, "container-name")
                .map_or(DEFAULT_INIT_NAME, |(_, n)| n);
            let mut container = json!({"name": name, "image": image});
            if let Some((key, text)) = annotation(annotations, &INIT_PREFIXES, "command") {
                container["command"] = json!(nonempty(&key, backup_hooks::command(text))?);
            }
            if image.trim().is_empty() {
                return Err(bad(key, "the image is empty"));
            }
            out.init_containers.push(container);
        }
        // Commands: the annotations, else the rules.
        if let Some((key, text)) = annotation(annotations, &POST_PREFIXES, "command") {
            let get = |field| annotation(annotations, &POST_PREFIXES, field);
            let (oe_key, oe) = get("on-error").map_or((String::new(), None), |(k, v)| (k, Some(v)));
            let (et_key, et) =
                get("exec-timeout").map_or((String::new(), None), |(k, v)| (k, Some(v)));
            let (wt_key, wt) =
                get("wait-timeout").map_or((String::new(), None), |(k, v)| (k, Some(v)));
            let wait_for_ready = match get("wait-for-ready") {
                None => false,
                Some((_, v)) if v.eq_ignore_ascii_case("true") => true,
                Some((_, v)) if v.eq_ignore_ascii_case("false") => false,
                Some((k, v)) => return Err(bad(k, format!("`{v}` is neither true nor false"))),
            };
            out.post.push(PostHook {
                hook: Hook {
                    when: When::PostRestore,
                    container: get("container").map(|(_, c)| c.to_string()),
                    command: nonempty(&key, backup_hooks::command(text))?,
                    on_error: on_error(&oe_key, oe)?,
                    timeout: duration_or(&et_key, et, DEFAULT_EXEC_TIMEOUT)?,
                },
                wait_timeout: duration_or(&wt_key, wt, DEFAULT_WAIT)?,
                wait_for_ready,
                source: key,
            });
        }
        let labels = &template["metadata"]["labels"];
        let rules = spec.hooks.iter().flat_map(|h| &h.resources);
        for (i, rule) in rules.enumerate() {
            if !selects(rule, namespace, labels) {
                continue;
            }
            for (j, hook) in rule.post_hooks.iter().enumerate() {
                let at = format!("hooks.resources[{i}].postHooks[{j}]");
                if let Some(init) = &hook.init
                    && annotation(annotations, &INIT_PREFIXES, "container-image").is_none()
                {
                    out.init_containers
                        .extend(init.init_containers.iter().cloned());
                }
                if let Some(exec) = &hook.exec
                    && annotation(annotations, &POST_PREFIXES, "command").is_none()
                {
                    let mut post = exec_hook(exec, &at)?;
                    if !rule.name.is_empty() {
                        post.source = format!("hook rule {}", rule.name);
                    }
                    out.post.push(post);
                }
            }
        }
        Ok(out)
    })())
}

/// Puts the init containers first among the template's, once (a container
/// of the same name already there is left as it is).
pub fn add_init_containers(obj: &mut Value, group_resource: &str, containers: &[Value]) {
    if containers.is_empty() {
        return;
    }
    let Some(template) = template_mut(obj, group_resource) else {
        return;
    };
    let spec = &mut template["spec"];
    if !spec.is_object() {
        return;
    }
    let existing: Vec<Value> = spec["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<Value> = containers
        .iter()
        .filter(|c| !existing.iter().any(|e| e["name"] == c["name"]))
        .cloned()
        .collect();
    out.extend(existing);
    spec["initContainers"] = Value::Array(out);
}

/// The pods an applied object made: a pod itself, else the live pods its
/// selector picks in its namespace; and how many to wait for.
pub fn pods_of(obj: &Value, group_resource: &str) -> Option<(Option<String>, String, usize)> {
    let name = obj["metadata"]["name"].as_str()?.to_string();
    let labels = |m: &Value| {
        m.as_object().map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    match group_resource {
        "pods" => Some((Some(name), String::new(), 1)),
        "deployments.apps" | "statefulsets.apps" | "replicasets.apps" => {
            let want = obj["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
            Some((None, labels(&obj["spec"]["selector"]["matchLabels"])?, want))
        }
        "daemonsets.apps" => Some((None, labels(&obj["spec"]["selector"]["matchLabels"])?, 1)),
        "jobs.batch" => Some((None, format!("batch.kubernetes.io/job-name={name}"), 1)),
        _ => None,
    }
}

/// Whether a live pod is far enough along for its hooks: Running, its
/// container started (and Ready, when asked).
fn ready_for(pod: &Value, container: &str, wait_for_ready: bool) -> bool {
    if pod["status"]["phase"] != "Running" || pod["metadata"]["deletionTimestamp"].is_string() {
        return false;
    }
    let running = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["name"] == container && c["state"]["running"].is_object());
    let ready = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    running && (!wait_for_ready || ready)
}

/// How an item's post-restore hooks went.
#[derive(Debug, Default)]
pub struct PostOutcome {
    pub ran: Vec<Ran>,
    /// The first failure of a `Fail` hook: the item fails.
    pub failure: Option<String>,
    /// What went wrong with `Continue` hooks: noted on the item.
    pub notes: Vec<String>,
}

/// Waits for the pods an item made to run, then runs its hooks in each, in
/// order.
pub async fn run_post(
    client: &kube::Client,
    namespace: &str,
    pods: (Option<String>, String, usize),
    hooks: &[PostHook],
) -> PostOutcome {
    use k8s_openapi::api::core::v1::Pod;
    let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), namespace);
    let (pod_name, selector, want) = pods;
    let mut out = PostOutcome::default();
    if want == 0 {
        return out;
    }
    let wait = hooks
        .iter()
        .map(|h| h.wait_timeout)
        .max()
        .unwrap_or(DEFAULT_WAIT);
    let wait_for_ready = hooks.iter().any(|h| h.wait_for_ready);
    let deadline = tokio::time::Instant::now() + wait;
    let mut delay = Duration::from_millis(100);
    // The pods, once `want` of them are far enough along for every hook.
    let mut last = String::new();
    let found: Option<Vec<Value>> = loop {
        let listed: Result<Vec<Value>, kube::Error> = match &pod_name {
            Some(name) => api
                .get_opt(name)
                .await
                .map(|p| p.into_iter().collect::<Vec<_>>()),
            None => api
                .list(&kube::api::ListParams::default().labels(&selector))
                .await
                .map(|l| l.items),
        }
        .map(|pods| {
            pods.into_iter()
                .filter_map(|p| serde_json::to_value(p).ok())
                .collect()
        });
        last = match listed {
            Ok(pods) => {
                let first = |p: &Value| {
                    p["spec"]["containers"][0]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                };
                let ready: Vec<Value> = pods
                    .iter()
                    .filter(|p| {
                        hooks.iter().all(|h| {
                            let c = h.hook.container.clone().unwrap_or_else(|| first(p));
                            ready_for(p, &c, wait_for_ready)
                        })
                    })
                    .cloned()
                    .collect();
                if ready.len() >= want {
                    break Some(ready);
                }
                format!(
                    "{} of {want} pod(s) {} within {}s",
                    ready.len(),
                    if wait_for_ready {
                        "became Ready"
                    } else {
                        "were running"
                    },
                    wait.as_secs()
                )
            }
            Err(e) => format!("its pods could not be read: {e}"),
        };
        if tokio::time::Instant::now() + delay > deadline {
            break None;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    };
    let pods = match found {
        Some(pods) => pods,
        None => {
            let message = format!(
                "post-restore hooks not run: {last}; see the pods' events (`kubectl describe pod`) \
                 and raise the hook's wait-timeout if they only start slowly"
            );
            if hooks.iter().any(|h| h.hook.on_error == OnError::Fail) {
                out.failure = Some(message);
            } else {
                out.notes.push(message);
            }
            return out;
        }
    };
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let first = pod["spec"]["containers"][0]["name"]
            .as_str()
            .unwrap_or_default();
        let containers: Vec<&str> = hooks
            .iter()
            .map(|h| h.hook.container.as_deref().unwrap_or(first))
            .collect();
        let refs = backup_hooks::secret_refs(pod, &containers);
        let secrets = backup_hooks::secret_values(client, namespace, &refs).await;
        for h in hooks {
            let container = h
                .hook
                .container
                .clone()
                .unwrap_or_else(|| first.to_string());
            let r =
                backup_hooks::run_in(client, (namespace, name), container, &h.hook, &secrets).await;
            let failed = !r.succeeded();
            if failed {
                let message = format!(
                    "a post-restore hook failed (on-error: {}, from {}): {}",
                    h.hook.on_error.as_str(),
                    h.source,
                    r.describe()
                );
                match h.hook.on_error {
                    OnError::Fail if out.failure.is_none() => out.failure = Some(message),
                    OnError::Fail => {}
                    OnError::Continue => out.notes.push(message),
                }
            }
            out.ran.push(r);
            // A failing Fail hook stops this pod's later hooks, as Velero does.
            if failed && h.hook.on_error == OnError::Fail {
                break;
            }
        }
    }
    out
}

/// The post-restore hooks of a plan's lines that create a pod or a
/// workload: (line index, the pods it makes, the hooks).
pub type Planned = Vec<(usize, (Option<String>, String, usize), Vec<PostHook>)>;

/// Reads each line's hooks from the object it will create (the spec's
/// rules matched against the backup's namespace, before mapping).
pub fn post_hooks_of(plan: &[frontend::model::PlanItem], spec: &RestoreSpec) -> Planned {
    use frontend::model::Action;
    let source_ns = |target: &str| {
        spec.namespace_mapping
            .iter()
            .find(|(_, to)| *to == target)
            .map_or(target.to_string(), |(from, _)| from.clone())
    };
    plan.iter()
        .enumerate()
        .filter(|(_, line)| matches!(line.action, Action::Create | Action::Unknown))
        .filter_map(|(i, line)| {
            let ns = line.namespace.as_deref().map(source_ns);
            let hooks = of_object(&line.object, &line.group_resource, ns.as_deref(), spec)?.ok()?;
            if hooks.post.is_empty() {
                return None;
            }
            Some((i, pods_of(&line.object, &line.group_resource)?, hooks.post))
        })
        .collect()
}

/// Runs the hooks of the lines that were created, a few items at once; a
/// `Fail` hook that fails fails its line, a `Continue` one notes it.
pub async fn run_all(
    client: &kube::Client,
    plan: &mut [frontend::model::PlanItem],
    planned: Planned,
) {
    use frontend::model::ItemResult;
    use futures::StreamExt;
    let runs: Vec<_> = planned
        .into_iter()
        .filter(|(i, _, _)| {
            plan.get(*i)
                .is_some_and(|l| l.result == Some(ItemResult::Created))
        })
        .filter_map(|(i, pods, hooks)| Some((i, plan[i].namespace.clone()?, pods, hooks)))
        .collect();
    let done: Vec<(usize, PostOutcome)> = futures::stream::iter(runs)
        .map(|(i, namespace, pods, hooks)| async move {
            (i, run_post(client, &namespace, pods, &hooks).await)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for (i, outcome) in done {
        let line = &mut plan[i];
        for r in &outcome.ran {
            if r.succeeded() {
                tracing::info!(hook = %r.describe(), "post-restore hook");
            } else {
                tracing::warn!(hook = %r.describe(), "post-restore hook failed");
            }
        }
        line.hooks = outcome.ran.iter().map(Ran::record).collect();
        if let Some(failure) = outcome.failure {
            line.result = Some(ItemResult::Failed);
            line.message = Some(failure);
        } else if !outcome.notes.is_empty() {
            line.message = Some(outcome.notes.join("; "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontend::model::{
        HookLabelRequirement, HookLabelSelector, InitHook, RestoreHook, RestoreHooks,
    };

    fn deployment(annotations: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "shop"},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web", "tier": "front"}, "annotations": annotations},
                                     "spec": {"containers": [{"name": "web", "image": "nginx"}],
                                              "initContainers": [{"name": "migrate", "image": "tools"}]}}}})
    }

    #[test]
    fn velero_annotations_make_an_init_container_and_a_command() {
        let spec = RestoreSpec::default();
        let obj = deployment(json!({
            "init.hook.restore.velero.io/container-image": "alpine:3",
            "init.hook.restore.velero.io/command": "[\"/bin/sh\", \"-c\", \"echo restoring\"]",
            "post.hook.restore.velero.io/command": "[\"check\"]",
            "post.hook.restore.velero.io/on-error": "Fail",
            "post.hook.restore.velero.io/exec-timeout": "1m",
            "post.hook.restore.velero.io/wait-for-ready": "true",
        }));
        let hooks = of_object(&obj, "deployments.apps", Some("shop"), &spec)
            .unwrap()
            .unwrap();
        assert_eq!(
            hooks.init_containers,
            [
                json!({"name": "restore-hook", "image": "alpine:3", "command": ["/bin/sh", "-c", "echo restoring"]})
            ]
        );
        let post = &hooks.post[0];
        assert_eq!(post.hook.command, ["check"]);
        assert_eq!(
            (
                post.hook.on_error,
                post.hook.timeout,
                post.wait_timeout,
                post.wait_for_ready
            ),
            (OnError::Fail, Duration::from_secs(60), DEFAULT_WAIT, true)
        );
        // Put first, once.
        let mut restored = obj.clone();
        add_init_containers(&mut restored, "deployments.apps", &hooks.init_containers);
        add_init_containers(&mut restored, "deployments.apps", &hooks.init_containers);
        let names: Vec<&str> = restored["spec"]["template"]["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["restore-hook", "migrate"]);
        assert_eq!(
            pods_of(&obj, "deployments.apps"),
            Some((None, "app=web".into(), 2))
        );
        // No template, no hooks; a template without hook annotations has none.
        assert!(of_object(&json!({}), "configmaps", None, &spec).is_none());
        assert_eq!(
            of_object(
                &deployment(json!({})),
                "deployments.apps",
                Some("shop"),
                &spec
            ),
            Some(Ok(TemplateHooks::default()))
        );
    }

    #[test]
    fn spec_rules_select_by_namespace_and_labels_and_annotations_win() {
        let exec = |cmd: &str| RestoreHook {
            init: None,
            exec: Some(ExecHook {
                command: vec![cmd.into()],
                ..Default::default()
            }),
        };
        let spec = RestoreSpec {
            hooks: Some(RestoreHooks {
                resources: vec![RestoreHookResource {
                    name: "front".into(),
                    included_namespaces: vec!["shop".into()],
                    label_selector: Some(HookLabelSelector {
                        match_expressions: vec![HookLabelRequirement {
                            key: "tier".into(),
                            operator: "In".into(),
                            values: vec!["front".into()],
                        }],
                        ..Default::default()
                    }),
                    post_hooks: vec![
                        exec("warm-cache"),
                        RestoreHook {
                            init: Some(InitHook {
                                init_containers: vec![json!({"name": "fetch", "image": "busybox"})],
                            }),
                            exec: None,
                        },
                    ],
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        check_spec(&spec).unwrap();
        let hooks = of_object(
            &deployment(json!({})),
            "deployments.apps",
            Some("shop"),
            &spec,
        )
        .unwrap()
        .unwrap();
        assert_eq!(hooks.post[0].hook.command, ["warm-cache"]);
        assert_eq!(hooks.post[0].hook.on_error, OnError::Continue);
        assert_eq!(hooks.post[0].source, "hook rule front");
        assert_eq!(hooks.init_containers[0]["name"], "fetch");
        // Another namespace: not selected.
        let other = of_object(
            &deployment(json!({})),
            "deployments.apps",
            Some("blog"),
            &spec,
        )
        .unwrap()
        .unwrap();
        assert_eq!(other, TemplateHooks::default());
        // The pod's own annotation wins over the rule.
        let own = of_object(
            &deployment(json!({"post.hook.restore.lifeboat.io/command": "mine"})),
            "deployments.apps",
            Some("shop"),
            &spec,
        )
        .unwrap()
        .unwrap();
        assert_eq!(own.post.len(), 1);
        assert_eq!(own.post[0].hook.command, ["mine"]);
    }

    #[test]
    fn bad_hooks_say_which() {
        let bad = of_object(
            &deployment(json!({"post.hook.restore.velero.io/command": "check",
                               "post.hook.restore.velero.io/wait-timeout": "later"})),
            "deployments.apps",
            None,
            &RestoreSpec::default(),
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(bad.annotation, "post.hook.restore.velero.io/wait-timeout");
        let spec = |hook: RestoreHook| RestoreSpec {
            hooks: Some(RestoreHooks {
                resources: vec![RestoreHookResource {
                    name: "db".into(),
                    post_hooks: vec![hook],
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        let e = check_spec(&spec(RestoreHook::default()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("(db).postHooks[0]: give exactly one"), "{e}");
        let e = check_spec(&spec(RestoreHook {
            init: Some(InitHook {
                init_containers: vec![json!({"name": "x"})],
            }),
            exec: None,
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs a name and an image"), "{e}");
        let e = check_spec(&spec(RestoreHook {
            init: None,
            exec: Some(ExecHook {
                command: vec!["check".into()],
                on_error: Some("Retry".into()),
                ..Default::default()
            }),
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("exec.onError") && e.contains("Retry"), "{e}");
    }
}
