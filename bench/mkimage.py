#!/usr/bin/env python3
"""bench/mkimage.py KIND OUTDIR: writes a benchmark image as an OCI image layout (tag "latest").

KIND is
  busybox  one layer: Debian's busybox-static as /bin/busybox, a symlink per applet in /bin,
           /etc/passwd, /etc/group, /tmp, /root; CMD ["sh"]
  large    the busybox layer plus LAYERS (default 5) layers of about LAYER_MB (default 48) MB each,
           made of copies of real files from /usr/bin, /usr/lib and /usr/share of this machine
           (interleaved, so every layer mixes binaries, libraries and data), put under
           /data/N/...: realistic gzip ratios, neither random noise nor zeros

Tars are deterministic (sorted entries, uid/gid 0, fixed mtimes, PAX format) and gzipped at level 6
(the default of Go's compress/gzip, which docker and containerd use), with no name or time in the
gzip header. The config carries rootfs.diff_ids and one history entry per layer; index.json names the
manifest "latest". Written to OUTDIR.tmp and renamed, so an OUTDIR that exists is complete.
Only the standard library is needed. Used by bench/pull.sh.
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile

MTIME = 1700000000
CREATED = "2023-11-14T22:13:20Z"


class HashingWriter:
    """A write-only file object that hashes (and counts) what passes through to `inner`."""

    def __init__(self, inner):
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        if self.inner is not None:
            self.inner.write(data)
        return len(data)

    def flush(self):
        pass


class Layout:
    def __init__(self, root):
        self.root = root
        self.blobs = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.blobs)
        with open(os.path.join(root, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def put_bytes(self, data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.blobs, digest), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    def put_layer(self, entries):
        """entries: sorted list of (TarInfo, source path or None). Returns (descriptor, diff_id)."""
        tmp = os.path.join(self.blobs, "tmp-layer")
        with open(tmp, "wb") as raw:
            compressed = HashingWriter(raw)
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=6, mtime=0)
            uncompressed = HashingWriter(gz)
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for info, src in entries:
                    if src is None:
                        tar.addfile(info)
                    else:
                        with open(src, "rb") as f:
                            tar.addfile(info, f)
            gz.close()
        digest = compressed.sha.hexdigest()
        os.rename(tmp, os.path.join(self.blobs, digest))
        desc = {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": "sha256:" + digest,
            "size": compressed.size,
        }
        return desc, "sha256:" + uncompressed.sha.hexdigest(), uncompressed.size

    def finish(self, layers, diff_ids, history, cmd):
        config = {
            "created": CREATED,
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": cmd,
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": CREATED, "created_by": h} for h in history],
        }
        cdesc = self.put_bytes(json.dumps(config, sort_keys=True).encode())
        cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json"
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cdesc,
            "layers": layers,
        }
        mdesc = self.put_bytes(json.dumps(manifest, sort_keys=True).encode())
        mdesc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
        mdesc["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [mdesc]}
        with open(os.path.join(self.root, "index.json"), "w") as f:
            json.dump(index, f)


def dir_info(name, mode=0o755):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.mtime = MTIME
    return info


def file_info(name, size, mode):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = MTIME
    return info


def busybox_entries():
    busybox = shutil.which("busybox") or "/bin/busybox"
    busybox = os.path.realpath(busybox)
    applets = sorted(set(os.popen(f"{busybox} --list").read().split()) - {"busybox"})
    entries = [(dir_info(d), None) for d in ("bin", "etc", "root")]
    entries.append((dir_info("tmp", 0o1777), None))
    entries.append((file_info("bin/busybox", os.path.getsize(busybox), 0o755), busybox))
    for applet in applets:
        info = tarfile.TarInfo("bin/" + applet)
        info.type = tarfile.SYMTYPE
        info.linkname = "busybox"
        info.mode = 0o777
        info.mtime = MTIME
        entries.append((info, None))
    for name, text in (
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
        ("etc/group", "root:x:0:\nnobody:x:65534:\n"),
    ):
        data = text.encode()
        # Written through a temp file: entries take a path; tiny files, kept next to the layout.
        entries.append((file_info(name, len(data), 0o644), ("bytes", data)))
    entries.sort(key=lambda e: e[0].name)
    return entries


def source_files(roots, max_file):
    """Regular files under each root, sorted, interleaved round-robin across the roots."""
    lists = []
    for root in roots:
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if not os.path.isfile(path) or os.path.islink(path) or st.st_size == 0 or st.st_size > max_file:
                    continue
                if not os.access(path, os.R_OK):
                    continue
                found.append((path, st.st_size, st.st_mode & 0o1777))  # no setuid/setgid copies
        lists.append(found)
    out = []
    for i in range(max(len(l) for l in lists)):
        for l in lists:
            if i < len(l):
                out.append(l[i])
    return out


def data_layers(n, layer_bytes):
    files = source_files(["/usr/bin", "/usr/lib", "/usr/share"], 16 << 20)
    layers, it = [], iter(files)
    for k in range(n):
        chosen, total = [], 0
        for path, size, mode in it:
            chosen.append((path, size, mode))
            total += size
            if total >= layer_bytes:
                break
        if total < layer_bytes:
            sys.exit(f"mkimage.py: not enough files under /usr for {n} layers of {layer_bytes} bytes")
        prefix = f"data/{k + 1}"
        entries, dirs = [], set()
        for path, size, mode in chosen:
            name = prefix + path  # path is absolute: data/N/usr/lib/...
            d = os.path.dirname(name)
            while d and d not in dirs:
                dirs.add(d)
                d = os.path.dirname(d)
            entries.append((file_info(name, size, mode), path))
        entries += [(dir_info(d), None) for d in dirs]
        entries.sort(key=lambda e: e[0].name)
        layers.append((entries, total))
    return layers


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("busybox", "large"):
        sys.exit("usage: bench/mkimage.py busybox|large OUTDIR")
    kind, out = sys.argv[1], sys.argv[2].rstrip("/")
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    layout = Layout(tmp)

    def materialize(entries):
        # ("bytes", data) sources are written next to the blobs so put_layer can open them.
        result = []
        for i, (info, src) in enumerate(entries):
            if isinstance(src, tuple):
                path = os.path.join(tmp, f"inline-{i}")
                with open(path, "wb") as f:
                    f.write(src[1])
                src = path
            result.append((info, src))
        return result

    layers, diff_ids, history, total = [], [], [], 0
    desc, diff_id, size = layout.put_layer(materialize(busybox_entries()))
    layers.append(desc)
    diff_ids.append(diff_id)
    history.append("ADD busybox-static /bin/busybox and its applet links")
    total += size
    if kind == "large":
        n = int(os.environ.get("LAYERS", "5"))
        layer_bytes = int(os.environ.get("LAYER_MB", "48")) << 20
        for k, (entries, _) in enumerate(data_layers(n, layer_bytes)):
            desc, diff_id, size = layout.put_layer(entries)
            layers.append(desc)
            diff_ids.append(diff_id)
            history.append(f"COPY files of /usr /data/{k + 1}/usr")
            total += size
    layout.finish(layers, diff_ids, history, ["sh"])
    for name in os.listdir(tmp):
        if name.startswith("inline-"):
            os.unlink(os.path.join(tmp, name))
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    compressed = sum(l["size"] for l in layers)
    print(f"{out}: {len(layers)} layer(s), {total / 1e6:.1f} MB uncompressed, {compressed / 1e6:.1f} MB gzipped")


if __name__ == "__main__":
    main()
