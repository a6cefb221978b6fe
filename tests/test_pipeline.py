"""gnnff.workflow.pipeline is a library: it logs, raises PipelineError, never prints or exits;
the `gnnff pipeline` command turns a failed step into `error: ...` and the step's exit status."""

import inspect
import logging

import pytest

from gnnff.models.registry import available_models, model_builder
from gnnff.workflow import pipeline


def test_failed_step_raises_with_its_exit_status(capsys, caplog):
    with caplog.at_level(logging.INFO, logger="gnnff.workflow"):
        with pytest.raises(pipeline.PipelineError, match="exit status 3") as info:
            pipeline._run(["sh", "-c", "exit 3"])
    assert info.value.status == 3
    assert "$ sh -c 'exit 3'" in caplog.text
    assert capsys.readouterr().out == ""  # the library printed nothing


def test_missing_tool_raises_instead_of_exiting():
    with pytest.raises(pipeline.PipelineError, match="`no-such-tool-gnnff` not found"):
        pipeline.find_tool("no-such-tool-gnnff")


@pytest.mark.parametrize("name", ["pair_mlp", "allegro", "nequip", "gemnet_t"])
def test_training_config_uses_a_models_smallest_preset_when_it_has_presets(name, tmp_path):
    if name not in available_models():
        pytest.skip(f"{name} is not registered")
    opts = pipeline.PipelineOptions(model=name)
    model = pipeline.training_config(opts, tmp_path, tmp_path / "run")["model"]
    has_presets = "preset" in inspect.signature(model_builder(name)).parameters
    assert model.get("preset") == ("small" if has_presets else None)
    assert name != "pair_mlp" or "preset" not in model  # pair_mlp is small already and has none


def test_cli_reports_a_failed_step(monkeypatch, capsys):
    from gnnff.cli import main

    def fail(opts):
        raise pipeline.PipelineError("step failed with exit status 5: lmp", 5)

    monkeypatch.setattr(pipeline, "run_pipeline", fail)
    assert main(["pipeline", "--out", "x"]) == 5
    assert capsys.readouterr().err.startswith(
        "error: gnnff pipeline: step failed with exit status 5"
    )
