//! The crate's modules stand in layers, and an import only goes down (or
//! across, inside the bottom layer, without a cycle). This test reads every
//! file under `src/`, finds the `crate::…` paths in its code (not in its
//! comments, nor in its `#[cfg(test)] mod tests`, which may set up through
//! the facade), and fails on an import up a layer, on a cycle, and on a path
//! through a root re-export (which would hide the module it comes from).
//! `docs/architecture.md` explains the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, from the bottom. A module may import from its own layer or
/// below; inside a layer the imports must not form a cycle.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "primitives",
        &[
            "error", "text", "issue", "schema", "matching", "record", "catalog", "cell", "email",
            "par", "index",
        ],
    ),
    ("store", &["store"]),
    ("fixtures", &["memory"]),
    ("input", &["input"]),
    ("profile", &["profile", "preset"]),
    ("validate", &["validate"]),
    ("plan", &["plan"]),
    ("report", &["report"]),
    ("apply", &["apply", "undo"]),
    ("import", &["import", "segments"]),
    ("testkit", &["testkit"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

/// The top-level module a file under `src/` belongs to (`None` for lib.rs).
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    if first == "lib.rs" {
        return None;
    }
    Some(first.trim_end_matches(".rs").to_owned())
}

/// The code lines of a file: comments dropped, and nothing from its unit
/// tests module on.
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|n| n.trim_start().starts_with("mod tests"))
        {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push((i + 1, *line));
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(module, line, imported module or a bad path)` for every `crate::` path.
fn imports() -> Vec<(String, String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let Some(module) = module_of(rel) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in code_lines(&text) {
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                // `$crate::` and identifiers ending in `crate` are not paths.
                let before = rest[..at].chars().last();
                rest = &rest[at + "crate::".len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                    continue;
                }
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '{')
                    .collect();
                found.push((module.clone(), format!("{}:{n}", rel.display()), name));
            }
        }
    }
    found
}

#[test]
fn every_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let missing: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_of(f.strip_prefix(&src).unwrap()))
        .filter(|m| layer_of(m).is_none())
        .collect();
    assert!(missing.is_empty(), "modules without a layer: {missing:?}");
}

#[test]
fn imports_only_go_down_and_name_their_module() {
    let mut wrong = Vec::new();
    for (module, at, target) in imports() {
        if target == module {
            continue;
        }
        let Some(to) = layer_of(&target) else {
            wrong.push(format!(
                "{at}: `crate::{target}` is not a module path: import from the module that defines it"
            ));
            continue;
        };
        let from = layer_of(&module).unwrap_or(usize::MAX);
        if to > from {
            wrong.push(format!(
                "{at}: {module} ({}) imports {target} ({}), a higher layer",
                LAYERS[from].0, LAYERS[to].0
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, _, target) in imports() {
        if target != module && layer_of(&target).is_some() {
            graph.entry(module).or_default().insert(target);
        }
    }
    // Depth-first search, reporting the first cycle found.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("an import cycle: {}", cycle.join(" -> "));
        }
    }
}

/// The check itself: an upward import and a root path are caught.
#[test]
fn the_check_sees_what_it_must() {
    let text = "//! crate::report in a comment\nuse crate::report::Report;\n#[cfg(test)]\nmod tests {\n    use crate::import::Importer;\n}\n";
    let lines: Vec<&str> = code_lines(text).into_iter().map(|(_, l)| l).collect();
    assert_eq!(lines, ["use crate::report::Report;"]);
    assert!(layer_of("input") < layer_of("report"));
    assert_eq!(layer_of("Error"), None);
}
