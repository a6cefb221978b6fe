"""A damaged frame in the middle of a dump is skipped and the frames after it are analysed; the
headline says that the analysis covers less than the file (issue 12, item 3)."""

import numpy as np
import pytest
from stability_testlib import write_dump
from test_criteria import analyse, cu_frames

from gnnff.stability import DamagedFrameWarning, LammpsDumpReader, TrajectoryWarning


def drop_atom_lines(path, step, n_lines):
    """Remove the last ``n_lines`` atom lines of the frame at ``step`` (header kept)."""
    lines = path.read_text().splitlines(keepends=True)
    start = lines.index(f"{step}\n") - 1  # its ITEM: TIMESTEP line
    following = [
        k for k, line in enumerate(lines) if line.startswith("ITEM: TIMESTEP") and k > start
    ]
    end = following[0] if following else len(lines)
    del lines[end - n_lines : end]
    path.write_text("".join(lines))


def pushed_together_dump(path, n_frames=20, from_frame=9):
    """Cu crystal (frames 0.1 ps apart) whose atom 0 sits 0.3 d_nn from atom 1 from
    ``from_frame`` on: close_contacts fails at exactly from_frame x 0.1 ps."""
    frames, cell, symbols = cu_frames(n_frames=n_frames)
    for k in range(from_frame, n_frames):
        frames[k][0] = frames[k][1] + np.array([0.3 * 3.61 / np.sqrt(2), 0.0, 0.0])
    write_dump(path, frames, symbols, cell)


def test_damaged_middle_frame_is_skipped_and_the_rest_is_read(tmp_path):
    path = tmp_path / "cu.dump"
    frames, cell, symbols = cu_frames(n_frames=20)
    write_dump(path, frames, symbols, cell)
    drop_atom_lines(path, 300, 10)
    with pytest.warns(DamagedFrameWarning, match="step 300"):
        report = analyse(path)
    assert report.n_frames == 19 and report.last_step == 1900  # all 16 frames after it kept
    assert report.stable_through_end and report.stable_time == pytest.approx(1.9)
    table = report.format_table()
    headline = next(line for line in table.splitlines() if "STABLE" in line)
    assert "whole run" not in headline
    assert "NOT the whole file" in headline and "1 damaged frame skipped (step 300)" in headline
    assert report.to_dict()["complete_file"] is False
    assert report.to_dict()["frames_not_analysed"][0]["step"] == 300
    assert report.criterion("lost_atoms").first_failure_step is None


def test_failure_after_a_damaged_frame_is_found_at_its_known_time(tmp_path):
    path = tmp_path / "cu.dump"
    pushed_together_dump(path, from_frame=9)
    drop_atom_lines(path, 500, 10)
    with pytest.warns(DamagedFrameWarning, match="step 500"):
        report = analyse(path)
    assert report.first_failed == ["close_contacts"]
    assert report.stable_time == pytest.approx(0.9)
    assert "NOT the whole file" in report.headline() and "step 500" in report.headline()
    steps = report.criterion("close_contacts").steps
    assert 500 not in steps and steps[-1] == 1900 and len(steps) == 19


def test_damaged_frames_of_other_kinds(tmp_path):
    """Extra atom lines, a garbled header and a short line each skip exactly one frame."""
    frames, cell, symbols = cu_frames(n_frames=8)
    path = tmp_path / "cu.dump"
    write_dump(path, frames, symbols, cell)
    text = path.read_text()
    blocks = text.split("ITEM: TIMESTEP\n")[1:]
    blocks[2] = blocks[2] + "1 Cu 0.0 0.0 0.0\n"  # one atom line too many
    blocks[4] = blocks[4].replace("ITEM: NUMBER OF ATOMS\n108\n", "ITEM: NUMBER OF AT\n")
    lines = blocks[6].splitlines(keepends=True)
    lines[20] = lines[20][:10] + "\n"  # a short atom line (values cut)
    blocks[6] = "".join(lines)
    path.write_text("".join("ITEM: TIMESTEP\n" + b for b in blocks))
    with pytest.warns(DamagedFrameWarning) as caught:
        read = list(LammpsDumpReader(path))
    assert [f.step for f in read] == [0, 100, 300, 500, 700]
    messages = [str(w.message) for w in caught if w.category is DamagedFrameWarning]
    assert len(messages) == 3
    assert "step 200" in messages[0] and "109 complete of 108 atom lines" in messages[0]
    assert "step 400" in messages[1] and "step 600" in messages[2]


def test_damaged_frame_then_truncated_last_frame(tmp_path):
    path = tmp_path / "cu.dump"
    frames, cell, symbols = cu_frames(n_frames=10)
    write_dump(path, frames, symbols, cell)
    drop_atom_lines(path, 200, 10)
    text = path.read_text()
    path.write_text(text[: text.rindex("ITEM: ATOMS") + 500])  # cut inside frame 9
    with pytest.warns(TrajectoryWarning):
        report = analyse(path)
    assert report.n_frames == 8 and report.last_step == 800
    note = report.coverage_note()
    assert "1 damaged frame skipped (step 200)" in note
    assert "truncated last frame dropped (step 900)" in note


def test_duplicate_atom_ids_are_named_in_a_warning(tmp_path):
    frames, cell, symbols = cu_frames(n_frames=3)
    path = tmp_path / "cu.dump"
    write_dump(path, frames, symbols, cell)
    text = path.read_text()
    blocks = text.split("ITEM: TIMESTEP\n")[1:]
    lines = blocks[1].splitlines(keepends=True)
    atoms_at = next(k for k, line in enumerate(lines) if line.startswith("ITEM: ATOMS")) + 1
    # ids 5 and 17 appear twice (the lines of atoms 6 and 18 are rewritten with their ids);
    # the count stays 108 lines
    lines[atoms_at + 5] = "5" + lines[atoms_at + 5][lines[atoms_at + 5].index(" ") :]
    lines[atoms_at + 17] = "17" + lines[atoms_at + 17][lines[atoms_at + 17].index(" ") :]
    blocks[1] = "".join(lines)
    path.write_text("".join("ITEM: TIMESTEP\n" + b for b in blocks))
    with pytest.warns(TrajectoryWarning, match=r"step 100: duplicate atom ids 5, 17"):
        read = list(LammpsDumpReader(path))
    assert len(read) == 3 and read[1].n_atoms == 106
    assert not np.isin([6, 18], read[1].ids).any()
    np.testing.assert_allclose(read[1].positions[4], frames[1][4], atol=1e-12)  # first line kept
