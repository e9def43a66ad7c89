//! ctrtool's reset_cgroup: move the calling process into a whole set of cgroups at once,
//! one per hierarchy ("memory", "pids", "cpu,cpuacct", "systemd", "unified" ...), by writing
//! "0" (the writer itself) into each cgroup.procs. Every target is checked and opened before
//! the first move, and a failed move puts the process back where it was.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use super::layout::{self, Hierarchies, Hierarchy, Layout, Version};
use super::path;
use crate::sys::error::{Result, SysError};

/// The names a hierarchy answers to: its key ("cpu,cpuacct", "systemd", "unified"), each of
/// its controllers, and "name=X" for a named one. On a unified layout, the controllers the
/// v2 tree offers name it too, so a recipe written for v1 still works.
pub fn names_of(h: &Hierarchies, hier: &Hierarchy) -> Vec<String> {
    let mut out = vec![hier.key()];
    if hier.version == Version::V1 || h.layout == Layout::Unified {
        out.extend(hier.controllers.iter().cloned());
    }
    if let Some(n) = &hier.name {
        out.push(n.clone());
        out.push(format!("name={n}"));
    }
    out.dedup();
    out
}

/// Every name `reset_cgroup` accepts on this machine (for suggestions).
pub fn all_names(h: &Hierarchies) -> Vec<String> {
    let mut out: Vec<String> = h.list.iter().flat_map(|x| names_of(h, x)).collect();
    out.sort();
    out.dedup();
    out
}

/// The hierarchy a name means.
pub fn hierarchy_named<'h>(h: &'h Hierarchies, name: &str) -> Option<&'h Hierarchy> {
    // A v1 hierarchy binding the controller wins over the v2 tree.
    h.list
        .iter()
        .filter(|x| x.version == Version::V1)
        .chain(h.v2())
        .find(|x| names_of(h, x).iter().any(|n| n == name))
}

/// Move the calling process into `targets`: (hierarchy name, cgroup path) pairs. An
/// absolute path is from the hierarchy's root ("/" is the root cgroup); a relative one is
/// below the process's current cgroup there.
pub fn reset(h: &Hierarchies, targets: &[(String, String)]) -> Result<()> {
    const OP: &str = "reset_cgroup";
    if targets.is_empty() {
        return Err(SysError::invalid(OP, "cgroups", "no hierarchy given"));
    }
    let ms = h.memberships()?;
    // (hierarchy, absolute cgroup path, cgroup.procs) per target, checked before any move.
    let mut plan: Vec<(&Hierarchy, String, PathBuf)> = Vec::new();
    for (name, p) in targets {
        let hier = hierarchy_named(h, name).ok_or_else(|| {
            SysError::invalid(
                OP,
                name.clone(),
                format!(
                    "no cgroup hierarchy is called {name:?} here (layout {}; known: {})",
                    h.layout.name(),
                    all_names(h).join(", ")
                ),
            )
        })?;
        if p != "/" {
            path::check(OP, name, p)?;
        }
        let own = layout::own_path_in(&ms, hier).unwrap_or_else(|| "/".into());
        let cgpath = path::resolve(&own, p);
        if let Some((_, other, _)) = plan.iter().find(|(x, _, _)| *x == hier) {
            if *other != cgpath {
                return Err(SysError::invalid(
                    OP,
                    name.clone(),
                    format!(
                        "the {} hierarchy is named twice, with {other} and {cgpath}",
                        hier.key()
                    ),
                ));
            }
            continue;
        }
        let procs = hier.dir_of(&cgpath)?.join("cgroup.procs");
        plan.push((hier, cgpath, procs));
    }
    let mut files = Vec::new();
    for (_, _, procs) in &plan {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(procs)
            .map_err(|e| {
                SysError::io(OP, &e)
                    .path(procs)
                    .hint("the cgroup must exist: create it with cgroup(...) first")
            })?;
        files.push(f);
    }
    for (i, f) in files.iter_mut().enumerate() {
        if let Err(e) = move_self(f) {
            let err = SysError::io(OP, &e)
                .path(&plan[i].2)
                .detail("writing \"0\" (the shell itself)");
            // Back to where it was in the hierarchies it already moved in.
            for (hier, _, _) in &plan[..i] {
                if let Some(orig) = layout::own_path_in(&ms, hier) {
                    if let Ok(dir) = hier.dir_of(&orig) {
                        let _ = std::fs::write(dir.join("cgroup.procs"), "0");
                    }
                }
            }
            return Err(err);
        }
    }
    Ok(())
}

fn move_self(f: &mut File) -> std::io::Result<()> {
    f.write_all(b"0")
}
