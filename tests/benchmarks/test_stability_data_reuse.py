"""The studies' data step (benchmarks/stability_common.generate_data) reuses a folder only when
its data card's files are there: a card copied in without them (collected units restored before
the data were regenerated, docs/experiments.md "On a new machine") regenerates the data instead
of handing the study a folder without frames."""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import stability_common as common  # noqa: E402

CARD = {
    "name": "md17:ethanol",
    "size": "small",
    "seed": 0,
    "sets": {"train": {"file": "md17_ethanol_train.extxyz", "frames": 3}},
    "reference_md": [{"file": "md17_ethanol_reference_ethanol_500K.extxyz", "frames": 2}],
}


def generator(calls):
    """Stands in for `gnnff data generate`: writes the card's files and the card."""

    def run_command(command, log, env=None):
        outdir = Path(command[command.index("-o") + 1])
        outdir.mkdir(parents=True, exist_ok=True)
        for name in ("md17_ethanol_train.extxyz", "md17_ethanol_reference_ethanol_500K.extxyz"):
            (outdir / name).write_text("frames\n")
        (outdir / "datacard.json").write_text(json.dumps(CARD))
        calls.append(str(outdir))

    return run_command


def test_a_card_without_its_files_regenerates_them(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(common, "run_command", generator(calls))
    outdir = tmp_path / "data_md17_ethanol_small_0"
    outdir.mkdir()
    (outdir / "datacard.json").write_text(json.dumps(CARD))  # copied in, as collected
    record = tmp_path / "data_md17_ethanol_small_0.card.json"
    record.write_text(
        json.dumps({"key": {"name": "md17:ethanol", "size": "small", "seed": 0}, "result": CARD})
    )
    assert common.data_files_missing(CARD, outdir) == [
        "md17_ethanol_train.extxyz",
        "md17_ethanol_reference_ethanol_500K.extxyz",
    ]
    card = common.generate_data("md17:ethanol", "small", 0, outdir, tmp_path / "logs")
    assert calls == [str(outdir)] and card == CARD
    assert common.data_files_missing(CARD, outdir) == []

    # with its files there, the folder is reused as it is
    assert common.generate_data("md17:ethanol", "small", 0, outdir, tmp_path / "logs") == CARD
    assert calls == [str(outdir)]
    (outdir / "md17_ethanol_reference_ethanol_500K.extxyz").unlink()
    common.generate_data("md17:ethanol", "small", 0, outdir, tmp_path / "logs")
    assert calls == [str(outdir)] * 2
