#!/bin/bash
# install-check.sh — `just install` into a temporary DESTDIR and check what it
# put there: every file, the man pages (rendered with `man -l`, one page per
# subcommand the installed binary has, each listed in skiff(8)), the bash
# completion (sourced and asked to complete), the zsh and fish completions
# (syntax-checked when those shells are installed), then `just uninstall`.
# Part of `just test`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=$(mktemp -d /tmp/skiff-install-check.XXXXXX)
trap 'rm -rf "$dest"' EXIT
prefix=/usr/local
p="$dest$prefix"
fail() { echo "install-check: $*" >&2; exit 1; }

just --justfile "$repo/justfile" DESTDIR="$dest" PREFIX="$prefix" install > "$dest/install.log" 2>&1 \
  || { cat "$dest/install.log" >&2; fail "just install failed"; }

files="sbin/skiff share/man/man8/skiff.8 share/bash-completion/completions/skiff
share/zsh/vendor-completions/_skiff share/fish/vendor_completions.d/skiff.fish"
for f in $files; do
  [ -s "$p/$f" ] || fail "just install did not install $prefix/$f"
done
[ -x "$p/sbin/skiff" ] || fail "$prefix/sbin/skiff is not executable"
version=$("$p/sbin/skiff" --version) || fail "the installed skiff does not run"
case "$version" in "skiff version "[0-9]*) ;; *) fail "skiff --version: $version" ;; esac

# The subcommands, as the installed binary parses them (clap's help lists
# the definition in cli.rs), without clap's own `help`.
help=$("$p/sbin/skiff" --help) || fail "skiff --help failed"
cmds=$(echo "$help" | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' | grep -vx help || true)
[ -n "$cmds" ] || fail "no subcommands found in skiff --help"

render() { MANWIDTH=200 man -l "$1" 2> "$dest/man.err" || { cat "$dest/man.err" >&2; fail "man -l $1 failed"; }; }
main=$(render "$p/share/man/man8/skiff.8")
echo "$main" | grep -q '^NAME' || fail "skiff.8 rendered without a NAME section"
n=0
for c in $cmds; do
  page="$p/share/man/man8/skiff-$c.8"
  [ -s "$page" ] || fail "no man page for the subcommand $c ($prefix/share/man/man8/skiff-$c.8)"
  echo "$main" | grep -q "skiff-$c(8)" || fail "skiff.8 does not list skiff-$c(8)"
  render "$page" | grep -Eq "skiff +$c( |$)" || fail "skiff-$c.8 has no synopsis for skiff $c"
  n=$((n + 1))
done
pages=$(find "$p/share/man/man8" -name 'skiff-*.8' | wc -l)
[ "$pages" -eq "$n" ] || fail "$pages subcommand pages installed for $n subcommands"
# No roff warnings (groff's, all of them).
warnings=$(groff -man -Tutf8 -ww -z "$p"/share/man/man8/*.8 2>&1)
[ -z "$warnings" ] || fail "roff warnings: $warnings"

# bash: the completion sources cleanly, registers for skiff and completes
# a subcommand and a flag.
complete_bash() {
  bash --norc --noprofile -c '
    set -e
    . "$1"
    complete -p skiff > /dev/null
    shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _skiff skiff "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$p/share/bash-completion/completions/skiff" "$@"
}
complete_bash skiff cr | grep -qx create || fail "bash completion: 'skiff cr' does not complete to create"
complete_bash skiff create --pid | grep -qx -- --pid-file || fail "bash completion: 'skiff create --pid' does not complete to --pid-file"

if command -v zsh > /dev/null; then
  zsh -n "$p/share/zsh/vendor-completions/_skiff" || fail "zsh: syntax error in _skiff"
else
  echo "install-check: zsh not installed, _skiff not syntax-checked"
fi
if command -v fish > /dev/null; then
  fish --no-execute "$p/share/fish/vendor_completions.d/skiff.fish" || fail "fish: syntax error in skiff.fish"
  fish -c "source $p/share/fish/vendor_completions.d/skiff.fish; complete -C 'skiff cr'" | grep -q '^create' \
    || fail "fish completion: 'skiff cr' does not complete to create"
else
  echo "install-check: fish not installed, skiff.fish not checked"
fi

just --justfile "$repo/justfile" DESTDIR="$dest" PREFIX="$prefix" uninstall > /dev/null 2>&1 || fail "just uninstall failed"
left=$(find "$p" -type f)
[ -z "$left" ] || fail "just uninstall left: $left"
echo "install-check: ok ($n subcommand pages, bash/zsh/fish completions, under DESTDIR$prefix)"
