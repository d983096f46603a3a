//! The hot paths stay flat as the state root fills up: `state` and
//! `create` make the same system calls with hundreds of other containers in
//! the root as with none (no scan of the root; `create` is measured as
//! `run` of /bin/true, whose init exits: strace waits for every child), and `list` reads each entry
//! once. Counted with `strace -c` (system calls, not time: the timings are
//! `just bench-scale`'s). The other containers are copies of a real state
//! directory under other ids: `state`/`create` never look at them, and
//! `list` parses each.

use skiff_integration_tests::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Total system calls of the runtime and its children for `args`.
fn syscalls(env: &TestEnv, args: &[&str], name: &str) -> u64 {
    let out = env.dir.join(format!("strace-{name}.txt"));
    let mut cmd = Command::new("strace");
    cmd.arg("-f").arg("-c").arg("-o").arg(&out).arg(runtime_bin()).arg("--root").arg(&env.root).args(args).current_dir(&env.dir);
    env.run_cmd(cmd).ok();
    let text = fs::read_to_string(&out).expect("strace summary");
    let total = text.lines().find(|l| l.trim_end().ends_with("total")).unwrap_or_else(|| panic!("no total in {text}"));
    // "100.00    0.001234           1      1234        12 total"
    let f: Vec<&str> = total.split_whitespace().collect();
    f[3].parse().unwrap_or_else(|_| panic!("bad total line {total:?}"))
}

fn have_strace() -> bool {
    let ok = Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success());
    if !ok {
        skip_message(&format!("SKIPPED {}: strace is not installed\n", file!()));
    }
    ok
}

/// `n` copies of `id`'s state directory under other ids.
fn fill(root: &Path, id: &str, n: usize) {
    let state = fs::read(root.join(id).join("state.json")).expect("state.json");
    for i in 0..n {
        let d = root.join(format!("filler-{i}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("state.json"), &state).unwrap();
    }
}

fn unfill(root: &Path, n: usize) {
    for i in 0..n {
        let _ = fs::remove_dir_all(root.join(format!("filler-{i}")));
    }
}

/// Within 2% (a wait or a retry may add a call or two).
fn assert_flat(what: &str, few: u64, many: u64) {
    let slack = (few / 50).max(2);
    assert!(many.abs_diff(few) <= slack, "{what}: {few} system calls with 1 container, {many} with 500 more (not flat)");
}

#[test]
fn state_and_run_do_not_scan_the_root() {
    require_root!();
    if !have_strace() {
        return;
    }
    let mut env = TestEnv::new("scale");
    env.set_args(&["/bin/true"]);
    env.create().ok();
    let id = env.id.clone();
    let b = env.bundle.to_string_lossy().into_owned();
    let one = env.new_id();
    env.write_config_for(&one);
    let state_few = syscalls(&env, &["state", &id], "state-few");
    let create_few = syscalls(&env, &["run", "--bundle", &b, &one], "create-few");
    let list_few = syscalls(&env, &["list", "-q"], "list-few");

    const N: usize = 500;
    fill(&env.root, &id, N);
    let root = env.root.clone();
    env.on_cleanup(move || unfill(&root, N));
    let two = env.new_id();
    env.write_config_for(&two);
    let state_many = syscalls(&env, &["state", &id], "state-many");
    let create_many = syscalls(&env, &["run", "--bundle", &b, &two], "create-many");
    let list_many = syscalls(&env, &["list", "-q"], "list-many");
    unfill(&env.root, N);

    assert_flat("state", state_few, state_many);
    assert_flat("run (create, start, delete)", create_few, create_many);
    // list reads every entry: a bounded cost per container.
    let per = (list_many - list_few) as f64 / N as f64;
    assert!(per > 0.0 && per <= 20.0, "list: {per:.1} system calls per container (few {list_few}, many {list_many})");
    env.rt(&["delete", "-f", &id]).ok();
}
