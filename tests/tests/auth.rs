//! Sign-in and authorization against kubesim's TokenReview, RBAC and
//! SubjectAccessReview: no route is open by mistake, a namespace's admin
//! backs up and restores that namespace and nothing else, operators and
//! admins get what `docker/rbac.yaml` grants, bad tokens get 401, browser
//! writes need the session's CSRF token, and the activity log names who did it.

use std::path::Path;

use lifeboat_e2e::{kubesim, serve_lifeboat, with_token};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every route, as (method, path): the API's from its OpenAPI document
/// (which registers them), the rest from every `.route("…", method(…))` in
/// the server's HTTP modules, read from the source. A new route is covered
/// by itself.
fn routes() -> Vec<(String, String)> {
    let mut out = source_routes();
    let doc = serde_json::to_value(lifeboat::http::openapi()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.push((method.to_uppercase(), path.clone()));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn source_routes() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/src/http");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let Some(start) = rest.find('"') else { break };
            let Some(len) = rest[start + 1..].find('"') else {
                break;
            };
            let path = rest[start + 1..start + 1 + len].to_string();
            // The handlers up to the closing parenthesis of this `.route(`.
            let mut depth = 1;
            let mut end = 0;
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            let handlers = &rest[..end];
            for method in ["get", "post", "put", "delete", "patch"] {
                let called = handlers.contains(&format!("{method}("))
                    && handlers.match_indices(&format!("{method}(")).any(|(i, _)| {
                        i == 0
                            || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric()
                                && handlers.as_bytes()[i - 1] != b'_'
                    });
                if called {
                    out.push((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Routes anyone may use (the sign-in flow, health, the bundle).
const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/login",
    "/login/oidc",
    "/login/oidc/callback",
    "/logout",
    "/assets/lifeboat.css",
    "/pkg/{file}",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_is_open_without_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    let (url, _state) = serve_lifeboat(client, &sim, dir.path()).await.unwrap();
    let routes = routes();
    assert!(
        routes.len() > 30,
        "the route table was not read: {routes:?}"
    );
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut checked = 0;
    for (method, path) in &routes {
        if PUBLIC.contains(&path.as_str()) {
            continue;
        }
        let concrete = path
            .replace("{name}", "shop")
            .replace("{ns}", "shop")
            .replace("{namespace}", "shop")
            .replace("{location}", "default")
            .replace("{id}", "x")
            .replace("{*key}", "volumes/x")
            .replace("{file}", "x");
        let request = anonymous.request(method.parse().unwrap(), format!("{url}{concrete}"));
        let request = if method == "GET" || method == "DELETE" {
            request
        } else {
            request.json(&json!({"name": "x"}))
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        // The API and Prometheus's scrape answer 401; pages send browsers to sign in.
        if path.starts_with("/api/") || path == "/metrics" {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert!(response.headers().contains_key("www-authenticate"));
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["status"], 401, "{method} {path}: {body}");
        } else {
            assert_eq!(status, StatusCode::SEE_OTHER, "{method} {path}");
            let to = response.headers()["location"].to_str().unwrap();
            assert!(to.starts_with("/login?next="), "{method} {path} → {to}");
        }
        checked += 1;
    }
    assert!(checked > 60, "{checked} routes checked");
    // The public ones answer without a principal.
    for path in ["/healthz", "/readyz", "/login", "/assets/lifeboat.css"] {
        let status = anonymous
            .get(format!("{url}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{path}: {status}");
    }
}

/// Applies `docker/rbac.yaml` and extra RBAC objects to the simulated cluster.
fn apply_rbac(sim: &kubesim::Kubesim, extra: &str) {
    let mut objects = kubesim::seed::parse(include_str!("../../docker/rbac.yaml")).unwrap();
    objects.extend(kubesim::seed::parse(extra).unwrap());
    kubesim::seed::apply(&sim.store, objects).unwrap();
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> (StatusCode, Value) {
    let r = http.post(url).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn wait_finished(http: &reqwest::Client, url: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let v: Value = get_json(http, url).await;
        if !matches!(v["phase"].as_str(), Some("New" | "InProgress")) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "never finished: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_admin_backs_up_and_restores_their_namespace_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    // shop's admins (the built-in `admin`, bound in shop) and a cluster-wide operator.
    apply_rbac(
        &sim,
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: owner, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: shop-admins, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{kind: ServiceAccount, name: owner, namespace: shop}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ops-operators}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lifeboat-operator}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: ops}]
"#,
    );
    let (url, _state) = serve_lifeboat(client, &sim, dir.path()).await.unwrap();
    let admin = lifeboat_e2e::http(&url);
    let owner = with_token(&sim.issue_token(kubesim::rbac::User::service_account("shop", "owner")));
    let operator = with_token(&sim.issue_token(kubesim::rbac::User {
        name: "olga".into(),
        uid: "u-olga".into(),
        groups: vec!["ops".into(), "system:authenticated".into()],
    }));
    let nobody = with_token(&sim.issue_token(kubesim::rbac::User::service_account("data", "app")));
    let backups = format!("{url}/api/v1/backups");

    // The admin backs up `data`; the shop owner backs up `shop`.
    let (status, body) = post(
        &admin,
        &backups,
        json!({"name": "data-1", "spec": {"includedNamespaces": ["data"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = post(
        &owner,
        &backups,
        json!({"name": "shop-1", "spec": {"includedNamespaces": ["shop"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    for name in ["data-1", "shop-1"] {
        let done = wait_finished(&admin, &format!("{backups}/{name}")).await;
        assert_eq!(done["phase"], "Completed", "{done}");
    }
    // Not another namespace, nor everything.
    for spec in [
        json!({"includedNamespaces": ["data"]}),
        json!({}),
        json!({"includedNamespaces": ["sh*"]}),
    ] {
        let (status, body) = post(&owner, &backups, json!({"name": "no", "spec": spec})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{spec}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("backups.lifeboat.io"),
            "{body}"
        );
    }
    // The owner sees shop's backup only; someone without a role sees none.
    let listed = |http: reqwest::Client| {
        let backups = backups.clone();
        async move {
            let v: Value = get_json(&http, &backups).await;
            let mut names: Vec<String> = v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["name"].as_str().unwrap().to_string())
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(listed(owner.clone()).await, ["shop-1"]);
    assert_eq!(listed(admin.clone()).await, ["data-1", "shop-1"]);
    assert_eq!(listed(operator.clone()).await, ["data-1", "shop-1"]);
    assert!(listed(nobody.clone()).await.is_empty());
    assert_eq!(
        status_of(&owner, &format!("{backups}/data-1")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&owner, &format!("{backups}/data-1/contents")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&owner, &format!("{backups}/data-1/download")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&owner, &format!("{backups}/shop-1/download")).await,
        StatusCode::OK
    );
    // Verifying is its own permission, per namespace like the rest.
    let (status, body) = post(&owner, &format!("{backups}/data-1/verify"), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("backups/verify"),
        "{body}"
    );
    let (status, body) = post(&owner, &format!("{backups}/shop-1/verify"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], true, "{body}");
    // So is drilling; the drill itself runs as the drill identity.
    let (status, body) = post(&owner, &format!("{backups}/data-1/drill"), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("backups/drill"),
        "{body}"
    );
    let (status, body) = post(&owner, &format!("{backups}/shop-1/drill"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let drill = body["id"].as_str().unwrap().to_string();
    let seen = owner
        .get(format!("{url}/api/v1/drills/{drill}"))
        .send()
        .await
        .unwrap();
    assert_eq!(seen.status(), StatusCode::OK);
    let refused = owner
        .delete(format!("{backups}/data-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Restores: into shop yes, into another namespace (mapping) no.
    let restores = format!("{url}/api/v1/restores");
    let (status, body) = post(
        &owner,
        &restores,
        json!({"name": "shop-plan", "spec": {"backupName": "shop-1", "dryRun": true}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = post(
        &owner,
        &restores,
        json!({"spec": {"backupName": "shop-1", "namespaceMapping": {"shop": "kube-system"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("kube-system"),
        "{body}"
    );
    let (status, _) = post(
        &owner,
        &restores,
        json!({"spec": {"backupName": "data-1", "dryRun": true}}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let plan = wait_finished(&owner, &format!("{restores}/shop-plan")).await;
    assert_eq!(plan["phase"], "Planned", "{plan}");
    assert_eq!(
        status_of(&nobody, &format!("{restores}/shop-plan")).await,
        StatusCode::FORBIDDEN
    );

    // Health shows the owner what kubectl would: shop's pods, not data's nor the nodes.
    let summary: Value = get_json(&owner, &format!("{url}/api/v1/cluster/summary")).await;
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&summary["namespaces"]), ["shop"], "{summary}");
    assert_eq!(summary["nodes"]["total"], 0, "{summary}");
    assert!(!summary.to_string().contains("postgres"), "{summary}");
    let listed: Value = get_json(&owner, &format!("{url}/api/v1/namespaces")).await;
    assert_eq!(names(&listed["items"]), ["shop"]);
    let everything: Value = get_json(&admin, &format!("{url}/api/v1/cluster/summary")).await;
    assert!(names(&everything["namespaces"]).contains(&"data".to_string()));
    for path in ["/api/v1/namespaces/data", "/api/v1/nodes"] {
        assert_eq!(
            status_of(&owner, &format!("{url}{path}")).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(
        status_of(&owner, &format!("{url}/api/v1/namespaces/shop")).await,
        StatusCode::OK
    );
    // The change stream carries shop's changes and not data's.
    let mut stream = owner
        .get(format!("{url}/api/v1/stream"))
        .send()
        .await
        .unwrap();
    let kube = lifeboat_e2e::kubesim_client_for(&sim, &sim.token)
        .await
        .unwrap();
    let scale = |ns: &'static str, kind: &'static str, name: &'static str, replicas: i64| {
        let kube = kube.clone();
        async move {
            let ar = kube::discovery::ApiResource {
                group: "apps".into(),
                version: "v1".into(),
                api_version: "apps/v1".into(),
                kind: kind.into(),
                plural: format!("{}s", kind.to_lowercase()),
            };
            let api: kube::Api<kube::api::DynamicObject> =
                kube::Api::namespaced_with(kube, ns, &ar);
            api.patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"spec": {"replicas": replicas}})),
            )
            .await
            .unwrap();
        }
    };
    scale("data", "StatefulSet", "postgres", 2).await;
    scale("shop", "Deployment", "web", 4).await;
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    'events: loop {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("shop's change within 20 s")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            assert!(
                !event.contains("\"data\""),
                "data's change reached shop's owner: {event}"
            );
            if event.contains("\"shop\"") && event.contains("web") {
                break 'events;
            }
        }
    }

    // Schedules and locations are administrators'.
    for path in [
        "/api/v1/schedules",
        "/api/v1/storage-locations",
        "/api/v1/activity",
    ] {
        assert_eq!(
            status_of(&owner, &format!("{url}{path}")).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            status_of(&operator, &format!("{url}{path}")).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            status_of(&admin, &format!("{url}{path}")).await,
            StatusCode::OK,
            "{path}"
        );
    }
    let (status, _) = post(
        &operator,
        &format!("{url}/api/v1/schedules"),
        json!({"name": "nightly", "schedule": "@daily"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The operator backs up any namespace, everything included.
    let (status, body) = post(&operator, &backups, json!({"name": "all-1", "spec": {}})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_finished(&admin, &format!("{backups}/all-1")).await;

    // The activity log names who did it and how they signed in.
    let activity: Value = get_json(&admin, &format!("{url}/api/v1/activity?limit=1000")).await;
    let actor_of = |subject: &str, kind: &str| {
        activity["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["subject"] == subject && a["kind"] == kind)
            .map(|a| a["actor"].as_str().unwrap().to_string())
    };
    assert_eq!(
        actor_of("backup/shop-1", "backup.created").as_deref(),
        Some("system:serviceaccount:shop:owner (token)")
    );
    assert_eq!(
        actor_of("backup/all-1", "backup.created").as_deref(),
        Some("olga (token)")
    );
    assert_eq!(
        actor_of("restore/shop-plan", "restore.created").as_deref(),
        Some("system:serviceaccount:shop:owner (token)")
    );
}

async fn status_of(http: &reqwest::Client, url: &str) -> StatusCode {
    http.get(url).send().await.unwrap().status()
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_and_browser_writes_need_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    let admin_client = client.clone();
    let (url, _state) = serve_lifeboat(client, &sim, dir.path()).await.unwrap();
    let summary = format!("{url}/api/v1/cluster/summary");

    // Unknown, expired and revoked tokens: 401 with a JSON reason.
    let expired = sim.issue_credential(kubesim::authn::Credential {
        expires: Some(chrono::Utc::now() - chrono::Duration::seconds(5)),
        ..kubesim::authn::Credential::fixed(kubesim::rbac::User::service_account("shop", "old"))
    });
    for token in ["not-a-token", expired.as_str()] {
        let r = with_token(token).get(&summary).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{token}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("not accepted"),
            "{body}"
        );
    }
    // A ServiceAccount's token (TokenRequest, as `kubectl create token` makes
    // it) stops working once the account is deleted, after the few seconds
    // its review is cached.
    let accounts: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(admin_client.clone(), "shop");
    accounts
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": "temp"}})).unwrap(),
        )
        .await
        .unwrap();
    let token = accounts
        .create_token_request("temp", &Default::default(), &Default::default())
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .expect("a token");
    assert_eq!(
        with_token(&token)
            .get(&summary)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    accounts.delete("temp", &Default::default()).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = with_token(&token)
            .get(&summary)
            .send()
            .await
            .unwrap()
            .status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a revoked token still works: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    // A browser signs in with a pasted token and gets an HttpOnly session cookie.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = plain
        .post(format!("{url}/login"))
        .form(&[("token", sim.token.as_str()), ("next", "/backups")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()["location"], "/backups");
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains(&sim.token), "the token is not the cookie");
    // The browser sends the cookie back from now on.
    let session = cookie.split(';').next().unwrap().to_string();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, session.parse().unwrap());
    let browser = reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let me: Value = get_json(&browser, &format!("{url}/api/v1/session")).await;
    assert_eq!(me["username"], "kubernetes-admin", "{me}");
    let csrf = me["csrfToken"].as_str().unwrap().to_string();
    // A write without the CSRF token (what a cross-site form sends) is refused.
    let body = json!({"name": "from-browser", "spec": {"includedNamespaces": ["shop"]}});
    let refused = browser
        .post(format!("{url}/api/v1/backups"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused: Value = refused.json().await.unwrap();
    assert!(
        refused["error"].as_str().unwrap().contains("CSRF"),
        "{refused}"
    );
    let accepted = browser
        .post(format!("{url}/api/v1/backups"))
        .header("X-CSRF-Token", &csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    // A sign-in form posted from another site is refused.
    let cross = reqwest::Client::new()
        .post(format!("{url}/login"))
        .header("Origin", "https://evil.example")
        .form(&[("token", sim.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    // Signing out needs the token too, then ends the session.
    let wrong = browser
        .post(format!("{url}/logout"))
        .form(&[("csrf", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let out = browser
        .post(format!("{url}/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        browser
            .get(format!("{url}/api/v1/session"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // A wrong pasted token is a 401 page that says why, not a session.
    let wrong = plain
        .post(format!("{url}/login"))
        .form(&[("token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    assert!(wrong.text().await.unwrap().contains("not accepted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_write_as_the_user_who_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    // olga may restore anywhere as far as Lifeboat goes (lifeboat-operator),
    // but in the cluster she is admin of `shop` only.
    apply_rbac(
        &sim,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: olga-operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lifeboat-operator}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: olga}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: olga-admin, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: olga}]
"#,
    );
    let (url, _state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let olga = with_token(&sim.issue_token(kubesim::rbac::User {
        name: "olga".into(),
        uid: "u-olga".into(),
        groups: vec!["system:authenticated".into()],
    }));
    let backups = format!("{url}/api/v1/backups");
    let restores = format!("{url}/api/v1/restores");
    let (status, body) = post(
        &olga,
        &backups,
        json!({"name": "shop-1", "spec": {"includedNamespaces": ["shop"], "includedResources": ["configmaps"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        wait_finished(&olga, &format!("{backups}/shop-1")).await["phase"],
        "Completed"
    );

    // Into kube-system, where she may not write: the pre-flight check (a
    // review asked as olga) marks every item forbidden, and the restore is
    // refused before anything is created there.
    let (status, body) = post(
        &olga,
        &restores,
        json!({"name": "into-system", "spec": {"backupName": "shop-1", "namespaceMapping": {"shop": "kube-system"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let done = wait_finished(&olga, &format!("{restores}/into-system")).await;
    assert_eq!(done["phase"], "Failed", "{done}");
    let items = done["plan"]["items"].as_array().unwrap();
    let web_config = items
        .iter()
        .find(|i| i["name"] == "web-config")
        .expect("the ConfigMap was planned");
    assert_eq!(web_config["action"], "forbidden", "{web_config}");
    assert!(web_config["result"].is_null(), "never tried: {web_config}");
    let reason = web_config["reason"].as_str().unwrap();
    assert!(
        reason.contains("you may not create configmaps in kube-system"),
        "{reason}"
    );
    let system: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), "kube-system");
    assert!(system.get_opt("web-config").await.unwrap().is_none());

    // Into shop, where she is admin: the lost ConfigMap comes back.
    let shop: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), "shop");
    shop.delete("web-config", &Default::default())
        .await
        .unwrap();
    let (status, body) = post(
        &olga,
        &restores,
        json!({"name": "back", "spec": {"backupName": "shop-1"}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = wait_finished(&olga, &format!("{restores}/back")).await;
    assert_eq!(done["phase"], "Completed", "{done}");
    let restored = shop.get("web-config").await.unwrap();
    assert_eq!(
        restored
            .data
            .unwrap_or_default()
            .get("CURRENCY")
            .map(String::as_str),
        Some("EUR")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_a_strict_policy_refusals_are_audited_and_bodies_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    let (url, _state) = serve_lifeboat(client, &sim, dir.path()).await.unwrap();
    let admin = lifeboat_e2e::http(&url);
    // A page: its hydration script runs by the nonce in its policy, nothing else inline.
    let page = admin.get(format!("{url}/backups")).send().await.unwrap();
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        policy.contains("frame-ancestors 'none'") && policy.contains("'wasm-unsafe-eval'"),
        "{policy}"
    );
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the policy")
        .to_string();
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries the nonce"
    );
    // Another page, another nonce.
    let again = admin.get(format!("{url}/backups")).send().await.unwrap();
    assert!(
        !again.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(&nonce)
    );
    // API answers and the sign-in page allow no script at all; no CORS.
    let api = admin
        .get(format!("{url}/api/v1/backups"))
        .header("Origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert!(
        api.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'none'")
    );
    assert!(api.headers().get("access-control-allow-origin").is_none());
    let login = reqwest::get(format!("{url}/login")).await.unwrap();
    assert!(
        login.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'none'")
    );

    // A body over the limit is refused before it is read whole.
    let huge = vec![b' '; lifeboat::http::MAX_BODY_BYTES + 1];
    let r = admin
        .post(format!("{url}/api/v1/backups"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Refusals are in the activity log, by whom and where.
    let nobody = with_token(&sim.issue_token(kubesim::rbac::User::service_account("data", "app")));
    assert_eq!(
        status_of(&nobody, &format!("{url}/api/v1/schedules")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&reqwest::Client::new(), &format!("{url}/api/v1/schedules")).await,
        StatusCode::UNAUTHORIZED
    );
    let log: Value = get_json(
        &admin,
        &format!("{url}/api/v1/activity?actor=system:serviceaccount:data:app"),
    )
    .await;
    let entries = log["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["kind"], "auth.forbidden");
    assert_eq!(entries[0]["subject"], "route//api/v1/schedules");
    let anonymous: Value =
        get_json(&admin, &format!("{url}/api/v1/activity?actor=anonymous")).await;
    assert!(
        anonymous["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "auth.unauthenticated"),
        "{anonymous}"
    );
}

/// A namespace admin (the built-in `admin`, bound in `shop`) deletes their
/// ConfigMaps and restores their backup of `shop`. The backup pulled in
/// the Namespace and the ClusterRole its RoleBinding names; the admin may
/// read neither. The plan neither calls them `create` (an unreadable object
/// is not an absent one) nor shows anything of them: Lifeboat looks up
/// whether they exist with its own account, and they are skipped. The
/// restore is Completed, not PartiallyFailed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_admin_restores_their_namespace_completed_skipping_what_exists_cluster_wide() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    apply_rbac(
        &sim,
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: alice, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: shop-admins, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{kind: ServiceAccount, name: alice, namespace: shop}]
"#,
    );
    let (url, _state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let alice = with_token(&sim.issue_token(kubesim::rbac::User::service_account("shop", "alice")));
    let (status, body) = post(
        &alice,
        &format!("{url}/api/v1/backups"),
        json!({"name": "shop-1", "spec": {"includedNamespaces": ["shop"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = wait_finished(&alice, &format!("{url}/api/v1/backups/shop-1")).await;
    assert_eq!(done["phase"], "Completed", "{done}");
    assert!(
        done["manifest"]["resources"]["clusterroles.rbac.authorization.k8s.io"].as_u64() >= Some(1),
        "the backup pulled in the ClusterRole the RoleBinding names: {done}"
    );

    // The ConfigMaps are lost.
    let maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), "shop");
    let mut lost = 0;
    for map in maps.list(&Default::default()).await.unwrap() {
        let name = map.metadata.name.unwrap();
        if name != "kube-root-ca.crt" {
            maps.delete(&name, &Default::default()).await.unwrap();
            lost += 1;
        }
    }
    assert!(lost > 0);

    let restores = format!("{url}/api/v1/restores");
    let (status, body) = post(
        &alice,
        &restores,
        json!({"name": "shop-plan", "spec": {"backupName": "shop-1", "dryRun": true}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let plan = wait_finished(&alice, &format!("{restores}/shop-plan")).await;
    assert_eq!(plan["phase"], "Planned", "{plan}");
    let lines = plan["plan"]["items"].as_array().unwrap();
    let cluster_scoped: Vec<&Value> = lines
        .iter()
        .filter(|l| l["namespace"].is_null() && l["action"] != "excluded")
        .collect();
    assert!(!cluster_scoped.is_empty(), "{plan}");
    for line in &cluster_scoped {
        assert_eq!(line["action"], "skip", "{line}");
        assert_eq!(
            line["reason"], "exists (cluster-scoped, not changed by this restore)",
            "{line}"
        );
        assert!(line["diff"].as_array().is_none_or(Vec::is_empty), "{line}");
    }
    let created = lines
        .iter()
        .filter(|l| l["groupResource"] == "configmaps" && l["action"] == "create")
        .count();
    assert_eq!(created, lost, "{plan}");

    let (status, body) = post(
        &alice,
        &restores,
        json!({"name": "shop-back", "spec": {"backupName": "shop-1"}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let back = wait_finished(&alice, &format!("{restores}/shop-back")).await;
    assert_eq!(back["phase"], "Completed", "{back}");
    let now = maps.list(&Default::default()).await.unwrap().items.len();
    assert_eq!(now, lost + 1, "every ConfigMap is back");
}

/// Pre-flight authorization. The backup of `shop` holds a RoleBinding to
/// `cluster-admin`. Its namespace admin's dry run marks that binding
/// forbidden (the API server's escalation check, in its words) and nothing
/// else; the real run is refused before anything is written; with
/// `allowPartial` the rest comes back and the binding does not. An operator
/// who holds `lifeboat-operator` but no Kubernetes rights sees every item
/// forbidden, naming the permission and a binding that grants it, and their
/// restore writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_are_checked_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    apply_rbac(
        &sim,
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: alice, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: shop-admins, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{kind: ServiceAccount, name: alice, namespace: shop}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: everything, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: default, namespace: shop}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: ops, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ops-operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lifeboat-operator}
subjects: [{kind: ServiceAccount, name: ops, namespace: default}]
"#,
    );
    let (url, _state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let admin = lifeboat_e2e::http(&url);
    let alice = with_token(&sim.issue_token(kubesim::rbac::User::service_account("shop", "alice")));
    let ops = with_token(&sim.issue_token(kubesim::rbac::User::service_account("default", "ops")));
    let (status, body) = post(
        &admin,
        &format!("{url}/api/v1/backups"),
        json!({"name": "shop-1", "spec": {"includedNamespaces": ["shop"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = wait_finished(&admin, &format!("{url}/api/v1/backups/shop-1")).await;
    assert_eq!(done["phase"], "Completed", "{done}");

    // The binding and the ConfigMaps are lost.
    let bindings: kube::Api<k8s_openapi::api::rbac::v1::RoleBinding> =
        kube::Api::namespaced(client.clone(), "shop");
    bindings
        .delete("everything", &Default::default())
        .await
        .unwrap();
    let maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), "shop");
    let mut lost = 0;
    for map in maps.list(&Default::default()).await.unwrap() {
        let name = map.metadata.name.unwrap();
        if name != "kube-root-ca.crt" {
            maps.delete(&name, &Default::default()).await.unwrap();
            lost += 1;
        }
    }
    let maps_now = || async { maps.list(&Default::default()).await.unwrap().items.len() };
    let restores = format!("{url}/api/v1/restores");
    let run = |who: reqwest::Client, name: &'static str, spec: Value| {
        let restores = restores.clone();
        async move {
            let (status, body) = post(&who, &restores, json!({"name": name, "spec": spec})).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            wait_finished(&who, &format!("{restores}/{name}")).await
        }
    };
    let forbidden_lines = |r: &Value| -> Vec<Value> {
        r["plan"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["action"] == "forbidden")
            .cloned()
            .collect()
    };

    // The admin's dry run: the escalating binding, and only it, is forbidden.
    let plan = run(
        alice.clone(),
        "alice-plan",
        json!({"backupName": "shop-1", "dryRun": true}),
    )
    .await;
    assert_eq!(plan["phase"], "Planned", "{plan}");
    let forbidden = forbidden_lines(&plan);
    assert_eq!(forbidden.len(), 1, "{plan}");
    assert_eq!(forbidden[0]["name"], "everything", "{plan}");
    let why = forbidden[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("forbidden") && why.contains("cluster-admin") || why.contains("escalat"),
        "{why}"
    );
    assert!(
        plan["phaseReason"]
            .as_str()
            .unwrap_or_default()
            .contains("1 item(s) you may not write"),
        "{plan}"
    );
    // The real run is refused before anything is written: 422, listing it.
    let (status, body) = post(
        &alice,
        &restores,
        json!({"name": "alice-run", "spec": {"backupName": "shop-1"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("refused before anything was written"),
        "{body}"
    );
    let listed = body["forbidden"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{body}");
    assert!(
        listed[0]
            .as_str()
            .unwrap()
            .starts_with("rolebindings.rbac.authorization.k8s.io shop/everything: forbidden"),
        "{body}"
    );
    let refused = wait_finished(&alice, &format!("{restores}/alice-run")).await;
    assert_eq!(refused["phase"], "Failed", "{refused}");
    assert_eq!(maps_now().await, 1, "nothing was written");
    // With allowPartial, everything else comes back, and the binding does not.
    let partial = run(
        alice.clone(),
        "alice-partial",
        json!({"backupName": "shop-1", "allowPartial": true}),
    )
    .await;
    assert_eq!(partial["phase"], "PartiallyFailed", "{partial}");
    assert!(
        partial["plan"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["result"] != "failed"),
        "{partial}"
    );
    assert_eq!(maps_now().await, lost + 1, "the ConfigMaps are back");
    assert!(bindings.get_opt("everything").await.unwrap().is_none());

    // An operator without Kubernetes rights: every write forbidden, named.
    for map in maps.list(&Default::default()).await.unwrap() {
        let name = map.metadata.name.unwrap();
        if name != "kube-root-ca.crt" {
            maps.delete(&name, &Default::default()).await.unwrap();
        }
    }
    let plan = run(
        ops.clone(),
        "ops-plan",
        json!({"backupName": "shop-1", "dryRun": true}),
    )
    .await;
    let lines = plan["plan"]["items"].as_array().unwrap();
    let writes: Vec<&Value> = lines
        .iter()
        .filter(|i| matches!(i["action"].as_str(), Some("create" | "update" | "unknown")))
        .collect();
    assert!(writes.is_empty(), "only forbidden writes: {writes:?}");
    let forbidden = forbidden_lines(&plan);
    let maps_line = forbidden
        .iter()
        .find(|i| i["groupResource"] == "configmaps")
        .expect("the ConfigMaps are forbidden");
    let why = maps_line["reason"].as_str().unwrap();
    assert!(
        why.contains("may not create configmaps in shop") && why.contains("`admin`"),
        "{why}"
    );
    let (status, body) = post(
        &ops,
        &restores,
        json!({"name": "ops-run", "spec": {"backupName": "shop-1"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["forbidden"].as_array().unwrap().len() >= lost,
        "{body}"
    );
    assert_eq!(maps_now().await, 1, "nothing was written");
}

/// A user who may create ConfigMaps in `shop` but not list them: the plan
/// calls them `unknown` (an unreadable object is not an absent one), never
/// `create`; the run creates the missing one and leaves the ones that exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_user_may_not_read_is_unknown_never_a_false_create() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    apply_rbac(
        &sim,
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: carol, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: write-only-configmaps, namespace: shop}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: carol-writes, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: write-only-configmaps}
subjects: [{kind: ServiceAccount, name: carol, namespace: shop}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: carol-restores, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lifeboat-namespace-user}
subjects: [{kind: ServiceAccount, name: carol, namespace: shop}]
"#,
    );
    let (url, _state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let admin = lifeboat_e2e::http(&url);
    let carol = with_token(&sim.issue_token(kubesim::rbac::User::service_account("shop", "carol")));
    let maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), "shop");
    maps.create(
        &Default::default(),
        &serde_json::from_value(json!({"metadata": {"name": "kept"}, "data": {"a": "1"}})).unwrap(),
    )
    .await
    .unwrap();
    let (status, body) = post(
        &admin,
        &format!("{url}/api/v1/backups"),
        json!({"name": "maps", "spec": {"includedNamespaces": ["shop"], "includedResources": ["configmaps"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = wait_finished(&admin, &format!("{url}/api/v1/backups/maps")).await;
    assert_eq!(done["phase"], "Completed", "{done}");
    maps.delete("web-config", &Default::default())
        .await
        .unwrap();

    let restores = format!("{url}/api/v1/restores");
    let (status, body) = post(
        &carol,
        &restores,
        json!({"name": "carol-plan", "spec": {"backupName": "maps", "dryRun": true}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let plan = wait_finished(&carol, &format!("{restores}/carol-plan")).await;
    let lines = plan["plan"]["items"].as_array().unwrap();
    let configmaps: Vec<&Value> = lines
        .iter()
        .filter(|l| l["groupResource"] == "configmaps" && l["action"] != "excluded")
        .collect();
    assert!(configmaps.len() >= 2, "{plan}");
    for line in &configmaps {
        assert_eq!(line["action"], "unknown", "{line}");
        assert!(
            line["reason"]
                .as_str()
                .unwrap()
                .starts_with("unknown — you may not read it"),
            "{line}"
        );
    }
    assert_eq!(
        plan["plan"]["summary"]["actions"]["unknown"],
        configmaps.len()
    );

    let (status, body) = post(
        &carol,
        &restores,
        json!({"name": "carol-run", "spec": {"backupName": "maps"}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run = wait_finished(&carol, &format!("{restores}/carol-run")).await;
    assert_eq!(run["phase"], "Completed", "{run}");
    let results: Vec<(&str, &str)> = run["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["groupResource"] == "configmaps" && l["action"] == "unknown")
        .map(|l| (l["name"].as_str().unwrap(), l["result"].as_str().unwrap()))
        .collect();
    assert!(results.contains(&("web-config", "created")), "{results:?}");
    assert!(results.contains(&("kept", "skipped")), "{results:?}");
    assert!(
        results
            .iter()
            .filter(|(name, _)| *name != "web-config")
            .all(|(_, result)| *result == "skipped"),
        "{results:?}"
    );
    assert!(maps.get_opt("web-config").await.unwrap().is_some());
}
