//! The layer order of ARCHITECTURE.md holds: every `crate::` path in the library's code (a `use crate::` line or a
//! path in an expression) names a module of a lower layer, or of the file's own row of the table; two modules of
//! one layer do not use each other. Root re-exports (`crate::Error`, `crate::init_ffmpeg`, ...) count as the
//! module they come from. The binary (`src/main.rs`, `src/cli/`) uses the public API only and is not checked. No
//! dependencies: the table and the sources are read as text.

use std::collections::BTreeMap;
use std::path::Path;

#[path = "common/source.rs"]
mod source;

use source::{code_only, sources};

/// The rows of the layer table: layer number and module paths (`io`, `backend::factory`, ...).
fn layer_table(architecture: &str) -> Vec<(usize, Vec<String>)> {
    let section = architecture
        .split("\n## ")
        .find(|s| s.starts_with("Layers"))
        .expect("ARCHITECTURE.md has a '## Layers' section");
    let mut rows = Vec::new();
    for line in section.lines() {
        // | layer | module | owns | notes |
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[0].is_empty() {
            continue;
        }
        let Ok(layer) = cells[1].parse::<usize>() else {
            continue;
        };
        let modules: Vec<String> = cells[2]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|m| {
                m.trim_start_matches("src/")
                    .trim_end_matches('/')
                    .trim_end_matches(".rs")
                    .replace('/', "::")
            })
            .collect();
        assert!(!modules.is_empty(), "layer {layer} names no module: {line}");
        rows.push((layer, modules));
    }
    rows
}

/// `src/a/b.rs` -> `a::b`, `src/a/mod.rs` -> `a`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Every path reached through `crate::` in `code`; a group `crate::{a::X, b::{Y, Z}}` gives one path per entry,
/// cut at its first brace.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '$') {
            continue;
        }
        if rest.starts_with('{') {
            let mut depth = 0;
            let mut entry = String::new();
            for c in rest.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        if depth == 1 {
                            continue;
                        }
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        found.push(std::mem::take(&mut entry));
                        continue;
                    }
                    _ => {}
                }
                entry.push(c);
            }
            found.push(entry);
        } else {
            found.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect(),
            );
        }
    }
    found
        .into_iter()
        .map(|p| {
            let p: String = p.split_whitespace().collect();
            p.split('{')
                .next()
                .unwrap_or("")
                .trim_end_matches("::")
                .to_string()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// Names re-exported at the crate root (`pub use a::b::{X, Y};`, `pub(crate) use a::c;`) -> the full path they
/// stand for (`a::b::X`, `a::c`).
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for stmt in code_only(lib).split(';') {
        let stmt = stmt.trim();
        let Some(body) = stmt
            .strip_prefix("pub use ")
            .or_else(|| stmt.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        let body: String = body.split_whitespace().collect();
        match body.split_once("::{") {
            Some((module, names)) => {
                for name in names
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|n| !n.is_empty())
                {
                    let (key, full) = match name {
                        "self" => (
                            module.rsplit("::").next().unwrap_or(module),
                            module.to_string(),
                        ),
                        _ => (name, format!("{module}::{name}")),
                    };
                    map.insert(key.to_string(), full);
                }
            }
            None => {
                let name = body.rsplit("::").next().unwrap_or(&body).to_string();
                map.insert(name, body);
            }
        }
    }
    map
}

/// The row (index into `rows`) a module path belongs to: the longest module of the table it starts with.
fn row_of(rows: &[(usize, Vec<String>)], path: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (r, (_, modules)) in rows.iter().enumerate() {
        for m in modules {
            let hit = path == m || path.starts_with(&format!("{m}::"));
            if hit && best.is_none_or(|(_, len)| m.len() > len) {
                best = Some((r, m.len()));
            }
        }
    }
    best.map(|(r, _)| r)
}

#[test]
fn imports_only_point_down_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root.join("src/lib.rs").is_file() {
        // A test binary carried to another machine (scripts/gpu.sh) has no source tree to read.
        eprintln!("skipped: no source tree at {}", root.display());
        return;
    }
    let rows = layer_table(&std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap());
    assert!(rows.len() > 5, "no layer table in ARCHITECTURE.md");
    let src = root.join("src");
    let reexports = root_reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" || module == "main" || module == "cli" || module.starts_with("cli::") {
            continue;
        }
        let Some(own) = row_of(&rows, &module) else {
            violations.push(format!(
                "{}: module `{module}` is in no row of the layer table",
                file.display()
            ));
            continue;
        };
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        for path in crate_paths(&code) {
            let (first, tail) = path.split_once("::").unwrap_or((&path, ""));
            let target = match reexports.get(first) {
                Some(full) if tail.is_empty() => full.clone(),
                Some(full) => format!("{full}::{tail}"),
                None => path.clone(),
            };
            checked += 1;
            let Some(row) = row_of(&rows, &target) else {
                violations.push(format!(
                    "{}: `crate::{path}` is in no row of the layer table",
                    file.display()
                ));
                continue;
            };
            if row != own && rows[row].0 >= rows[own].0 {
                violations.push(format!(
                    "{}: `{module}` (layer {}) uses `crate::{path}` (layer {})",
                    file.display(),
                    rows[own].0,
                    rows[row].0
                ));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} crate paths found: is the reader broken?"
    );
    assert!(
        violations.is_empty(),
        "imports against the layer order of ARCHITECTURE.md:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_reads_what_it_checks() {
    let paths = crate_paths(
        "use crate::io::demux::{Demuxer, Packet};\nuse crate::{error::Error, frame::{color::X}};\n\
         let x = crate::nvdec::is_available(); $crate::no",
    );
    assert_eq!(
        paths,
        ["io::demux", "error::Error", "frame", "nvdec::is_available"]
    );
    let code = code_only("a // crate::x\n/* crate::y */ \"crate::z\" '\"' b");
    assert!(
        !code.contains("crate::") && code.starts_with('a') && code.ends_with('b'),
        "{code}"
    );
    let rows = layer_table(
        "x\n## Layers\n\n| layer | module | owns |\n| --- | --- | --- |\n| 0 | `src/error.rs` | a |\n\
         | 1 | `src/io/` | b |\n| 2 | `src/backend/` | c |\n| 3 | `src/cpu/` | d |\n| 3 | `src/nvdec/` | d |\n\
         | 4 | `src/backend/factory.rs` | e |\n| root | `src/lib.rs` | f |\n\n## Next\n| 9 | `x` | y |\n",
    );
    assert_eq!(rows.len(), 6);
    assert_eq!(row_of(&rows, "backend::factory"), Some(5));
    assert_eq!(row_of(&rows, "backend"), Some(2));
    assert_eq!(row_of(&rows, "nvdec::session"), Some(4));
    assert_eq!(row_of(&rows, "error"), Some(0));
    assert_eq!(row_of(&rows, "frame"), None);
    let re = root_reexports(
        "pub use io::demux::{Demuxer, Packet};\npub use data::synth;\n/// x\npub(crate) use io::demux::init_ffmpeg;",
    );
    assert_eq!(re["Demuxer"], "io::demux::Demuxer");
    assert_eq!(re["synth"], "data::synth");
    assert_eq!(re["init_ffmpeg"], "io::demux::init_ffmpeg");
}
