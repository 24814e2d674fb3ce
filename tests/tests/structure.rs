//! The code's shape, checked: every dependency between the top-level
//! modules of `server/src` and of `kubesim/src` points one way (no import
//! cycle), and the server returns typed errors (no `Result<_, String>`). A
//! module's tests (`#[cfg(test)]` and after) may do either, so they are
//! not read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → module it names → where (file:line), first few.
type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source of a file without its tests.
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// The names a piece of code reaches through `crate::`: `crate::a::b`,
/// `crate::{a, b::c}` (one level of braces is how rustfmt writes them).
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inside = group.split('}').next().unwrap_or_default();
                for part in inside.split(',') {
                    out.push((n + 1, ident(part.trim())));
                }
            } else {
                out.push((n + 1, ident(rest)));
            }
        }
    }
    out
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn graph(root: &Path) -> Graph {
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(root).expect("src") {
        let path = entry.expect("an entry").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if stem != "main" && stem != "lib" {
            modules.insert(stem);
        }
    }
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let relative = file.strip_prefix(root).expect("under src");
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_string();
        if !modules.contains(&top) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (line, name) in crate_paths(without_tests(&text)) {
            if name != top && modules.contains(&name) {
                let sites = graph
                    .entry(top.clone())
                    .or_default()
                    .entry(name)
                    .or_default();
                if sites.len() < 3 {
                    sites.push(format!("{}:{line}", relative.display()));
                }
            }
        }
    }
    graph
}

/// The cycles of `graph`: its strongly connected components of more than
/// one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

fn explain(graph: &Graph, cycle: &[String]) -> String {
    let mut out = format!("import cycle between {}:\n", cycle.join(", "));
    for a in cycle {
        for (b, sites) in graph.get(a).into_iter().flatten() {
            if cycle.contains(b) {
                out.push_str(&format!("  {a} -> {b}: {}\n", sites.join(", ")));
            }
        }
    }
    out
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

fn assert_acyclic(crate_dir: &str) {
    let graph = graph(&repository().join(crate_dir).join("src"));
    assert!(
        graph.len() > 5,
        "{crate_dir}: too few modules read: {graph:?}"
    );
    let found = cycles(&graph);
    let text: Vec<String> = found.iter().map(|c| explain(&graph, c)).collect();
    assert!(found.is_empty(), "{crate_dir}:\n{}", text.join("\n"));
}

#[test]
fn the_servers_modules_depend_one_way() {
    assert_acyclic("server");
}

#[test]
fn kubesims_modules_depend_one_way() {
    assert_acyclic("kubesim");
}

/// Lines of `code` that declare a `Result` whose error is a bare `String`
/// (what `grep -E 'Result<[^;{]*, String>'` finds).
fn string_errors(code: &str) -> Vec<(usize, String)> {
    code.lines()
        .enumerate()
        .filter(|(_, line)| {
            line.match_indices("Result<").any(|(at, _)| {
                let rest = &line[at..];
                let end = rest.find([';', '{']).unwrap_or(rest.len());
                rest[..end].contains(", String>")
            })
        })
        .map(|(n, line)| (n + 1, line.trim().to_string()))
        .collect()
}

/// Errors are typed in the server: a `Result<_, String>` loses what went
/// wrong to a sentence nothing can match on.
#[test]
fn the_server_returns_typed_errors() {
    let root = repository().join("server/src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 50, "{files:?}");
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (line, code) in string_errors(without_tests(&text)) {
            found.push(format!("{}:{line}: {code}", file.display()));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn string_errors_are_found() {
    let code = "fn a() -> Result<(), String> {}\nfn b() -> Result<BTreeMap<String, String>, E> {}\nfn c() -> Result<(), E> {}\ntype A = Result<u8, String>;";
    assert_eq!(
        string_errors(code)
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>(),
        vec![1, 2, 4]
    );
}

/// The checker finds a cycle where there is one, through both spellings.
#[test]
fn the_checker_finds_a_cycle() {
    let dir = tempfile::tempdir().expect("a directory");
    let src = dir.path();
    std::fs::create_dir(src.join("engine")).expect("engine/");
    std::fs::write(
        src.join("lib.rs"),
        "pub mod engine;\npub mod store;\npub mod util;\n",
    )
    .expect("lib.rs");
    std::fs::write(
        src.join("engine/mod.rs"),
        "use crate::{store::Store, util};\n",
    )
    .expect("engine");
    std::fs::write(
        src.join("store.rs"),
        "fn f() { crate::engine::run() }\n#[cfg(test)]\nmod tests { use crate::util; }\n",
    )
    .expect("store");
    std::fs::write(src.join("util.rs"), "#[cfg(test)]\nuse crate::engine;\n").expect("util");
    let graph = graph(src);
    assert_eq!(
        cycles(&graph),
        vec![vec!["engine".to_string(), "store".to_string()]],
        "{graph:?}"
    );
}
