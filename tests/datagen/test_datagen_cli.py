"""``gnnff data``: parser registration, list, generate (a real ``--size small`` run), errors."""

import argparse
import json
import os

import ase.io

from gnnff.cli import data as data_cli


def parse(argv):
    parser = argparse.ArgumentParser(prog="gnnff")
    data_cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_list_names_every_set(capsys):
    assert data_cli.run(parse(["data", "list"])) == 0
    out = capsys.readouterr().out
    for name in (
        "si ",
        "sio ",
        "md17:aspirin",
        "md17:ethanol",
        "md17:salicylic_acid",
        "pretrain-molecules",
    ):
        assert name in out
    assert "paper: 12000 frames" in out  # md17 paper: 10k train + 1k valid + 1k test


def test_generate_si_small_end_to_end(tmp_path, capsys):
    out = str(tmp_path / "si")
    args = parse(["data", "generate", "si", "--size", "small", "--seed", "4", "-o", out, "-q"])
    assert data_cli.run(args) == 0
    printed = capsys.readouterr().out
    card = json.load(open(os.path.join(out, "datacard.json")))
    assert card["seed"] == 4 and card["size"] == "small" and card["engine"]["pair_style"] == "sw"
    assert card["command"] == "gnnff data generate si --size small --seed 4"
    for split, expected in (("train", 36), ("valid", 12), ("test", 12)):
        frames = ase.io.read(os.path.join(out, f"si_{split}.extxyz"), ":")
        assert len(frames) == card["sets"][split]["frames"] == expected
        assert f"si_{split}.extxyz: {expected} frames" in printed
        assert {a.info["config_type"] for a in frames} == {"crystal", "vacancy", "liquid"}
    # the project's training reader takes the files as they are (eV, eV/Å, eV/Å^3)
    from gnnff.data.readers import read_structures

    train = os.path.join(out, "si_train.extxyz")
    read = read_structures(train)
    assert [a.get_potential_energy() for a in read] == [
        a.get_potential_energy() for a in ase.io.read(train, ":")
    ]
    assert read[0].get_stress(voigt=False).shape == (3, 3)
    liquid = ase.io.read(os.path.join(out, "si_reference_liquid_2000K.extxyz"), ":")
    crystal = ase.io.read(os.path.join(out, "si_reference_crystal_900K.extxyz"), ":")
    assert len(liquid) == len(crystal) == 25
    # the melted reference really is a liquid: SW liquid Si is denser and more disordered
    assert liquid[-1].get_volume() < crystal[-1].get_volume()
    assert liquid[-1].get_potential_energy() > crystal[-1].get_potential_energy() + 0.2 * 64


def test_generate_error_is_reported_not_raised(tmp_path, capsys):
    args = parse(["data", "generate", "md17:caffeine", "-o", str(tmp_path), "-q"])
    assert data_cli.run(args) == 2
    assert "no shipped geometry for molecule 'caffeine'" in capsys.readouterr().err


def test_bare_data_prints_help(capsys):
    assert data_cli.run(parse(["data"])) == 2
    assert "generate" in capsys.readouterr().out
