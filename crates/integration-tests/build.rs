//! Builds `probe/seccomp-probe.c`, the static helper the seccomp tests run
//! inside busybox containers (which have no libc), and hands its path to
//! the tests as `SKIFF_SECCOMP_PROBE`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "probe/seccomp-probe.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("seccomp-probe");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let result = Command::new(&cc)
        .args(["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o"])
        .arg(&out)
        .arg(src)
        .status();
    match result {
        Ok(s) if s.success() => {}
        other => panic!(
            "building {src} with `{cc} -static` failed ({other:?}): the seccomp tests need a C \
             compiler and static glibc (Debian: gcc, libc6-dev)"
        ),
    }
    println!("cargo:rustc-env=SKIFF_SECCOMP_PROBE={}", out.display());
}
