"""The training engine behind ``gnnff train``.

    trainer = Trainer(resolve_config(user_dict))   # or Trainer(config, resume="run/last.pt")
    summary = trainer.run()

Reproducibility: the order of structures in epoch e is numpy.default_rng([seed, e]).permutation,
so it depends only on the seed and the epoch; checkpoints hold every other state (weights,
optimizer, scheduler, EMA, RNGs, loss terms, partial-epoch sums, history). A run resumed from
last.pt (written at each epoch end and, with training.checkpoint_every_steps, inside epochs)
continues exactly where the killed run was.
"""

import contextlib
import logging
import os
import sys
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from gnnff import __version__, contract, keys
from gnnff.data.dataset import HAS_STRESS, collate, to_device
from gnnff.data.statistics import energy_reference
from gnnff.memory import apply_memory_policy
from gnnff.model_io import build_model
from gnnff.models import features
from gnnff.suggest import did_you_mean
from gnnff.training import checkpoint as ckpt
from gnnff.training.distributed import all_reduce_sum, barrier, init_distributed
from gnnff.training.ema import ExponentialMovingAverage
from gnnff.training.history import write_history
from gnnff.training.loss_terms import LossTerm as LossTermBase
from gnnff.training.loss_terms import build_loss_term
from gnnff.training.losses import LOSS_NORM_ATOMS, LOSS_NORM_GRAPHS, LOSS_NORM_STRESS
from gnnff.training.metrics import ErrorAccumulator
from gnnff.training.reproducibility import epoch_order, rng_states, seed_everything, set_rng_states
from gnnff.training.setup import load_splits, make_optimizer, make_scheduler

LOG = logging.getLogger("gnnff.training")
# what a checkpoint must hold to continue a run
RESUME_KEYS = (
    "model_config",
    "dtype",
    "model_state",
    "optimizer_state",
    "epoch",
    "batch_in_epoch",
    "step",
    "history",
    "best",
    "rng",
)


class Trainer:
    def __init__(
        self,
        config: Dict[str, Any],
        resume: Optional[str] = None,
        callbacks: Sequence[Callable] = (),
    ):
        self.config = config
        tcfg = config["training"]
        self.callbacks = list(callbacks)
        device = (
            tcfg["device"]
            if tcfg["device"] != "auto"
            else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.dist = init_distributed(device, tcfg["ddp_backend"])
        self.device = torch.device(
            f"cuda:{self.dist.local_rank}" if device == "cuda" and self.dist.enabled else device
        )
        self.dtype = contract.torch_dtype(tcfg["dtype"])
        # before the first step: every step's large tensors then reuse the last step's memory
        memory = apply_memory_policy(tcfg["memory"])
        if memory and self.dist.is_main:
            LOG.info("memory keep: %s", memory)
        self.out_dir = config["output"]["dir"]
        seed_everything(int(tcfg["seed"]))
        if self.dist.is_main:  # kills during earlier checkpoint writes leave hidden temp files
            for folder in {
                os.path.abspath(self.out_dir),
                os.path.dirname(os.path.abspath(resume or self.out_dir)),
            }:
                ckpt.clean_stale_temp_files(folder)

        checkpoint = ckpt.load_checkpoint(resume) if resume else None
        if checkpoint is not None:
            missing = [k for k in RESUME_KEYS if k not in checkpoint]
            if missing:
                raise ValueError(
                    f"{resume} lacks {', '.join(missing)}: it is not a complete training checkpoint; "
                    "resume from last.pt of the run, or start a new run"
                )
            ckpt.check_same_model(checkpoint, config["model"], resume)
            if checkpoint["dtype"] != tcfg["dtype"]:
                raise ValueError(
                    f"{resume} was trained in {checkpoint['dtype']}, config asks {tcfg['dtype']}; set training.dtype: {checkpoint['dtype']}"
                )
        elif (
            self.dist.is_main
            and os.path.exists(os.path.join(self.out_dir, "last.pt"))
            and not config["output"]["overwrite"]
        ):
            raise ValueError(
                f"{self.out_dir} already holds a run (last.pt); resume it with --resume, or set output.overwrite: true / another output.dir"
            )

        self.model = build_model(config["model"], tcfg["dtype"]).to(self.device)
        self.terms = {
            name: build_loss_term(name, **(cfg or {})) for name, cfg in config["loss"].items()
        }
        self._check_monitor(tcfg["monitor"])
        weight = {name: float(getattr(term, "weight", 1.0)) for name, term in self.terms.items()}
        self.datasets, data_lineage = load_splits(
            config,
            self.model.type_names,
            self.model.r_max,
            self.dtype,
            need_energy=weight.get("energy", 0.0) > 0,
            need_forces=weight.get("forces", 0.0) > 0,
        )
        self.lineage: Dict[str, Any] = {
            "model_name": self.model.model_name,
            "gnnff_version": __version__,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": data_lineage,
        }
        param_groups: List[Dict[str, Any]] = [{"params": list(self.model.parameters())}]
        if config.get("init_from"):
            from gnnff.training.finetune import apply_init_from

            init_lineage, groups = apply_init_from(
                self.model, config["init_from"], self.model.type_names
            )
            self.lineage["init_from"] = init_lineage
            param_groups = groups or param_groups
        self._set_energy_reference()
        if any(t.needs_edge_features for t in self.terms.values()):
            features.set_recording(self.model, True)
        self.ema = (
            ExponentialMovingAverage(self.model, tcfg["ema_decay"])
            if tcfg["ema_decay"] is not None
            else None
        )
        self.optimizer = make_optimizer(param_groups, config["optimizer"])
        self.scheduler = make_scheduler(
            self.optimizer, config["scheduler"], int(tcfg["max_epochs"])
        )
        self.train_model = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # force training differentiates twice: DDP then sees grads with other strides than its
            # buckets, a harmless performance note it would print at every step
            warnings.filterwarnings(
                "ignore", message="Grad strides do not match bucket view strides"
            )
            self.train_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.history: List[Dict[str, float]] = []
        self.best = {"value": float("inf"), "epoch": -1, "since": 0}
        self._reset_train_sums()
        if checkpoint is not None:
            self._restore(checkpoint)

    # ---------------------------------------------------------------------------------------
    def _check_monitor(self, monitor: str) -> None:
        """Catch a misspelt training.monitor before training (terms may add more val_* columns)."""
        known = ["lr"]
        for split in ("train", "val"):
            known += [f"{split}_loss"] + [f"{split}_loss_{name}" for name in self.terms]
            known += [
                f"{split}_{q}_{m}" for q in ("energy", "forces", "stress") for m in ("mae", "rmse")
            ]
        if monitor not in known and not any(
            type(t).batch_logs is not LossTermBase.batch_logs for t in self.terms.values()
        ):
            raise ValueError(
                f"training.monitor {monitor!r} is not a logged column{did_you_mean(monitor, known)}; "
                f"choose one of {known}"
            )

    def _set_energy_reference(self) -> None:
        dcfg = self.config["data"]
        model = self.model
        n_types = len(model.type_names)
        shift_mode, scale_mode = dcfg["energy_shift"], dcfg["energy_scale"]
        shift, scale = energy_reference(
            self.datasets["train"].examples,
            n_types,
            None if shift_mode == "keep" else shift_mode,
            None if scale_mode == "keep" else scale_mode,
        )
        if shift_mode == "keep":
            shift = model.per_type_energy_shift.cpu().numpy()
        if scale_mode == "keep":
            scale = model.per_type_energy_scale.cpu().numpy()
        model.set_energy_reference(torch.as_tensor(shift), torch.as_tensor(scale))
        self.lineage["energy_reference"] = {
            "shift_eV": [float(x) for x in shift],
            "scale": [float(x) for x in scale],
            "type_names": list(model.type_names),
        }
        LOG.info(
            "energy reference per type %s: shift %s eV, scale %s", model.type_names, shift, scale
        )

    def _reset_train_sums(self) -> None:
        self.train_sums: Dict[str, Any] = {
            "terms": {},
            "logs": {},
            "batches": 0,
            "structures": 0,
            "seconds": 0.0,
            "errors": ErrorAccumulator(),
        }

    def _restore(self, state: Dict[str, Any]) -> None:
        self.model.load_state_dict(state["model_state"])
        if self.ema is not None and state.get("ema_state"):
            self.ema.load_state_dict(state["ema_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])
        if self.scheduler is not None and state.get("scheduler_state"):
            self.scheduler.load_state_dict(state["scheduler_state"])
        for name, term_state in (state.get("loss_terms") or {}).items():
            if name in self.terms:
                self.terms[name].load_state_dict(term_state)
        self.epoch, self.batch_in_epoch, self.step = (
            state["epoch"],
            state["batch_in_epoch"],
            state["step"],
        )
        self.history, self.best = list(state["history"]), dict(state["best"])
        self.lineage = state.get("lineage", self.lineage)
        sums = state.get("train_sums")
        if sums:
            errors = ErrorAccumulator()
            errors.load_state(sums["errors"])
            self.train_sums = dict(sums, errors=errors)
        set_rng_states(state["rng"])

    def state_dict(self) -> Dict[str, Any]:
        sums = dict(self.train_sums, errors=self.train_sums["errors"].state())
        return {
            "format": ckpt.FORMAT,
            "version": ckpt.VERSION,
            "config": self.config,
            "model_config": self.config["model"],
            "type_names": list(self.model.type_names),
            "dtype": self.config["training"]["dtype"],
            "model_state": self.model.state_dict(),
            "ema_state": self.ema.state_dict() if self.ema is not None else None,
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "step": self.step,
            "lineage": self.lineage,
            "rng": rng_states(),
            "history": self.history,
            "best": self.best,
            "train_sums": sums,
            "loss_terms": {name: term.state_dict() for name, term in self.terms.items()},
        }

    def save(self, name: str) -> str:
        path = os.path.join(self.out_dir, name)
        if self.dist.is_main:
            ckpt.save_checkpoint(self.state_dict(), path)
        return path

    # ---------------------------------------------------------------------------------------
    def _loss(
        self,
        batch: Dict[str, torch.Tensor],
        model: torch.nn.Module,
        norms: Optional[Dict[str, torch.Tensor]] = None,
    ):
        """Predictions and term values; the loss denominators go to the terms with the labels,
        not into the model."""
        pred = model(dict(batch))
        targets = dict(batch, **norms) if norms else batch
        values = {name: term(pred, targets, self.model) for name, term in self.terms.items()}
        return pred, values

    def _norms(self, examples) -> Dict[str, torch.Tensor]:
        world = float(self.dist.world_size)
        n_atoms = sum(int(e[keys.POSITIONS].shape[0]) for e in examples)
        n_stress = sum(int(e[HAS_STRESS].item()) for e in examples)
        counts = (
            (LOSS_NORM_GRAPHS, len(examples)),
            (LOSS_NORM_ATOMS, n_atoms),
            (LOSS_NORM_STRESS, n_stress),
        )
        return {key: torch.tensor([count / world], dtype=torch.float64) for key, count in counts}

    def _train_batch(self, global_indices: np.ndarray, epoch: int) -> float:
        train = self.datasets["train"]
        examples = [train[int(i)] for i in global_indices]
        local = examples[self.dist.rank :: self.dist.world_size]
        batch = to_device(collate(local), self.device)
        self.train_model.train()
        pred, values = self._loss(batch, self.train_model, self._norms(examples))
        loss = sum(values.values())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.config["training"]["grad_clip"]
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(clip))
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        world = self.dist.world_size
        sums = self.train_sums
        for name, value in values.items():
            sums["terms"][name] = sums["terms"].get(name, 0.0) + float(value.detach()) / world
        for term in self.terms.values():
            for key, value in term.batch_logs().items():
                sums["logs"][key] = sums["logs"].get(key, 0.0) + float(value) / world
        sums["batches"] += 1
        sums["structures"] += len(examples)
        sums["errors"].add(pred, batch)
        unweighted = {
            n: float(v.detach()) / getattr(self.terms[n], "weight", 1.0)
            if getattr(self.terms[n], "weight", 1.0)
            else 0.0
            for n, v in values.items()
        }
        for term in self.terms.values():
            term.on_step(self.step, epoch, unweighted)
        return float(loss.detach())

    def _reduced_train_logs(self) -> Dict[str, float]:
        sums = self.train_sums
        names = sorted(sums["terms"])
        log_names = sorted(sums["logs"])
        vec = torch.tensor(
            [sums["terms"][n] for n in names] + [sums["logs"][n] for n in log_names],
            dtype=torch.float64,
        )
        vec = all_reduce_sum(vec)
        batches = max(sums["batches"], 1)
        row = {f"train_loss_{n}": float(v) / batches for n, v in zip(names, vec[: len(names)])}
        row["train_loss"] = float(vec[: len(names)].sum()) / batches
        row.update({f"train_{n}": float(v) / batches for n, v in zip(log_names, vec[len(names) :])})
        sums["errors"].all_reduce()
        row.update(sums["errors"].results("train_"))
        return row

    def evaluate(self, name: str = "val") -> Dict[str, float]:
        """Loss terms and errors on a split (EMA weights), averaged over its structures."""
        dataset = self.datasets[name]
        size = int(
            self.config["training"]["val_batch_size"] or self.config["training"]["batch_size"]
        )
        chunks = [list(range(i, min(i + size, len(dataset)))) for i in range(0, len(dataset), size)]
        errors = ErrorAccumulator()
        term_sums: Dict[str, float] = {n: 0.0 for n in self.terms}
        log_sums: Dict[str, float] = {}
        context = (
            self.ema.applied_to(self.model) if self.ema is not None else contextlib.nullcontext()
        )
        with context:
            self.model.eval()
            for chunk in chunks[self.dist.rank :: self.dist.world_size]:
                batch = to_device(collate([dataset[i] for i in chunk]), self.device)
                pred, values = self._loss(batch, self.model)
                for n, v in values.items():
                    term_sums[n] += float(v.detach()) * len(chunk)
                for term in self.terms.values():
                    for key, value in term.batch_logs().items():
                        log_sums[key] = log_sums.get(key, 0.0) + float(value) * len(chunk)
                errors.add(pred, batch)
            self.model.train()
        names, log_names = sorted(term_sums), sorted(log_sums)
        vec = all_reduce_sum(
            torch.tensor(
                [term_sums[n] for n in names] + [log_sums[n] for n in log_names],
                dtype=torch.float64,
            )
        )
        vec = vec / len(dataset)
        row = {f"{name}_loss_{n}": float(v) for n, v in zip(names, vec[: len(names)])}
        row[f"{name}_loss"] = float(vec[: len(names)].sum())
        row.update({f"{name}_{n}": float(v) for n, v in zip(log_names, vec[len(names) :])})
        errors.all_reduce()
        row.update(errors.results(f"{name}_"))
        return row

    # ---------------------------------------------------------------------------------------
    def _emit(self, event: str) -> None:
        for callback in self.callbacks:
            callback(self, event)

    def _progress(self, total: int, initial: int):
        setting = self.config["training"]["progress_bar"]
        show = sys.stderr.isatty() if setting == "auto" else bool(setting)
        from tqdm import tqdm

        return tqdm(
            total=total,
            initial=initial,
            desc=f"epoch {self.epoch + 1}",
            leave=False,
            disable=not (show and self.dist.is_main),
        )

    def run(self) -> Dict[str, Any]:
        tcfg = self.config["training"]
        if self.dist.is_main:
            os.makedirs(self.out_dir, exist_ok=True)
        seed, batch_size = int(tcfg["seed"]), int(tcfg["batch_size"])
        every = tcfg["checkpoint_every_steps"]
        n_train = len(self.datasets["train"])
        stopped_early = self.best["since"] >= int(tcfg["patience"])
        while self.epoch < int(tcfg["max_epochs"]) and not stopped_early:
            order = epoch_order(seed, self.epoch, n_train)
            batches = [order[i : i + batch_size] for i in range(0, n_train, batch_size)]
            # every process needs at least one structure of each global batch
            batches = [b for b in batches if len(b) >= self.dist.world_size]
            with self._progress(len(batches), self.batch_in_epoch) as bar:
                while self.batch_in_epoch < len(batches):
                    start = time.perf_counter()
                    loss = self._train_batch(batches[self.batch_in_epoch], self.epoch)
                    self.train_sums["seconds"] += time.perf_counter() - start
                    self.batch_in_epoch += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4g}")
                    if every and self.step % int(every) == 0 and self.batch_in_epoch < len(batches):
                        self.save("last.pt")
                    self._emit("step")
            stopped_early = self._end_epoch()
            self._emit("epoch")
        barrier()
        return {
            "epochs": self.epoch,
            "steps": self.step,
            "best": self.best,
            "history": self.history,
            "best_checkpoint": os.path.join(self.out_dir, "best.pt"),
            "last_checkpoint": os.path.join(self.out_dir, "last.pt"),
        }

    def _end_epoch(self) -> bool:
        tcfg = self.config["training"]
        row: Dict[str, float] = {
            "epoch": self.epoch + 1,
            "step": self.step,
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        seconds = self.train_sums["seconds"]
        row["train_structures_per_s"] = (
            self.train_sums["structures"] / seconds if seconds > 0 else float("nan")
        )
        row.update(self._reduced_train_logs())
        row.update(self.evaluate("val"))
        for term in self.terms.values():
            row.update(term.epoch_logs())
            term.on_epoch_end(self.epoch)
        monitor = tcfg["monitor"]
        if monitor not in row:
            raise ValueError(
                f"training.monitor {monitor!r} is not a logged column; choose one of {sorted(row)}"
            )
        value = float(row[monitor])
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(value)
        elif self.scheduler is not None:
            self.scheduler.step()
        self.epoch += 1
        self.batch_in_epoch = 0
        improved = value < self.best["value"] - float(tcfg["min_delta"])
        if improved:
            self.best = {"value": value, "epoch": self.epoch, "since": 0}
        else:
            self.best["since"] += 1
        self.history.append(row)
        self._reset_train_sums()
        if self.dist.is_main:
            write_history(self.history, self.out_dir)
            if improved:
                self.save("best.pt")
            self.save("last.pt")
        LOG.info("%s", epoch_summary(row, improved))
        return self.best["since"] >= int(tcfg["patience"])


def epoch_summary(row: Dict[str, Any], improved: bool) -> str:
    """One readable line per epoch for the terminal; every column is in metrics.csv/json."""
    parts = [f"epoch {row['epoch']:4d}", f"lr {row['lr']:.2e}"]
    for key in ("train_loss", "val_loss"):
        if key in row:
            parts.append(f"{key} {row[key]:.4g}")
    if "val_energy_mae" in row:
        parts.append(f"val E MAE {1000 * row['val_energy_mae']:.1f} meV/atom")
    if "val_forces_mae" in row:
        parts.append(f"val F MAE {1000 * row['val_forces_mae']:.1f} meV/Å")
    extras = sorted(k for k in row if k.startswith("val_corr") or k.endswith("_lambda"))
    parts += [f"{k} {row[k]:.3g}" for k in extras if isinstance(row[k], float)]
    return "  ".join(parts) + ("  *best" if improved else "")
