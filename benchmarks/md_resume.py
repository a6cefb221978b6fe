"""Continue a claims-study MD run that was cut short from its latest LAMMPS restart file.

A 60-ps GemNet-T run takes an hour of a core (docs/experiments.md, amendment A8); a run cut by
the end of a sitting or a lost machine used to start again from step 0. The study's decks
(stability_common.write_md_input) now write a binary restart file every ``restart_every``
steps, ``restart.<step>.bin``, and flush the log at each thermo row. An MD unit computed again
after an interruption (stability_common.run_md) then:

1. merges the log of the cut segment, if any (``log.resume.lammps``), into ``log.lammps``;
2. cuts ``traj.dump`` and ``log.lammps`` back to the frames and thermo rows before the latest
   restart's step N (what the cut run wrote after it is redone);
3. runs ``in.resume``: ``in.md`` with ``read_restart restart.N.bin`` instead of ``read_data``,
   without ``velocity`` (the velocities and the Nose-Hoover thermostat's state are in the
   restart file), the dump appended to and ``run <steps> upto``;
4. merges the new segment's log, so ``log.lammps`` and ``traj.dump`` read as one run's.

Writing a restart file makes LAMMPS rebuild its neighbour lists at that step, in a run that
goes through without a cut and in a continued one alike, so a continued run repeats an
uninterrupted one with the same deck (tests/benchmarks/test_md_resume.py checks byte-identical
dumps). The restarts belong to the deck that started the run (kept as ``in.md.started``); if
``in.md`` changed since, the restarts are dropped and the run starts again.

    python benchmarks/md_resume.py collect <md_dir> <dest_md_dir>

copies what a cut run needs to continue elsewhere (claims_collect_units.sh --in-progress).
"""

import argparse
import re
import shutil
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

RESTART_ROOT = "restart.*.bin"  # LAMMPS puts the step in place of "*"
STARTED_DECK = "in.md.started"
RESUME_DECK = "in.resume"
SEGMENT_LOG = "log.resume.lammps"
LOG = "log.lammps"
DUMP = "traj.dump"
# what a cut run needs to continue (besides its latest restart)
RUN_FILES = ("in.md", STARTED_DECK, "start.data", DUMP, LOG, SEGMENT_LOG)

_STEP_OF_RESTART = re.compile(r"^restart\.(\d+)\.bin$")
_THERMO_ROW = re.compile(r"^[ \t]*(\d+)(?:[ \t]+\S+)+[ \t]*$")
_CUT_MARK = "# gnnff md_resume: the run was cut; it continues from {restart}, step {step}\n"
# read_thermo_log reads the rows of a run up to its 'Loop time' line (lammps.formats.LogFile)
_LOOP_END = "Loop time of 0 on 1 procs for 0 steps with 0 atoms\n"


def restart_every(steps: int, dump_every: int, parts: int = 12) -> int:
    """Steps between restart files: about ``parts`` per run, a multiple of the dump and thermo
    interval (so the continued run's first frame and row are the ones it replaces)."""
    return dump_every * max(1, round(steps / parts / dump_every))


def restart_commands(every: int) -> str:
    """Deck lines (before ``run``) that make a run continuable."""
    return (
        f"restart         {every} {RESTART_ROOT}\n"
        "thermo_modify   flush yes  # a cut run's log holds every row up to its last restart\n"
    )


def restarts(md_dir: Path) -> List[Tuple[int, Path]]:
    """(step, file) of the restart files in ``md_dir``, oldest first."""
    found = []
    for path in Path(md_dir).glob(RESTART_ROOT):
        match = _STEP_OF_RESTART.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def resume_deck(deck: str, restart_name: str) -> str:
    """``deck`` (an in.md) continued from ``restart_name``."""
    out, dumps, seen_read, seen_run = [], [], False, False
    for line in deck.splitlines():
        words = line.split()
        command = words[0] if words else ""
        if command == "read_data":
            out.append(f"read_restart    {restart_name}")
            seen_read = True
            continue
        if command == "velocity":  # the restart holds the velocities
            continue
        if command == "dump":
            dumps.append(words[1])
        if command == "run":
            seen_run = True
            for dump in dumps:  # dump_modify append has to come before the run
                out.append(f"dump_modify     {dump} append yes")
            out.append(f"run             {words[1]} upto")
            continue
        out.append(line)
    if not (seen_read and seen_run):
        raise ValueError("md_resume: the deck has no read_data or no run command to continue")
    return "\n".join(out) + "\n"


def truncate_dump(path: Path, step: int) -> int:
    """Cut a LAMMPS text dump before its first frame at ``step`` or later (or its first frame
    cut while it was written); the number of frames kept."""
    path = Path(path)
    if not path.exists():
        return 0
    kept, cut = 0, None
    with open(path, "rb") as handle:
        while cut is None:
            start = handle.tell()
            line = handle.readline()
            if not line:
                break
            if line.startswith(b"ITEM: TIMESTEP"):
                try:
                    frame_step = int(handle.readline())
                except ValueError:
                    frame_step = step
                if frame_step >= step:
                    cut = start
                else:
                    kept += 1
    if cut is not None:
        with open(path, "r+b") as handle:
            handle.truncate(cut)
    return kept


def truncate_log(path: Path, step: int, restart_name: str) -> None:
    """Cut ``log.lammps`` before its first thermo row at ``step`` or later and mark the cut, so
    that the next segment's log appended after it reads as a new run of the same log."""
    path = Path(path)
    text = path.read_text(errors="replace") if path.exists() else ""
    lines, cut, in_thermo = text.splitlines(True), None, False
    for k, line in enumerate(lines):
        if re.match(r"^ *Step ", line):
            in_thermo = True
        elif line.startswith("Loop time of"):
            in_thermo = False
        elif in_thermo:
            match = _THERMO_ROW.match(line)
            if match and int(match.group(1)) >= step:
                cut = k
                break
    kept = "".join(lines if cut is None else lines[:cut])
    if kept and not kept.endswith("\n"):  # a line cut while it was written
        kept = kept[: kept.rfind("\n") + 1]
    path.write_text(kept + _CUT_MARK.format(restart=restart_name, step=step) + _LOOP_END)


def merge_segment_log(md_dir: Path) -> None:
    """Append the last segment's log to log.lammps (after it ran, or after it was cut)."""
    segment = Path(md_dir) / SEGMENT_LOG
    if segment.exists():
        with open(Path(md_dir) / LOG, "a") as out:
            out.write(segment.read_text(errors="replace"))
        segment.unlink()


def prepare(md_dir: Path) -> Optional[int]:
    """Before an MD run of ``md_dir/in.md``: the restart step it continues from, with the dump,
    log and in.resume made ready; None for a run from the start (no restart of this deck)."""
    md_dir = Path(md_dir)
    deck, started = md_dir / "in.md", md_dir / STARTED_DECK
    found = restarts(md_dir)
    if found and (not started.exists() or started.read_text() != deck.read_text()):
        print(
            f"md_resume: {md_dir}/in.md changed since its restarts were written; "
            "starting the run again",
            flush=True,
        )
        for _, path in found:
            path.unlink()
        found = []
    if not found:
        for name in (SEGMENT_LOG, RESUME_DECK):
            (md_dir / name).unlink(missing_ok=True)
        shutil.copyfile(deck, started)
        return None
    merge_segment_log(md_dir)
    step, restart = found[-1]
    truncate_dump(md_dir / DUMP, step)
    truncate_log(md_dir / LOG, step, restart.name)
    (md_dir / RESUME_DECK).write_text(resume_deck(deck.read_text(), restart.name))
    print(f"md_resume: {md_dir} continues from {restart.name}", flush=True)
    return step


def finish(md_dir: Path) -> None:
    """After a segment ended (run through, crashed or timed out): its log merged, and only the
    latest restart kept (the run can be extended or repeated from it)."""
    merge_segment_log(md_dir)
    for _, path in restarts(md_dir)[:-1]:
        path.unlink()


def collect(md_dir: Path, dest: Path, settle_s: float = 10.0) -> Optional[Path]:
    """Copy a cut (or running) run's latest complete restart and its files so far to ``dest``;
    the restart copied is one at least ``settle_s`` old (not one LAMMPS is writing). Returns
    the restart copied, or None when there is none yet."""
    md_dir, dest = Path(md_dir), Path(dest)
    settled = [(s, p) for s, p in restarts(md_dir) if time.time() - p.stat().st_mtime >= settle_s]
    if not settled:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    restart = settled[-1][1]
    for _, old in restarts(dest):
        if old.name != restart.name:
            old.unlink()
    shutil.copy2(restart, dest / restart.name)
    for name in RUN_FILES:  # written after the restart: they hold at least its step
        if (md_dir / name).exists():
            shutil.copy2(md_dir / name, dest / name)
        else:
            (dest / name).unlink(missing_ok=True)
    return dest / restart.name


def drop_collected(dest: Path) -> None:
    """Remove a cut run's copied files from ``dest`` once the run has finished."""
    dest = Path(dest)
    for _, path in restarts(dest):
        path.unlink()
    for name in RUN_FILES:
        (dest / name).unlink(missing_ok=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("collect", "copy a cut run's latest restart and files so far"),
        ("drop", "remove a finished run's copied files"),
    ):
        command = sub.add_parser(name, help=text)
        if name == "collect":
            command.add_argument("md_dir", type=Path)
        command.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    if args.command == "collect":
        copied = collect(args.md_dir, args.dest)
        print(f"{args.md_dir}: {copied.name if copied else 'no restart yet'}")
    else:
        drop_collected(args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
