"""Training-step overhead of the decorrelation loss, per model, written as JSON.

For each model (builder defaults = its reference size) on a batch of rattled silicon supercells,
time one full training step

    forward (energy, forces by autograd with create_graph) -> loss -> backward -> Adam step

in three variants, interleaved (order rotated every round) so that slow drifts of a shared machine
hit all alike:

    baseline:       loss = energy MSE + 100 * force MSE, edge-feature recording off
    recording:      the same with recording on (what the model itself spends to expose features)
    decorrelation:  the same + the decorrelation term (recording on, all layers, mean_square,
                    constant lambda; schedule choice does not change the cost)

overhead % = 100 * (median(decorrelation) / median(baseline) - 1), from the process CPU time of
each step (with 1 torch thread this is the work done, little disturbed by other jobs on a shared
machine) and from wall time. Because the variants of one round run back to back, the paired
overhead (median over rounds of decorrelation / baseline - 1 of the same round, with a bootstrap
95 % interval) is also reported: it removes most of the drift between rounds. Also timed: the
measure alone (the term's forward and backward to the recorded features, as leaves: with dense
gradient buffers, an upper bound) as a share of the baseline step, and the measure "in situ"
(recorded tensors that also get another gradient, so the term's rows go through its tensor hook
as in a training step; backward with the term minus backward without, medians).

    python benchmarks/bench_decorrelation.py --out benchmarks/results/decorrelation.json
    python benchmarks/bench_decorrelation.py --size medium --models allegro nequip --repeats 10 ...
    python benchmarks/bench_decorrelation.py --src /tmp/old/python ...   # an older checkout's code

``--edge-subsample``: "default" (the term's default), "all" (every edge) or a number of edges;
``--channel-subsample``: likewise for the channels drawn per wide layer ("all": every channel).
Not run in CI. Numbers and machine are recorded in docs/decorrelation.md.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

_SRC = os.path.join(os.path.dirname(__file__), "..", "python")
if "--src" in sys.argv:  # time another checkout's gnnff (e.g. the code before a change)
    _SRC = sys.argv[sys.argv.index("--src") + 1]
sys.path.insert(0, _SRC)

import ase.build  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gnnff import keys  # noqa: E402
from gnnff.data.graph import atoms_to_graph  # noqa: E402
from gnnff.models import available_models, build_model, features  # noqa: E402
from gnnff.training.loss_terms import build_loss_term  # noqa: E402

SIZES = {
    # reference size: the builder's defaults / preset; r_max where the builder needs one
    "default": {
        "pair_mlp": {},
        "allegro": {"r_max": 4.0},
        "nequip": {"r_max": 4.0},
        "gemnet_t": {},
        "toy_message_passing": {},
    },
    # larger networks (more channels per layer), closer to production models
    "medium": {
        "pair_mlp": {"hidden": 64, "num_layers": 3},
        "allegro": {"r_max": 4.0, "preset": "medium"},
        "nequip": {"r_max": 4.0, "preset": "medium"},
    },
    "paper": {
        "allegro": {"r_max": 4.0, "preset": "paper"},
        "nequip": {"r_max": 4.0, "preset": "paper"},
    },
}


def make_batch(model, n_structures: int, repeat: int, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(n_structures):
        atoms = ase.build.bulk("Si", "diamond", a=5.43, cubic=True).repeat(repeat)
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        g = atoms_to_graph(atoms, model.type_names, model.r_max, dtype=dtype)
        g[keys.FORCES] = torch.as_tensor(rng.normal(size=(len(atoms), 3)), dtype=dtype)
        g[keys.TOTAL_ENERGY] = torch.as_tensor([float(rng.normal())], dtype=dtype)
        graphs.append(g)
    offset, parts = (
        0,
        {
            k: []
            for k in (
                keys.POSITIONS,
                keys.ATOM_TYPE,
                keys.EDGE_INDEX,
                keys.EDGE_SHIFT,
                keys.FORCES,
                keys.TOTAL_ENERGY,
                keys.BATCH,
            )
        },
    )
    for gi, g in enumerate(graphs):
        n = g[keys.POSITIONS].shape[0]
        for k in (keys.POSITIONS, keys.ATOM_TYPE, keys.EDGE_SHIFT, keys.FORCES, keys.TOTAL_ENERGY):
            parts[k].append(g[k])
        parts[keys.EDGE_INDEX].append(g[keys.EDGE_INDEX] + offset)
        parts[keys.BATCH].append(torch.full((n,), gi, dtype=torch.long))
        offset += n
    batch = {k: torch.cat(v, dim=1 if k == keys.EDGE_INDEX else 0) for k, v in parts.items()}
    batch[keys.NUM_GRAPHS] = torch.tensor([n_structures])
    return batch


def train_step(model, optimizer, batch, term):
    pred = model(dict(batch))
    loss = ((pred[keys.TOTAL_ENERGY] - batch[keys.TOTAL_ENERGY]) ** 2).mean()
    loss = loss + 100.0 * ((pred[keys.FORCES] - batch[keys.FORCES]) ** 2).mean()
    if term is not None:
        loss = loss + term(pred, batch, model)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if term is not None:
        term.on_step(0, 0, {"forces": 1.0})


def bench_model(name, args, dtype):
    kwargs = SIZES[args.size][name]
    model = build_model(name, type_names=["Si"], **kwargs).to(dtype).train()
    batch = make_batch(model, args.structures, args.repeat, dtype)
    term_kwargs = {"lambda_value": 0.1}
    if args.edge_subsample == "all":
        term_kwargs["edge_subsample"] = None
    elif args.edge_subsample != "default":
        term_kwargs["edge_subsample"] = int(args.edge_subsample)
    if args.channel_subsample == "all":  # "default": not passed, so older trees (--src) run too
        term_kwargs["channel_subsample"] = None
    elif args.channel_subsample != "default":
        term_kwargs["channel_subsample"] = int(args.channel_subsample)
    term = build_loss_term("decorrelation", **term_kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)  # tiny lr: the model barely changes

    def run(variant):
        features.set_recording(model, variant != "baseline")
        w0, c0 = time.perf_counter(), time.process_time()
        train_step(model, optimizer, batch, term if variant == "decorrelation" else None)
        return time.perf_counter() - w0, time.process_time() - c0

    variants = (
        ("baseline", "recording", "decorrelation")
        if args.recording
        else ("baseline", "decorrelation")
    )
    for _ in range(args.warmup):
        for variant in variants:
            run(variant)
    wall = {v: [] for v in variants}
    cpu = {v: [] for v in variants}
    for i in range(args.repeats):
        r = i % len(variants)
        for variant in variants[r:] + variants[:r]:  # rotate the order every round
            w, c = run(variant)
            wall[variant].append(w)
            cpu[variant].append(c)
    # the measure alone: the term's forward + backward to the recorded features (CPU time)
    features.set_recording(model, True)
    pred = model(dict(batch))
    # every recorded tensor (a layer may store more than one, in the model's own layout)
    leaves = {
        k: v.detach().requires_grad_(True)
        for k, v in pred.items()
        if k.startswith(keys.EDGE_FEATURES_PREFIX)
    }
    feats = list(leaves.values())
    measure = []
    for _ in range(args.repeats):
        c0 = time.process_time()
        value = term(leaves, batch, model)
        torch.autograd.grad(value, feats, allow_unused=True)
        measure.append(time.process_time() - c0)
    # the measure as a training step runs it: the recorded tensors are not leaves and also get
    # the model's gradient (a stand-in: a fixed random linear function of each), so the term's
    # gradient goes through its tensor hook (no dense buffer). Timed as backward(stand-in +
    # term) - backward(stand-in), interleaved; the difference of the medians.
    stand_in = [torch.randn_like(f) for f in feats]

    def in_situ(with_term):
        ys = {k: v * 1.0 for k, v in leaves.items()}
        c0 = time.process_time()
        loss = sum((y * w).sum() for y, w in zip(ys.values(), stand_in))
        if with_term:
            loss = loss + term(ys, batch, model)
        torch.autograd.grad(loss, feats)
        return time.process_time() - c0

    situ = {False: [], True: []}
    for i in range(args.repeats):
        for with_term in (i % 2 == 0, i % 2 == 1):
            situ[with_term].append(in_situ(with_term))
    in_situ_s = statistics.median(situ[True]) - statistics.median(situ[False])
    med = {v: statistics.median(cpu[v]) for v in cpu}
    paired = [d / b - 1.0 for d, b in zip(cpu["decorrelation"], cpu["baseline"])]
    rng = np.random.default_rng(1)
    boot = sorted(statistics.median(rng.choice(paired, size=len(paired))) for _ in range(2000))
    if not args.recording:
        cpu["recording"] = wall["recording"] = [float("nan")]
        med["recording"] = float("nan")
    irreps = features.edge_feature_irreps(model)
    return {
        "model": name,
        "builder_kwargs": kwargs,
        "num_atoms": int(batch[keys.POSITIONS].shape[0]),
        "num_edges": int(batch[keys.EDGE_INDEX].shape[1]),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "term_edge_subsample": getattr(term, "edge_subsample", None),
        "term_channel_subsample": getattr(term, "channel_subsample", None),
        "edge_feature_irreps": irreps,
        "step_cpu_s_baseline_median": med["baseline"],
        "step_cpu_s_decorrelation_median": med["decorrelation"],
        "step_cpu_s_recording_only_median": med["recording"],
        "overhead_percent_cpu": 100.0 * (med["decorrelation"] / med["baseline"] - 1.0),
        "recording_only_overhead_percent_cpu": 100.0 * (med["recording"] / med["baseline"] - 1.0),
        "overhead_percent_cpu_paired_median": 100.0 * statistics.median(paired),
        "overhead_percent_cpu_paired_ci95": [100.0 * boot[49], 100.0 * boot[1949]],
        "overhead_percent_wall": 100.0
        * (statistics.median(wall["decorrelation"]) / statistics.median(wall["baseline"]) - 1.0),
        "step_wall_s_baseline_all": wall["baseline"],
        "step_wall_s_decorrelation_all": wall["decorrelation"],
        "step_wall_s_recording_all": wall["recording"],
        "step_cpu_s_recording_all": cpu["recording"],
        "step_cpu_s_baseline_all": cpu["baseline"],
        "step_cpu_s_decorrelation_all": cpu["decorrelation"],
        "measure_fwd_bwd_cpu_s_median": statistics.median(measure),
        "measure_fwd_bwd_percent_of_step": 100.0 * statistics.median(measure) / med["baseline"],
        "measure_in_situ_cpu_s_median_difference": in_situ_s,
        "measure_in_situ_percent_of_step": 100.0 * in_situ_s / med["baseline"],
    }


def _memory_policy(policy: str):
    """This tree's gnnff/memory.py (also when --src times an older tree that lacks it)."""
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(os.path.dirname(here), "python", "gnnff", "memory.py")
    spec = importlib.util.spec_from_file_location("gnnff_memory_policy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.apply_memory_policy(policy)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--size", choices=sorted(SIZES), default="default", help="model sizes (see SIZES)"
    )
    parser.add_argument("--models", nargs="*", default=None, help="default: every model of --size")
    parser.add_argument("--structures", type=int, default=4, help="structures per batch")
    parser.add_argument(
        "--repeat", type=int, default=3, help="supercell repeat of the 8-atom Si cell"
    )
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (0: torch default); 1 makes CPU time a clean cost measure",
    )
    parser.add_argument(
        "--edge-subsample",
        default="default",
        help="edges for the measure: 'default' (the term's default), 'all', or a number",
    )
    parser.add_argument(
        "--channel-subsample",
        default="default",
        help="channels measured per wide layer: 'default' (the term's default), 'all', or a number",
    )
    parser.add_argument(
        "--no-recording",
        dest="recording",
        action="store_false",
        help="skip the recording-only variant (saves a third of the time on large models)",
    )
    parser.add_argument(
        "--memory",
        choices=["keep", "release"],
        default="keep",
        help="glibc malloc policy of this process: keep (training.memory's default) or release",
    )
    parser.add_argument("--src", default=None, help="gnnff python/ directory to time")
    parser.add_argument("--out", default="bench_decorrelation.json")
    args = parser.parse_args(argv)
    memory_policy_done = _memory_policy(args.memory)
    load_start = os.getloadavg()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    registered = available_models()
    results, skipped = [], {}
    for name in args.models or list(SIZES[args.size]):
        if name not in SIZES[args.size]:
            skipped[name] = f"no {args.size} size defined"
            continue
        if name not in registered:
            skipped[name] = "not registered"
            continue
        r = bench_model(name, args, dtype)
        print(
            f"{name:20s} atoms {r['num_atoms']:4d} edges {r['num_edges']:6d}  CPU/step {r['step_cpu_s_baseline_median'] * 1e3:8.1f} ms"
            f" -> {r['step_cpu_s_decorrelation_median'] * 1e3:8.1f} ms  overhead {r['overhead_percent_cpu']:+6.2f} % CPU,"
            f" paired {r['overhead_percent_cpu_paired_median']:+6.2f} %"
            f" [{r['overhead_percent_cpu_paired_ci95'][0]:+.2f}, {r['overhead_percent_cpu_paired_ci95'][1]:+.2f}],"
            f" {r['overhead_percent_wall']:+6.2f} % wall; recording alone {r['recording_only_overhead_percent_cpu']:+6.2f} %;"
            f" measure fwd+bwd {r['measure_fwd_bwd_percent_of_step']:.2f} %,"
            f" in situ {r['measure_in_situ_percent_of_step']:.2f} %",
            flush=True,
        )
        results.append(r)
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    report = {
        "benchmark": "decorrelation training-step overhead",
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_at_start": load_start,
                    "load_average_at_end": os.getloadavg(), "platform": platform.platform(),
                    "torch": torch.__version__, "device": "cpu"},
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "memory_policy_done": memory_policy_done,
        "command": " ".join(["python"] + sys.argv),
        "gnnff_source": os.path.abspath(_SRC),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": results,
        "skipped": skipped,
    }  # fmt: skip
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
