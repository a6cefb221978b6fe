"""Measure the spread of the decorrelation effect test's numbers over seeds and CPU code paths.

One short training run is not a statistic: the same seed gives different numbers on different
CPUs (vectorised kernels sum in another order, and 300 Adam steps amplify the difference). This
script reruns the trainer comparison of test_decorrelation_effect.py for several seeds, each in
a fresh process whose ATen CPU kernels are forced to one instruction set, and prints per epoch
the validation force MAE and correlation of both runs, so the test's statistic and bounds can be
set from measured spread:

    OMP_NUM_THREADS=1 PYTHONPATH=python:tests/decorrelation python \
        tests/decorrelation/measure_effect_spread.py --seeds 0 1 2 3 4 5 --capabilities default avx2 \
        > spread.jsonl

ATEN_CPU_CAPABILITY=default runs the scalar (non-vectorised) kernels, avx2 / avx512 the
vectorised ones (a capability the CPU lacks falls back to the best it has; torch reports the one
used, and it is recorded in each line).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile


def one_process(seed: int, epochs: int) -> None:
    import ase.io
    import torch
    from decorrelation_helpers import lennard_jones_structures
    from test_decorrelation_effect import DEC_CONFIG, trainer_run

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        ase.io.write(os.path.join(tmp, "train.extxyz"), lennard_jones_structures(16, seed=1))
        ase.io.write(os.path.join(tmp, "val.extxyz"), lennard_jones_structures(8, seed=2))
        base = trainer_run(tmp, "base", None, seed=seed, epochs=epochs, measure_every_epoch=True)
        dec = trainer_run(
            tmp, "dec", DEC_CONFIG, seed=seed, epochs=epochs, measure_every_epoch=True
        )
    print(
        json.dumps(
            {
                "seed": seed,
                "capability": torch.backends.cpu.get_cpu_capability(),
                "base_mae": base["mae"],
                "base_corr": base["corr"],
                "dec_mae": dec["mae"],
                "dec_corr": dec["corr"],
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--capabilities", nargs="+", default=["default", "avx2"])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        one_process(args.child, args.epochs)
        return
    for capability in args.capabilities:
        for seed in args.seeds:
            env = dict(os.environ, ATEN_CPU_CAPABILITY=capability, OMP_NUM_THREADS="1")
            subprocess.run(
                [sys.executable, __file__, "--child", str(seed), "--epochs", str(args.epochs)],
                env=env,
                check=True,
            )


if __name__ == "__main__":
    main()
