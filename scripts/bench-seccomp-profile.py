#!/usr/bin/env python3
"""Writes a Docker-sized linux.seccomp object (JSON) to stdout, for
`SECCOMP=... scripts/bench.sh`: default SCMP_ACT_ERRNO (EPERM), the x86
family of architectures, and 434 names in one SCMP_ACT_ALLOW rule -- every
syscall the installed libseccomp knows for the native architecture, topped
up with names only other architectures have (as Docker's profile lists
them) -- plus Docker's usual conditional rules (personality, clone, socket).

    scripts/bench-seccomp-profile.py > /tmp/seccomp-434.json
    SECCOMP=/tmp/seccomp-434.json RUNTIMES=skiff scripts/bench.sh
"""
import ctypes
import json
import sys

TOTAL = 434
lib = ctypes.CDLL("libseccomp.so.2")
lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_char_p
lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32

CONDITIONAL = ["personality", "clone", "socket"]


def names_of(arch):
    out = []
    # x32 numbers carry bit 30
    for nr in list(range(0, 1024)) + list(range(0x40000000, 0x40000000 + 1024)):
        n = lib.seccomp_syscall_resolve_num_arch(arch, nr)
        if n:
            out.append(n.decode())
    return out


native = lib.seccomp_arch_native()
names = [n for n in names_of(native) if n not in CONDITIONAL]
for other in (b"x86", b"x32", b"aarch64", b"arm", b"s390x"):
    if len(names) >= TOTAL:
        break
    for n in names_of(lib.seccomp_arch_resolve_name(other)):
        if n not in names and n not in CONDITIONAL and len(names) < TOTAL:
            names.append(n)
assert len(names) == TOTAL, len(names)

json.dump({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": names, "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}
                  for v in (0, 8, 131072, 131080, 4294967295)]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
    ],
}, sys.stdout, indent=1)
print()
