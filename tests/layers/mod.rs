//! The rooms of `src/` and the one-way rule between them, checked over the source text: a room
//! (a top-level module, a file or a folder under `src/`) may use only the rooms below it in
//! [`ROOMS`], and the files inside one room import each other without a cycle (a file may use its
//! own parent `mod.rs`, the room's face). Test modules are left out: a unit test may build its
//! inputs with anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The rooms from the top down. A room may use only the rooms after it.
const ROOMS: &[&str] = &[
    "main",
    "lib",
    "fuzzing",
    "config",
    "discover",
    "cli",
    "ingest",
    "copy",
    "tune",
    "gen",
    "probe",
    "run",
    "metrics",
    "report",
    "sink",
    "engine",
    "target",
    "pg",
    "sampler",
    "ddl",
    "http_client",
    "rows",
    "reject",
    "encode",
    "ledger",
    "stats",
    "failure",
    "sql",
    "usage",
    "conninfo",
    "progress_line",
    "figures",
    "tls",
    "pem",
    "process",
];

/// One `src/` file: its module path (`sink::http`) and its code without test modules.
struct SourceFile {
    module: Vec<String>,
    code: String,
}

fn source_files(dir: &Path, files: &mut Vec<(PathBuf, SourceFile)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, files);
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let relative = path.strip_prefix(&src).unwrap().with_extension("");
        let mut module: Vec<String> = relative
            .components()
            .map(|part| part.as_os_str().to_string_lossy().into_owned())
            .collect();
        if module.last().is_some_and(|last| last == "mod") {
            module.pop();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        files.push((
            path,
            SourceFile {
                module,
                code: without_tests(&text),
            },
        ));
    }
}

/// The text up to the first `#[cfg(test)]` (test modules close every file here).
fn without_tests(text: &str) -> String {
    let code: String = text
        .lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    code
}

/// Every module path a file names: `crate::a::b` and `super::c`, resolved from its own module.
fn named_paths(file: &SourceFile) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let code = &file.code;
    for (start, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let before = code[..start].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let path: String = code[start..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':' || *c == '{')
            .collect();
        let mut parts: Vec<&str> = path
            .trim_end_matches('{')
            .split("::")
            .filter(|p| !p.is_empty())
            .collect();
        let mut module = if parts.first() == Some(&"crate") {
            parts.remove(0);
            Vec::new()
        } else {
            file.module.clone()
        };
        while parts.first() == Some(&"super") {
            parts.remove(0);
            module.pop();
        }
        // `use super::{a, b}` from a folder's file: braces name items of `module` itself, or
        // child modules; both stay in the room.
        if path.ends_with('{') || path.ends_with("::") {
            for name in brace_names(&code[start + path.len()..]) {
                let mut named = module.clone();
                named.extend(parts.iter().map(|p| p.to_string()));
                named.push(name);
                paths.push(named);
            }
        }
        module.extend(parts.iter().map(|p| p.to_string()));
        paths.push(module);
    }
    paths
}

/// The first names of a `{…}` list, up to its closing brace.
fn brace_names(rest: &str) -> Vec<String> {
    let end = rest.find('}').unwrap_or(rest.len());
    rest[..end]
        .split(',')
        .filter_map(|part| part.trim().split("::").next().map(str::to_string))
        .filter(|name| !name.is_empty() && name != "self")
        .collect()
}

/// The file a module path lands in: its longest prefix that is a file of `modules`.
fn file_of(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
}

fn room_of(module: &[String]) -> String {
    module.first().cloned().unwrap_or_else(|| "lib".into())
}

#[test]
fn rooms_use_only_the_rooms_below_them_and_files_form_no_cycle() {
    let mut files = Vec::new();
    source_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(_, f)| f.module.clone()).collect();
    let rank = |room: &str| ROOMS.iter().position(|r| *r == room);
    let mut upward = Vec::new();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (path, file) in &files {
        let room = room_of(&file.module);
        let Some(own) = rank(&room) else {
            panic!("{} is in no room of ROOMS: add `{room}`", path.display());
        };
        for named in named_paths(file) {
            let Some(target) = file_of(&named, &modules) else {
                continue;
            };
            let target_room = room_of(&target);
            if target_room != room {
                let Some(theirs) = rank(&target_room) else {
                    panic!("{target_room} is in no room of ROOMS");
                };
                if theirs < own {
                    upward.push(format!(
                        "{} uses crate::{} (room `{target_room}` is above `{room}`)",
                        path.display(),
                        named.join("::")
                    ));
                }
            } else if target != file.module && !file.module.starts_with(&target) {
                edges.entry(file.module.clone()).or_default().insert(target);
            }
        }
    }
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
    let cycles = file_cycles(&edges);
    assert!(
        cycles.is_empty(),
        "import cycles between files:\n{}",
        cycles.join("\n")
    );
}

/// The cycles among the files of one room, each as `a -> b -> a`.
fn file_cycles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<String> {
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let names: Vec<String> = stack[at..]
                .iter()
                .chain([node])
                .map(|n| n.join("::"))
                .collect();
            cycles.push(names.join(" -> "));
            return;
        }
        if !done.insert(node.clone()) {
            return;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, stack, done, cycles);
        }
        stack.pop();
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, edges, &mut Vec::new(), &mut done, &mut cycles);
    }
    cycles
}
