//! How a stdio child is started, so that an org admin's choice of server
//! never runs with the server's privileges: through the launcher
//! (`switchboard sandbox-exec`, which sets resource limits and a Landlock
//! ruleset before it runs the command), as the operator's unprivileged user,
//! with a cleared environment, and with a private home and temporary
//! directory plus its organization's own package cache as the only places it
//! may write. The data directory, the key, the configuration and every
//! other child's files stay out of reach.

use std::path::{Path, PathBuf};

/// Resource limits of one child.
#[derive(Debug, Clone)]
pub struct ChildLimits {
    pub memory_mb: u64,
    /// Processes of the child's user (applied only with a dedicated user:
    /// the count covers every process of the user).
    pub processes: Option<u64>,
    pub open_files: u64,
    pub file_mb: u64,
}

/// The operator's confinement of stdio children.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// The launcher: this server's own binary (`sandbox-exec`).
    pub launcher: PathBuf,
    /// Apply the Landlock ruleset (off only when the operator says so).
    pub landlock: bool,
    /// Paths a child may not read: the data directory, the configuration
    /// file. The work directory is added to them.
    pub deny: Vec<PathBuf>,
    /// Where private directories are made (`orgs/<org>` and
    /// `children/<connection>-<n>`), traversable but not listable.
    pub work_dir: PathBuf,
    pub limits: ChildLimits,
    /// Children run as this uid and gid (a dedicated user).
    pub run_as: Option<(u32, u32)>,
    /// Why no child may start on this server (for example: the server runs
    /// as root and no dedicated user is set). Every start fails with it.
    pub refusal: Option<String>,
}

/// A child's own directories; its home is removed when it stops.
#[derive(Debug)]
pub struct PrivateDirs {
    home: PathBuf,
    cache: PathBuf,
}

impl Drop for PrivateDirs {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.home)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.home.display(), error = %e, "could not remove a stdio child's private directory");
        }
    }
}

/// Makes `dir` (and its parents) with `mode`, owned by `owner` when given.
fn make_dir(dir: &Path, mode: u32, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Keeps a path segment to `[A-Za-z0-9-]` (ids are UUIDs; this is a guard).
fn segment(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

impl Confinement {
    /// The directories of a new child of `connection_id` in `org_id`.
    pub fn prepare(&self, org_id: &str, connection_id: &str) -> Result<PrivateDirs, String> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fail = |what: &str, e: std::io::Error| {
            format!("could not prepare the child's private directories ({what}): {e}")
        };
        for parent in ["orgs", "children"] {
            make_dir(&self.work_dir.join(parent), 0o711, None).map_err(|e| fail(parent, e))?;
        }
        let cache = self.work_dir.join("orgs").join(segment(org_id));
        make_dir(&cache, 0o700, self.run_as).map_err(|e| fail("package cache", e))?;
        let home = self.work_dir.join("children").join(format!(
            "{}-{}-{n}",
            segment(connection_id),
            std::process::id()
        ));
        // A leftover of an earlier process with the same pid and counter.
        let _ = std::fs::remove_dir_all(&home);
        make_dir(&home, 0o700, self.run_as).map_err(|e| fail("home", e))?;
        let tmp = home.join("tmp");
        make_dir(&tmp, 0o700, self.run_as).map_err(|e| fail("tmp", e))?;
        Ok(PrivateDirs { home, cache })
    }

    /// The command that starts `command args` confined, with the child's
    /// own variables (home, temporary directory, caches) set; the caller
    /// adds the inherited and the connection's variables. `host_paths` are
    /// the paths the operator gave the connection (a directory to serve, a
    /// file to keep): the child may write there (in a file's directory).
    pub fn command(
        &self,
        dirs: &PrivateDirs,
        command: &str,
        args: &[String],
        host_paths: &[PathBuf],
    ) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.launcher);
        cmd.arg("sandbox-exec")
            .arg("--memory-mb")
            .arg(self.limits.memory_mb.to_string())
            .arg("--open-files")
            .arg(self.limits.open_files.to_string())
            .arg("--file-mb")
            .arg(self.limits.file_mb.to_string());
        if let Some(n) = self.limits.processes.filter(|_| self.run_as.is_some()) {
            cmd.arg("--processes").arg(n.to_string());
        }
        if self.landlock {
            for path in self.deny.iter().chain([&self.work_dir]) {
                cmd.arg("--deny").arg(path);
            }
            cmd.arg("--rw").arg(&dirs.home).arg("--rw").arg(&dirs.cache);
            let denied: Vec<PathBuf> = self
                .deny
                .iter()
                .chain([&self.work_dir])
                .filter_map(|p| std::fs::canonicalize(p).ok())
                .collect();
            for path in host_paths {
                let dir = if path.is_dir() {
                    Some(path.as_path())
                } else {
                    path.parent().filter(|p| p.is_dir())
                };
                let Some(dir) = dir.and_then(|d| std::fs::canonicalize(d).ok()) else {
                    continue;
                };
                // Not even the operator's setting opens the server's own files.
                if denied
                    .iter()
                    .any(|d| dir.starts_with(d) || d.starts_with(&dir))
                {
                    tracing::warn!(path = %dir.display(), "a host path of a stdio connection contains or is inside the server's own files: not granted");
                    continue;
                }
                cmd.arg("--rw").arg(dir);
            }
        } else {
            cmd.arg("--no-landlock");
        }
        cmd.arg("--").arg(command).args(args);
        cmd.env_clear().current_dir(&dirs.home);
        let tmp = dirs.home.join("tmp");
        cmd.env("HOME", &dirs.home)
            .env("TMPDIR", &tmp)
            .env("XDG_CACHE_HOME", dirs.cache.join("xdg"))
            .env("XDG_CONFIG_HOME", dirs.home.join(".config"))
            .env("XDG_DATA_HOME", dirs.home.join(".local/share"))
            .env("npm_config_cache", dirs.cache.join("npm"))
            .env("npm_config_update_notifier", "false")
            .env("UV_CACHE_DIR", dirs.cache.join("uv"))
            .env("PIP_CACHE_DIR", dirs.cache.join("pip"));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }
}
