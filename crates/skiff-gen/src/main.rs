//! `skiff-gen OUT_DIR`: skiff's man pages (section 8, one per subcommand, as
//! runc ships them: `skiff.8`, `skiff-create.8`, …) in `OUT_DIR/man8` and
//! its bash, zsh and fish completions in `OUT_DIR/completions`, generated
//! from the same clap definition the binary parses with.

// The binary's own command line definition (it depends on clap and std
// only, so that it can be compiled here too).
#[path = "../../skiff/src/cli.rs"]
#[allow(dead_code)]
mod cli;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// The completion files, named as Debian installs them.
const COMPLETIONS: [(Shell, &str); 3] = [(Shell::Bash, "skiff.bash"), (Shell::Zsh, "_skiff"), (Shell::Fish, "skiff.fish")];

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: skiff-gen OUT_DIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(&out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("skiff-gen: {e}");
            ExitCode::from(1)
        }
    }
}

fn command() -> clap::Command {
    let mut cmd = cli::Cli::command().version(env!("CARGO_PKG_VERSION")).disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn generate(out: &Path) -> Result<Vec<PathBuf>, String> {
    let cmd = command();
    let mut files = Vec::new();
    let man = out.join("man8");
    fs::create_dir_all(&man).map_err(|e| format!("create {}: {e}", man.display()))?;
    files.push(write(&man.join("skiff.8"), |w| page(&cmd, None, w))?);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let path = man.join(format!("skiff-{}.8", sub.get_name()));
        files.push(write(&path, |w| page(sub, Some(&cmd), w))?);
    }
    let comp = out.join("completions");
    fs::create_dir_all(&comp).map_err(|e| format!("create {}: {e}", comp.display()))?;
    for (shell, name) in COMPLETIONS {
        let mut c = cmd.clone();
        files.push(write(&comp.join(name), |w| {
            clap_complete::generate(shell, &mut c, "skiff", w);
            Ok(())
        })?);
    }
    Ok(files)
}

fn write(path: &Path, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<PathBuf, String> {
    let file = File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let mut w = BufWriter::new(file);
    f(&mut w).and_then(|()| w.flush()).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(path.to_path_buf())
}

/// One page: clap_mangen's sections, in section 8, and SEE ALSO linking a
/// subcommand's page to skiff(8) (the main page lists the subcommands'
/// pages itself).
fn page(cmd: &clap::Command, parent: Option<&clap::Command>, w: &mut dyn Write) -> std::io::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let man = clap_mangen::Man::new(cmd.clone()).section("8").source(format!("skiff {version}")).manual("System Manager's Manual");
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(w)?;
    }
    if parent.is_some() {
        writeln!(w, ".SH \"SEE ALSO\"\n\\fBskiff\\fR(8)")?;
    } else {
        man.render_version_section(w)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Removes the output directory, also when an assertion fails.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn one_page_per_subcommand_and_three_completions() {
        let dir = TempDir(std::env::temp_dir().join(format!("skiff-gen-test-{}", std::process::id())));
        let out = &dir.0;
        let files = generate(out).expect("generate");
        let cmd = command();
        for sub in cmd.get_subcommands() {
            let page = out.join(format!("man8/skiff-{}.8", sub.get_name()));
            let text = fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
            assert!(text.contains(&format!("skiff\\-{}", sub.get_name())), "{} does not name its command", page.display());
            for a in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = a.get_long() {
                    assert!(text.contains(&long.replace('-', "\\-")), "{} lacks --{long}", page.display());
                }
            }
        }
        let main = fs::read_to_string(out.join("man8/skiff.8")).expect("skiff.8");
        for sub in cmd.get_subcommands() {
            assert!(main.contains(&format!("skiff\\-{}(8)", sub.get_name())), "skiff.8 does not list {}", sub.get_name());
        }
        assert_eq!(files.len(), 1 + cmd.get_subcommands().count() + 3, "{files:?}");
        for (_, name) in COMPLETIONS {
            let text = fs::read_to_string(out.join("completions").join(name)).expect("completion file");
            assert!(text.contains("create") && text.contains("pid-file"), "{name} lacks the commands or their flags");
        }
    }
}
