"""benchmarks/claims_pause.sh: a job and the processes it started stop, go on and end together;
the other experiment's job is left alone."""

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAUSE = REPO / "benchmarks" / "claims_pause.sh"
JOB = (
    "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import time; time.sleep(60)'])"
)


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def children(pid: int) -> list:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_stop_cont_and_kill_reach_the_jobs_children_and_only_that_experiment(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    jobs = {}
    for name in ("pretraining", "decorrelation"):
        script = tmp_path / "benchmarks" / f"stability_{name}.py"
        script.write_text(JOB)
        jobs[name] = subprocess.Popen([sys.executable, str(script)])
    env = dict(os.environ, CLAIMS_JOBS_PREFIX=str(tmp_path) + "/")
    try:
        deadline = time.time() + 30
        while not all(children(j.pid) for j in jobs.values()) and time.time() < deadline:
            time.sleep(0.1)
        job, other = jobs["pretraining"], jobs["decorrelation"]
        (child,) = children(job.pid)
        subprocess.run(["bash", PAUSE, "stop", "pretraining"], env=env, check=True)
        assert state(job.pid) == "T" and state(child) == "T"
        assert state(other.pid) != "T" and state(children(other.pid)[0]) != "T"
        subprocess.run(["bash", PAUSE, "cont", "pretraining"], env=env, check=True)
        assert state(job.pid) != "T" and state(child) != "T"
        subprocess.run(["bash", PAUSE, "kill", "pretraining"], env=env, check=True)
        assert job.wait(timeout=10) == -9  # the job first: it never sees its child die
        deadline = time.time() + 10
        while Path(f"/proc/{child}").exists() and state(child) != "Z" and time.time() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{child}").exists() or state(child) == "Z"
        assert other.poll() is None and children(other.pid)
        bad = subprocess.run(
            ["bash", PAUSE, "stop", "gpu"], env=env, capture_output=True, text=True
        )
        assert bad.returncode == 2 and "unknown experiment 'gpu'" in bad.stderr
    finally:
        for j in jobs.values():
            for pid in children(j.pid):
                os.kill(pid, 9)
            if j.poll() is None:
                j.kill()
            j.wait()
