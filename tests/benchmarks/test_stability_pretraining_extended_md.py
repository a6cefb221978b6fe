"""Amendment A5 of the claims study (docs/experiments.md): Experiment 2's longer MD of every
model, as a work unit of its own beside the primary one. The study's data generation, training,
evaluation, LAMMPS and analysis are replaced by recorders here (they have their own tests); what
is checked is the unit layout and caching around them (the longer run gets its own folder and
length, the primary units are read back and never redone), the rule that triggers the amendment,
and the claims and KM panel that compare the longer runs at their own censoring time."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import stability_claims as claims  # noqa: E402
import stability_pretraining as study  # noqa: E402

SCRATCH_FAILS_AT_PS = 2.0  # recorded models from scratch fail here; fine-tuned ones never


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """The study with recorders instead of data generation, training, evaluation, MD and
    analysis. Every training, evaluation, MD and analysis is written down; a model from scratch
    fails at 2 ps (a 1 ps run is censored, a 3 ps run fails), a fine-tuned one is stable to the
    end of any run, and the xTB reference is stable."""
    import ase.build
    import ase.io

    common = study.common
    calls = {"train": [], "evaluate": [], "md": [], "analyse": []}
    lengths = {}

    def generate_data(name, size, seed, outdir, logs, workers=1):
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        molecule = ase.build.molecule("CH3CH2OH")
        prefix = name.replace(":", "_")
        for part in ("train", "valid", "test"):
            ase.io.write(outdir / f"{prefix}_{part}.extxyz", [molecule] * 3)
        frames = []
        for step in range(2):
            frame = molecule.copy()
            frame.info["time_ps"] = 0.005 * step
            frames.append(frame)
        ase.io.write(outdir / f"{prefix}_reference_md_500K.extxyz", frames)
        return {"name": name, "size": size, "seed": seed, "sets": {}}

    def train(config, run_dir, n_train, threads=None):
        calls["train"].append(str(Path(run_dir).relative_to(tmp_path / "work")))
        return {
            "epochs": 1,
            "steps": 10,
            "seconds_per_step": 0.1,
            "wall_s": 2.0,
            "best": {"val_forces_mae": 0.04},
        }

    def evaluate(checkpoint, data, out_json):
        calls["evaluate"].append(str(Path(out_json).relative_to(tmp_path / "work")))
        return {"forces_mae": 40.0, "energy_mae": 5.0}

    def write_md_input(start, md_dir, model, elements, temperature, steps, dt, every, **kw):
        Path(md_dir).mkdir(parents=True, exist_ok=True)
        lengths[str(md_dir)] = steps * dt
        calls["md"].append((str(Path(md_dir).relative_to(tmp_path / "work")), steps))

    def analyse(md_dir, reference, elements, **options):
        calls["analyse"].append(str(Path(md_dir).relative_to(tmp_path / "work")))
        total = lengths[str(md_dir)]
        stable = min(total, SCRATCH_FAILS_AT_PS) if "scratch" in str(md_dir) else total
        return {
            "stable_time_ps": stable,
            "total_time_ps": total,
            "stable_through_end": stable >= total,
            "first_failed": [] if stable >= total else ["bonds"],
            "failure_reason": [] if stable >= total else ["a bond stretched"],
            "rdf_error_stable": 0.1,
            "max_bond_deviation_A": 0.1,
        }

    def analyse_reference(trajectory, reference, elements, **options):  # the 10 ps xTB MD
        return {
            "stable_time_ps": 10.0,
            "total_time_ps": 10.0,
            "stable_through_end": True,
            "first_failed": [],
            "failure_reason": [],
            "rdf_error_stable": None,
            "max_bond_deviation_A": 0.1,
        }

    monkeypatch.setattr(common, "generate_data", generate_data)
    monkeypatch.setattr(common, "train", train)
    monkeypatch.setattr(common, "export", lambda checkpoint, model: model)
    monkeypatch.setattr(common, "evaluate", evaluate)
    monkeypatch.setattr(common, "reference_force_rms", lambda path: 800.0)
    monkeypatch.setattr(common, "write_md_input", write_md_input)
    monkeypatch.setattr(common, "run_md", lambda md_dir, nprocs, timeout: {"returncode": 0})
    monkeypatch.setattr(common, "analyse", analyse)
    monkeypatch.setattr(common, "analyse_trajectory", analyse_reference)
    monkeypatch.setattr(common, "machine_info", lambda: {})

    def run(*extra, out="result.json"):
        out = tmp_path / out
        args = ["--size", "small", "--molecule", "ethanol", "--workdir", str(tmp_path / "work")]
        args += ["--json", str(out), "--np", "1", "--threads", "1", "--datagen-workers", "1"]
        args += ["--pretrain-data-seeds", "0", "--seeds", "0", "1", *extra]
        assert study.main(args) == 0
        return json.loads(out.read_text())

    return run, calls


def test_extended_md_runs_beside_the_primary_unit_and_never_redoes_it(recorded, tmp_path):
    run, calls = recorded
    primary_steps = study.SIZES["small"]["md_steps"]  # 2000 steps of 0.5 fs = 1 ps
    runs = [(s, v) for s in (0, 1) for v in ("finetuned", "scratch")]
    primary = run(out="primary.json")
    assert calls["md"] == [(f"seed{s}/{v}/md", primary_steps) for s, v in runs]
    assert len(calls["train"]) == 1 + 4 and len(calls["evaluate"]) == 4  # pre-training + 4
    assert primary["extended_md_ps"] is None and not any(
        "extended_md" in r for r in primary["runs"]
    )
    done = {k: len(v) for k, v in calls.items()}

    extended = run("--extend-md", "3", out="extended.json")
    # only the longer runs are new: every model 3 ps = 6000 steps in md_3ps/, nothing primary
    assert calls["md"][done["md"] :] == [(f"seed{s}/{v}/md_3ps", 6000) for s, v in runs]
    assert calls["analyse"][done["analyse"] :] == [f"seed{s}/{v}/md_3ps" for s, v in runs]
    assert len(calls["train"]) == done["train"] and len(calls["evaluate"]) == done["evaluate"]
    assert extended["extended_md_ps"] == 3.0
    for r in extended["runs"]:
        assert r["stability"]["total_time_ps"] == 1.0  # the primary result, read back
        assert r["stability"]["stable_through_end"]
        assert r["extended_md"]["md_ps"] == 3.0
        assert r["extended_md"]["stability"]["stable_time_ps"] == (
            SCRATCH_FAILS_AT_PS if r["variant"] == "scratch" else 3.0
        )
    assert [r["stability"] for r in extended["runs"]] == [r["stability"] for r in primary["runs"]]
    assert extended["reference_md_control"]["total_time_ps"] == 10.0  # not extended
    rows = [(r["variant"], r["extended_md_ps"]) for r in extended["summary"]]
    assert rows == [("finetuned", None), ("scratch", None), ("finetuned", 3.0), ("scratch", 3.0)]
    assert "| scratch, 3 ps (A5) | 1 |" in study.markdown_tables(extended)
    done = {k: len(v) for k, v in calls.items()}

    # --reuse of a result without the extension: those runs are not taken as they are, but
    # every unit is cached by now, so nothing is computed and the runs gain their longer MD
    reused = run("--extend-md", "3", "--reuse", str(tmp_path / "primary.json"), out="r1.json")
    assert reused["runs"] == extended["runs"]
    # a result with it is reused as it is; so is the same call without --reuse
    assert (
        run("--extend-md", "3", "--reuse", str(tmp_path / "extended.json"), out="r2.json")["runs"]
        == extended["runs"]
    )
    assert run("--extend-md", "3", out="r3.json")["runs"] == extended["runs"]
    assert run(out="r4.json")["runs"] == primary["runs"]
    assert {k: len(v) for k, v in calls.items()} == done

    # claims: the primary comparison stays at 1 ps (all censored: the rule triggers), the
    # amended one at 3 ps, where every model from scratch fails at 2 ps
    result = claims.pretraining_claims(extended, n_boot=50)
    assert result["molecules"]["ethanol"]["censored_at_ps"] == 1.0
    assert result["amendment_A5_rule"] == {
        "runs": 4,
        "censored": 4,
        "evaluable": True,
        "triggers": True,
    }
    amended = result["amended_A5"]
    assert amended["md_ps"] == 3.0 and amended["seeds"] == [0, 1]
    assert amended["status"] == "complete: every seed of the primary comparison"
    assert amended["reference_stable"] is True and "10-ps xTB" in amended["reference_note"]
    entry = amended["molecules"]["ethanol"]
    assert entry["censored_at_ps"] == 3.0 and entry["seeds"] == [0, 1]
    assert entry["baseline_stable_ps"] == [2.0, 2.0] and entry["baseline_failed"] == [True] * 2
    assert entry["method_stable_ps"] == [3.0, 3.0] and entry["method_failed"] == [False] * 2
    assert entry["baseline_median_ps"] == 2.0 and not entry["method_median_reached"]
    assert "logrank_p_holm" not in entry and "logrank_p_holm" not in result["molecules"]["ethanol"]


def test_km_figure_gets_a_panel_for_the_longer_runs(recorded, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    from stability_km_plot import panels_of, plot_claims

    run, _ = recorded
    result = claims.pretraining_claims(run("--extend-md", "3"), n_boot=50)
    assert list(panels_of(result)) == ["ethanol", "ethanol, 3 ps (A5)"]
    drawn, close = [], plt.close

    def record_and_close(fig=None):  # the panels' titles as drawn, before the figure goes
        drawn.extend(ax.get_title() for ax in fig.axes)
        close(fig)

    monkeypatch.setattr(plt, "close", record_and_close)
    png = plot_claims("pretraining", result, tmp_path / "km.png")
    assert png.stat().st_size > 10_000
    assert [title.split(":")[0] for title in drawn] == ["ethanol", "ethanol, 3 ps (A5)"]
    without = claims.pretraining_claims(run(out="primary.json"), n_boot=50)
    assert "amended_A5" not in without and list(panels_of(without)) == ["ethanol"]


def _run(variant, seed, t, end=20.0, extended_t=None, extended_end=60.0):
    run = {
        "variant": variant,
        "seed": seed,
        "training": {},
        "forces_mae_meV_per_A": 40.0,
        "reference_force_rms_meV_per_A": 800.0,
        "stability": {"stable_time_ps": t, "stable_through_end": t >= end},
    }
    if extended_t is not None:
        run["extended_md"] = {
            "md_ps": extended_end,
            "stability": {"stable_time_ps": extended_t, "stable_through_end": extended_t >= 60},
        }
    return run


def _payload(runs, extended_md_ps=None, reference_stable=True):
    return {
        "command": "test",
        "size": "protocol",
        "model": "gemnet_t",
        "molecule": "aspirin",
        "settings": {"md_steps": 40000, "timestep_fs": 0.5, "temperature_K": 500.0},
        "reference_md_control": {"stable_through_end": reference_stable},
        "extended_md_ps": extended_md_ps,
        "runs": runs,
    }


@pytest.mark.parametrize(
    "times, expected",
    [
        # (scratch 0, scratch 1, finetuned 0, finetuned 1) stable times of the 20 ps runs
        ((20.0, 20.0, 20.0, 20.0), (4, 4, True, True)),
        ((3.0, 20.0, 20.0, 20.0), (4, 3, True, True)),  # 3 of 4 censored: triggers
        ((3.0, 20.0, 7.5, 20.0), (4, 2, True, False)),
        ((3.0, 4.0, 5.0, 6.0), (4, 0, True, False)),
        ((20.0, None, 20.0, 20.0), (3, 3, False, False)),  # scratch seed 1 missing
    ],
)
def test_amendment_a5_rule_counts_censored_runs_of_seeds_0_and_1(times, expected):
    keys = [("scratch", 0), ("scratch", 1), ("finetuned", 0), ("finetuned", 1)]
    runs = [_run(v, s, t) for (v, s), t in zip(keys, times) if t is not None]
    # seeds 2-4 do not count, censored or not
    runs += [_run(v, s, 20.0 if s % 2 else 1.0) for v in ("scratch", "finetuned") for s in (2, 3)]
    rule = claims.pretraining_claims(_payload(runs), n_boot=20)["amendment_A5_rule"]
    assert (rule["runs"], rule["censored"], rule["evaluable"], rule["triggers"]) == expected


def test_amendment_a5_rule_ignores_runs_without_md():
    by = {(v, s): _run(v, s, 20.0) for v in ("scratch", "finetuned") for s in (0, 1)}
    del by["finetuned", 1]["stability"]  # --no-md: trained and evaluated only
    assert claims.a5_rule(by) == {"runs": 3, "censored": 3, "evaluable": False, "triggers": False}


def test_amended_a5_compares_paired_extended_runs_at_the_longer_time():
    runs = [
        _run("scratch", 0, 20.0, extended_t=25.0),
        _run("scratch", 1, 20.0, extended_t=31.0),
        _run("scratch", 2, 12.0, extended_t=12.0),
        _run("finetuned", 0, 20.0, extended_t=60.0),
        _run("finetuned", 1, 20.0, extended_t=44.0),
        _run("finetuned", 2, 20.0),  # its longer run not done yet: seed 2 is left out
    ]
    result = claims.pretraining_claims(_payload(runs, 60.0, reference_stable=False), n_boot=50)
    assert result["molecules"]["aspirin"]["censored_at_ps"] == 20.0  # the primary analysis
    assert result["seeds"] == [0, 1, 2]
    amended = result["amended_A5"]
    assert amended["md_ps"] == 60.0 and amended["seeds"] == [0, 1]
    assert (
        amended["status"]
        == "in progress: 2 of 3 seeds have both variants' 60-ps runs; no claim yet"
    )
    assert amended["reference_stable"] is False  # the primary gate 3, not a longer xTB run
    entry = amended["molecules"]["aspirin"]
    assert entry["censored_at_ps"] == 60.0
    assert entry["baseline_stable_ps"] == [25.0, 31.0] and entry["baseline_failed"] == [True] * 2
    assert entry["method_stable_ps"] == [60.0, 44.0] and entry["method_failed"] == [False, True]
    # from scratch: S = 1/2 at 25 ps (the median); fine-tuned: S = 1/2 at 44 ps
    assert (entry["baseline_median_ps"], entry["method_median_ps"]) == (25.0, 44.0)
    assert entry["median_ratio"] == pytest.approx(44.0 / 25.0)
    assert "amended_A5" not in claims.pretraining_claims(_payload(runs), n_boot=20)


def test_extension_length_is_parsed_into_steps():
    assert study.parse_extend_md("60", primary_steps=40000, timestep_fs=0.5) == 120000
    assert study.parse_extend_md(None, primary_steps=40000, timestep_fs=0.5) is None
    assert study.common.md_unit_name("md", 120000, 40000, 0.5e-3) == "md_60ps"
    assert study.common.md_unit_name("md", 40000, 40000, 0.5e-3) == "md"


@pytest.mark.parametrize(
    "ps, message",
    [
        ("long", "--extend-md long: 'long' is not a length in ps; write e.g. --extend-md 60"),
        ("nan", "'nan' is not a length in ps"),
        (
            "20",
            "--extend-md 20: 20 ps is not longer than the primary MD (20 ps); an extension "
            "must be longer, e.g. --extend-md 60",
        ),
        ("5", "5 ps is not longer than the primary MD (20 ps)"),
    ],
)
def test_a_wrong_extension_is_refused_with_the_fix(ps, message, capsys):
    with pytest.raises(ValueError) as error:
        study.parse_extend_md(ps, primary_steps=40000, timestep_fs=0.5)
    assert message in str(error.value)
    # the command line says the same before any work starts
    with pytest.raises(SystemExit):
        study.main(["--size", "protocol", "--extend-md", ps, "--workdir", "/nonexistent/w"])
    assert message in capsys.readouterr().err


def test_an_extension_without_md_is_refused(capsys):
    with pytest.raises(SystemExit):
        study.main(["--extend-md", "60", "--no-md", "--workdir", "/nonexistent/w"])
    assert "--extend-md runs MD: leave out --no-md" in capsys.readouterr().err


def test_a_raised_scratch_budget_continues_the_shorter_runs_in_units_of_their_own(
    recorded, tmp_path, monkeypatch
):
    """The MAE-match rule (docs/experiments.md, Experiment 2): --scratch-epochs gives the models
    from scratch a larger budget in seed<N>/scratch_<E>epochs/, continued from the shorter run's
    checkpoint; the fine-tuned models and the shorter runs' units are read back, not redone."""
    run, calls = recorded
    common = study.common
    trained = []

    def train(config, run_dir, n_train, threads=None):  # a checkpoint that records its budget
        run_dir = Path(run_dir)
        before = (run_dir / "last.pt").read_text() if (run_dir / "last.pt").exists() else None
        trained.append(
            (str(run_dir.relative_to(tmp_path / "work")), config["training"]["max_epochs"], before)
        )
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "last.pt").write_text(f"epochs {config['training']['max_epochs']}")
        epochs = config["training"]["max_epochs"]
        return {
            "epochs": epochs,
            "steps": 10 * epochs,
            "seconds_per_step": 0.1,
            "wall_s": 2.0,
            "best": {"val_forces_mae": 0.04},
        }

    monkeypatch.setattr(common, "train", train)
    epochs = study.SIZES["small"]["epochs"]
    primary = run(out="primary.json")
    assert [t[:2] for t in trained[1:]] == [
        (f"seed{s}/{v}/train", epochs) for s in (0, 1) for v in ("finetuned", "scratch")
    ]
    assert "scratch_epochs" not in primary["settings"]
    done, md_done = len(trained), len(calls["md"])

    raised = run("--scratch-epochs", str(2 * epochs), out="raised.json")
    # only the models from scratch train again, each from its shorter run's last checkpoint
    assert trained[done:] == [
        (f"seed{s}/scratch_{2 * epochs}epochs/train", 2 * epochs, f"epochs {epochs}")
        for s in (0, 1)
    ]
    assert [md for md, _ in calls["md"][md_done:]] == [
        f"seed{s}/scratch_{2 * epochs}epochs/md" for s in (0, 1)
    ]
    assert raised["settings"]["scratch_epochs"] == 2 * epochs
    by = {(r["variant"], r["seed"]): r for r in raised["runs"]}
    assert by["scratch", 0]["training"]["epochs"] == 2 * epochs
    assert (
        by["finetuned", 0]
        == {(r["variant"], r["seed"]): r for r in primary["runs"]}["finetuned", 0]
    )
    # the shorter runs are kept as they were (the failed attempt stays on record)
    assert (tmp_path / "work/seed0/scratch/train/last.pt").read_text() == f"epochs {epochs}"
    done = len(trained)
    assert run("--scratch-epochs", str(2 * epochs), out="again.json")["runs"] == raised["runs"]
    assert run("--scratch-epochs", str(epochs), out="same.json")["runs"] == primary["runs"]
    assert len(trained) == done
    with pytest.raises(SystemExit):
        run("--scratch-epochs", str(epochs - 1), out="lower.json")


def test_claims_merge_a_primary_and_an_a5_result(recorded, tmp_path):
    """stability_claims merges the jobs of a study: Experiment 2's amendment length is one
    number for every run; a primary result and an A5 result join, two lengths are refused."""
    run, _ = recorded
    primary, extended = run(out="primary.json"), run("--extend-md", "3", out="ext.json")
    merged = claims.merge_results([primary, extended], ["primary.json", "ext.json"])
    assert merged["extended_md_ps"] == 3.0 and len(merged["runs"]) == 4
    result = claims.pretraining_claims(merged, n_boot=50)
    assert result["amended_A5"]["molecules"]["ethanol"]["baseline_stable_ps"] == [2.0, 2.0]
    assert (
        claims.merge_results([extended, primary], ["ext.json", "primary.json"])["extended_md_ps"]
        == 3.0
    )
    longer = run("--extend-md", "4", out="ext4.json")
    with pytest.raises(ValueError, match="ext4.json has longer runs of 4.0 ps"):
        claims.merge_results([extended, longer], ["ext.json", "ext4.json"])


def test_a_finished_pretraining_is_read_back_without_its_data(recorded, tmp_path, monkeypatch):
    """On a new machine the collected units come back but the pre-training data need not be
    regenerated (≈ 30 CPU-min at paper size): with the pre-training unit finished (its record
    and best.pt), its data's card is read and its frames are neither generated nor counted."""
    run, calls = recorded
    first = run()
    assert calls["train"].count("pretrain/train") == 1
    work = tmp_path / "work"
    (work / "pretrain" / "train").mkdir(parents=True, exist_ok=True)
    (work / "pretrain" / "train" / "best.pt").write_bytes(b"weights")
    card = {"name": "pretrain-molecules", "size": "small", "seed": 0, "sets": {}}
    for data in work.glob("data_pretrain_*"):
        (data / "datacard.json").write_text(json.dumps(card))
        for frames in data.glob("*.extxyz"):
            frames.unlink()  # only the fine-tuning data are regenerated there
    regenerate = study.common.generate_data

    def target_data_only(name, size, seed, outdir, logs, workers=1):
        assert name != "pretrain-molecules", "the pre-training data were generated again"
        return regenerate(name, size, seed, outdir, logs, workers)

    monkeypatch.setattr(study.common, "generate_data", target_data_only)
    again = run(out="again.json")
    assert calls["train"].count("pretrain/train") == 1
    assert again["pretraining"] == first["pretraining"]
    assert again["runs"] == first["runs"]
    assert again["data"][0] == {
        "name": "pretrain-molecules",
        "size": "small",
        "seed": 0,
        "frames": {},
    }


def test_one_variant_per_call_trains_only_that_variant(recorded, tmp_path):
    """--variants: e.g. one process per variant side by side; the pre-training is shared."""
    run, calls = recorded
    result = run("--variants", "scratch", "--no-md", out="scratch.json")
    assert calls["train"] == ["pretrain/train", "seed0/scratch/train", "seed1/scratch/train"]
    assert [(r["variant"], r["seed"]) for r in result["runs"]] == [("scratch", 0), ("scratch", 1)]
    assert calls["md"] == []
    result = run("--variants", "finetuned", "--no-md", out="finetuned.json")
    assert calls["train"][3:] == [
        "seed0/finetuned/train",
        "seed1/finetuned/train",
    ]  # pre-training read back
    assert {r["variant"] for r in result["runs"]} == {"finetuned"}


def test_claims_before_any_seed_has_both_variants(recorded, tmp_path):
    """The fine-tuned models' MD comes first: with no pair yet the section says so (no test, no
    figure) instead of failing the checkpoint that rebuilds claims.json."""
    run, _ = recorded
    run("--variants", "finetuned", out="finetuned_only.json")
    figures = tmp_path / "figures"
    argv = ["--pretraining", str(tmp_path / "finetuned_only.json")]
    argv += ["--claims", str(tmp_path / "claims.json"), "--figures", str(figures)]
    assert claims.main(argv) == 0
    section = json.loads((tmp_path / "claims.json").read_text())["pretraining"]
    assert section["n_seeds"] == 0 and section["molecules"] == {}
    assert section["status"].startswith("in progress: 0 of the protocol's 5 paired seeds")
    assert section["gates"]["force_mae_relative_difference"] is None
    assert not figures.exists() or not list(figures.glob("km_pretraining.png"))
