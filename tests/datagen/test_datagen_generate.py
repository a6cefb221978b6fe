"""End to end: plans shortened to a few frames -> files; labels re-checked by independent
single points, data cards checked against the files, same seed -> identical bytes."""

import dataclasses
import hashlib
import json
import os

import ase.io
import numpy as np
import pytest

from gnnff.datagen import DATACARD, catalog, generate, geometries, lammps_engine, xtb_engine

REQUIRED = [
    "name",
    "description",
    "size",
    "seed",
    "command",
    "generator",
    "openblas_core",
    "engine",
    "md",
    "units",
    "labels",
    "stress_convention",
    "sets",
    "reference_md",
]


def tiny_plan(name, frames=2):
    """The catalogue's small plan cut to the first and last run of every output set."""
    plan = catalog.make_plan(name, "small")
    by_split = {}
    for run in plan.runs:
        by_split.setdefault(run.split, []).append(run)
    runs = []
    for split_runs in by_split.values():
        for run in {id(r): r for r in (split_runs[0], split_runs[-1])}.values():
            # melt/quench stages cut to 300 steps each: same code path, less time
            fam = run.family
            short = dataclasses.replace(
                fam,
                anneal=lambda t, fam=fam: tuple(
                    (t0, t1, min(steps, 300)) for t0, t1, steps in fam.anneal(t)
                ),
            )
            runs.append(dataclasses.replace(run, family=short, n_frames=frames, replicas=1))
    plan.runs, plan.n_equil_steps, plan.interval_steps = runs, 20, 10
    return plan


def make(tmp_path, name, seed, sub, workers=2):
    out = str(tmp_path / sub)
    card = generate(name, "small", seed, out, workers=workers, progress=False, plan=tiny_plan(name))
    return out, card


def files(outdir):
    return {f: open(os.path.join(outdir, f), "rb").read() for f in sorted(os.listdir(outdir))}


def check_card(card, outdir):
    on_disk = json.load(open(os.path.join(outdir, DATACARD)))
    assert on_disk == json.loads(json.dumps(card))
    for key in REQUIRED:
        assert key in card, key
    entries = list(card["sets"].values()) + card["reference_md"]
    assert set(os.listdir(outdir)) == {e["file"] for e in entries} | {DATACARD}
    for entry in entries:
        path = os.path.join(outdir, entry["file"])
        frames = ase.io.read(path, ":")
        assert len(frames) == entry["frames"] == sum(t["frames"] for t in entry["trajectories"])
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == entry["sha256"]
        assert sorted({a.info["traj_seed"] for a in frames}) == sorted(entry["seeds"])
        assert {a.info["target_temperature_K"] for a in frames} == set(entry["temperatures_K"])
        assert {a.info["config_type"] for a in frames} == set(entry["families"])
        assert sorted({len(a) for a in frames}) == entry["atoms_per_frame"]
        compositions = [
            json.loads(c)
            for c in sorted({json.dumps(geometries.composition(a), sort_keys=True) for a in frames})
        ]
        assert compositions == entry["compositions"]
    assert card["md"]["sampling_interval_fs"] == pytest.approx(
        card["md"]["sampling_interval_steps"] * card["md"]["timestep_fs"]
    )


def test_lammps_set_reproducible_labels_true_card_complete(tmp_path):
    a, card = make(tmp_path, "si", 1, "a", workers=2)
    b, _ = make(tmp_path, "si", 1, "b", workers=1)
    c, _ = make(tmp_path, "si", 2, "c")
    assert files(a) == files(b)  # same seed: identical bytes, whatever the worker count
    fa, fc = files(a), files(c)
    assert all(fa[f] != fc[f] for f in fa if f.endswith(".extxyz"))
    check_card(card, a)
    assert set(card["sets"]) == {"train", "valid", "test"}
    assert card["engine"]["potential_sha256"] == lammps_engine.file_sha256(
        lammps_engine.potential_path("Si.sw")
    )
    for name in ("si_train.extxyz", "si_reference_liquid_2000K.extxyz"):
        for atoms in ase.io.read(os.path.join(a, name), ":"):
            fresh = lammps_engine.single_point(atoms, catalog.SW_PAIR)
            # the file rounds positions to 1e-8 Å
            assert atoms.get_potential_energy() == pytest.approx(fresh["energy"], abs=1e-5)
            np.testing.assert_allclose(atoms.get_forces(), fresh["forces"], atol=1e-5)
            np.testing.assert_allclose(atoms.get_stress(), fresh["stress"], atol=1e-7)


def test_sio_out_of_distribution_compositions(tmp_path):
    out, card = make(tmp_path, "sio", 0, "sio")
    check_card(card, out)
    ratios = {}
    for split in ("train", "ood_SiO1.5", "ood_SiO1.1"):
        for atoms in ase.io.read(os.path.join(out, card["sets"][split]["file"]), ":"):
            comp = geometries.composition(atoms)
            ratios.setdefault(split, set()).add(round(comp["O"] / comp["Si"], 3))
    assert ratios == {"train": {2.0}, "ood_SiO1.5": {1.5}, "ood_SiO1.1": {1.094}}
    atoms = ase.io.read(os.path.join(out, card["sets"]["ood_SiO1.1"]["file"]), "-1")
    fresh = lammps_engine.single_point(atoms, catalog.TERSOFF_PAIR)
    np.testing.assert_allclose(atoms.get_forces(), fresh["forces"], atol=1e-5)
    # tiny plan keeps the first and last reference run: SiO2 and SiO1.1 melt-quenched
    assert [r["families"] for r in card["reference_md"]] == [
        ["SiO2-amorphous"],
        ["SiO1.1-amorphous"],
    ]


def test_xtb_set_labels_true_and_reference_is_continuous(tmp_path, xtb_pool):
    out, card = make(tmp_path, "md17:ethanol", 0, "eth")
    check_card(card, out)
    assert card["engine"]["name"] == "tblite" and card["engine"]["method"] == "GFN2-xTB"
    for atoms in ase.io.read(os.path.join(out, "md17_ethanol_train.extxyz"), ":"):
        fresh = xtb_pool.submit(xtb_engine.single_point, atoms).result()
        assert atoms.get_potential_energy() == pytest.approx(fresh["energy"], abs=1e-5)
        np.testing.assert_allclose(atoms.get_forces(), fresh["forces"], atol=3e-4)
        assert "stress" not in atoms.calc.results
    reference = ase.io.read(os.path.join(out, card["reference_md"][0]["file"]), ":")
    steps = [a.info["step"] for a in reference]
    assert steps == [5 * (k + 1) for k in range(len(reference))]  # one trajectory, evenly spaced


def test_bad_arguments_have_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="size 'huge' is unknown; use one of"):
        generate("si", "huge", 0, str(tmp_path))
    with pytest.raises(ValueError, match="data set 'md18' is unknown"):
        generate("md18", "small", 0, str(tmp_path))
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        generate("si", "small", -1, str(tmp_path))
    with pytest.raises(ValueError, match="no shipped geometry for molecule 'caffeine'"):
        generate("md17:caffeine", "small", 0, str(tmp_path))
    (tmp_path / DATACARD).write_text(json.dumps({"name": "sio"}))
    with pytest.raises(ValueError, match="already holds data set 'sio'.*--overwrite"):
        generate("si", "small", 0, str(tmp_path))
