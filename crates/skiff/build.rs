// Records the git commit for `skiff --version`, and relinks when a
// release link order (link-order-musl.txt, passed to the linker by `just
// release`; link-order.txt by `just release-glibc`) changes.
fn main() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SKIFF_COMMIT={commit}");
    // HEAD moves on a branch switch (HEAD itself) and on a commit (the
    // branch's ref, loose or packed). Only files that exist are watched: a
    // missing one would rerun this script, and relink, on every build.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = [Some("HEAD"), branch.as_deref(), Some("packed-refs")];
    for path in watched.into_iter().flatten().filter_map(|p| git(&["rev-parse", "--git-path", p])) {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-changed=link-order-musl.txt");
}
