//! The house rules a reader should not have to check by hand: core's modules form no cycle and
//! none of them imports the vault (data flows one way, docs/design.md §6), and no source file in
//! the workspace grows past 800 lines without saying why at its top.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (a doc link is not a dependency).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Core's top-level modules and, for each, the other modules its code names (`crate::<name>`).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let p = e.path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            let mut files = Vec::new();
            rust_files(&p, &mut files);
            modules.insert(name, files);
        } else if name != "lib" && p.extension().is_some_and(|x| x == "rs") {
            modules.insert(name, vec![p]);
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (m, files) in &modules {
        let mut to = BTreeSet::new();
        for f in files {
            let text = code(f);
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + "crate::".len()..];
                let rest = rest.trim_start_matches('{');
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if names.contains(&name) && &name != m {
                    to.insert(name);
                }
                // `use crate::{a, b::c}`: every name the braces open with.
                if text[i..].starts_with("crate::{") {
                    let inner = &text[i + "crate::{".len()..];
                    let inner = &inner[..inner.find('}').unwrap_or(inner.len())];
                    for part in inner.split(',') {
                        let name = part.trim().split("::").next().unwrap_or("").trim().to_owned();
                        if names.contains(&name) && &name != m {
                            to.insert(name);
                        }
                    }
                }
            }
        }
        edges.insert(m.clone(), to);
    }
    edges
}

/// A cycle through `node`, if there is one (depth first).
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| n == node) {
        let mut c = path[at..].to_vec();
        c.push(node.to_owned());
        return Some(c);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_owned());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(c) = cycle_from(graph, next, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_owned());
    None
}

#[test]
fn core_modules_form_no_cycle_and_nothing_imports_the_vault() {
    let g = graph();
    for (m, to) in &g {
        println!("{m} -> {}", to.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    assert!(g.len() > 15, "the modules were found: {:?}", g.keys());
    let importers: Vec<&String> = g.iter().filter(|(_, to)| to.contains("vault")).map(|(m, _)| m).collect();
    assert!(importers.is_empty(), "the vault is the facade on top, yet {importers:?} import it");
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(c) = cycle_from(&g, m, &mut Vec::new(), &mut done) {
            panic!("an import cycle among core's modules: {}", c.join(" -> "));
        }
    }
}

/// Source files, outside what builds generate.
fn workspace_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !matches!(name.as_str(), "target" | "generated" | "corpus" | "artifacts" | "node_modules")
                && !name.starts_with('.')
            {
                workspace_sources(&p, out);
            }
        } else if ["rs", "kt", "py", "swift", "sh"].iter().any(|x| name.ends_with(&format!(".{x}"))) {
            out.push(p);
        }
    }
}

#[test]
fn no_file_is_long_without_saying_why() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    workspace_sources(root, &mut files);
    assert!(files.len() > 50, "the sources were found");
    let mut long = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines = text.lines().count();
        let says_why = text.lines().take(20).any(|l| l.contains("is long because"));
        if lines > 800 && !says_why {
            long.push(format!("{} ({lines} lines)", f.strip_prefix(root).unwrap().display()));
        }
    }
    assert!(long.is_empty(), "over 800 lines with no reason at the top (\"is long because …\"): {long:?}");
}
