//! `switchboard sandbox-exec`: the launcher every stdio child starts through.
//!
//! The gateway starts `switchboard sandbox-exec [limits] [--deny P]… [--rw P]…
//! -- COMMAND ARGS…` as the child's user with a cleared environment. Still
//! single-threaded and before anything of the child runs, the launcher
//! confines itself, then replaces itself with COMMAND:
//!
//! 1. resource limits: data segment (memory), processes of its user, open
//!    files, the largest file it may write, no core dumps;
//! 2. no new privileges (a setuid program cannot give them back);
//! 3. Landlock: read and execute everywhere except the denied paths (the data
//!    directory with the database and key, the configuration file, the
//!    directory of every child's private files), read and write only in its
//!    own directories and `/dev/null`, and no signals or abstract Unix sockets
//!    outside its own domain (so no `kill` of the server, and no
//!    `/proc/<server>/environ` or `mem`). Anything short of fully enforced
//!    refuses to run.
//!
//! It runs no async code and opens no database: it must stay one thread for
//! `restrict_self` to cover the whole process.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use clap::Parser;
use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use rustix::process::{Resource, Rlimit, setrlimit};

/// The Landlock ABI whose rights are asked for: V6 has every file-system
/// right this needs and the signal and abstract-socket scopes. Asking for
/// more than the kernel has would be refused (hard requirement), never
/// silently weakened.
const ABI_PINNED: ABI = ABI::V6;

/// The exit status when the launcher refuses or fails before exec (126:
/// "found but could not be run", as shells say).
const REFUSED: u8 = 126;

#[derive(Parser, Debug)]
#[command(
    name = "switchboard sandbox-exec",
    about = "Confine, then run a stdio MCP server (used by the gateway)"
)]
struct LaunchArgs {
    /// A path the child may neither read nor write (repeat).
    #[arg(long = "deny", value_name = "PATH")]
    deny: Vec<PathBuf>,
    /// A directory the child may read and write (repeat).
    #[arg(long = "rw", value_name = "DIR")]
    rw: Vec<PathBuf>,
    /// Largest data segment (heap), in MiB.
    #[arg(long, value_name = "MIB")]
    memory_mb: u64,
    /// Processes and threads of the child's user at most.
    #[arg(long, value_name = "N")]
    processes: Option<u64>,
    /// Open files at most.
    #[arg(long, value_name = "N")]
    open_files: u64,
    /// Largest file the child may write, in MiB.
    #[arg(long, value_name = "MIB")]
    file_mb: u64,
    /// Skip the Landlock ruleset (the operator set `gateway.stdio_confinement = off`).
    #[arg(long)]
    no_landlock: bool,
    /// The server to run, and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Why the launcher did not run the command.
#[derive(Debug, thiserror::Error)]
enum LaunchError {
    #[error("could not set the resource limit {what}: {source}")]
    Limit {
        what: &'static str,
        source: rustix::io::Errno,
    },
    #[error("could not set no_new_privs: {0}")]
    NoNewPrivs(rustix::io::Errno),
    #[error("the denied path {path} cannot be resolved: {source}")]
    Deny {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the private directory {path} cannot be opened: {source}")]
    Private {
        path: PathBuf,
        source: landlock::PathFdError,
    },
    #[error("Landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    #[error(
        "Landlock is not fully enforced on this kernel ({0}): refusing to run the child unconfined (gateway.stdio_confinement = off runs it without)"
    )]
    NotEnforced(String),
}

/// The entry point of `switchboard sandbox-exec`; returns only on failure.
pub fn main(args: impl Iterator<Item = OsString>) -> std::process::ExitCode {
    let args = match LaunchArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(REFUSED);
        }
    };
    if let Err(e) = confine(&args) {
        eprintln!("switchboard sandbox-exec: {e}");
        return std::process::ExitCode::from(REFUSED);
    }
    let Some((program, rest)) = args.command.split_first() else {
        return std::process::ExitCode::from(REFUSED);
    };
    let error = std::process::Command::new(program).args(rest).exec();
    eprintln!(
        "switchboard sandbox-exec: could not run {}: {error}",
        Path::new(program).display()
    );
    std::process::ExitCode::from(127)
}

/// Whether this kernel can enforce the launcher's ruleset (checked at start,
/// so a server on a kernel without Landlock says so once, clearly).
pub fn probe() -> Result<(), String> {
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI_PINNED))
        .and_then(|r| r.scope(Scope::from_all(ABI_PINNED)))
        .and_then(|r| r.create())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn limit(resource: Resource, what: &'static str, value: u64) -> Result<(), LaunchError> {
    setrlimit(
        resource,
        Rlimit {
            current: Some(value),
            maximum: Some(value),
        },
    )
    .map_err(|source| LaunchError::Limit { what, source })
}

fn confine(args: &LaunchArgs) -> Result<(), LaunchError> {
    const MIB: u64 = 1024 * 1024;
    // The data segment, not the address space: V8 reserves far more address
    // space than it uses (WebAssembly, and so Node's fetch, needs ~16 GiB).
    limit(Resource::Data, "data", args.memory_mb.saturating_mul(MIB))?;
    if let Some(n) = args.processes {
        limit(Resource::Nproc, "processes", n)?;
    }
    limit(Resource::Nofile, "open files", args.open_files)?;
    limit(
        Resource::Fsize,
        "file size",
        args.file_mb.saturating_mul(MIB),
    )?;
    limit(Resource::Core, "core dumps", 0)?;
    rustix::thread::set_no_new_privs(true).map_err(LaunchError::NoNewPrivs)?;
    if args.no_landlock {
        return Ok(());
    }
    let all = AccessFs::from_all(ABI_PINNED);
    let read = AccessFs::from_read(ABI_PINNED);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)?
        .scope(Scope::from_all(ABI_PINNED))?
        .create()?;
    for path in readable_except(&args.deny)? {
        // A path that vanished or cannot be opened gets no rule: denied.
        if let Some(rule) = rule_for(&path, read) {
            ruleset = ruleset.add_rule(rule)?;
        }
    }
    for dir in &args.rw {
        let fd = PathFd::new(dir).map_err(|source| LaunchError::Private {
            path: dir.clone(),
            source,
        })?;
        ruleset = ruleset.add_rule(PathBeneath::new(fd, all))?;
    }
    let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate;
    if let Some(rule) = rule_for(Path::new("/dev/null"), device) {
        ruleset = ruleset.add_rule(rule)?;
    }
    let status = ruleset.restrict_self()?;
    if status.ruleset != RulesetStatus::FullyEnforced || !status.no_new_privs {
        return Err(LaunchError::NotEnforced(format!("{:?}", status.ruleset)));
    }
    Ok(())
}

/// A rule for one path: a non-directory gets only the rights that apply to
/// files (directory rights on a file would make the ruleset partial).
fn rule_for(path: &Path, access: BitFlags<AccessFs>) -> Option<PathBeneath<PathFd>> {
    let is_dir = std::fs::metadata(path).ok()?.is_dir();
    let fd = PathFd::new(path).ok()?;
    let access = if is_dir {
        access
    } else {
        access & AccessFs::from_file(ABI_PINNED)
    };
    Some(PathBeneath::new(fd, access))
}

/// "Everything but `denied`" as Landlock can say it (it only grants): walk
/// from `/` down to each denied path and name every entry on the way that is
/// neither denied nor leads to a denied path. Symbolic links are skipped (a
/// rule follows them, so a link into a denied tree would grant it; following
/// a link needs no right of its own). Directories the child's user cannot
/// list get no rule below them: denied, which is the safe side.
fn readable_except(denied: &[PathBuf]) -> Result<Vec<PathBuf>, LaunchError> {
    if denied.is_empty() {
        return Ok(vec![PathBuf::from("/")]);
    }
    let mut resolved = BTreeSet::new();
    for path in denied {
        match std::fs::canonicalize(path) {
            Ok(p) => {
                resolved.insert(p);
            }
            // The child's user cannot even reach it (or it is not there):
            // nothing of it is readable, with or without a rule.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::NotFound
                ) => {}
            Err(source) => {
                return Err(LaunchError::Deny {
                    path: path.clone(),
                    source,
                });
            }
        }
    }
    if resolved.is_empty() {
        return Ok(vec![PathBuf::from("/")]);
    }
    Ok(siblings_outside(&resolved))
}

fn siblings_outside(denied: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
    let ancestors: BTreeSet<&Path> = denied.iter().flat_map(|d| d.ancestors().skip(1)).collect();
    let mut out = Vec::new();
    for dir in &ancestors {
        // Below a denied path nothing is granted, even on the way to another.
        if dir.ancestors().any(|a| denied.contains(a)) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if denied.contains(&path) || ancestors.contains(path.as_path()) {
                continue;
            }
            if entry.file_type().map_or(true, |t| t.is_symlink()) {
                continue;
            }
            out.push(path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_but_the_denied_tree_and_the_way_to_it_is_listed() {
        let root = tempfile::tempdir().expect("temp dir");
        let base = std::fs::canonicalize(root.path()).expect("canonical");
        for d in ["data/db", "data/key", "other", "deep/a/b"] {
            std::fs::create_dir_all(base.join(d)).expect("mkdir");
        }
        std::fs::write(base.join("file.txt"), "x").expect("write");
        std::os::unix::fs::symlink(base.join("data"), base.join("link-to-data")).expect("link");
        let denied: BTreeSet<PathBuf> = [base.join("data"), base.join("deep/a/b")].into();
        let listed: BTreeSet<PathBuf> = siblings_outside(&denied).into_iter().collect();
        assert!(listed.contains(&base.join("other")));
        assert!(listed.contains(&base.join("file.txt")));
        assert!(!listed.iter().any(|p| p.starts_with(base.join("data"))));
        assert!(
            !listed.contains(&base.join("link-to-data")),
            "a link into a denied tree"
        );
        // An ancestor of a denied path gets no rule of its own (it would
        // cover what it holds); its other entries do.
        assert!(!listed.contains(&base.join("deep")));
        assert!(!listed.contains(&base.join("deep/a")));
        assert!(!listed.iter().any(|p| p.starts_with(base.join("deep/a/b"))));
    }
}
