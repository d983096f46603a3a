#!/usr/bin/env python3
"""link-order.py — the release binary's link map, read for link-order.sh.

  link-order.py entries MAP            function entry addresses in .text (hex)
  link-order.py order MAP HITS...      the sections HITS ran, in first-run
                                       order, as lld symbol-ordering lines
  link-order.py check MAP ORDER HITS...
                                       how much of what HITS ran ORDER lists,
                                       and where the linker put it; exit 1
                                       when ORDER is stale (below MIN_COVER)

MAP is lld's `-Map` output (`just release` writes it next to the binary).
An input section of .text is a function for Rust (`.text.<mangled name>`,
one section per function) and a whole object's code for C (glibc,
libseccomp: `.text`, named here by its first symbol).
"""
import bisect
import re
import sys

MIN_COVER = 0.90
TEXT = (".text", ".text.hot", ".text.unlikely")


def sections(mapf):
    """[(start, size, order name, symbol addresses)] of the .text input sections."""
    out, cur, intext = [], None, False
    for line in open(mapf):
        p = line.split(None, 4)
        if len(p) < 5 or not re.match(r"^[0-9a-f]+$", p[0]):
            continue
        name = p[4].strip()
        if ":(" not in name and name.startswith("."):  # an output section
            intext, cur = name in TEXT, None
            continue
        if not intext:
            continue
        start, size = int(p[0], 16), int(p[2], 16)
        if ":(" in name:
            sec = name.rsplit(":(", 1)[1][:-1]
            m = re.match(r"^\.text\.(?:unlikely\.|hot\.)?(.+)$", sec)
            cur = [start, size, m.group(1) if m else None, [start]]
            out.append(cur)
        elif cur is not None:
            cur[3].append(start)
            if cur[2] is None:
                cur[2] = name
    out.sort()
    return out


def ran(secs, hit_files):
    """The sections the hit addresses fall in, in first-hit order."""
    starts = [s[0] for s in secs]
    seen, order = set(), []
    for f in hit_files:
        for line in open(f):
            a = int(line, 16)
            i = bisect.bisect_right(starts, a) - 1
            if i < 0:
                continue
            s = secs[i]
            if s[0] <= a < s[0] + max(s[1], 1) and s[2] and i not in seen:
                seen.add(i)
                order.append(s)
    return order


def main(argv):
    if len(argv) >= 2 and argv[0] == "entries":
        addrs = sorted({a for s in sections(argv[1]) if s[1] > 0 for a in s[3]})
        sys.stdout.write("".join("%x\n" % a for a in addrs))
        return 0
    if len(argv) >= 3 and argv[0] == "order":
        secs = sections(argv[1])
        order = ran(secs, argv[2:])
        names = []
        for s in order:
            if s[2] not in names:
                names.append(s[2])
        sys.stdout.write("".join(n + "\n" for n in names))
        total = sum(s[1] for s in secs)
        print(f"link-order: {len(names)} sections ran, {sum(s[1] for s in order)} of {total} bytes of code",
              file=sys.stderr)
        return 0
    if len(argv) >= 4 and argv[0] == "check":
        secs = sections(argv[1])
        listed = {l.strip() for l in open(argv[2]) if l.strip()}
        order = ran(secs, argv[3:])
        ran_bytes = sum(s[1] for s in order)
        cover = sum(s[1] for s in order if s[2] in listed) / max(ran_bytes, 1)
        # the listed sections the linker found, and how far into .text the
        # code that ran reaches: all of it within the listed block when the
        # order took effect
        text_start = secs[0][0] if secs else 0
        block = sum(s[1] for s in secs if s[2] in listed)
        reach = block * 1.05 + 4096  # alignment padding between sections
        inside = sum(s[1] for s in order if s[0] - text_start < reach) / max(ran_bytes, 1)
        print(f"link-order: the workload ran {len(order)} sections ({ran_bytes} bytes); "
              f"{cover:.1%} of those bytes are in {argv[2]}; "
              f"{inside:.1%} lie in the first {block} bytes of .text, where the order puts them")
        if cover < MIN_COVER or inside < MIN_COVER:
            print(f"link-order: below {MIN_COVER:.0%}: the order is stale; regenerate it with `just link-order`",
                  file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
