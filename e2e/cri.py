#!/usr/bin/python3
"""cri.py — a minimal CRI v1 client (the kubelet's calls, no crictl).

  cri.py SOCKET COMMAND [ARG...]      (Debian's python3-grpcio)

Only the messages the e2e suite needs, encoded by hand on the wire: the
field numbers are those of the public CRI api.proto (k8s.io/cri-api,
pkg/apis/runtime/v1/api.proto, package runtime.v1). Each command prints
JSON on stdout and exits 0, or prints the gRPC error on stderr and exits 1.

Commands (POD and CTR are JSON objects, see pod_config/container_config):
  version                                  VersionResponse
  image-status IMAGE                       {"id": ...} or {"id": null}
  runp POD                                 {"id": sandbox id}
  sandbox-status ID                        {"state": "READY"|"NOTREADY"}
  create SANDBOX_ID POD CTR                {"id": container id}
  start ID | stop ID TIMEOUT | rm ID       {}
  status ID                                {"state", "exit_code", "reason"}
  exec ID TIMEOUT CMD...                   {"stdout", "stderr", "exit_code"}
  stopp ID | rmp ID                        {}
  list                                     {"sandboxes": [...], "containers": [...]}
"""
import json
import sys

import grpc

# ------------------------------------------------------ protobuf wire format --


def _varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_int(num, v):
    """varint field (int32/int64/uint32/bool/enum); proto3 omits zero."""
    if not v:
        return b""
    return _varint(num << 3) + _varint(int(v))


def f_bytes(num, v):
    """length-delimited field: string, bytes or an encoded message."""
    if isinstance(v, str):
        v = v.encode()
    return _varint(num << 3 | 2) + _varint(len(v)) + v


def f_str(num, v):
    return f_bytes(num, v) if v else b""


def f_strs(num, vs):
    return b"".join(f_bytes(num, v) for v in vs)


def f_map(num, d):
    """map<string, string>: repeated entries {1: key, 2: value}."""
    return b"".join(f_bytes(num, f_str(1, k) + f_str(2, v)) for k, v in sorted(d.items()))


def decode(data):
    """{field number: [values]}: ints for varints, bytes for length-delimited."""
    out, i = {}, 0

    def varint():
        nonlocal i
        shift = n = 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(data):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            v = varint()
        elif wt == 2:
            ln = varint()
            v = data[i:i + ln]
            i += ln
        elif wt == 1:
            v = data[i:i + 8]
            i += 8
        elif wt == 5:
            v = data[i:i + 4]
            i += 4
        else:
            raise ValueError(f"wire type {wt}")
        out.setdefault(num, []).append(v)
    return out


def first(msg, num, default=None):
    return msg.get(num, [default])[0]


def s(msg, num):
    v = first(msg, num, b"")
    return v.decode(errors="replace")


def int32(v):
    v = v or 0
    return v - (1 << 64) if v >= 1 << 63 else v


# --------------------------------------------------------------- messages --

NS_POD, NS_CONTAINER, NS_NODE = 0, 1, 2
SANDBOX_STATE = {0: "READY", 1: "NOTREADY"}
CONTAINER_STATE = {0: "CREATED", 1: "RUNNING", 2: "EXITED", 3: "UNKNOWN"}


def pod_config(p):
    """PodSandboxConfig from {"name", "uid", "namespace", "log_directory",
    "cgroup_parent", "labels"}; host network (NamespaceOption.network NODE),
    pid and ipc namespaces of the pod's own, as the kubelet sends a
    hostNetwork pod."""
    meta = f_str(1, p["name"]) + f_str(2, p["uid"]) + f_str(3, p["namespace"]) + f_int(4, p.get("attempt", 0))
    nsopt = f_int(1, NS_NODE) + f_int(2, NS_POD) + f_int(3, NS_POD)
    secctx = f_bytes(1, nsopt)                           # LinuxSandboxSecurityContext.namespace_options
    linux = f_str(1, p.get("cgroup_parent", "")) + f_bytes(2, secctx)  # LinuxPodSandboxConfig
    return (f_bytes(1, meta)                             # metadata
            + f_str(2, p.get("hostname", ""))            # hostname (empty: the node's, host network)
            + f_str(3, p.get("log_directory", ""))       # log_directory
            + f_map(6, p.get("labels", {}))              # labels
            + f_map(7, p.get("annotations", {}))         # annotations
            + f_bytes(8, linux))                         # linux


def container_config(c):
    """ContainerConfig from {"name", "image", "command", "args", "log_path",
    "memory", "cpu_period", "cpu_quota", "envs"}; the container's own pid
    namespace (NamespaceOption.pid CONTAINER), as the kubelet sets for v1 pods."""
    meta = f_str(1, c["name"]) + f_int(2, c.get("attempt", 0))
    image = f_str(1, c["image"])
    res = (f_int(1, c.get("cpu_period", 0)) + f_int(2, c.get("cpu_quota", 0))
           + f_int(3, c.get("cpu_shares", 0)) + f_int(4, c.get("memory", 0)))
    nsopt = f_int(1, NS_NODE) + f_int(2, NS_CONTAINER) + f_int(3, NS_POD)
    secctx = f_bytes(3, nsopt)                           # LinuxContainerSecurityContext.namespace_options
    if "run_as_user" in c:
        secctx += f_bytes(5, f_int(1, c["run_as_user"]))  # run_as_user: Int64Value
    linux = f_bytes(1, res) + f_bytes(2, secctx)         # LinuxContainerConfig
    envs = b"".join(f_bytes(6, f_str(1, k) + f_str(2, v)) for k, v in c.get("envs", {}).items())
    return (f_bytes(1, meta) + f_bytes(2, image) + f_strs(3, c.get("command", []))
            + f_strs(4, c.get("args", [])) + f_str(5, c.get("working_dir", "")) + envs
            + f_map(9, c.get("labels", {})) + f_map(10, c.get("annotations", {}))
            + f_str(11, c.get("log_path", "")) + f_bytes(15, linux))


# ------------------------------------------------------------------- calls --


class Client:
    def __init__(self, sock, timeout=60):
        self.ch = grpc.insecure_channel("unix://" + sock)
        self.timeout = timeout

    def call(self, service, method, req, timeout=None):
        fn = self.ch.unary_unary(f"/runtime.v1.{service}/{method}",
                                 request_serializer=None, response_deserializer=None)
        return decode(fn(req, timeout=timeout or self.timeout))

    def rt(self, method, req, timeout=None):
        return self.call("RuntimeService", method, req, timeout)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    c = Client(argv[1])
    cmd, a = argv[2], argv[3:]
    out = {}
    if cmd == "version":
        r = c.rt("Version", f_str(1, "v1"))
        out = {"version": s(r, 1), "runtime_name": s(r, 2), "runtime_version": s(r, 3),
               "runtime_api_version": s(r, 4)}
    elif cmd == "image-status":
        r = c.call("ImageService", "ImageStatus", f_bytes(1, f_str(1, a[0])))
        img = first(r, 1)
        out = {"id": s(decode(img), 1) if img is not None else None}
    elif cmd == "runp":
        r = c.rt("RunPodSandbox", f_bytes(1, pod_config(json.loads(a[0]))))
        out = {"id": s(r, 1)}
    elif cmd == "sandbox-status":
        r = c.rt("PodSandboxStatus", f_str(1, a[0]))
        st = decode(first(r, 1, b""))
        out = {"id": s(st, 1), "state": SANDBOX_STATE.get(first(st, 3, 0))}
    elif cmd == "create":
        req = f_str(1, a[0]) + f_bytes(2, container_config(json.loads(a[2]))) + f_bytes(3, pod_config(json.loads(a[1])))
        out = {"id": s(c.rt("CreateContainer", req), 1)}
    elif cmd == "start":
        c.rt("StartContainer", f_str(1, a[0]))
    elif cmd == "status":
        st = decode(first(c.rt("ContainerStatus", f_str(1, a[0])), 1, b""))
        out = {"id": s(st, 1), "state": CONTAINER_STATE.get(first(st, 3, 0)),
               "exit_code": int32(first(st, 7, 0)), "reason": s(st, 10), "message": s(st, 11)}
    elif cmd == "exec":
        tmo = int(a[1])
        r = c.rt("ExecSync", f_str(1, a[0]) + f_strs(2, a[2:]) + f_int(3, tmo), timeout=tmo + 30)
        out = {"stdout": first(r, 1, b"").decode(errors="replace"),
               "stderr": first(r, 2, b"").decode(errors="replace"),
               "exit_code": int32(first(r, 3, 0))}
    elif cmd == "stop":
        c.rt("StopContainer", f_str(1, a[0]) + f_int(2, int(a[1])), timeout=int(a[1]) + 60)
    elif cmd == "rm":
        c.rt("RemoveContainer", f_str(1, a[0]))
    elif cmd == "stopp":
        c.rt("StopPodSandbox", f_str(1, a[0]))
    elif cmd == "rmp":
        c.rt("RemovePodSandbox", f_str(1, a[0]))
    elif cmd == "list":
        sbs = [decode(x) for x in c.rt("ListPodSandbox", b"").get(1, [])]
        cts = [decode(x) for x in c.rt("ListContainers", b"").get(1, [])]
        out = {"sandboxes": [{"id": s(x, 1), "state": SANDBOX_STATE.get(first(x, 3, 0))} for x in sbs],
               "containers": [{"id": s(x, 1), "sandbox": s(x, 2),
                               "state": CONTAINER_STATE.get(first(x, 6, 0))} for x in cts]}
    else:
        sys.exit(f"cri.py: unknown command {cmd}")
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main(sys.argv)
    except grpc.RpcError as e:
        print(f"cri.py {' '.join(sys.argv[2:3])}: {e.code().name}: {e.details()}", file=sys.stderr)
        sys.exit(1)
