"""Under DistributedDataParallel each rank measures the correlation on its local batch and the
gradients average as for any other term; the adaptive lambda stays identical on all ranks."""

import pytest
import torch
from decorrelation_helpers import (
    DDP_TERM_CONFIG,
    collate,
    ddp_worker,
    lennard_jones_dataset,
    tiny_model,
)

from gnnff import keys
from gnnff.models import features
from gnnff.training.coefficient_schedule import AdaptiveSchedule
from gnnff.training.loss_terms import build_loss_term


def _single_process_gradient(batch):
    model = tiny_model(seed=0)
    features.set_recording(model, True)
    term = build_loss_term("decorrelation", **DDP_TERM_CONFIG)
    pred = model(dict(batch))
    loss_force = ((pred[keys.FORCES] - batch[keys.FORCES]) ** 2).mean()
    (loss_force + term(pred, batch, model)).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return grads, float(loss_force.detach()), term.batch_logs()["decorrelation_unweighted"]


def test_ddp_two_ranks_average_local_gradients(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    graphs = lennard_jones_dataset(4, seed=3)
    batches = [collate(graphs[:2]), collate(graphs[2:])]
    torch.multiprocessing.spawn(
        ddp_worker, args=(2, str(tmp_path / "init"), batches, str(tmp_path)), nprocs=2, join=True
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]

    local = [_single_process_gradient(b) for b in batches]
    assert local[0][2] != pytest.approx(
        local[1][2], rel=1e-3
    )  # the ranks really see different correlations
    for name, grad_rank0 in ranks[0]["grads"].items():
        expected = 0.5 * (local[0][0][name] + local[1][0][name])
        assert torch.allclose(grad_rank0, expected, rtol=1e-9, atol=1e-12), name
        assert torch.equal(grad_rank0, ranks[1]["grads"][name])
    # each rank logged its own local correlation ...
    assert ranks[0]["raw"] == pytest.approx(local[0][2], rel=1e-12)
    assert ranks[1]["raw"] == pytest.approx(local[1][2], rel=1e-12)
    # ... but the adaptive controller saw the rank averages, so lambda is the same everywhere
    reference = AdaptiveSchedule(
        lambda_value=0.5, target_fraction=0.2, ema_decay=0.0, rate=0.5, max_change=10.0
    )
    reference.on_step(0.5 * (local[0][1] + local[1][1]), 0.5 * (local[0][2] + local[1][2]))
    assert ranks[0]["lambda"] == ranks[1]["lambda"] == pytest.approx(reference.value, rel=1e-12)
