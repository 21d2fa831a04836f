"""Audit probes for the filesystem: the host's files, the engine socket, mounts, and what is writable.

The sandbox sees one host directory (the workspace) and the Expert's read-only config; everything else
is the image, read-only, plus tmpfs. Host files are recognised by (device, inode) on the host
(`Site.host_paths`), not by name, because the image has files of the same names. Controls: the one
mounted host directory is recognised by the same method, and the same write works where it is allowed.
"""

# ruff: noqa: S108 - every /tmp, /var/tmp and /dev/shm here is a path inside the container, never the host's
from __future__ import annotations

from ._catalog_judges import _errno_name, _r, _spec, reading, real_and_control, rereading, tried
from ._catalog_model import AuditProbe, Evidence, Judgement, Result, Site

__all__ = ["filesystem_probes"]


_HOST_FS_TYPES = frozenset(
    {
        "ext2",
        "ext3",
        "ext4",
        "xfs",
        "btrfs",
        "zfs",
        "f2fs",
        "vfat",
        "ntfs",
        "ntfs3",
        "exfat",
        "9p",
        "virtiofs",
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "fuse",
        "fuseblk",
        "fuse.sshfs",
        "fakeowner",
        "grpcfuse",
        "fuse.grpcfuse",
        "overlay2",
    }
)
_DOCKER_BINDS = frozenset(
    {
        "/etc/resolv.conf",
        "/etc/hostname",
        "/etc/hosts",
        "/sbin/docker-init",
        "/usr/sbin/docker-init",
        "/dev/init",
    }
)
_DOCKER_MASKS = frozenset(
    {
        # Docker hides these kernel files by mounting an empty tmpfs or /dev/null over them: writes go
        # nowhere.
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    }
)
_EXPECTED_BINDS = frozenset({"/workspace", "/sandbox/expert"})
_EXPECTED_RW = frozenset(
    {
        "/workspace",
        "/tmp",
        "/home/sandbox",
        "/dev/shm",
        "/dev/mqueue",
        "/dev",
        "/dev/pts",
        "/proc",
        "/etc/resolv.conf",
        "/etc/hostname",
        "/etc/hosts",
        # Docker's cgroup tmpfs is a read-write mount of a 0555 directory holding read-only cgroup mounts;
        # fs.read-only writes there for real.
        "/sys/fs/cgroup",
        *_DOCKER_MASKS,
    }
)
_READ_ONLY_DIRS = (
    "/",
    "/etc",
    "/usr",
    "/usr/local/bin",
    "/opt",
    "/opt/sandbox",
    "/opt/sandbox/venv",
    "/var",
    "/var/tmp",
    "/root",
    "/srv",
    "/run",
    "/sandbox/expert",
    "/sys/fs/cgroup",
)
_WRITABLE_DIRS = ("/workspace", "/tmp", "/home/sandbox")


def _same_file(r: Result, pair: tuple[int, int] | None) -> bool:
    return pair is not None and "dev" in r and (r["dev"], r["ino"]) == tuple(pair)


def _workspace_control(ev: Evidence, site: Site) -> tuple[bool, str]:
    r = _r(ev, "fs.host-files/workspace")["/workspace"]
    ok = _same_file(r, site.host_paths.get("workspace"))
    return (
        ok,
        "/workspace is recognised as the host's workspace directory (same device and inode)"
        if ok
        else f"/workspace not recognised ({r})",
    )


def _none_written(ev: Evidence, r: Result) -> tuple[bool, str]:
    """`write_paths` in the read-only directories: every write refused (and the errors, in words)."""
    written = [d for d, x in r.items() if x["ok"]]
    errs = sorted({_errno_name(x["error"]) for x in r.values() if not x["ok"]})
    if written:
        return False, "written: " + ", ".join(written)
    return True, f"all {len(r)} refused ({', '.join(errs)})"


def _all_written(ev: Evidence, c: Result) -> tuple[bool, str]:
    """`write_paths` in the writable directories (the control): every write went through."""
    c_bad = [d for d, x in c.items() if not x["ok"]]
    return (
        not c_bad,
        "/workspace, /tmp, /home/sandbox: writable" if not c_bad else "not writable: " + ", ".join(c_bad),
    )


def filesystem_probes(site: Site) -> list[AuditProbe]:
    P: list[AuditProbe] = []  # noqa: N806
    pid = "fs.host-files"
    paths = {"shadow": "/etc/shadow", "home": site.home, "rundir": site.rundir, "root": "/"}

    def j_host_files(ev: Evidence, pid: str = pid) -> Judgement:
        exposed = [
            f"{label} ({path})"
            for label, path in paths.items()
            if _same_file(_r(ev, f"{pid}/{label}")[path], site.host_paths.get(label))
        ]
        canary = _r(ev, f"{pid}/canary")[site.rundir + "/host-canary.txt"]
        if canary.get("ok"):
            exposed.append("the audit's host-side canary file")
        return Judgement(
            not exposed,
            ("host files visible: " + ", ".join(exposed))
            if exposed
            else f"none of the host's {', '.join(paths.values())} is visible (only same-named image "
            "files, if any)",
            *_workspace_control(ev, site),
        )

    P.append(
        AuditProbe(
            pid,
            "The host's files are not visible (/etc/shadow, home, temp files)",
            "no path inside is the host's file (compared by device and inode)",
            "the one host directory that is mounted (/workspace) is recognised",
            j_host_files,
            inside=(
                *(_spec(pid, k, "stat_paths", paths=[v]) for k, v in paths.items()),
                _spec(pid, "canary", "read_files", paths=[site.rundir + "/host-canary.txt"]),
                _spec(pid, "workspace", "stat_paths", paths=["/workspace"]),
            ),
        )
    )

    pid = "fs.etc-shadow"

    def j_shadow(r: Result) -> Judgement:
        shadow, passwd = r["/etc/shadow"], r["/etc/passwd"]
        if site.uid == 0:
            ok = True
            text = (
                (
                    "readable: the Expert runs as uid 0 (the invoking user is root); it is the image's "
                    "own file, the host's is not visible (fs.host-files)"
                )
                if shadow.get("ok")
                else f"unreadable ({_errno_name(shadow.get('error'))})"
            )
        else:
            ok = not shadow.get("ok")
            text = f"unreadable ({_errno_name(shadow.get('error'))})" if ok else "READABLE as a non-root user"
        return Judgement(
            ok, text, *tried(passwd, "/etc/passwd, same directory and method", worked="readable")
        )

    P.append(
        reading(
            pid,
            "/etc/shadow cannot be read",
            "unreadable (EACCES) unless the invoking user is root; never the host's",
            "/etc/passwd is readable the same way",
            part="read",
            kind="read_files",
            verdict=j_shadow,
            paths=["/etc/shadow", "/etc/passwd"],
        )
    )

    pid = "fs.docker-socket"
    engine_sockets = [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/run/containerd/containerd.sock",
        "/var/run/docker/containerd/containerd.sock",
        "/run/podman/podman.sock",
        "/run/user/0/docker.sock",
        f"/run/user/{site.uid}/docker.sock",
    ]

    def j_sock(r: Result) -> Judgement:
        found = [s for s in r["sockets"] if not s.startswith(("/tmp/", "/home/sandbox/"))]
        connected = [p for p, a in r["connect"].items() if a["connected"]]
        ok = not found and not connected
        return Judgement(
            ok,
            ("sockets: " + ", ".join(found + connected))
            if not ok
            else "no engine socket, no Unix socket outside the sandbox's own tmpfs",
            *tried(r["control"], "a socket made in /tmp is found and connectable"),
        )

    P.append(
        reading(
            pid,
            "The Docker socket (or any engine socket) is not reachable",
            "no docker.sock/containerd.sock/podman.sock; no Unix socket from the host",
            "a socket the probe creates itself is found and connectable",
            part="scan",
            kind="sockets",
            verdict=j_sock,
            roots=["/"],
            connect=engine_sockets,
        )
    )

    pid = "fs.mounts"

    def j_mounts(r: Result) -> Judgement:
        mounts = r["mounts"]
        binds = {m["mountPoint"] for m in mounts if m["fstype"] in _HOST_FS_TYPES}
        # The masks over the host's steering files: an empty file of the rendered context, read-only.
        masks = {
            m["mountPoint"]
            for m in mounts
            if m["mountPoint"] in site.steering_masked and "ro" in m["options"].split(",")
        }
        unexpected = sorted(binds - _EXPECTED_BINDS - _DOCKER_BINDS - masks)
        found = sorted(binds & _EXPECTED_BINDS)
        return Judgement(
            not unexpected,
            ("unexpected host mounts: " + ", ".join(unexpected))
            if unexpected
            else "host mounts: " + ", ".join(sorted(binds)),
            "/workspace" in found,
            "/workspace is detected as a host mount by the same method"
            if "/workspace" in found
            else "/workspace not detected",
        )

    P.append(
        reading(
            pid,
            "Only the workspace (and the read-only Expert config) come from the host",
            "host filesystems mounted only at /workspace, /sandbox/expert "
            "(+ Docker's hosts/resolv.conf/hostname, + read-only masks over steering files)",
            "the workspace mount is detected by the same method",
            part="list",
            kind="mounts",
            verdict=j_mounts,
        )
    )

    P.append(
        real_and_control(
            "fs.read-only",
            "Nothing outside /workspace and the tmpfs is writable",
            "creating a file fails in /, /etc, /usr, /opt/sandbox, /var, /root, /sandbox/expert, ...",
            "the same write works in /workspace, /tmp and /home/sandbox",
            real={"kind": "write_paths", "dirs": list(_READ_ONLY_DIRS)},
            ctrl={"kind": "write_paths", "dirs": list(_WRITABLE_DIRS)},
            assess=_none_written,
            check=_all_written,
        )
    )

    pid = "fs.writable-mounts"

    def j_rw(r: Result) -> Judgement:
        mounts = r["mounts"]
        rw = {m["mountPoint"] for m in mounts if m["options"].split(",")[0] == "rw"}
        unexpected = sorted(rw - _EXPECTED_RW)
        return Judgement(
            not unexpected,
            ("also writable: " + ", ".join(unexpected))
            if unexpected
            else "writable mounts: " + ", ".join(sorted(rw)),
            "/workspace" in rw and "/tmp" in rw,
            "the workspace and /tmp show up as writable",
        )

    P.append(
        rereading(
            pid,
            "The only writable mounts are the workspace and the tmpfs",
            "read-write mounts limited to /workspace, /tmp, /home/sandbox, /dev/shm and Docker's own",
            "the known writable mounts are reported as such",
            of="fs.mounts/list",
            verdict=j_rw,
        )
    )

    pid = "fs.workspace-symlink"

    def j_links(ev: Evidence, pid: str = pid) -> Judgement:
        reads = _r(ev, f"{pid}/read")
        stats = _r(ev, f"{pid}/stat")
        leaked = [name for name, r in reads.items() if r.get("markers")]
        home = stats.get("/workspace/escape-home", {})
        if _same_file(home, site.host_paths.get("home")):
            leaked.append("/workspace/escape-home is the host's home")
        host_ok = bool(ev.host.get("symlink_host_read"))
        return Judgement(
            not leaked,
            ("leaked: " + ", ".join(leaked))
            if leaked
            else "the links resolve inside the container: no host file behind them",
            host_ok,
            "on the host the same links lead to the host files: " + ("yes" if host_ok else "no"),
        )

    links = [f"/workspace/{name}" for name in site.symlinks]
    P.append(
        AuditProbe(
            pid,
            "A symlink in the workspace pointing outside exposes nothing",
            "links to the host's files resolve to nothing (or the image's own files) inside",
            "on the host, the same links reach the host's files",
            j_links,
            inside=(
                _spec(pid, "read", "read_files", paths=links, markers=[site.marker]),
                _spec(pid, "stat", "stat_paths", paths=links),
            ),
        )
    )
    return P
