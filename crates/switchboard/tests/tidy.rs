//! Conventions the code base keeps: every source file says what it is for,
//! the two migration folders match, and the Markdown links lead somewhere.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_source_file_starts_with_a_doc_comment() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for c in std::fs::read_dir(&crates).expect("crates dir").flatten() {
        rust_files(&c.path().join("src"), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading //! comment: {missing:?}"
    );
}

#[test]
fn both_migration_folders_have_the_same_migrations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let names = |d: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(d))
            .expect("migrations dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
}

/// Every Markdown file of the repository (README.md, ARCHITECTURE.md,
/// docs/, bench/, the crates' READMEs…), skipping build output, installed
/// packages, hidden directories and the local data directory.
fn markdown_files(dir: &Path, top: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            let skip = name.starts_with('.')
                || name == "target"
                || name == "node_modules"
                || (top && name == "data");
            if !skip {
                markdown_files(&p, false, out);
            }
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
}

/// The text outside fenced code blocks and inline code spans, line by line
/// (code is blanked, so line numbers stay right): `a[0](b)` in code is not a
/// link.
fn prose_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(f) = &fence {
            if trimmed.starts_with(f.as_str()) {
                fence = None;
            }
            out.push(String::new());
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            let ch = trimmed.chars().next().unwrap_or('`');
            let len = trimmed.chars().take_while(|&c| c == ch).count();
            fence = Some(std::iter::repeat_n(ch, len).collect());
            out.push(String::new());
            continue;
        }
        // Blank inline code: a run of N backticks up to the next run of N.
        let chars: Vec<char> = line.chars().collect();
        let mut kept = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '`' {
                let run = chars[i..].iter().take_while(|&&c| c == '`').count();
                let mut j = i + run;
                let mut close = None;
                while j < chars.len() {
                    if chars[j] == '`' {
                        let r = chars[j..].iter().take_while(|&&c| c == '`').count();
                        if r == run {
                            close = Some(j + r);
                            break;
                        }
                        j += r;
                    } else {
                        j += 1;
                    }
                }
                match close {
                    Some(end) => {
                        kept.push_str(&" ".repeat(end - i));
                        i = end;
                    }
                    None => {
                        kept.extend(&chars[i..i + run]);
                        i += run;
                    }
                }
            } else {
                kept.push(chars[i]);
                i += 1;
            }
        }
        out.push(kept);
    }
    out
}

/// The targets of the links on one line of prose: inline links and images
/// (`[text](target)`, `[text](<target> "title")`) and reference definitions
/// (`[label]: target`).
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let trimmed = line.trim_start();
    if trimmed.starts_with('[')
        && let Some(close) = trimmed.find("]:")
        && !trimmed[..close].contains("](")
    {
        let rest = trimmed[close + 2..].trim();
        if let Some(t) = rest.split_whitespace().next() {
            targets.push(t.trim_start_matches('<').trim_end_matches('>').to_owned());
        }
    }
    let mut from = 0;
    while let Some(pos) = line[from..].find("](") {
        let start = from + pos + 2;
        let mut depth = 1;
        let mut end = None;
        for (k, c) in line[start..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(start + k);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        let inner = line[start..end].trim();
        let target = if let Some(rest) = inner.strip_prefix('<') {
            rest.split('>').next().unwrap_or("")
        } else {
            inner.split_whitespace().next().unwrap_or("")
        };
        targets.push(target.to_owned());
        from = end + 1;
    }
    targets
}

/// True for a target with a URL scheme (`https:`, `http:`, `mailto:`…):
/// letters, digits, `+`, `-` or `.` before the first `:`, and no `/` before
/// it.
fn is_external(target: &str) -> bool {
    match target.find(':') {
        Some(i) if i > 0 => target[..i]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')),
        _ => false,
    }
}

#[test]
fn markdown_links_point_at_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root");
    let mut files = Vec::new();
    markdown_files(&root, true, &mut files);
    files.sort();
    for must in ["README.md", "ARCHITECTURE.md", "docs/design.md"] {
        assert!(
            files.contains(&root.join(must)),
            "{must} is missing (found {} Markdown files)",
            files.len()
        );
    }
    let mut broken = Vec::new();
    let mut outside = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if line.contains("../shared/") || line.contains("shared/DESIGN.md") {
                outside.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
        let dir = file.parent().unwrap_or(&root);
        for (n, line) in prose_lines(&text).iter().enumerate() {
            for target in link_targets(line) {
                if target.is_empty() || target.starts_with('#') || is_external(&target) {
                    continue;
                }
                let path = target.split(['#', '?']).next().unwrap_or("");
                let path = path.replace("%20", " ");
                let resolved = if let Some(abs) = path.strip_prefix('/') {
                    root.join(abs)
                } else {
                    dir.join(&path)
                };
                if !resolved.exists() {
                    broken.push(format!("{rel}:{}: ({target}) does not exist", n + 1));
                }
            }
        }
    }
    let mut report = String::new();
    if !outside.is_empty() {
        report.push_str(
            "Markdown that points outside the repository (a clone has no ../shared; the design \
             is docs/design.md):\n  ",
        );
        report.push_str(&outside.join("\n  "));
        report.push('\n');
    }
    if !broken.is_empty() {
        report.push_str(
            "broken relative links in Markdown (paths are relative to the file that links):\n  ",
        );
        report.push_str(&broken.join("\n  "));
        report.push('\n');
    }
    assert!(report.is_empty(), "{report}");
}

#[test]
fn the_link_scanner_finds_links_and_skips_code() {
    let text = "See [a](docs/a.md) and ![b](<img b.png> \"title\") or [c](x.md#part).\n\
                Not `[d](in-code.md)`, not [e](https://example.com) nor [f](#here).\n\
                ```sh\n\
                [g](in-fence.md)\n\
                ```\n\
                [ref]: ../other.md\n\
                Nested [h (x)](dir/(y).md).";
    let found: Vec<String> = prose_lines(text)
        .iter()
        .flat_map(|l| link_targets(l))
        .filter(|t| !t.starts_with('#') && !is_external(t))
        .collect();
    assert_eq!(
        found,
        [
            "docs/a.md",
            "img b.png",
            "x.md#part",
            "../other.md",
            "dir/(y).md"
        ]
    );
}

/// The tool table of `docs/mcp.md` is the declarations' own: regenerate it
/// with `UPDATE_DOCS=1 cargo test -p switchboard --test tidy`.
#[test]
fn the_tool_table_in_the_docs_is_the_declared_one() {
    use switchboard_capabilities::Provider;
    let tools = switchboard_capabilities::OrgTools::new(50).expect("the tools declare");
    let table = switchboard_capabilities::tool_table_markdown(&tools.capabilities());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/mcp.md");
    let doc = std::fs::read_to_string(&path).expect("docs/mcp.md");
    let begin = doc
        .find("<!-- tools:begin")
        .expect("the tools:begin marker");
    let begin = begin + doc[begin..].find("-->").expect("marker end") + 3;
    let end = doc
        .find("<!-- tools:end -->")
        .expect("the tools:end marker");
    let current = doc[begin..end].trim();
    if current != table.trim() {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let updated = format!("{}\n{}{}", &doc[..begin], table, &doc[end..]);
            std::fs::write(&path, updated).expect("write docs/mcp.md");
            return;
        }
        panic!(
            "docs/mcp.md's tool table differs from the declarations; run `UPDATE_DOCS=1 cargo test -p switchboard --test tidy`.\nexpected:\n{table}\nfound:\n{current}"
        );
    }
}

/// Each crate depends only on the layers below it (ARCHITECTURE.md): the
/// surfaces never reach storage, only the MCP crates speak MCP (rmcp), and
/// the core knows no HTTP.
#[test]
fn crates_depend_only_on_the_layers_below_them() {
    let allowed: &[(&str, &[&str])] = &[
        ("domain", &[]),
        ("storage", &["domain"]),
        ("vault", &[]),
        ("egress", &[]),
        ("search", &[]),
        ("core", &["domain", "storage", "vault"]),
        ("capabilities", &["core", "domain", "search"]),
        ("api", &["core", "domain"]),
        ("web", &["api", "core", "domain"]),
        ("oauth", &["api", "core", "domain", "egress"]),
        ("protocol", &["api", "capabilities", "core", "domain"]),
        (
            "gateway",
            &["api", "capabilities", "core", "domain", "egress"],
        ),
        ("test-upstream", &[]),
        (
            "switchboard",
            &[
                "api",
                "capabilities",
                "core",
                "domain",
                "egress",
                "gateway",
                "oauth",
                "protocol",
                "storage",
                "vault",
                "web",
            ],
        ),
    ];
    // Outside crates that belong to one layer only.
    let only: &[(&str, &[&str])] = &[
        ("rmcp", &["protocol", "gateway", "test-upstream"]),
        (
            "axum",
            &[
                "api",
                "web",
                "oauth",
                "protocol",
                "gateway",
                "switchboard",
                "test-upstream",
            ],
        ),
        ("sqlx", &["storage"]),
        ("reqwest", &["egress", "gateway", "oauth"]),
    ];
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&crates).expect("crates dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(manifest) = std::fs::read_to_string(entry.path().join("Cargo.toml")) else {
            continue;
        };
        let deps = dependencies(&manifest);
        let Some((_, ours)) = allowed.iter().find(|(c, _)| *c == name) else {
            problems.push(format!(
                "crate '{name}' has no place in the layering: add it here and to ARCHITECTURE.md"
            ));
            continue;
        };
        for dep in &deps {
            if let Some(layer) = dep.strip_prefix("switchboard-")
                && !ours.contains(&layer)
            {
                problems.push(format!(
                    "'{name}' depends on '{dep}', which is not a layer below it"
                ));
            }
            if let Some((_, users)) = only.iter().find(|(d, _)| d == dep)
                && !users.contains(&name.as_str())
            {
                problems.push(format!(
                    "'{name}' depends on '{dep}', which only {users:?} may use"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The names in a manifest's `[dependencies]` (not dev- or build-).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if !in_deps || line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((name, _)) = line.split_once('=') {
            // `name.workspace = true` names `name`.
            let name = name.trim();
            out.push(name.split('.').next().unwrap_or(name).to_owned());
        }
    }
    out
}

/// Every `/api/v1` route is described in the OpenAPI document: routes are
/// registered through utoipa (`routes!`), never with a bare `.route(` —
/// the only exception is the document itself.
#[test]
fn every_rest_route_is_in_the_openapi_document() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for c in std::fs::read_dir(&crates).expect("crates dir").flatten() {
        rust_files(&c.path().join("src"), &mut files);
    }
    let mut bare = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            let compact: String = line.split_whitespace().collect();
            if compact.contains(".route(\"/api/v1") && !compact.contains("/api/v1/openapi.json") {
                bare.push(format!("{}:{}", f.display(), i + 1));
            }
        }
    }
    // A route split over lines: `.route(` then the path on the next line.
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let compact: String = text.split_whitespace().collect();
        let mut rest = compact.as_str();
        while let Some(i) = rest.find(".route(\"/api/v1") {
            let tail = &rest[i..];
            if !tail.starts_with(".route(\"/api/v1/openapi.json") {
                bare.push(format!("{} (a bare /api/v1 route)", f.display()));
            }
            rest = &rest[i + 1..];
        }
    }
    bare.dedup();
    assert!(
        bare.is_empty(),
        "REST routes registered without their OpenAPI description (use utoipa_axum's routes!):\n{}",
        bare.join("\n")
    );
}

/// The core knows no HTTP: no header names, no status codes.
#[test]
fn the_core_knows_no_http() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/src");
    let mut files = Vec::new();
    rust_files(&core, &mut files);
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for needle in [
            "StatusCode",
            "HeaderName",
            "http::",
            "axum::",
            "_HEADER: &str",
        ] {
            if text.contains(needle) {
                found.push(format!("{} mentions {needle}", f.display()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
