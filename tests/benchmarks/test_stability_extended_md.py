"""Amendment A4 of the claims study (docs/experiments.md): a longer MD at chosen compositions,
as work units of their own beside the primary ones. The study's training, LAMMPS and analysis
are replaced by recorders here (they have their own tests); what is checked is the unit
layout and caching around them: the longer runs get their own folders and lengths, the primary
units are read back and never redone, and the claims compare the longer runs at their own
censoring time."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import stability_claims as claims  # noqa: E402
import stability_decorrelation as study  # noqa: E402


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """The study with recorders instead of data generation, training, MD and analysis: every
    MD writes down (folder, steps); every model run fails at 3 ps (a 2 ps run is censored, a
    5 ps run fails), every Tersoff run is stable to its end."""
    import ase
    import ase.io

    data = tmp_path / "work" / "data_sio_small_0"
    data.mkdir(parents=True)
    atoms = ase.Atoms(
        "SiO2", positions=[[0, 0, 0], [1.6, 0, 0], [0, 1.6, 0]], cell=[8] * 3, pbc=True
    )
    for name in ["sio_train"] + [f"sio_reference_{c}-amorphous_1500K" for c in study.COMPOSITIONS]:
        ase.io.write(data / f"{name}.extxyz", atoms)
    md_runs, lengths = [], {}
    common = study.common
    monkeypatch.setattr(
        common, "generate_data", lambda *a, **k: {"name": "sio", "size": "small", "seed": 0}
    )

    def train(config, run_dir, n_train, threads=None):
        return {
            "epochs": 1,
            "steps": 10,
            "seconds_per_step": 0.1,
            "best": {"val_forces_mae": 0.1},
            "val_corr_per_layer_best": {"0": 0.4},
        }

    monkeypatch.setattr(common, "train", train)
    monkeypatch.setattr(common, "export", lambda checkpoint, model: model)
    monkeypatch.setattr(
        study,
        "evaluate_composition",
        lambda run_dir, data_dir, composition: {
            "forces_mae_meV_per_A": 50.0,
            "reference_force_rms_meV_per_A": 1000.0,
            "forces_mae_over_rms": 0.05,
        },
    )

    def write_md_input(atoms, md_dir, model, elements, temperature, steps, dt, every, **kw):
        Path(md_dir).mkdir(parents=True, exist_ok=True)
        lengths[str(md_dir)] = steps * dt
        md_runs.append((str(Path(md_dir).relative_to(tmp_path / "work")), steps))

    def analyse(md_dir, reference, elements, **options):
        total = lengths[str(md_dir)]
        control = "reference_potential" in str(md_dir)
        stable = total if control else min(total, 3.0)
        return {
            "stable_time_ps": stable,
            "total_time_ps": total,
            "stable_through_end": stable >= total,
            "first_failed": [] if stable >= total else ["bond_length"],
            "failure_reason": [] if stable >= total else ["a bond stretched"],
            "rdf_error_stable": 0.1,
        }

    monkeypatch.setattr(common, "write_md_input", write_md_input)
    monkeypatch.setattr(common, "run_md", lambda md_dir, nprocs, timeout: {"returncode": 0})
    monkeypatch.setattr(common, "analyse", analyse)
    monkeypatch.setattr(common, "machine_info", lambda: {})

    def run(*extra):
        out = tmp_path / "result.json"
        args = ["--size", "small", "--workdir", str(tmp_path / "work"), "--json", str(out)]
        assert study.main(args + ["--np", "1", "--threads", "1", "--seeds", "0", "1", *extra]) == 0
        return json.loads(out.read_text())

    return run, md_runs


def test_extended_md_runs_beside_the_primary_units_and_never_redoes_them(recorded, tmp_path):
    run, md_runs = recorded
    primary = run()  # small size: 2000 steps (2 ps) per MD
    assert all(steps == 2000 for _, steps in md_runs)
    n_primary = len(md_runs)  # 3 Tersoff controls + 2 seeds x 2 variants x 3 compositions
    assert n_primary == 3 + 12 and "extended_md" not in json.dumps(primary["runs"])

    extended = run("--extend-md", "SiO1.1=5")
    new = md_runs[n_primary:]
    # only the longer runs are new: the control and every model at SiO1.1, 5000 steps each
    assert sorted(new) == sorted(
        [("reference_potential/md_SiO1.1_5ps", 5000)]
        + [
            (f"seed{s}/{v}/md_SiO1.1_5ps", 5000)
            for s in (0, 1)
            for v in ("baseline", "decorrelation")
        ]
    )
    assert extended["extended_md_ps"] == {"SiO1.1": 5.0}
    cell = extended["runs"][0]["compositions"]["SiO1.1"]
    assert cell["stability"]["total_time_ps"] == 2.0  # the primary result, read back
    assert cell["extended_md"]["md_ps"] == 5.0
    assert cell["extended_md"]["stability"]["stable_time_ps"] == 3.0
    assert "extended_md" not in extended["runs"][0]["compositions"]["SiO1.5"]
    assert extended["reference_potential_control"]["SiO1.1"]["extended_md"]["stability"][
        "stable_through_end"
    ]
    rows = [r for r in extended["summary"] if r["extended_md_ps"]]
    assert [(r["variant"], r["composition"]) for r in rows] == [
        ("baseline", "SiO1.1"),
        ("decorrelation", "SiO1.1"),
    ]
    assert "| SiO1.1, 5 ps (A4) | Tersoff (truth)" in study.markdown_tables(extended)

    # everything is cached now: the same call, and a call without the extension, run nothing
    assert run("--extend-md", "SiO1.1=5")["runs"] == extended["runs"]
    assert run()["runs"] == primary["runs"] and len(md_runs) == n_primary + 5

    # claims: the primary comparison stays at 2 ps, the amended one at 5 ps (every model fails at 3)
    result = claims.decorrelation_claims(extended, n_boot=50)
    assert result["compositions"]["SiO1.1"]["censored_at_ps"] == 2.0
    amended = result["amended_A4"]
    entry = amended["compositions"]["SiO1.1"]
    assert amended["md_ps"] == {"SiO1.1": 5.0} and amended["reference_stable"] == {"SiO1.1": True}
    assert entry["censored_at_ps"] == 5.0 and entry["seeds"] == [0, 1]
    assert entry["baseline_stable_ps"] == [3.0, 3.0] and all(entry["method_failed"])
    assert entry["baseline_median_ps"] == 3.0 and entry["median_ratio"] == pytest.approx(1.0)
    assert amended["status"].startswith("complete")  # both seeds of the call have it
    from stability_km_plot import panels_of, plot_claims  # a panel of its own for the longer runs

    assert list(panels_of(result)) == ["SiO2", "SiO1.5", "SiO1.1", "SiO1.1, 5 ps (A4)"]

    assert plot_claims("decorrelation", result, tmp_path / "km.png").stat().st_size > 10_000

    # the correlation scatter has every model's primary runs and its longer A4 runs
    from stability_km_plot import correlation_points

    points = correlation_points(result)
    primary = [p for p in points if p[2] == 2.0]
    longer = [p for p in points if p[2] == 5.0]
    assert len(primary) == 3 * 2 * 2 and len(longer) == 1 * 2 * 2
    assert {(p[0], p[1], p[4], p[5]) for p in longer} == {
        ("baseline", "SiO1.1", 3.0, True),
        ("decorrelation", "SiO1.1", 3.0, True),
    }
    rho = result["val_corr_per_layer"]["decorrelation"][1]  # seed 1's model, in both run sets
    seed1 = [p[3] for p in points if p[0] == "decorrelation" and p[1] == "SiO1.1"][1::2]
    assert seed1 == pytest.approx([sum(rho.values()) / len(rho)] * 2, nan_ok=True)


@pytest.mark.parametrize(
    "item, message",
    [
        ("SiO3=20", "unknown composition 'SiO3'"),
        ("SiO1.1=long", "'long' is not a length in ps"),
        ("SiO1.1=2", "2 ps is not longer than the primary MD (2 ps)"),
    ],
)
def test_a_wrong_extension_is_refused_with_the_fix(item, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        study.parse_extend_md([item], primary_steps=2000)


def test_unit_names_say_the_length_of_a_longer_run():
    assert study.md_unit_name("SiO1.1", 5000, 5000) == "md_SiO1.1"
    assert study.md_unit_name("SiO1.1", 20000, 5000) == "md_SiO1.1_20ps"


def test_a4_section_before_any_seed_has_both_variants_longer_runs():
    """The longer runs come seed by seed, variant by variant: with only the baseline's so far
    the section says so (no test, no KM panel) instead of failing."""
    import stability_claims
    from stability_km_plot import panels_of

    stable = {"stable_time_ps": 20.0, "stable_through_end": True, "first_failed": []}
    with_longer = {"compositions": {"SiO1.1": {"extended_md": {"stability": stable}}}}
    by = {("baseline", 0): with_longer, ("decorrelation", 0): {"compositions": {"SiO1.1": {}}}}
    control = {"SiO1.1": {"extended_md": {"stability": stable}}}
    payload = {"extended_md_ps": {"SiO1.1": 20.0}}
    out = stability_claims.amended_extended_md(payload, by, [0], control, n_boot=10, seed=0)
    entry = out["compositions"]["SiO1.1"]
    assert entry["seeds"] == [] and entry["logrank_p"] is None and entry["logrank_p_holm"] is None
    assert out["reference_stable"] == {"SiO1.1": True}
    assert out["status"].startswith("in progress: 0-0 of 1 seeds")
    claims = {"compositions": {"SiO2": {}}, "amended_A4": out, "n_seeds": 1}
    assert list(panels_of(claims)) == ["SiO2"]

    # one of two seeds with both variants' longer runs: a panel, marked as interim, and the
    # section's status says no claim yet
    by[("decorrelation", 0)] = with_longer
    by[("baseline", 1)] = by[("decorrelation", 1)] = {"compositions": {"SiO1.1": {}}}
    out = stability_claims.amended_extended_md(payload, by, [0, 1], control, n_boot=10, seed=0)
    assert out["compositions"]["SiO1.1"]["seeds"] == [0]
    assert out["status"].startswith("in progress: 1-1 of 2 seeds")
    claims = {"compositions": {"SiO2": {}}, "amended_A4": out, "n_seeds": 2}
    assert list(panels_of(claims)) == ["SiO2", "SiO1.1, 20 ps (A4), INTERIM 1 of 2 seeds"]


def test_km_panel_titles_give_the_holm_adjusted_p_beside_the_raw_one():
    from stability_km_plot import _title

    entry = dict(logrank_p=0.317, logrank_p_holm=0.634, median_ratio=None)
    assert _title("SiO1.1", dict(entry, median_ratio_kind="undefined")) == (
        "SiO1.1: log-rank p = 0.32 (Holm 0.63), median ratio undefined"
    )
    one_test = dict(
        logrank_p=0.5, logrank_p_holm=0.5, median_ratio=1.2, median_ratio_kind="estimate"
    )
    assert _title("aspirin", one_test) == "aspirin: log-rank p = 0.5, median ratio 1.2"
