"""The resumable work units of the stability experiments (stability_common.cached) and the
claims.json writer (stability_claims) on small hand-made result payloads."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import stability_claims as claims  # noqa: E402
import stability_common as common  # noqa: E402


def test_cached_computes_once_and_refuses_other_settings(tmp_path):
    calls = []
    compute = lambda: calls.append(1) or {"value": len(calls)}  # noqa: E731
    target = tmp_path / "unit" / "result.json"
    assert common.cached(target, {"lr": 1.0}, compute) == {"value": 1}
    assert common.cached(target, {"lr": 1.0}, compute) == {"value": 1} and len(calls) == 1
    with pytest.raises(ValueError, match=r"other settings(.|\n)*'lr': 2.0(.|\n)*another --workdir"):
        common.cached(target, {"lr": 2.0}, compute)
    assert not target.with_name("result.json.lock").exists()


def test_cached_waits_for_a_live_lock_and_takes_over_a_dead_one(tmp_path):
    target = tmp_path / "result.json"
    lock = tmp_path / "result.json.lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(str(dead.pid))  # its process is gone: the unit is redone here
    assert common.cached(target, {}, lambda: {"by": "me"}) == {"by": "me"}

    target.unlink()
    lock.write_text(str(subprocess.os.getpid()))  # a live holder (this process)

    def finish_elsewhere():  # the holder writes the result, then releases the lock
        time.sleep(0.3)
        common.write_json(target, {"key": {}, "result": {"by": "other"}})
        lock.unlink()

    threading.Thread(target=finish_elsewhere).start()
    assert common.cached(target, {}, lambda: {"by": "me"}, poll_s=0.1) == {"by": "other"}


def test_cached_removes_its_lock_when_the_unit_fails(tmp_path):
    def boom():
        raise RuntimeError("training diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        common.cached(tmp_path / "r.json", {}, boom)
    assert list(tmp_path.iterdir()) == []


def _stability(t, end=5.0):
    return {"stable_time_ps": t, "stable_through_end": t >= end}


def _decorrelation_payload(baseline_times, method_times, mae_over_rms, control_ok=True):
    runs = []
    for variant, times in (("baseline", baseline_times), ("decorrelation", method_times)):
        for seed, t in enumerate(times):
            cell = {
                "forces_mae_meV_per_A": 100.0 * mae_over_rms,
                "reference_force_rms_meV_per_A": 100.0,
                "stability": _stability(t),
            }
            runs.append(
                {
                    "variant": variant,
                    "seed": seed,
                    "training": {"val_corr_per_layer_best": {"0": 0.5}},
                    "compositions": {"SiO2": cell, "SiO1.1": cell},
                }
            )
    control = {c: {"stability": _stability(5.0 if control_ok else 1.0)} for c in ("SiO2", "SiO1.1")}
    return {
        "command": "test",
        "size": "protocol",
        "model": "allegro",
        "runs": runs,
        "settings": {"md_steps": 5000, "timestep_ps": 0.001, "temperature_K": 1500.0},
        "reference_potential_control": control,
    }


def test_decorrelation_claims_gates_and_censored_comparison():
    # baseline: 3 of 4 runs stable to the 5 ps end (gate 2 holds exactly); method: all 4
    payload = _decorrelation_payload([5.0, 5.0, 5.0, 1.0], [5.0] * 4, mae_over_rms=0.08)
    result = claims.decorrelation_claims(payload, n_boot=50)
    gates = result["gates"]
    assert gates["id_force_mae_over_rms"]["baseline"] == pytest.approx([0.08] * 4)
    assert gates["baseline_id_stable_fraction"] == 0.75 and gates["all_pass"]
    sio2 = result["compositions"]["SiO2"]
    assert sio2["censored_at_ps"] == pytest.approx(5.0) and sio2["method_failed"] == [False] * 4
    # neither median is reached (S never <= 0.5): no ratio is claimed
    assert sio2["median_ratio"] is None and sio2["median_ratio_kind"] == "undefined"
    assert not sio2["baseline_median_reached"] and sio2["baseline_median_ps"] == 5.0

    too_coarse = claims.decorrelation_claims(
        _decorrelation_payload([5.0] * 4, [5.0] * 4, mae_over_rms=0.11), n_boot=50
    )["gates"]
    assert not too_coarse["id_force_mae_over_rms_pass"] and not too_coarse["all_pass"]
    unstable = claims.decorrelation_claims(
        _decorrelation_payload([5.0, 5.0, 1.0, 1.0], [5.0] * 4, mae_over_rms=0.05), n_boot=50
    )
    assert unstable["gates"]["baseline_id_stable_fraction"] == 0.5
    assert not unstable["gates"]["all_pass"]
    bad_control = claims.decorrelation_claims(
        _decorrelation_payload([5.0] * 4, [5.0] * 4, 0.05, control_ok=False), n_boot=50
    )
    assert not bad_control["gates"]["reference_stable"] and not bad_control["gates"]["all_pass"]


def test_claims_file_keeps_the_other_experiment_and_plots(tmp_path):
    from stability_km_plot import plot_claims

    path = tmp_path / "claims.json"
    claims.update_claims(path, "pretraining", {"n_seeds": 0})
    result = claims.decorrelation_claims(
        _decorrelation_payload([0.5, 1.0, 2.0, 5.0], [1.0, 2.0, 5.0, 5.0], 0.05), n_boot=50
    )
    claims.update_claims(path, "decorrelation", result)
    stored = json.loads(path.read_text())
    assert stored["pretraining"] == {"n_seeds": 0} and stored["decorrelation"]["n_seeds"] == 4
    # baseline median 1 ps (S = 3/4, 1/2 at 1 ps); method median 2 ps (S = 1/2 at 2 ps)
    entry = stored["decorrelation"]["compositions"]["SiO2"]
    assert (entry["baseline_median_ps"], entry["method_median_ps"]) == (1.0, 2.0)
    assert entry["median_ratio"] == pytest.approx(2.0) and entry["median_ratio_kind"] == "estimate"
    png = plot_claims("decorrelation", result, tmp_path / "km.png")
    assert png.stat().st_size > 10_000


def test_holm_adjustment_by_hand():
    # sorted p 0.01, 0.02, 0.04 (m = 3): 3 x 0.01 = 0.03; max(0.03, 2 x 0.02) = 0.04;
    # max(0.04, 1 x 0.04) = 0.04. Untested (None) stays None.
    assert claims.holm([0.04, None, 0.01, 0.02]) == pytest.approx(
        {0: 0.04, 1: None, 2: 0.03, 3: 0.04}
    )
    assert claims.holm([0.6, 0.5])[0] == 1.0  # capped at 1


def test_an_analysis_is_redone_when_its_version_changes_and_the_md_is_not(tmp_path):
    runs, judged = [], []
    run = lambda: runs.append(1) or {"returncode": 0}  # noqa: E731
    judge = lambda: judged.append(1) or {"stable_time_ps": float(len(judged))}  # noqa: E731
    first = common.md_then_analysis(tmp_path / "md", {"steps": 10}, run, judge)
    assert first == {"md": {"returncode": 0}, "stability": {"stable_time_ps": 1.0}}
    stored = json.loads((tmp_path / "md.analysis.json").read_text())
    stored["key"]["analysis"] = "older-criteria"  # as if gnnff.stability had changed since
    (tmp_path / "md.analysis.json").write_text(json.dumps(stored))
    again = common.md_then_analysis(tmp_path / "md", {"steps": 10}, run, judge)
    assert again["stability"] == {"stable_time_ps": 2.0} and len(runs) == 1


def test_amendment_a4_rule_counts_censored_runs_of_seeds_0_to_3():
    # 4 seeds x 2 variants at SiO1.1: baseline seeds fail at 1 ps in two seeds -> 6 of 8 censored
    payload = _decorrelation_payload([5.0, 5.0, 1.0, 1.0], [5.0] * 4, mae_over_rms=0.05)
    rule = claims.decorrelation_claims(payload, n_boot=20)["amendment_A4_rule"]
    assert rule["SiO1.1"] == {"runs": 8, "censored": 6, "evaluable": True, "triggers": True}
    assert rule["SiO1.5"]["runs"] == 0 and not rule["SiO1.5"]["evaluable"]  # not in the payload
    fewer = _decorrelation_payload([5.0, 1.0, 1.0, 1.0], [5.0] * 4, mae_over_rms=0.05)
    assert not claims.decorrelation_claims(fewer, n_boot=20)["amendment_A4_rule"]["SiO1.1"][
        "triggers"
    ]
    early = _decorrelation_payload([5.0, 5.0], [5.0, 5.0], mae_over_rms=0.05)  # seeds 0-1 only
    assert claims.decorrelation_claims(early, n_boot=20)["amendment_A4_rule"]["SiO1.1"] == {
        "runs": 4,
        "censored": 4,
        "evaluable": False,
        "triggers": False,
    }


def _one_variant(payload, variant, seeds):
    """The part of a hand-made payload one job of the study would have written."""
    out = json.loads(json.dumps(payload))
    out["runs"] = [r for r in out["runs"] if r["variant"] == variant and r["seed"] in seeds]
    out["settings"]["seeds"] = list(seeds)
    out["experiment"] = "stability_decorrelation"
    return out


def test_merge_joins_the_jobs_of_one_study_and_adds_amendment_runs():
    full = _decorrelation_payload([5.0, 1.0], [5.0, 5.0], mae_over_rms=0.05)
    jobs = [_one_variant(full, v, [0, 1]) for v in ("baseline", "decorrelation")]
    # an amendment job: seed 0 of both variants again (same cached primary results) plus a
    # longer run at SiO1.1, and the control's longer run
    amendment = json.loads(json.dumps(full))
    amendment["experiment"] = "stability_decorrelation"
    amendment["runs"] = [r for r in amendment["runs"] if r["seed"] == 0]
    for run, t in zip(amendment["runs"], (20.0, 12.0)):
        run["compositions"]["SiO1.1"] = dict(
            run["compositions"]["SiO1.1"], extended_md={"stability": _stability(t, 20.0)}
        )
    amendment["extended_md_ps"] = {"SiO1.1": 20.0}
    amendment["reference_potential_control"]["SiO1.1"]["extended_md"] = {
        "stability": _stability(20.0, 20.0)
    }
    merged = claims.merge_results(jobs + [amendment], ["b.json", "d.json", "a4.json"])
    assert [(r["variant"], r["seed"]) for r in merged["runs"]] == [
        ("baseline", 0),
        ("decorrelation", 0),
        ("baseline", 1),
        ("decorrelation", 1),
    ]
    assert merged["settings"]["seeds"] == [0, 1] and merged["extended_md_ps"] == {"SiO1.1": 20.0}
    result = claims.decorrelation_claims(merged, n_boot=50)
    assert result["n_seeds"] == 2
    sio11 = result["compositions"]["SiO1.1"]
    assert sio11["baseline_stable_ps"] == [5.0, 1.0] and sio11["method_stable_ps"] == [5.0, 5.0]
    longer = result["amended_A4"]["compositions"]["SiO1.1"]
    assert longer["seeds"] == [0] and longer["baseline_stable_ps"] == [20.0]
    assert longer["method_stable_ps"] == [12.0] and longer["method_failed"] == [True]
    assert result["amended_A4"]["reference_stable"] == {"SiO1.1": True}

    disagree = json.loads(json.dumps(jobs[0]))
    disagree["runs"][0]["compositions"]["SiO2"]["stability"] = _stability(2.0)
    with pytest.raises(ValueError, match="disagree on baseline seed 0/compositions/SiO2/stability"):
        claims.merge_results([jobs[0], disagree], ["b.json", "other.json"])
    other_settings = json.loads(json.dumps(jobs[1]))
    other_settings["settings"]["md_steps"] = 2000
    with pytest.raises(ValueError, match=r"other.json is not a result of the same study.*md_steps"):
        claims.merge_results([jobs[0], other_settings], ["b.json", "other.json"])


def test_status_is_in_progress_until_the_protocol_seeds_exist(tmp_path):
    four = claims.decorrelation_claims(
        _decorrelation_payload([5.0] * 4, [5.0] * 4, 0.05), n_boot=50
    )
    assert four["gates"]["all_pass"]  # gates hold, but 4 seeds are not the protocol's 8
    assert claims.study_status("decorrelation", four).startswith(
        "in progress: 4 of the protocol's 8 paired seeds"
    )
    eight = claims.decorrelation_claims(
        _decorrelation_payload([5.0] * 8, [5.0] * 8, 0.05), n_boot=50
    )
    assert claims.study_status("decorrelation", eight) == "gates met: the comparison counts"
    coarse = claims.decorrelation_claims(
        _decorrelation_payload([5.0] * 8, [5.0] * 8, 0.2), n_boot=50
    )
    assert claims.study_status("decorrelation", coarse).startswith("gates NOT met")

    # the command line: two jobs' files merged into claims.json, status in progress
    full = _decorrelation_payload([5.0, 5.0], [5.0, 2.0], 0.05)
    files = []
    for variant in ("baseline", "decorrelation"):
        files.append(tmp_path / f"{variant}.json")
        files[-1].write_text(json.dumps(_one_variant(full, variant, [0, 1])))
    out = tmp_path / "claims.json"
    argv = ["--decorrelation", *map(str, files), "--claims", str(out), "--n-boot", "50"]
    assert claims.main(argv + ["--figures", str(tmp_path)]) == 0
    stored = json.loads(out.read_text())["decorrelation"]
    assert stored["n_seeds"] == 2 and stored["status"].startswith("in progress: 2 of")
    assert stored["result_file"] == [str(f) for f in files]
    assert stored["compositions"]["SiO2"]["method_stable_ps"] == [5.0, 2.0]
    assert (tmp_path / "km_decorrelation.png").stat().st_size > 10_000


def test_merged_amendment_lengths_join_per_composition_and_must_agree():
    join = claims._merged_lengths
    assert join({"SiO1.1": 20.0}, {"SiO1.5": 20.0}, "b") == {"SiO1.1": 20.0, "SiO1.5": 20.0}
    assert join(None, {"SiO1.1": 20.0}, "b") == {"SiO1.1": 20.0} and join(60.0, None, "b") == 60.0
    with pytest.raises(ValueError, match="b.json has longer runs of {'SiO1.1': 40.0} ps"):
        join({"SiO1.1": 20.0}, {"SiO1.1": 40.0}, "b.json")
    with pytest.raises(ValueError, match="of one amendment length"):
        join(60.0, 40.0, "b.json")


def test_mae_match_from_the_evaluation_units_before_any_md(tmp_path):
    """Experiment 2's MAE-match rule is applied on the paired seeds' test force MAEs as soon as
    both variants are evaluated: means over paired seeds, |difference| / the smaller mean."""

    def unit(seed, folder, mae):
        path = tmp_path / f"seed{seed}" / folder / "eval_test.result.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": {}, "result": {"forces_mae_meV_per_A": mae}}))

    unit(0, "finetuned", 18.0)
    unit(4, "finetuned", 20.0)
    unit(1, "finetuned", 17.0)  # no scratch pair yet: not used
    unit(0, "scratch", 24.0)
    unit(4, "scratch", 26.0)
    out = claims.mae_match_from_units(tmp_path)
    assert out["seeds"] == [0, 4]
    assert out["mean_forces_mae_meV_per_A"] == {"finetuned": 19.0, "scratch": 25.0}
    assert out["force_mae_relative_difference"] == pytest.approx(6.0 / 19.0)
    assert out["force_mae_match_pass"] is False  # 32 % > 15 %: the budget doubles

    unit(0, "scratch_8epochs", 20.0)
    unit(4, "scratch_8epochs", 21.0)
    out = claims.mae_match_from_units(tmp_path, "scratch_8epochs")
    assert out["force_mae_relative_difference"] == pytest.approx(1.5 / 19.0)
    assert out["force_mae_match_pass"] is True
    # the same formula as claims.json's gate
    paired = {"finetuned": [18.0, 20.0], "scratch": [24.0, 26.0]}
    assert claims.force_mae_match(paired) == pytest.approx(6.0 / 19.0)
    assert claims.force_mae_match({"finetuned": [], "scratch": []}) is None
    # every budget's gate, in budget order (claims.json's mae_match_by_budget)
    unit(0, "scratch_16epochs", 24.0)  # only seed 0 evaluated at 16 epochs so far
    by_budget = claims.mae_match_by_budget(tmp_path)
    assert [b["scratch_folder"] for b in by_budget] == [
        "scratch",
        "scratch_8epochs",
        "scratch_16epochs",
    ]
    assert [b["force_mae_match_pass"] for b in by_budget] == [False, True, False]
    assert by_budget[2]["seeds"] == [0]


def test_the_largest_from_scratch_budget_s_jsons_count(tmp_path, capsys):
    """After the MAE-match rule doubled the budget, the doubled jobs' JSONs supersede the
    protocol budget's (a merge of both would be refused: they differ in scratch_epochs)."""
    assert claims.pretraining_jobs(tmp_path) == []
    assert claims.main(["--pretraining-jobs", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""  # no line at all: the shell's list stays empty
    for name in ("seeds01234.json", "seeds43210.json", "seeds01234_8epochs.json", "control.json"):
        (tmp_path / name).write_text("{}")
    assert claims.pretraining_jobs(tmp_path) == [tmp_path / "seeds01234_8epochs.json"]
    (tmp_path / "seeds43210_8epochs.json").write_text("{}")
    (tmp_path / "seeds01234_16epochs.json").write_text("{}")
    assert claims.pretraining_jobs(tmp_path) == [tmp_path / "seeds01234_16epochs.json"]
    (tmp_path / "seeds01234_16epochs.json").unlink()
    assert claims.main(["--pretraining-jobs", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == [
        str(tmp_path / "seeds01234_8epochs.json"),
        str(tmp_path / "seeds43210_8epochs.json"),
    ]
