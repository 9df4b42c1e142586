//! Conventions the code base keeps: every source file says what it is for,
//! the two migration folders match, and the Markdown links lead somewhere.

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
