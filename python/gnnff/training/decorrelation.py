"""The feature-decorrelation loss term (after Zeng et al. 2025, arXiv 2502.12548).

    L_dec(t) = lambda(t) * sum_{l in layers} rho_l,     rho_l = reduce(Pearson(invariants(X_l)))

X_l are the edge features a model records through gnnff.models.features; rho_l and the options
are defined in gnnff.training.correlation, lambda(t) in gnnff.training.coefficient_schedule.
Full description with equations: docs/decorrelation.md. Config (``loss:`` section):

    decorrelation: {layers: all, reduction: mean_square, schedule: adaptive, target_fraction: 0.05}

Under DistributedDataParallel each rank measures the correlation on its local batch (no
communication in the forward pass); DDP averages the gradients as for any other term. Only the
adaptive schedule communicates: it averages its two loss scalars over ranks once per step so that
every rank holds the same lambda.
"""

from typing import Dict, List, Optional, Union

import torch

from gnnff import keys
from gnnff.models import features
from gnnff.training import correlation, fused_correlation
from gnnff.training.coefficient_schedule import SCHEDULES
from gnnff.training.loss_terms import LossTerm, register_loss_term

# which schedule reads which of the builder's options (None = "not given": schedule default)
_SCHEDULE_OPTIONS = {
    "constant": {"lambda_value": "lambda_value"},
    "warmup_cosine": {
        "lambda_value": "lambda_value",
        "lambda_min": "lambda_min",
        "warmup": "warmup",
        "decay": "decay",
        "schedule_unit": "unit",
    },
    "adaptive": {
        "lambda_value": "lambda_value",
        "lambda_min": "lambda_min",
        "lambda_max": "lambda_max",
        "target_fraction": "target_fraction",
        "adaptation_rate": "rate",
        "ema_decay": "ema_decay",
        "max_change": "max_change",
    },
}
LAMBDA_LOG_KEY = "decorrelation_lambda"
# edges drawn per batch for the measure (docs/decorrelation.md, "Edge subsample"); null: all edges
DEFAULT_EDGE_SUBSAMPLE = 1024
# channels drawn per training step from a wider layer (docs/decorrelation.md, "Channel
# subsample"); null: all channels
DEFAULT_CHANNEL_SUBSAMPLE = 128
# reductions that are means over channel pairs, so a uniform draw of channels estimates them
CHANNEL_SUBSAMPLE_REDUCTIONS = ("mean_square", "mean_abs")
RAW_LOG_KEY = "decorrelation_unweighted"


def corr_log_key(layer: int) -> str:
    return f"corr_layer{layer}"


class DecorrelationLoss(LossTerm):
    needs_edge_features = True

    def __init__(
        self,
        schedule,
        layers: Union[str, int, List[int]] = "all",
        reduction: str = "mean_square",
        edge_subsample: Optional[Union[int, float]] = DEFAULT_EDGE_SUBSAMPLE,
        norm_eps: float = 1e-8,
        variance_eps: float = 1e-6,
        reference_term: str = "forces",
        reference_weight: float = 1.0,
        log_all_layers: bool = True,
        channel_subsample: Optional[int] = DEFAULT_CHANNEL_SUBSAMPLE,
    ):
        super().__init__()
        self.schedule = schedule
        self.layers = layers
        self.reduction = reduction
        self.edge_subsample = edge_subsample
        # a max over pairs is not estimated by a draw of channels: max_square measures them all
        self.channel_subsample = (
            channel_subsample if reduction in CHANNEL_SUBSAMPLE_REDUCTIONS else None
        )
        self.norm_eps = float(norm_eps)
        self.variance_eps = float(variance_eps)
        self.reference_term = reference_term
        self.reference_weight = float(reference_weight)
        self.log_all_layers = bool(log_all_layers)
        self._last_raw: Optional[torch.Tensor] = None  # unweighted sum of the last batch
        self._last_corr: Dict[int, torch.Tensor] = {}

    @property
    def coefficient(self) -> float:
        return float(self.schedule.value)

    def chosen_layers(self, num_layers: int) -> List[int]:
        if self.layers == "all":
            return list(range(num_layers))
        wanted = [self.layers] if isinstance(self.layers, int) else list(self.layers)
        bad = [i for i in wanted if not -num_layers <= i < num_layers]
        if bad:
            raise ValueError(
                f"decorrelation layers {bad} do not exist: the model exposes {num_layers} edge-feature "
                f"layers (0..{num_layers - 1}, or -1 for the last); fix `layers:` in the loss config"
            )
        return sorted({i % num_layers for i in wanted})

    def forward(
        self, pred: Dict[str, torch.Tensor], batch: Dict[str, torch.Tensor], model: torch.nn.Module
    ) -> torch.Tensor:
        irreps = features.edge_feature_irreps(model)
        if not irreps:
            raise ValueError(
                f"{type(features.energy_model_of(model)).__name__} exposes no edge-feature layers "
                "(edge_feature_irreps is empty), so there is nothing to decorrelate; remove "
                "`decorrelation` from the loss section for this model"
            )
        chosen = set(self.chosen_layers(len(irreps)))
        missing = [i for i in sorted(chosen) if keys.edge_feature_key(i) not in pred]
        if missing:
            raise ValueError(
                f"the model output has no edge features for layers {missing}: turn recording on with "
                "gnnff.models.features.set_recording(model, True) before the forward pass (the trainer "
                "does this for terms with needs_edge_features)"
            )
        coefficient = self.coefficient
        layouts = features.edge_feature_layouts(model)
        measured = [
            layer
            for layer in range(len(irreps))
            if keys.edge_feature_key(layer) in pred and (layer in chosen or self.log_all_layers)
        ]
        # the layers' features as the model stores them (no copy at recording); the subsample of
        # edges is taken in that layout, so only its k rows are converted and measured
        parts = {layer: features.layer_parts(pred, layer, layouts[layer]) for layer in measured}
        first = parts[min(chosen)][0]
        subset = correlation.subsample_edges(first.shape[0], self.edge_subsample, first.device)
        # lambda == 0 (e.g. start of a warm-up) or evaluation (model.eval(), e.g. validation):
        # measure for the logs, build no graph
        graph = coefficient > 0.0 and model.training and torch.is_grad_enabled()
        if self.reduction == "mean_square":  # all layers in one autograd node (the usual case)
            rhos = self._fused(irreps, layouts, measured, parts, chosen, subset, graph)
        else:
            rhos = self._composed(irreps, layouts, measured, parts, chosen, subset, graph)
        total = None
        self._last_corr = {}
        for layer, rho in zip(measured, rhos):
            self._last_corr[layer] = rho.detach()
            if layer in chosen:
                total = rho if total is None else total + rho
        self._last_raw = total.detach()
        return coefficient * total

    def _fused(self, irreps, layouts, measured, parts, chosen, subset, graph):
        """mean_square: fused_correlation (stored layouts, one node, analytic backward)."""
        layers = [
            (
                irreps[layer],
                layouts[layer],
                parts[layer] if graph and layer in chosen else [p.detach() for p in parts[layer]],
            )
            for layer in measured
        ]
        if len({ps[0].shape[0] for _, _, ps in layers}) != 1:  # not one edge set: layer by layer
            return [self._fused_one(layer, subset, graph) for layer in layers]
        with torch.set_grad_enabled(graph):
            rho = fused_correlation.fused_mean_square_correlations(
                layers, subset, self.norm_eps, self.variance_eps, self._channels(graph)
            )
        return list(rho.unbind(0))

    def _fused_one(self, layer, subset, graph):
        with torch.set_grad_enabled(graph):
            return fused_correlation.fused_mean_square_correlations(
                [layer], subset, self.norm_eps, self.variance_eps, self._channels(graph)
            )[0]

    def _channels(self, graph: bool) -> Optional[int]:
        """Channels drawn per wide layer: only in steps that take the term's gradient (the cost
        that matters); measures for the logs (evaluation, lambda = 0) use every channel."""
        return self.channel_subsample if graph else None

    def _composed(self, irreps, layouts, measured, parts, chosen, subset, graph):
        """Other reductions: the composed functions of correlation.py on e3nn-layout rows."""
        invariants = []
        for layer in measured:
            with torch.set_grad_enabled(graph and layer in chosen):
                x = features.to_e3nn(parts[layer], irreps[layer], layouts[layer], subset)
                z = correlation.invariant_channels(x, irreps[layer], self.norm_eps)
                m = self._channels(graph and layer in chosen)
                if m is not None and z.shape[1] > m:  # as in fused_correlation: m drawn channels
                    drawn = fused_correlation.draw_channels(z.shape[1], m, z.device)
                    z = z.index_select(1, drawn)
                invariants.append(z)
        with torch.set_grad_enabled(graph):
            rhos = correlation.correlations_of_layers(invariants, self.reduction, self.variance_eps)
        return rhos

    def on_step(self, step: int, epoch: int, term_values: Dict[str, float]) -> None:
        raw = self._last_raw  # the unweighted value of the training batch just stepped on
        if not isinstance(self.schedule, SCHEDULES["adaptive"]):
            self.schedule.on_step(float("nan"), float("nan"))  # time-based: only counts steps
            return
        if self.reference_term not in term_values:
            raise ValueError(
                f"the adaptive decorrelation schedule needs the {self.reference_term!r} loss term, but the "
                f"loss has only {sorted(term_values)}; add it or set reference_term"
            )
        if raw is None:
            return  # no forward pass yet
        loss_force = self.reference_weight * float(term_values[self.reference_term])
        loss_force, loss_decorrelation = _mean_over_ranks(loss_force, raw)
        self.schedule.on_step(loss_force, loss_decorrelation)

    def on_epoch_end(self, epoch: int) -> None:
        self.schedule.on_epoch_end()

    def batch_logs(self) -> Dict[str, float]:
        logs = {corr_log_key(layer): float(value) for layer, value in self._last_corr.items()}
        if self._last_raw is not None:
            logs[RAW_LOG_KEY] = float(self._last_raw)
        return logs

    def epoch_logs(self) -> Dict[str, float]:
        return {LAMBDA_LOG_KEY: self.coefficient}

    # the schedule's state (lambda, EMAs, time) travels with state_dict() for resumed training
    def get_extra_state(self):
        return {"schedule": self.schedule.state_dict()}

    def set_extra_state(self, state) -> None:
        self.schedule.load_state_dict(state["schedule"])


def _mean_over_ranks(loss_force: float, raw: torch.Tensor):
    """Average the controller's inputs over DDP ranks so that every rank keeps the same lambda."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return loss_force, float(raw)
    both = torch.stack(
        [torch.as_tensor(loss_force, dtype=raw.dtype, device=raw.device), raw.reshape(())]
    )
    dist.all_reduce(both)
    both = both / dist.get_world_size()
    return float(both[0]), float(both[1])


@register_loss_term("decorrelation")
def decorrelation(
    layers: Union[str, int, List[int]] = "all",
    reduction: str = "mean_square",
    schedule: str = "constant",
    lambda_value: Optional[float] = None,
    lambda_min: Optional[float] = None,
    lambda_max: Optional[float] = None,
    warmup: Optional[int] = None,
    decay: Optional[int] = None,
    schedule_unit: Optional[str] = None,
    target_fraction: Optional[float] = None,
    adaptation_rate: Optional[float] = None,
    ema_decay: Optional[float] = None,
    max_change: Optional[float] = None,
    reference_term: str = "forces",
    reference_weight: float = 1.0,
    edge_subsample: Optional[Union[int, float]] = DEFAULT_EDGE_SUBSAMPLE,
    norm_eps: float = 1e-8,
    variance_eps: float = 1e-6,
    log_all_layers: bool = True,
    channel_subsample: Optional[int] = DEFAULT_CHANNEL_SUBSAMPLE,
) -> DecorrelationLoss:
    """Build the decorrelation term; the keyword arguments are its config schema (docs/decorrelation.md)."""
    given = {
        "lambda_value": lambda_value, "lambda_min": lambda_min, "lambda_max": lambda_max,
        "warmup": warmup, "decay": decay, "schedule_unit": schedule_unit,
        "target_fraction": target_fraction, "adaptation_rate": adaptation_rate,
        "ema_decay": ema_decay, "max_change": max_change,
    }  # fmt: skip
    if schedule not in SCHEDULES:
        raise ValueError(
            f"unknown decorrelation schedule {schedule!r}; choose one of {sorted(SCHEDULES)}"
        )
    options = _SCHEDULE_OPTIONS[schedule]
    unused = sorted(k for k, v in given.items() if v is not None and k not in options)
    if unused:
        raise ValueError(
            f"options {unused} do not apply to the {schedule!r} decorrelation schedule (it reads "
            f"{sorted(options)}); remove them or pick the schedule they belong to"
        )
    schedule_obj = SCHEDULES[schedule](
        **{options[k]: v for k, v in given.items() if v is not None and k in options}
    )
    if reduction not in correlation.REDUCTIONS:
        raise ValueError(
            f"unknown correlation reduction {reduction!r}; choose one of {list(correlation.REDUCTIONS)}"
        )
    if not (
        layers == "all"
        or isinstance(layers, int)
        or (
            isinstance(layers, (list, tuple)) and all(isinstance(i, int) for i in layers) and layers
        )
    ):
        raise ValueError(
            f"layers must be 'all', a layer index or a non-empty list of indices, got {layers!r}"
        )
    if edge_subsample is not None:
        ok_int = (
            isinstance(edge_subsample, int)
            and not isinstance(edge_subsample, bool)
            and edge_subsample >= 2
        )
        ok_frac = isinstance(edge_subsample, float) and 0.0 < edge_subsample <= 1.0
        if not (ok_int or ok_frac):
            raise ValueError(
                f"edge_subsample must be null (all edges), an int >= 2 (max edges) or a float in (0, 1] "
                f"(fraction of edges), got {edge_subsample!r}"
            )
    if channel_subsample is not None and not (
        isinstance(channel_subsample, int)
        and not isinstance(channel_subsample, bool)
        and channel_subsample >= 2
    ):
        raise ValueError(
            f"channel_subsample must be null (all channels) or an int >= 2 (channels measured per "
            f"wide layer in a training step), got {channel_subsample!r}"
        )
    if not (norm_eps > 0 and variance_eps >= 0):
        raise ValueError(f"need norm_eps > 0 and variance_eps >= 0, got {norm_eps}, {variance_eps}")
    return DecorrelationLoss(
        schedule_obj, list(layers) if isinstance(layers, tuple) else layers, reduction, edge_subsample,
        norm_eps, variance_eps, reference_term, reference_weight, log_all_layers,
        channel_subsample,
    )  # fmt: skip
