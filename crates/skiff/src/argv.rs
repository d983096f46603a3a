//! Argument shapes runc's callers send that clap does not take as they are.
//!
//! runc parses its command line with Go's `flag` package (through
//! urfave/cli), which takes a long flag with one dash as well as two:
//! go-runc sends `-no-subreaper`, and `-pid-file x`, `-bundle=x` work with
//! runc. Before clap sees the arguments, [`normalise`] rewrites such a word
//! to `--name` / `--name=v` when `name` is a long flag of the command being
//! parsed or of one of its parents (a global flag after the subcommand is
//! then refused by clap with its name, as runc refuses it). Everything else
//! keeps its meaning: short flags and clusters (`-d`, `-t`, `-ef`), flag
//! values (`--log -x` keeps `-x`), and every word from the first positional
//! argument of a subcommand (the container id) or from `--` on, so trailing
//! commands (`exec ID sh -c 'ls -la'`, `ps ID -ef`) pass through untouched.
//! As with runc, a subcommand's flags end at its first positional argument:
//! a `--` is put after it (when more words follow), so that clap does not
//! take `ps ID -f` for `--format` or `exec ID sh -c x` for `--cap`.
//!
//! The walk is driven by clap's own definition of the command line
//! ([`Command`] introspection), so new flags and subcommands need nothing
//! here.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, Command, CommandFactory, FromArgMatches};

use crate::cli::Cli;
use crate::logging::{self, Format, Logger};

/// Parses the process's arguments, after [`normalise`].
pub fn parse() -> Result<Cli, Failure> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // Only the subcommand being run gets its arguments (`cli::Lazy`); with
    // none named (`--help`, a misspelt one) all do, for clap's help and
    // suggestions. The command is not built either (`Command::build` builds
    // every subcommand): clap builds the path it parses.
    crate::cli::expand_only(Some(""));
    let bare = Cli::command();
    let mut cmd = match subcommand_name(&bare, &argv) {
        Some(sub) => crate::cli::expand(bare, &sub),
        None => {
            crate::cli::expand_only(None);
            Cli::command()
        }
    };
    let args = normalise(&cmd, argv);
    cmd.try_get_matches_from_mut(&args).and_then(|m| Cli::from_arg_matches(&m)).map_err(|error| Failure::new(error, &cmd, &args))
}

/// The name of the subcommand `args` (with the program name first) runs,
/// found after the global options; none before the first other word.
fn subcommand_name(root: &Command, args: &[OsString]) -> Option<String> {
    let mut name = None;
    let mut done = false;
    walk(root, args.get(1..).unwrap_or_default(), |word, class| match class {
        _ if done => {}
        Word::Subcommand => {
            name = word.to_str().and_then(|w| root.find_subcommand(w)).map(|c| c.get_name().to_string());
            done = true;
        }
        Word::Rest => done = true,
        _ => {}
    });
    name
}

/// A command line clap refused (or `--help`), with the log options that
/// could still be read from it: a caller that passed `--log` finds the
/// usage error there, as with runc.
pub struct Failure {
    error: clap::Error,
    log: Option<PathBuf>,
    format: Format,
}

impl Failure {
    fn new(error: clap::Error, root: &Command, args: &[OsString]) -> Failure {
        let log = global_value(root, args, "log").map(PathBuf::from);
        let format = match global_value(root, args, "log-format") {
            Some(f) if f == "json" => Format::Json,
            _ => Format::Text,
        };
        Failure { error, log, format }
    }

    /// Prints the help or the error; an error is also logged to `--log`
    /// and exits 1, as runc's usage errors do.
    pub fn report(self) -> u8 {
        if !self.error.use_stderr() {
            // --help: clap's text on stdout, success.
            let _ = self.error.print();
            return 0;
        }
        let _ = self.error.print();
        if let Some(path) = &self.log {
            match std::fs::OpenOptions::new().create(true).append(true).open(path) {
                Ok(f) => Logger::new(Some(f), self.format, tracing::Level::ERROR).line(tracing::Level::ERROR, &usage_message(&self.error)),
                Err(e) => eprintln!("skiff: open log file {}: {}", path.display(), libcontainer::error::strerror(&e)),
            }
        }
        1
    }
}

/// clap's error as one log line: its text without the `error:` prefix and
/// the tips, the usage line appended (`unexpected argument '--root' found
/// (usage: skiff create [OPTIONS] <ID>)`).
fn usage_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut body = Vec::new();
    let mut usage = None;
    for line in text.lines().map(str::trim) {
        if let Some(u) = line.strip_prefix("Usage:") {
            usage = Some(u.trim().to_string());
            break;
        }
        if line.is_empty() || line.starts_with("tip:") || line.starts_with("For more information") {
            continue;
        }
        body.push(line.strip_prefix("error:").map_or(line, str::trim_start));
    }
    let body = logging::one_line(&body.join(" "));
    match usage {
        Some(u) => format!("{body} (usage: {u})"),
        None => body,
    }
}

/// How many of the following words a flag takes as its value.
enum Takes {
    Nothing,
    One,
    /// An optional value: the next word, unless it looks like a flag.
    Maybe,
}

fn takes(arg: &Arg) -> Takes {
    if arg.is_require_equals_set() {
        // --no-new-privs[=BOOL]: a value only after `=`.
        return Takes::Nothing;
    }
    match arg.get_num_args() {
        Some(r) if r.min_values() > 0 => Takes::One,
        Some(r) if r.takes_values() => Takes::Maybe,
        // Not built: clap's default for a flag with an action that sets a value.
        None if arg.get_action().takes_values() => Takes::One,
        _ => Takes::Nothing,
    }
}

/// The long flag `name` of the innermost command in `scopes` that has one,
/// and that command's depth (0: the global options).
fn find_long<'a>(scopes: &[&'a Command], name: &str) -> Option<(usize, &'a Arg)> {
    scopes.iter().enumerate().rev().find_map(|(depth, c)| {
        c.get_arguments().find(|a| a.get_long() == Some(name) || a.get_aliases().is_some_and(|al| al.contains(&name))).map(|a| (depth, a))
    })
}

fn find_short(cmd: &Command, c: char) -> Option<&Arg> {
    cmd.get_arguments().find(|a| a.get_short_and_visible_aliases().is_some_and(|s| s.contains(&c)))
}

/// One word of the command line, as the walk classified it.
enum Word<'a> {
    /// A flag (as it will be given to clap) of the command at `depth`
    /// (0: the global options), and its value if it was attached with `=`.
    Flag { depth: usize, arg: Option<&'a Arg>, value: Option<String> },
    /// A value of the previous flag.
    Value,
    /// The name of a subcommand.
    Subcommand,
    /// The first positional argument of a command, `--`, or a word that
    /// is not UTF-8: nothing from here on is a flag.
    Rest,
    /// A `--` added after a subcommand's first positional argument, so
    /// that clap takes the words after it as they are.
    EndOfFlags,
}

/// Walks `args` (without the program name), calling `f` with each word
/// (rewritten when it is a single-dash long flag) and its class.
fn walk<'a>(root: &'a Command, args: &[OsString], mut f: impl FnMut(OsString, &Word<'a>)) {
    let mut scopes: Vec<&Command> = vec![root];
    let mut pending = Takes::Nothing;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let Some(s) = word.to_str() else {
            f(word.clone(), &Word::Rest);
            break;
        };
        match std::mem::replace(&mut pending, Takes::Nothing) {
            Takes::One => {
                f(word.clone(), &Word::Value);
                continue;
            }
            Takes::Maybe if !s.starts_with('-') => {
                f(word.clone(), &Word::Value);
                continue;
            }
            _ => {}
        }
        let cmd = *scopes.last().expect("root scope");
        let depth = scopes.len() - 1;
        if s == "--" {
            f(word.clone(), &Word::Rest);
            break;
        }
        if let Some(long) = s.strip_prefix("--") {
            let (name, value) = split_value(long);
            let found = find_long(&scopes, name);
            if value.is_none() {
                pending = found.map_or(Takes::Nothing, |(_, a)| takes(a));
            }
            let (depth, arg) = found.map_or((depth, None), |(d, a)| (d, Some(a)));
            f(word.clone(), &Word::Flag { depth, arg, value });
            continue;
        }
        if s == "-help" {
            // (clap's own flag, which an unbuilt command does not list)
            f(OsString::from("--help"), &Word::Flag { depth, arg: None, value: None });
            continue;
        }
        if let Some(short) = s.strip_prefix('-').filter(|w| !w.is_empty()) {
            let (name, value) = split_value(short);
            if name.chars().nth(1).is_some() {
                if let Some((depth, arg)) = find_long(&scopes, name) {
                    if value.is_none() {
                        pending = takes(arg);
                    }
                    f(OsString::from(format!("-{s}")), &Word::Flag { depth, arg: Some(arg), value });
                    continue;
                }
            }
            // Short flags, possibly clustered: a flag that takes a value
            // takes the rest of the word, or the next word.
            let mut arg = None;
            for (i, c) in short.char_indices() {
                let Some(a) = find_short(cmd, c) else { break };
                arg = Some(a);
                if !matches!(takes(a), Takes::Nothing) {
                    if short[i + c.len_utf8()..].is_empty() {
                        pending = takes(a);
                    }
                    break;
                }
            }
            f(word.clone(), &Word::Flag { depth, arg, value: None });
            continue;
        }
        if cmd.has_subcommands() {
            if let Some(sub) = cmd.find_subcommand(s) {
                scopes.push(sub);
                f(word.clone(), &Word::Subcommand);
                continue;
            }
        }
        f(word.clone(), &Word::Rest);
        // A subcommand's flags end at its first positional argument, as
        // with Go's flag package: `ps ID -f` passes -f to ps, where clap
        // would take it for --format.
        if depth > 0 && !words.as_slice().is_empty() {
            f(OsString::from("--"), &Word::EndOfFlags);
        }
        break;
    }
    for word in words {
        f(word.clone(), &Word::Rest);
    }
}

fn split_value(s: &str) -> (&str, Option<String>) {
    match s.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (s, None),
    }
}

/// `args` (with the program name first) with every single-dash long flag
/// of the command being parsed, or of a parent, as `--name[=value]`.
/// `root` need not be built (`-help` is known without it).
pub fn normalise(root: &Command, args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let Some((program, rest)) = args.split_first() else { return out };
    out.push(program.clone());
    walk(root, rest, |word, _| out.push(word));
    out
}

/// The value of the global option `--name` in `args` (normalised, with
/// the program name first), read without clap: used when clap refused the
/// command line.
fn global_value(root: &Command, args: &[OsString], name: &str) -> Option<OsString> {
    let mut found = None;
    let mut want_value = false;
    let mut globals = true;
    walk(root, args.get(1..).unwrap_or_default(), |word, class| match class {
        _ if !globals => {}
        Word::Subcommand | Word::Rest => globals = false,
        Word::Value if want_value => {
            found = Some(word);
            want_value = false;
        }
        Word::Flag { depth: 0, arg: Some(a), value } if a.get_long() == Some(name) => match value {
            Some(v) => found = Some(OsString::from(v)),
            None => want_value = true,
        },
        _ => want_value = false,
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        let cmd = Cli::command();
        // (not built, as in `parse`)
        let mut v = vec![OsString::from("skiff")];
        v.extend(args.iter().map(OsString::from));
        normalise(&cmd, v).into_iter().skip(1).map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn single_dash_long_flags_get_two_dashes() {
        assert_eq!(norm(&["-root", "/r", "-log=/l", "create", "-bundle=/b", "-pid-file", "/p", "-no-pivot", "id"]), [
            "--root", "/r", "--log=/l", "create", "--bundle=/b", "--pid-file", "/p", "--no-pivot", "id"
        ]);
        assert_eq!(norm(&["-help"]), ["--help"]);
        assert_eq!(norm(&["-version"]), ["--version"]);
    }

    #[test]
    fn short_flags_and_clusters_keep_their_meaning() {
        assert_eq!(norm(&["-v"]), ["-v"]);
        assert_eq!(norm(&["run", "-d", "-b", "/b", "id"]), ["run", "-d", "-b", "/b", "id"]);
        assert_eq!(norm(&["list", "-qf", "json"]), ["list", "-qf", "json"]);
        // -b takes the next word: it is not a flag even if it looks like one.
        assert_eq!(norm(&["create", "-b", "-root", "id"]), ["create", "-b", "-root", "id"]);
    }

    #[test]
    fn words_after_the_id_or_double_dash_are_untouched() {
        assert_eq!(norm(&["ps", "-format", "table", "id", "-ef"]), ["ps", "--format", "table", "id", "--", "-ef"]);
        assert_eq!(norm(&["ps", "id", "-format", "-root"]), ["ps", "id", "--", "-format", "-root"]);
        assert_eq!(norm(&["kill", "-all", "--", "-id", "-all"]), ["kill", "--all", "--", "-id", "-all"]);
        assert_eq!(norm(&["create", "id", "-bundle", "x"]), ["create", "id", "--", "-bundle", "x"]);
        assert_eq!(norm(&["kill", "id", "KILL"]), ["kill", "id", "--", "KILL"]);
        assert_eq!(norm(&["start", "id"]), ["start", "id"]);
    }

    #[test]
    fn flags_after_the_id_are_not_skiffs() {
        let parse = |args: &[&str]| {
            let mut cmd = Cli::command();
            // (not built, as in `parse`)
            let mut v = vec![OsString::from("skiff")];
            v.extend(args.iter().map(OsString::from));
            let v = normalise(&cmd, v);
            cmd.try_get_matches_from_mut(v).and_then(|m| Cli::from_arg_matches(&m))
        };
        match parse(&["ps", "id", "-f"]).expect("ps id -f").command {
            Some(crate::cli::Command::Ps(a)) => {
                assert_eq!(a.format, "table");
                assert_eq!(a.ps_args, ["-f"]);
            }
            _ => panic!("not ps"),
        }
        match parse(&["ps", "id", "--", "-ef"]).expect("ps id -- -ef").command {
            Some(crate::cli::Command::Ps(a)) => assert_eq!(a.ps_args, ["--", "-ef"]),
            _ => panic!("not ps"),
        }
        // As runc: a flag after the id is an extra argument.
        assert!(parse(&["delete", "id", "--force"]).is_err());
    }

    #[test]
    fn exec_keeps_its_command() {
        assert_eq!(
            norm(&["exec", "-process=/p", "-no-new-privs", "-t", "-e", "A=1", "-cap", "CAP_KILL", "id", "sh", "-c", "ls -la"]),
            ["exec", "--process=/p", "--no-new-privs", "-t", "-e", "A=1", "--cap", "CAP_KILL", "id", "--", "sh", "-c", "ls -la"]
        );
        assert_eq!(norm(&["exec", "--no-new-privs=false", "-detach", "id", "true"]), ["exec", "--no-new-privs=false", "--detach", "id", "--", "true"]);
        let mut cmd = Cli::command();
        // (not built, as in `parse`)
        let argv = normalise(&cmd, ["skiff", "exec", "-no-new-privs", "-user", "1:1", "id", "sh", "-c", "-detach", "--"].iter().map(OsString::from).collect());
        match Cli::from_arg_matches(&cmd.try_get_matches_from_mut(argv).expect("exec parses")).expect("exec args").command {
            Some(crate::cli::Command::Exec(a)) => {
                assert_eq!(a.id, "id");
                assert_eq!(a.command, ["sh", "-c", "-detach", "--"]);
                assert_eq!(a.user.as_deref(), Some("1:1"));
                assert_eq!(a.no_new_privs, Some(true));
                assert!(!a.detach);
            }
            _ => panic!("not exec"),
        }
    }

    /// A subcommand normalise has never seen (shaped like exec, under another name)
    /// gets the same treatment: the walk reads the definition.
    #[test]
    fn new_subcommands_need_nothing_here() {
        use clap::{Arg, ArgAction};
        let enter = Command::new("enter")
            .arg(Arg::new("process").long("process").short('p'))
            .arg(Arg::new("tty").long("tty").short('t').action(ArgAction::SetTrue))
            .arg(Arg::new("detach").long("detach").short('d').action(ArgAction::SetTrue))
            .arg(Arg::new("env").long("env").short('e').action(ArgAction::Append))
            .arg(Arg::new("cap").long("cap").short('c').action(ArgAction::Append))
            .arg(Arg::new("preserve-fds").long("preserve-fds"))
            .arg(Arg::new("id").required(true))
            .arg(Arg::new("command").num_args(0..).trailing_var_arg(true).allow_hyphen_values(true));
        let mut cmd = Cli::command().subcommand(enter);
        // (not built, as in `parse`)
        let norm = |args: &[&str]| -> Vec<String> {
            let mut v = vec![OsString::from("skiff")];
            v.extend(args.iter().map(OsString::from));
            normalise(&cmd, v).into_iter().skip(1).map(|s| s.into_string().unwrap()).collect()
        };
        assert_eq!(
            norm(&["-root", "/r", "enter", "-process=/p", "-detach", "-td", "-e", "A=1", "-cap", "CAP_KILL", "-preserve-fds", "2", "id", "sh", "-c", "ls -la"]),
            ["--root", "/r", "enter", "--process=/p", "--detach", "-td", "-e", "A=1", "--cap", "CAP_KILL", "--preserve-fds", "2", "id", "--", "sh", "-c", "ls -la"]
        );
        // The trailing command reaches clap as it was given.
        let mut argv = vec!["skiff".to_string()];
        argv.extend(norm(&["enter", "-t", "id", "sh", "-c", "-detach"]));
        let m = cmd.try_get_matches_from_mut(argv).expect("enter parses");
        let (_, sub) = m.subcommand().expect("a subcommand");
        let command: Vec<&String> = sub.get_many::<String>("command").expect("a command").collect();
        assert_eq!(command, ["sh", "-c", "-detach"]);
        assert!(sub.get_flag("tty") && !sub.get_flag("detach"));
    }

    #[test]
    fn values_are_never_rewritten() {
        assert_eq!(norm(&["--log", "-debug", "-debug", "list"]), ["--log", "-debug", "--debug", "list"]);
        assert_eq!(norm(&["-log", "-debug", "list"]), ["--log", "-debug", "list"]);
        assert_eq!(norm(&["create", "--pid-file", "-no-pivot", "id"]), ["create", "--pid-file", "-no-pivot", "id"]);
        // --rootless takes an optional value: a following flag is not it.
        assert_eq!(norm(&["--rootless", "-debug", "list"]), ["--rootless", "--debug", "list"]);
        assert_eq!(norm(&["-rootless", "false", "-debug", "list"]), ["--rootless", "false", "--debug", "list"]);
    }

    #[test]
    fn unknown_words_are_left_to_clap() {
        assert_eq!(norm(&["-frobnicate", "list"]), ["-frobnicate", "list"]);
        assert_eq!(norm(&["frobnicate", "-root"]), ["frobnicate", "-root"]);
        // A global flag after the subcommand becomes --root, which clap refuses by name.
        assert_eq!(norm(&["create", "-root", "/x", "id"]), ["create", "--root", "/x", "id"]);
    }

    #[test]
    fn global_log_options_are_found_without_clap() {
        let cmd = Cli::command();
        // (not built, as in `parse`)
        let args: Vec<OsString> = ["skiff", "--root", "/r", "--log", "/l", "--log-format=json", "create", "--log", "/other", "id"].iter().map(OsString::from).collect();
        assert_eq!(global_value(&cmd, &args, "log"), Some(OsString::from("/l")));
        assert_eq!(global_value(&cmd, &args, "log-format"), Some(OsString::from("json")));
        assert_eq!(global_value(&cmd, &args, "debug"), None);
    }

    #[test]
    fn usage_errors_are_one_line() {
        let mut cmd = Cli::command();
        // (not built, as in `parse`)
        let e = cmd.try_get_matches_from_mut(["skiff", "start"]).expect_err("start without an id is refused");
        let m = usage_message(&e);
        assert!(!m.contains('\n') && m.contains("<ID>") && m.contains("usage: skiff start"), "{m}");
        assert!(!m.starts_with("error"), "{m}");
    }

    #[test]
    fn only_the_subcommand_named_gets_its_arguments() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        crate::cli::expand_only(Some(""));
        let shell = Cli::command();
        assert!(shell.find_subcommand("create").is_some_and(|c| c.get_arguments().next().is_none()));
        assert_eq!(subcommand_name(&shell, &args(&["skiff", "--root", "/r", "-log", "/l", "create", "-b", "/b", "id"])).as_deref(), Some("create"));
        assert_eq!(subcommand_name(&shell, &args(&["skiff", "--debug"])), None);
        assert_eq!(subcommand_name(&shell, &args(&["skiff", "crate", "x"])), None);
        crate::cli::expand_only(Some("create"));
        let cmd = Cli::command();
        assert!(cmd.find_subcommand("create").is_some_and(|c| c.get_arguments().any(|a| a.get_long() == Some("bundle"))));
        assert!(cmd.find_subcommand("exec").is_some_and(|c| c.get_arguments().next().is_none()));
        // What `parse` does: the shell, then the one subcommand's arguments
        // added to it, the same as building it with them.
        let names = |c: &clap::Command, sub: &str| c.find_subcommand(sub).map(|s| s.get_arguments().map(|a| a.get_id().to_string()).collect::<Vec<_>>()).unwrap();
        for sub in ["create", "exec", "delete", "state", "run", "update", "checkpoint", "restore", "spec"] {
            crate::cli::expand_only(Some(""));
            let expanded = crate::cli::expand(Cli::command(), sub);
            crate::cli::expand_only(Some(sub));
            let built = Cli::command();
            assert!(!names(&expanded, sub).is_empty(), "{sub}: no arguments added");
            assert_eq!(names(&expanded, sub), names(&built, sub), "{sub}");
            let help = |c: &clap::Command| c.find_subcommand(sub).map(|s| (s.get_about().map(|a| a.to_string()), s.get_long_about().map(|a| a.to_string()))).unwrap();
            assert_eq!(help(&expanded), help(&built), "{sub}: its help text");
            assert!(expanded.get_subcommands().filter(|c| c.get_name() != sub).all(|c| c.get_arguments().next().is_none()), "{sub}: others expanded too");
        }
        crate::cli::expand_only(None);
        let all = Cli::command();
        assert!(all.get_subcommands().filter(|c| c.get_name() != "features").all(|c| c.get_arguments().next().is_some()));
    }
}
