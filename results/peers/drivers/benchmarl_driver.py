"""Time BenchMARL's MAPPO on VMAS balance (runs in the BenchMARL venv; see ../README.md).

    python benchmarl_driver.py --iterations 4 [--set '{"experiment": {...}, "model": {...}}']

Builds the experiment as BenchMARL's ``examples/running/run_experiment.py`` does, from
the package's own yaml defaults (``benchmarl/conf``: ``experiment/base_experiment.yaml``,
``algorithm/mappo.yaml``, ``task/vmas/balance.yaml``, ``model/layers/mlp.yaml`` for the
actor and the critic), then applies ``--set`` (a JSON object whose keys ``experiment``,
``algorithm``, ``task``, ``model`` map attribute names to values; ``model`` applies to
actor and critic; ``activation_class``/``layer_class`` are dotted names such as
``torch.nn.ReLU``). Always changed, for a benchmark: CPU devices, no loggers, no
evaluation, no rendering, no JSON output, no checkpoints, ``max_n_iters`` = K + 2 and
``max_n_frames`` None; the save folder is a temporary directory.

Timing (``_measure.Timer``): ``start`` before ``experiment.run()``; a callback laps at every
``on_batch_collected`` (the end of an iteration's collection, before its training); the
timer stops at the (K+2)-th collected batch, so the rate covers K whole iterations
(training of batch i + collection of batch i+1, i = 2 … K+1); the run's last training
is not run (the driver reports and exits at that point). ``rate_incl_first`` runs from
``experiment.run()`` (the collector's first reset included) to the same end point and
counts K + 1 batches.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _measure import Timer, emit, one_thread_torch  # noqa: E402


def _resolve(value):
    """Dotted class names (``torch.nn.ReLU``) → the class; anything else unchanged."""
    if isinstance(value, str) and value.startswith("torch."):
        module, _, name = value.rpartition(".")
        return getattr(importlib.import_module(module), name)
    return value


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=4, help="timed iterations after one warm-up iteration")
    p.add_argument("--set", default="{}", help="JSON overrides (see the module docstring)")
    args = p.parse_args()

    one_thread_torch()
    import benchmarl
    import torch
    import torchrl
    import vmas
    from benchmarl.algorithms import MappoConfig
    from benchmarl.environments import VmasTask
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.experiment.callback import Callback
    from benchmarl.models.mlp import MlpConfig

    exp_cfg = ExperimentConfig.get_from_yaml()
    task = VmasTask.BALANCE.get_from_yaml()
    algo_cfg = MappoConfig.get_from_yaml()
    actor_cfg, critic_cfg = MlpConfig.get_from_yaml(), MlpConfig.get_from_yaml()

    over = json.loads(args.set)
    for k, v in over.get("experiment", {}).items():
        setattr(exp_cfg, k, v)
    for k, v in over.get("algorithm", {}).items():
        setattr(algo_cfg, k, v)
    task.config.update(over.get("task", {}))
    for k, v in over.get("model", {}).items():
        setattr(actor_cfg, k, _resolve(v))
        setattr(critic_cfg, k, _resolve(v))
    exp_cfg.sampling_device = exp_cfg.train_device = exp_cfg.buffer_device = "cpu"
    exp_cfg.loggers = []
    exp_cfg.evaluation = False
    exp_cfg.render = False
    exp_cfg.create_json = False
    exp_cfg.checkpoint_interval = 0
    exp_cfg.checkpoint_at_end = False
    exp_cfg.max_n_frames = None
    exp_cfg.max_n_iters = args.iterations + 2
    exp_cfg.save_folder = tempfile.mkdtemp(prefix="benchmarl_bench_")

    timer = Timer()
    batches = []
    frames = exp_cfg.on_policy_collected_frames_per_batch

    def report() -> None:
        if set(batches) != {frames}:
            raise SystemExit(f"expected batches of {frames} frames, got {batches}")
        emit({
            "side": "benchmarl", "algo": "mappo", "task": "vmas/balance", "task_config": dict(task.config),
            "n_envs": exp_cfg.on_policy_n_envs_per_worker, "frames_per_batch": frames,
            "minibatch_size": exp_cfg.on_policy_minibatch_size,
            "n_minibatch_iters": exp_cfg.on_policy_n_minibatch_iters, "lr": exp_cfg.lr,
            "clip_grad_val": exp_cfg.clip_grad_val,
            "model": {"num_cells": list(actor_cfg.num_cells), "activation": actor_cfg.activation_class.__name__},
            "algorithm": {k: getattr(algo_cfg, k) for k in ("share_param_critic", "clip_epsilon", "entropy_coef",
                                                            "lmbda", "use_tanh_normal", "minibatch_advantage")},
            "versions": {"benchmarl": benchmarl.__version__, "torchrl": torchrl.__version__,
                         "torch": torch.__version__, "vmas": vmas.__version__},
            **timer.summary(frames, args.iterations),
        })

    class Laps(Callback):
        def on_batch_collected(self, batch):
            batches.append(batch.numel())
            if len(batches) <= args.iterations + 1:
                timer.lap()
            else:  # the (K+2)-th batch: the timed window ends; skip the run's last training
                timer.stop()
                report()
                os._exit(0)

        def __reduce__(self):  # BenchMARL pickles its callbacks into the save folder
            return (Callback, ())

    experiment = Experiment(task=task, algorithm_config=algo_cfg, model_config=actor_cfg,
                            critic_model_config=critic_cfg, seed=0, config=exp_cfg, callbacks=[Laps()])
    timer.start()
    experiment.run()
    raise SystemExit(f"the experiment ended after {len(batches)} batches, before the timed window closed")


if __name__ == "__main__":
    main()
