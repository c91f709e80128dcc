//! Finding this process's cgroup directories and reading the limits on the way up to
//! the root of the mount, keeping the smallest.
//!
//! The fast path costs no extra system call: a process at `/a/b` is looked for at
//! `/sys/fs/cgroup/<controllers>/a/b` (v1) or `/sys/fs/cgroup[/unified]/a/b` (v2), and
//! when the whole path resolves there, that mount is the root of the hierarchy. The
//! walk notices a leaf that does not exist. Only a process at `/` needs a check (one
//! `stat`, sometimes a `readlink`): is the mount its container's own cgroup, the real
//! root, or the host's hierarchy seen from a cgroup namespace? `/proc/self/mountinfo`,
//! which can be long, is read only when the usual places do not resolve.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::parse::{self, Mount};
use super::read::{self, BUF};

/// A cgroup to read: its directory, and the mount it lies in (the walk stops there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy<'p> {
    pub(crate) mount: PathBuf,
    pub(crate) leaf: PathBuf,
    pub(crate) v2: bool,
    /// The mount is the root of the whole hierarchy. The kernel refuses limits on a
    /// root cgroup, so its files are not read, and no ancestor is hidden above it.
    pub(crate) mount_is_root: bool,
    /// The leaf directory was found to exist. When it was not checked, a walk that
    /// finds nothing at the leaf checks it (saving a `stat` in the common case).
    pub(crate) verified: bool,
    /// The v1 controller (`cpu`, `memory`), or `None` for v2.
    controller: Option<&'p str>,
    /// The process's cgroup path in this hierarchy, from `/proc/self/cgroup`.
    path: &'p str,
}

impl Hierarchy<'_> {
    /// Whether the leaf was put under a whole hierarchy's root by the usual layout,
    /// unchecked, for a process not at the root.
    pub(crate) fn fast_at_root(&self) -> bool {
        self.mount_is_root && !self.verified && self.path != "/"
    }
}

/// The most cgroup directories the `/..` search looks at before giving up: each is a
/// directory read on the way to the first response.
const SEARCH_LIMIT: usize = 512;

/// `/proc/self/ns/cgroup` in the kernel's initial cgroup namespace: its inode number
/// is fixed (`CGROUP_NS_INIT_INO`, 0xEFFFFFFB). `readlink` costs a quarter of `stat`.
const INITIAL_CGROUP_NS: &str = "cgroup:[4026531835]";

pub(crate) struct Resolver<'a> {
    root: &'a Path,
    /// `/proc/self/mountinfo`'s cgroup mounts once read, or why it could not be.
    mounts: Option<Result<Vec<Mount>, String>>,
    /// Whether this process is in the initial cgroup namespace, once asked.
    initial_namespace: Option<bool>,
    /// The v2 hierarchy resolved for the CPU, kept for the memory: the same
    /// hierarchy, and its `stat`s (a `readlink` too, at a root) not made twice.
    v2: Option<(String, Hierarchy<'static>)>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(root: &'a Path) -> Self {
        Resolver {
            root,
            mounts: None,
            initial_namespace: None,
            v2: None,
        }
    }

    /// The v1 hierarchy that holds `controller`, listed as `controllers` in
    /// `/proc/self/cgroup`, for a process at `path` in it.
    pub(crate) fn v1<'p>(
        &mut self,
        controller: &'p str,
        controllers: &str,
        path: &'p str,
    ) -> Result<Hierarchy<'p>, String> {
        self.resolve(&[controllers, controller], Some(controller), path)
    }

    /// The v2 hierarchy, for a process at `path` in it; `hybrid` when v1 hierarchies
    /// are mounted too (v2 then usually lives at `/sys/fs/cgroup/unified`).
    pub(crate) fn v2<'p>(&mut self, path: &'p str, hybrid: bool) -> Result<Hierarchy<'p>, String> {
        if let Some((kept_path, kept)) = &self.v2
            && kept_path == path
        {
            let mut h: Hierarchy<'p> = kept.clone();
            h.path = path;
            return Ok(h);
        }
        let h = self.resolve(&[if hybrid { "unified" } else { "" }], None, path)?;
        let kept = Hierarchy {
            mount: h.mount.clone(),
            leaf: h.leaf.clone(),
            v2: h.v2,
            mount_is_root: h.mount_is_root,
            verified: h.verified,
            controller: None,
            path: "",
        };
        self.v2 = Some((path.to_owned(), kept));
        Ok(h)
    }

    /// `candidates` name the usual mount points under `/sys/fs/cgroup`, the likeliest
    /// first.
    fn resolve<'p>(
        &mut self,
        candidates: &[&str],
        controller: Option<&'p str>,
        path: &'p str,
    ) -> Result<Hierarchy<'p>, String> {
        let v2 = controller.is_none();
        // A process above its cgroup namespace's root (one that entered the namespace
        // of another) sees its cgroup as `/..`: joined onto the mount, that is a
        // directory whose limits are not this process's.
        if path.split('/').any(|step| step == "..") {
            return Err(format!(
                "cgroup path {path} lies outside this process's cgroup namespace, whose limits it cannot see"
            ));
        }
        let hierarchy =
            |mount: PathBuf, leaf: PathBuf, mount_is_root: bool, verified: bool| Hierarchy {
                mount,
                leaf,
                v2,
                mount_is_root,
                verified,
                controller,
                path,
            };
        let usual = |name: &str| {
            let mut mount = read::under(self.root, "/sys/fs/cgroup");
            if !name.is_empty() {
                mount.push(name);
            }
            mount
        };
        if path != "/" {
            // Fast path; `walk` reports `Missed::Leaf` if the leaf is not there. The
            // mount is the hierarchy's root, whose limits are none, unless it shows
            // the mark of a cgroup below the root: in a private cgroup namespace
            // (systemd or a supervisor inside a container) the mount is the
            // container's own cgroup, where its limits are. One `stat`: v2's
            // `cgroup.type` is in every cgroup but the root, v1's `release_agent` only
            // in the root.
            let mount = usual(candidates[0]);
            let leaf = read::under(&mount, path);
            let mount_is_root = if v2 {
                !read::exists(&mount.join("cgroup.type"))
            } else {
                read::exists(&mount.join("release_agent"))
            };
            return Ok(hierarchy(mount, leaf, mount_is_root, false));
        }
        for name in candidates {
            let mount = usual(name);
            match marker(&mount, v2) {
                Some(false) => return Ok(hierarchy(mount.clone(), mount, false, true)),
                // At the root of a hierarchy: the real root in the initial namespace,
                // where the kernel allows no limits, or a namespace that hides where.
                Some(true) if self.in_initial_cgroup_namespace() => {
                    return Ok(hierarchy(mount.clone(), mount, true, true));
                }
                Some(true) => break,
                None => continue,
            }
        }
        let h = hierarchy(PathBuf::new(), PathBuf::new(), false, false);
        self.via_mountinfo(&h)
    }

    /// Resolves `h` from `/proc/self/mountinfo`: for a leaf that was not where the
    /// usual layout put it, or a process at `/` of a hierarchy mounted above its
    /// cgroup namespace.
    pub(crate) fn via_mountinfo<'p>(&mut self, h: &Hierarchy<'p>) -> Result<Hierarchy<'p>, String> {
        let path = h.path;
        let controller = h.controller;
        let (mount_point, mount_root) = self
            .mounts()?
            .iter()
            .find(|m| match controller {
                Some(c) => m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == c),
                None => m.fs_type == "cgroup2",
            })
            .map(|m| (m.mount_point.clone(), m.root.clone()))
            .ok_or_else(|| match controller {
                Some(c) => format!("no cgroup v1 mount has the {c} controller"),
                None => "no cgroup2 mount found".to_owned(),
            })?;
        let mount = read::under(self.root, &mount_point);
        let found = |leaf: PathBuf| Hierarchy {
            mount_is_root: marker(&mount, h.v2) == Some(true),
            mount: mount.clone(),
            leaf,
            verified: true,
            ..h.clone()
        };
        if mount_root == "/" && path == "/" {
            return Ok(found(mount.clone()));
        }
        if let Some(ups) = parent_steps(&mount_root) {
            return search(&mount, ups, path).map(found).map_err(|gave_up| {
                if gave_up {
                    format!(
                        "cgroup path {path} lies in a cgroup namespace; the search for the cgroup {ups} level(s) below {mount_point} that holds this process gave up after {SEARCH_LIMIT} cgroups"
                    )
                } else {
                    format!(
                        "cgroup path {path} lies in a cgroup namespace and no cgroup {ups} level(s) below {mount_point} holds this process"
                    )
                }
            });
        }
        let relative = path
            .strip_prefix(mount_root.trim_end_matches('/'))
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .ok_or_else(|| {
                format!(
                    "cgroup path {path} is outside the mount root {mount_root} of {mount_point}"
                )
            })?;
        let leaf = read::under(&mount, relative);
        if read::is_dir(&leaf) {
            Ok(found(leaf))
        } else {
            Err(format!("{} does not exist", leaf.display()))
        }
    }

    /// Whether this process is in the kernel's initial cgroup namespace (read once;
    /// a link that cannot be read says no, and the slower way is taken).
    pub(crate) fn in_initial_cgroup_namespace(&mut self) -> bool {
        let root = self.root;
        *self.initial_namespace.get_or_insert_with(|| {
            std::fs::read_link(read::under(root, "/proc/self/ns/cgroup"))
                .is_ok_and(|link| link.as_os_str() == INITIAL_CGROUP_NS)
        })
    }

    /// The cgroup mounts, or why `/proc/self/mountinfo` could not be read (said in
    /// the reason, not taken for a file without cgroup mounts).
    fn mounts(&mut self) -> Result<&[Mount], String> {
        let root = self.root;
        let file = read::under(root, "/proc/self/mountinfo");
        let mounts = self.mounts.get_or_insert_with(|| {
            read::read_all(&file)
                .map(|text| {
                    // Only cgroup mounts are looked at: the others (most lines of a
                    // container's mountinfo) are not parsed into strings.
                    let cgroup = |line: &&str| {
                        line.split_once(" - ").is_some_and(|(_, fs)| {
                            fs.starts_with("cgroup ") || fs.starts_with("cgroup2 ")
                        })
                    };
                    text.lines()
                        .filter(cgroup)
                        .filter_map(parse::mountinfo_line)
                        .collect()
                })
                .map_err(|e| format!("cannot read {}: {e}", file.display()))
        });
        match mounts {
            Ok(mounts) => Ok(mounts),
            Err(why) => Err(why.clone()),
        }
    }
}

/// Whether `dir` is the root of its hierarchy (`Some(true)`), another cgroup
/// (`Some(false)`), or no cgroup directory at all (`None`). Only the root of a v1
/// hierarchy has `release_agent`, and every v1 cgroup `cgroup.procs` (a bare
/// directory where the hierarchy is mounted elsewhere is none: read as a cgroup, its
/// missing limit was "no limit", not looked for in mountinfo); every non-root v2
/// cgroup has `cgroup.type`, the root only `cgroup.controllers`.
fn marker(dir: &Path, v2: bool) -> Option<bool> {
    if v2 {
        if read::exists(&dir.join("cgroup.type")) {
            Some(false)
        } else {
            read::exists(&dir.join("cgroup.controllers")).then_some(true)
        }
    } else if read::exists(&dir.join("release_agent")) {
        Some(true)
    } else {
        read::exists(&dir.join("cgroup.procs")).then_some(false)
    }
}

/// `/../..` gives 2; any other shape gives `None`.
fn parent_steps(mount_root: &str) -> Option<usize> {
    let steps = mount_root.strip_prefix('/')?.split('/');
    let mut n = 0;
    for s in steps {
        if s != ".." {
            return None;
        }
        n += 1;
    }
    (n > 0).then_some(n)
}

/// Finds the directory `depth` levels below `mount` whose `path` holds this process.
/// `Err(true)` when it gave up after [`SEARCH_LIMIT`] directories, `Err(false)` when
/// none holds it.
fn search(mount: &Path, depth: usize, path: &str) -> Result<PathBuf, bool> {
    let pid = std::process::id().to_string();
    let mut level = vec![mount.to_path_buf()];
    let mut seen = 0;
    for _ in 0..depth {
        let mut next = Vec::new();
        for dir in &level {
            // One that cannot be read is one fewer place to look, not the end.
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                // Control files are most entries: only directories count.
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    seen += 1;
                    if seen > SEARCH_LIMIT {
                        return Err(true);
                    }
                    next.push(entry.path());
                }
            }
        }
        level = next;
    }
    level
        .into_iter()
        .find_map(|ns_root| {
            let leaf = read::under(&ns_root, path);
            // Read to its end: the kernel hands out a long list in pieces, some shorter
            // than asked for before the end.
            let procs = read::read_all(&leaf.join("cgroup.procs")).ok()?;
            procs.lines().any(|l| l.trim() == pid).then_some(leaf)
        })
        .ok_or(false)
}

/// Why a walk found no figure.
#[derive(Debug)]
pub(crate) enum Missed {
    /// The leaf directory does not exist where the usual layout put it.
    Leaf,
    /// A file could not be read or parsed; the text says which and why.
    Bad(String),
}

/// The smallest value found on the way from the leaf up to the mount, and the file
/// that held it; `None` when no level sets a limit. A file that is missing at a level
/// is skipped (that level sets no limit).
pub(crate) type Walk<T> = Result<Option<(T, PathBuf)>, Missed>;

/// The directories from the leaf up to the mount (only the leaf when it lies outside
/// the mount), leaving out a mount that is the root. Byte slices of the leaf's path,
/// not `Path::ancestors`: comparing components was a measurable part of the probe.
fn levels<'h>(h: &'h Hierarchy<'_>) -> impl Iterator<Item = &'h Path> {
    let leaf = trim_slashes(h.leaf.as_os_str().as_bytes());
    let mount = trim_slashes(h.mount.as_os_str().as_bytes());
    let inside = leaf.starts_with(mount)
        && (leaf.len() == mount.len() || leaf[mount.len()] == b'/' || mount.ends_with(b"/"));
    let mut next = Some(leaf);
    std::iter::from_fn(move || {
        let dir = next?;
        next = match dir.iter().rposition(|&b| b == b'/') {
            Some(slash) if inside && dir.len() > mount.len() => {
                Some(trim_slashes(&dir[..slash.max(1)])).filter(|up| up.len() >= mount.len())
            }
            _ => None,
        };
        Some(dir)
    })
    .filter(move |dir| !(h.mount_is_root && *dir == mount))
    .map(|dir| Path::new(OsStr::from_bytes(dir)))
}

/// `path` without trailing slashes, except a lone `/`.
fn trim_slashes(path: &[u8]) -> &[u8] {
    let mut end = path.len();
    while end > 1 && path[end - 1] == b'/' {
        end -= 1;
    }
    &path[..end]
}

fn read_opt<'b>(path: &Path, buf: &'b mut [u8; BUF]) -> Result<Option<&'b str>, Missed> {
    match read::read_small(path, buf) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Missed::Bad(format!("cannot read {}: {e}", path.display()))),
    }
}

fn bad(file: &Path, e: parse::Bad) -> Missed {
    Missed::Bad(format!("{}: {e}", file.display()))
}

fn keep_min<T: PartialOrd>(slot: &mut Option<(T, PathBuf)>, value: T, file: &Path) {
    if slot.as_ref().is_none_or(|(v, _)| value < *v) {
        *slot = Some((value, file.to_path_buf()));
    }
}

/// Sets `file` to `dir/name`, reusing its buffer (allocated at the first file).
fn set_file<'f>(file: &'f mut PathBuf, dir: &Path, name: &str) -> &'f Path {
    file.as_mut_os_string().clear();
    file.reserve(dir.as_os_str().len() + name.len() + 1);
    file.push(dir);
    file.push(name);
    file
}

/// Runs `per_level` from the leaf up; `per_level` says whether it found any file.
fn walk<T>(
    h: &Hierarchy<'_>,
    mut per_level: impl FnMut(&Path, &mut Option<(T, PathBuf)>) -> Result<bool, Missed>,
) -> Walk<T> {
    let mut best = None;
    for dir in levels(h) {
        let found_any = per_level(dir, &mut best)?;
        if !found_any && dir == h.leaf && !h.verified && !read::is_dir(dir) {
            return Err(Missed::Leaf);
        }
    }
    Ok(best)
}

/// The CPU quota in cores.
pub(crate) fn cpu(h: &Hierarchy<'_>) -> Walk<f64> {
    let mut buf = [0u8; BUF];
    let mut file = PathBuf::new();
    walk(h, |dir, best| {
        if h.v2 {
            let file = set_file(&mut file, dir, "cpu.max");
            let Some(text) = read_opt(file, &mut buf)? else {
                return Ok(false);
            };
            if let Some(q) = parse::cpu_max(text).map_err(|e| bad(file, e))? {
                keep_min(best, q, file);
            }
            return Ok(true);
        }
        let Some(quota) = read_opt(set_file(&mut file, dir, "cpu.cfs_quota_us"), &mut buf)? else {
            return Ok(false);
        };
        if quota.trim_ascii() == "-1" {
            return Ok(true);
        }
        let quota = quota.to_owned();
        let period_file = dir.join("cpu.cfs_period_us");
        let period = read_opt(&period_file, &mut buf)?
            .ok_or_else(|| Missed::Bad(format!("{} is missing", period_file.display())))?;
        let period = parse::cfs_period(period).map_err(|e| bad(&period_file, e))?;
        if let Some(q) = parse::cfs_quota(&quota, period).map_err(|e| bad(&file, e))? {
            keep_min(best, q, &file);
        }
        Ok(true)
    })
}

/// The smallest task limit (`pids.max`, threads included) from the leaf up, of those
/// that hold a number.
pub(crate) fn pids(h: &Hierarchy<'_>) -> Walk<u64> {
    let mut buf = [0u8; BUF];
    let mut file = PathBuf::new();
    walk(h, |dir, best| {
        let file = set_file(&mut file, dir, "pids.max");
        let Some(text) = read_opt(file, &mut buf)? else {
            return Ok(false);
        };
        if let Ok(tasks) = text.trim().parse::<u64>() {
            keep_min(best, tasks, file);
        }
        Ok(true)
    })
}

/// The memory limit in bytes: v2 `memory.max` and `memory.high` at each level; v1
/// `memory.limit_in_bytes` at each level, and `hierarchical_memory_limit` from the
/// leaf's `memory.stat` when the mount hides ancestors that may hold a limit.
pub(crate) fn memory(h: &Hierarchy<'_>) -> Walk<u64> {
    let mut buf = [0u8; BUF];
    let mut file = PathBuf::new();
    let files: &[&str] = if h.v2 {
        &["memory.max", "memory.high"]
    } else {
        &["memory.limit_in_bytes"]
    };
    let mut best = walk(h, |dir, best| {
        let mut found_any = false;
        for name in files {
            let file = set_file(&mut file, dir, name);
            if let Some(text) = read_opt(file, &mut buf)? {
                found_any = true;
                if let Some(bytes) = parse::memory_limit(text).map_err(|e| bad(file, e))? {
                    keep_min(best, bytes, file);
                }
            }
        }
        Ok(found_any)
    })?;
    if !h.v2 && !h.mount_is_root {
        let file = h.leaf.join("memory.stat");
        if let Some(text) = read_opt(&file, &mut buf)? {
            match parse::stat_value(text, "hierarchical_memory_limit") {
                Some(Ok(Some(bytes))) => keep_min(&mut best, bytes, &file),
                Some(Ok(None)) | None => {}
                Some(Err(e)) => return Err(bad(&file, e)),
            }
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU's and the memory's v2 hierarchy are one: resolved once, the second
    /// asks the filesystem nothing (here, it is gone by then).
    #[test]
    fn the_v2_hierarchy_is_resolved_once() {
        let tree = coldstart_test_support::temp_dir("v2-once");
        std::fs::create_dir_all(tree.join("sys/fs/cgroup")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(tree.join("sys/fs/cgroup/cgroup.type"), "domain\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut resolver = Resolver::new(&tree);
        let first = resolver.v2("/", false).unwrap_or_else(|e| panic!("{e}"));
        assert!(first.verified && !first.mount_is_root, "{first:?}");
        std::fs::remove_dir_all(tree.join("sys")).unwrap_or_else(|e| panic!("{e}"));
        let second = resolver.v2("/", false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(second, first);
        // Another path is resolved again: with the tree gone, the filesystem no longer
        // verifies the mount (a hit on the first's entry would have carried `verified`
        // and the first's leaf).
        let other = resolver
            .v2("/other", false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !other.verified && other.leaf.ends_with("other"),
            "{other:?}"
        );
    }

    #[test]
    fn parent_steps_shapes() {
        assert_eq!(parent_steps("/.."), Some(1));
        assert_eq!(parent_steps("/../.."), Some(2));
        assert_eq!(parent_steps("/"), None);
        assert_eq!(parent_steps("/../x"), None);
        assert_eq!(parent_steps("/docker/abc"), None);
    }

    #[test]
    fn levels_stop_at_the_mount() {
        let mut h = Hierarchy {
            mount: PathBuf::from("/m"),
            leaf: PathBuf::from("/m/a/b"),
            v2: true,
            mount_is_root: false,
            verified: true,
            controller: None,
            path: "/a/b",
        };
        let got: Vec<_> = levels(&h).collect();
        assert_eq!(
            got,
            [Path::new("/m/a/b"), Path::new("/m/a"), Path::new("/m")]
        );
        h.mount_is_root = true;
        let got: Vec<_> = levels(&h).collect();
        assert_eq!(
            got,
            [Path::new("/m/a/b"), Path::new("/m/a")],
            "the root sets no limit"
        );
    }
}
