#!/usr/bin/env python3
"""mk-image.py — pack a root filesystem directory into an image archive by
hand (no registry, no build tool): one layer, an image config, a manifest.

  mk-image.py [--format oci|docker] [--cmd JSON] [--entrypoint JSON]
              ROOTFS OUT.tar NAME[:TAG] [NAME[:TAG]...]

--format oci (default) writes an OCI image layout tarball (oci-layout,
index.json, blobs/sha256/*; gzip layer), which `ctr images import` reads.
--format docker writes a `docker save` archive (manifest.json, the config,
<id>/layer.tar), which `docker load`, `podman load` and `ctr images import`
read. Every name is a reference to the same image. Prints the manifest (OCI)
or config (docker) digest and the layer's size.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import tarfile

ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
          "s390x": "s390x", "riscv64": "riscv64"}
EPOCH = "1970-01-01T00:00:00Z"


def layer_tar(root):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for n in dirnames + sorted(filenames):
                full = os.path.join(dirpath, n)
                ti = tf.gettarinfo(full, arcname=os.path.relpath(full, root))
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = "root"
                ti.mtime = 0
                if ti.isreg():
                    with open(full, "rb") as f:
                        tf.addfile(ti, f)
                else:
                    tf.addfile(ti)
    return raw.getvalue()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def add_bytes(tf, arc, data):
    ti = tarfile.TarInfo(arc)
    ti.size = len(data)
    ti.mode = 0o644
    tf.addfile(ti, io.BytesIO(data))


def normalize(name):
    """docker.io/library/x:tag for a bare x[:tag] (what ctr and CRI look up)."""
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    return name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--format", choices=["oci", "docker"], default="oci")
    ap.add_argument("--cmd", default='["sh"]', help="image config Cmd, as JSON")
    ap.add_argument("--entrypoint", default=None, help="image config Entrypoint, as JSON")
    ap.add_argument("rootfs")
    ap.add_argument("out")
    ap.add_argument("names", nargs="+")
    a = ap.parse_args()
    arch = ARCHES.get(platform.machine(), platform.machine())

    tar = layer_tar(a.rootfs)
    cfg = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": json.loads(a.cmd),
        "WorkingDir": "/",
    }
    if a.entrypoint:
        cfg["Entrypoint"] = json.loads(a.entrypoint)
    config = {
        "created": EPOCH,
        "architecture": arch,
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(tar)]},
        "history": [{"created": EPOCH, "created_by": "skiff e2e/mk-image.py (busybox)"}],
    }
    config_json = json.dumps(config, sort_keys=True).encode()
    names = [normalize(n) for n in a.names]

    with tarfile.open(a.out, mode="w") as out:
        if a.format == "docker":
            cid = sha(config_json)
            lid = sha(tar)
            add_bytes(out, cid + ".json", config_json)
            add_bytes(out, lid + "/layer.tar", tar)
            add_bytes(out, lid + "/VERSION", b"1.0")
            manifest = [{"Config": cid + ".json", "RepoTags": names, "Layers": [lid + "/layer.tar"]}]
            add_bytes(out, "manifest.json", json.dumps(manifest).encode())
            print("config sha256:" + cid, "layer", len(tar), "bytes")
            return
        gz = io.BytesIO()
        with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
            g.write(tar)
        blobs = {}

        def blob(data, media_type):
            d = sha(data)
            blobs[d] = data
            return {"mediaType": media_type, "digest": "sha256:" + d, "size": len(data)}

        layer = blob(gz.getvalue(), "application/vnd.oci.image.layer.v1.tar+gzip")
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": blob(config_json, "application/vnd.oci.image.config.v1+json"),
            "layers": [layer],
        }
        mdesc = blob(json.dumps(manifest, sort_keys=True).encode(),
                     "application/vnd.oci.image.manifest.v1+json")
        entries = []
        for n in names:
            e = dict(mdesc)
            e["platform"] = {"architecture": arch, "os": "linux"}
            e["annotations"] = {"io.containerd.image.name": n,
                                "org.opencontainers.image.ref.name": n.rsplit(":", 1)[1]}
            entries.append(e)
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": entries}
        add_bytes(out, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add_bytes(out, "index.json", json.dumps(index).encode())
        for d, data in sorted(blobs.items()):
            add_bytes(out, "blobs/sha256/" + d, data)
        print("manifest", mdesc["digest"], "layer", layer["digest"], layer["size"], "bytes")


if __name__ == "__main__":
    main()
