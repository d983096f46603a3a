//! The process an `exec` starts, worked out as runc does: either a whole
//! Process JSON (`--process`), whose missing capabilities, rlimits, labels,
//! no_new_privs and CPU affinity are the container's, or the container's
//! own process with the command line's changes.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, LinuxCapabilities, Process};

use crate::error::{Error, Result};

/// Where an exec'd process comes from.
pub enum ExecProcess {
    /// `--process FILE`: a whole Process (see [`read_process_file`]).
    Spec(Box<Process>),
    /// The command line: the container's process with these changes.
    Args(ProcessOverrides),
}

/// What `exec`'s flags change in the container's process.
#[derive(Default, Debug)]
pub struct ProcessOverrides {
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// Appended to the container's environment.
    pub env: Vec<String>,
    /// `--user uid[:gid]`.
    pub user: Option<(u32, Option<u32>)>,
    /// Appended to the container's additional gids.
    pub additional_gids: Vec<u32>,
    /// Added to the bounding, effective and permitted sets (never to the
    /// inheritable or ambient ones: CVE-2022-29162).
    pub caps: Vec<String>,
    pub no_new_privs: Option<bool>,
    pub process_label: Option<String>,
    pub apparmor: Option<String>,
    pub tty: bool,
}

/// Reads a `--process` file. As with runc, `user` and `cwd` may be left
/// out (a zero user; an empty cwd is then refused by [`resolve`]).
pub fn read_process_file(path: &Path) -> Result<Process> {
    let text = std::fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    let mut v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| Error::Process { field: path.display().to_string(), reason: e.to_string() })?;
    let obj = v.as_object_mut().ok_or_else(|| Error::Process { field: path.display().to_string(), reason: "not a JSON object".into() })?;
    obj.entry("user").or_insert_with(|| serde_json::json!({}));
    obj.entry("cwd").or_insert_with(|| serde_json::json!(""));
    serde_json::from_value(v).map_err(|e| Error::Process { field: path.display().to_string(), reason: e.to_string() })
}

/// The process to start, from `src` and the container's process `base`.
pub fn resolve(base: &Process, src: &ExecProcess) -> Result<Process> {
    let p = match src {
        ExecProcess::Spec(p) => with_defaults(p, base),
        ExecProcess::Args(o) => with_overrides(base, o)?,
    };
    validate(&p)?;
    Ok(p)
}

/// A `--process` JSON: what it leaves out is the container's.
fn with_defaults(p: &Process, base: &Process) -> Process {
    let mut p = p.clone();
    if p.capabilities().is_none() {
        p.set_capabilities(base.capabilities().clone());
    }
    if p.rlimits().as_ref().is_none_or(|r| r.is_empty()) {
        p.set_rlimits(base.rlimits().clone());
    }
    if p.apparmor_profile().as_ref().is_none_or(|s| s.is_empty()) {
        p.set_apparmor_profile(base.apparmor_profile().clone());
    }
    if p.selinux_label().as_ref().is_none_or(|s| s.is_empty()) {
        p.set_selinux_label(base.selinux_label().clone());
    }
    if p.no_new_privileges().is_none() {
        p.set_no_new_privileges(base.no_new_privileges());
    }
    if p.exec_cpu_affinity().is_none() {
        p.set_exec_cpu_affinity(base.exec_cpu_affinity().clone());
    }
    p
}

/// The container's process with the command line's changes (runc's order).
fn with_overrides(base: &Process, o: &ProcessOverrides) -> Result<Process> {
    let mut p = base.clone();
    p.set_args(Some(o.args.clone()));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(a) = &o.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &o.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if !o.caps.is_empty() {
        let mut c = p.capabilities().clone().unwrap_or_else(empty_caps);
        for name in &o.caps {
            let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone())).map_err(|_| Error::Process { field: "--cap".into(), reason: format!("unknown capability {name:?}") })?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, pm) = (add(c.bounding()), add(c.effective()), add(c.permitted()));
            c.set_bounding(b).set_effective(e).set_permitted(pm);
        }
        p.set_capabilities(Some(c));
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(o.env.iter().cloned());
    p.set_env(Some(env));
    p.set_terminal(Some(o.tty));
    if let Some(n) = o.no_new_privs {
        p.set_no_new_privileges(Some(n));
    }
    if let Some((uid, gid)) = o.user {
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            p.user_mut().set_gid(g);
        }
    }
    if !o.additional_gids.is_empty() {
        let mut g = p.user().additional_gids().clone().unwrap_or_default();
        g.extend(&o.additional_gids);
        p.user_mut().set_additional_gids(Some(g));
    }
    Ok(p)
}

fn empty_caps() -> LinuxCapabilities {
    let none = || Some(Default::default());
    let mut c = LinuxCapabilities::default();
    c.set_bounding(none()).set_effective(none()).set_permitted(none()).set_inheritable(none()).set_ambient(none());
    c
}

/// What runc checks of an exec'd process.
fn validate(p: &Process) -> Result<()> {
    let bad = |field: &str, reason: &str| Err(Error::Process { field: field.into(), reason: reason.into() });
    if p.cwd().as_os_str().is_empty() {
        return bad("cwd", "must not be empty");
    }
    if !p.cwd().is_absolute() {
        return bad("cwd", "must be an absolute path");
    }
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return bad("args", "must not be empty");
    }
    Ok(())
}

/// Config errors of the process's own fields, reported as the process's.
pub fn as_process_error(e: Error) -> Error {
    match e {
        Error::Config { field, reason } => Error::Process { field: field.strip_prefix("process.").unwrap_or(&field).to_string(), reason },
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Process {
        let mut p = Process::default();
        p.set_env(Some(vec!["PATH=/bin".into()]));
        p
    }

    #[test]
    fn overrides_follow_runc() {
        let o = ProcessOverrides { args: vec!["id".into()], env: vec!["A=1".into()], user: Some((7, None)), additional_gids: vec![10], caps: vec!["CAP_SYS_ADMIN".into()], tty: true, ..Default::default() };
        let p = resolve(&base(), &ExecProcess::Args(o)).unwrap();
        assert_eq!(p.args().as_deref(), Some(&["id".to_string()][..]));
        assert_eq!(p.env().as_deref(), Some(&["PATH=/bin".to_string(), "A=1".to_string()][..]));
        assert_eq!((p.user().uid(), p.user().gid()), (7, 0));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[10][..]));
        assert_eq!(p.terminal(), Some(true));
        let c = p.capabilities().as_ref().unwrap();
        for set in [c.bounding(), c.effective(), c.permitted()] {
            assert!(set.as_ref().unwrap().contains(&Capability::SysAdmin));
        }
        // Never inheritable or ambient (CVE-2022-29162).
        for set in [c.inheritable(), c.ambient()] {
            assert!(!set.as_ref().is_some_and(|s| s.contains(&Capability::SysAdmin)));
        }
    }

    #[test]
    fn process_json_takes_the_containers_missing_fields() {
        let mut b = base();
        b.set_apparmor_profile(Some("prof".into()));
        let mut p = Process::default();
        p.set_capabilities(None);
        p.set_apparmor_profile(None);
        let r = resolve(&b, &ExecProcess::Spec(Box::new(p))).unwrap();
        assert_eq!(r.capabilities(), b.capabilities());
        assert_eq!(r.apparmor_profile().as_deref(), Some("prof"));
    }

    #[test]
    fn bad_processes_name_the_field() {
        let mut p = Process::default();
        p.set_args(Some(vec![]));
        assert_eq!(resolve(&base(), &ExecProcess::Spec(Box::new(p.clone()))).unwrap_err().to_string(), "invalid process: args: must not be empty");
        p.set_args(Some(vec!["true".into()]));
        p.set_cwd("rel".into());
        assert_eq!(resolve(&base(), &ExecProcess::Spec(Box::new(p))).unwrap_err().to_string(), "invalid process: cwd: must be an absolute path");
        let o = ProcessOverrides { args: vec!["x".into()], caps: vec!["CAP_FOO".into()], ..Default::default() };
        assert!(resolve(&base(), &ExecProcess::Args(o)).unwrap_err().to_string().contains("unknown capability \"CAP_FOO\""));
    }
}
