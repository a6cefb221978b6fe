"""docs/extending.md is true: a criterion and a reader defined outside the package, registered
by importing them, reach the CLI flags, the options, the report and open_trajectory with no
other file changed."""

import argparse
from dataclasses import dataclass

import numpy as np
import pytest
from stability_testlib import write_dump
from test_criteria import cu_frames

from gnnff.stability import (
    CRITERIA,
    READERS,
    AnalysisContext,
    Criterion,
    CriterionResult,
    Frame,
    StabilityAnalysis,
    StabilityOptions,
    TrajectoryReader,
    open_trajectory,
    option,
    register_criterion,
)


@dataclass
class MaxSpeedOptions:
    limit: float = option(0.5, "Å/fs: a frame fails when an atom is faster")


class MaxSpeed(Criterion):
    Options = MaxSpeedOptions
    order = 50

    def prepare(self, context: AnalysisContext) -> None:
        self.results = CriterionResult(
            name="max_speed",
            description="max_i |v_i|",
            unit="Å/fs",
            threshold=self.options.limit,
            fails_when="above",
        )

    def single_frame(self, frame):
        if frame.velocities is None:
            return None
        return frame.step, float(np.linalg.norm(frame.velocities, axis=1).max())

    def conclude(self, records, stop_step=None) -> None:
        for record in records:
            if record is not None:
                step, value = record
                self.results.record(
                    step, value, value > self.options.limit, f"an atom at {value:.2f} Å/fs"
                )


class ToyReader(TrajectoryReader):
    """'#toy <step>' line, then one 'x y z' line per atom, frames separated by blank lines."""

    description = "a toy file (starts with '#toy')"
    priority = 5

    @classmethod
    def sniff(cls, first_line):
        return first_line.startswith("#toy")

    def _blocks(self):
        return [b for b in open(self.path).read().split("\n\n") if b.strip()]

    def count_frames(self, part=0, n_parts=1):
        total = len(self._blocks())
        return total * (part + 1) // n_parts - total * part // n_parts

    def frames(self, part=0, n_parts=1, first_index=0):
        blocks = self._blocks()
        lo, hi = len(blocks) * part // n_parts, len(blocks) * (part + 1) // n_parts
        for k, block in enumerate(blocks[lo:hi]):
            lines = block.strip().splitlines()
            positions = np.array([[float(v) for v in line.split()] for line in lines[1:]])
            yield Frame(
                step=int(lines[0].split()[1]),
                ids=np.arange(1, len(positions) + 1),
                positions=positions,
                cell=np.eye(3) * 10,
                pbc=np.ones(3, bool),
                origin=np.zeros(3),
                symbols=np.array(["Ar"] * len(positions)),
                index=first_index + k,
            )


@pytest.fixture
def registered():
    register_criterion("max_speed")(MaxSpeed)
    READERS.register("toy")(ToyReader)
    yield
    CRITERIA._builders.pop("max_speed")  # the registry has no public unregister
    READERS._builders.pop("toy")


def test_a_registered_criterion_gets_flags_options_and_a_report_row(registered, tmp_path):
    from gnnff.cli.analyze import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert "--max-speed-limit" in parser.format_help() and "max_speed" in parser.format_help()
    args = parser.parse_args(["traj.dump", "--max-speed-limit", "0.3"])
    assert args.max_speed_limit == 0.3
    frames, cell, symbols = cu_frames(n_frames=4)
    path = tmp_path / "cu.dump"
    # write_dump gives every atom v = (0.1, -0.2, 0.3), so |v| = sqrt(0.14) = 0.374
    write_dump(
        path, frames, symbols, cell, columns=("id", "element", "x", "y", "z", "vx", "vy", "vz")
    )
    report = StabilityAnalysis(str(path), options=StabilityOptions(max_speed_limit=0.3)).run()
    speed = report.results.criterion("max_speed")
    assert speed.values == pytest.approx([np.sqrt(0.14)] * 4)
    assert speed.first_failure_step == 0 and "max_speed" in report.results.first_failed
    assert "max_speed" in report.results.format_table()
    with pytest.raises(ValueError, match="did you mean 'max_speed_limit'"):
        StabilityOptions(max_speed_limt=1.0)
    alone = MaxSpeed(MaxSpeedOptions(limit=0.3)).run(open_trajectory(path))  # without the pipeline
    assert alone.results.values == speed.values and alone.results.first_failure_step == 0


def test_a_registered_reader_is_sniffed_and_listed(registered, tmp_path):
    path = tmp_path / "run.txt"
    path.write_text("#toy 0\n1 1 1\n2 2 2\n\n#toy 10\n1 1 1.5\n2 2 2\n")
    reader = open_trajectory(path)
    assert isinstance(reader, ToyReader)
    assert [f.step for f in reader] == [0, 10]
    (tmp_path / "bad.txt").write_text("something else\n")
    with pytest.raises(ValueError, match=r"neither a toy file \(starts with '#toy'\) nor"):
        open_trajectory(tmp_path / "bad.txt")
    report = StabilityAnalysis(str(path), options=StabilityOptions(rdf_window=1)).run().results
    assert report.n_frames == 2 and report.criterion("close_contacts").values[1] < 1.0
