"""Side-by-side, interleaved CPU benchmark of harl_mini against HARL, JaxMARL and BenchMARL.

    bash results/peers/run.sh                      # everything (~1 h on a shared 2-core CPU)
    bash results/peers/run.sh --quick              # smoke run: one pair per cell, short runs
    bash results/peers/run.sh --peers harl --pairs 5
    bash results/peers/run.sh --cells jaxmarl/ippo-16x128 --jaxmarl-src ~/src/JaxMARL
    bash results/peers/run.sh --setup-only         # create the peer venvs and checkouts, run nothing

Standard library only. For every cell (one peer, one task, one set of sizes; :data:`CELLS`)
it runs ``--pairs`` pairs of processes, *peer run, harl_mini run, peer run, …*, each a
fresh process with one thread (``OMP_NUM_THREADS=1`` etc., torch set to one intra- and one
inter-op thread, ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``; the JaxMARL cells also
pin *both* sides to one CPU with ``taskset``), all at the niceness this script runs at.
Each run prints one ``RESULT {json}`` line (``drivers/``); the ratio of a pair is
harl_mini's rate over the peer's, and a cell reports the median, minimum and maximum of its
pair ratios. Load averages are read before and after every run.

Peers live outside the project: their virtual environments are created under ``--cache``
(default ``~/.cache/harl_mini_peers``), pinned to the versions in :data:`PEERS`; HARL's and
JaxMARL's sources are cloned there at pinned commits, unless ``--harl-src`` /
``--jaxmarl-src`` name a checkout. Nothing of a peer is copied into the repository.

Outputs (in ``--out``, default this folder): ``log-<date>.txt`` (human-readable, every
run; a second invocation on the same day appends its block) and ``results.json`` (format
in README.md; cells not re-run are kept from the previous file, each cell carrying its
own date and commit). ``--quick`` writes
``log-quick-<date>.txt`` and ``results-quick.json`` instead.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DRIVERS = HERE / "drivers"
FORMAT = 1

#: the peers: how to build their venv, where their source comes from (pinned)
PEERS = {
    "harl": {
        "name": "PKU-MARL/HARL",
        "version": "harl 1.0.0 (setup.py)",
        "repo": "https://github.com/PKU-MARL/HARL",
        "commit": "d539bad20f677bc4ce9fa200fa5de31b5f0b9d37",
        # torch first (the local 2.13.0 CPU wheel); PettingZoo 1.27 + mpe2 instead of HARL's
        # pettingzoo 1.22.2 / supersuit 3.7.0 pins (no Python 3.11 wheels: harl.md §4)
        "packages": ["torch==2.13.0", "numpy==2.4.6", "PyYAML==6.0.4", "tensorboardX==2.6.5",
                     "setproctitle==1.3.8", "absl-py==2.5.1", "pettingzoo==1.27.0", "mpe2==1.1.1",
                     "SuperSuit==3.11.0", "gymnasium==1.4.0"],
        "show": ["torch", "numpy", "pettingzoo", "mpe2", "SuperSuit"],
    },
    "jaxmarl": {
        "name": "FLAIROx/JaxMARL",
        "version": "jaxmarl 0.2.0 (PyPI)",
        "repo": "https://github.com/FLAIROx/JaxMARL",
        "commit": "c793d095618c6d3edfb5632802348f57b70a4b94",  # its jaxmarl/__init__.py says 0.2.0
        "packages": ["jaxmarl[algs]==0.2.0", "jax==0.10.2", "jaxlib==0.10.2", "flax==0.12.8", "optax==0.2.8",
                     "distrax==0.1.9", "chex==0.1.92", "numpy==2.4.6", "wandb==0.31.0", "hydra-core==1.3.8",
                     "PyYAML==6.0.4"],
        "show": ["jaxmarl", "jax", "jaxlib", "flax", "optax", "distrax"],
    },
    "benchmarl": {
        "name": "facebookresearch/BenchMARL",
        "version": "benchmarl 1.5.2 (PyPI)",
        "repo": None,  # the PyPI package is the peer; no checkout needed
        "commit": None,
        # benchmarl depends on unpinned torchvision: without the torch constraint pip pulls
        # torch 2.15 + ~3 GB of CUDA wheels (deps.md §3d). torchvision 0.28.0 then fails to
        # import, which BenchMARL only needs for video logging.
        "packages": ["torch==2.13.0", "benchmarl==1.5.2", "vmas==1.5.2", "torchrl==0.11.1", "tensordict==0.11.0",
                     "numpy==2.4.6"],
        "show": ["benchmarl", "torchrl", "tensordict", "vmas", "torch"],
    },
}

_JAX_MATCH = "results/peers/configs/ippo_mpe_simple_spread_jaxmarl.yaml"
_BM_HM_SIZES = {"on_policy_collected_frames_per_batch": 51200, "on_policy_n_envs_per_worker": 1024,
                "on_policy_minibatch_size": 12800, "on_policy_n_minibatch_iters": 3, "lr": 5e-4}

_HARL_SAME = ("Same env (mpe2 simple_spread_v3, discrete, 25-step episodes, team reward), 4,000 samples "
              "per update, [128,128] ReLU with LayerNorms, 5 PPO/critic epochs of 1 minibatch, ValueNorm, "
              "Huber 10, value clipping. Differs: HARL steps 20 envs x 200 steps (one env per process, or "
              "in-process), harl_mini 80 batched copies x 50 steps (configs/mpe/simple_spread); HARL's adapter "
              "also calls env.state() and reseeds every reset; no evaluation on either side (HARL evaluates "
              "every 25 iterations).")

#: cell name -> what runs. ``k``: timed iterations of the peer (full, quick); ``k_harl_mini``: of
#: harl_mini where it differs from ``k`` (the HARL cells: ~10x faster, so more iterations give its
#: timed window about the length of HARL's and average the machine's load over as long).
CELLS: dict[str, dict] = {
    "harl/happo-subproc": {
        "peer": "harl", "task": "MPE simple_spread (discrete, N=3)", "env_version": "mpe2 1.1.1 simple_spread_v3",
        "algo": "happo", "peer_args": ["--algo", "happo"], "k": (3, 1), "k_harl_mini": (24, 4),
        "harl_mini": {"config": "configs/mpe/simple_spread/happo.yaml"},
        "sizes": {"peer": "20 subprocess envs x 200 steps", "harl_mini": "80 copies x 50 steps", "batch": 4000},
        "notes": "HARL's default ShareSubprocVecEnv (20 env processes + the trainer). " + _HARL_SAME,
    },
    "harl/happo-inproc": {
        "peer": "harl", "task": "MPE simple_spread (discrete, N=3)", "env_version": "mpe2 1.1.1 simple_spread_v3",
        "algo": "happo", "peer_args": ["--algo", "happo", "--inproc"], "k": (3, 1), "k_harl_mini": (24, 4),
        "harl_mini": {"config": "configs/mpe/simple_spread/happo.yaml"},
        "sizes": {"peer": "20 in-process envs x 200 steps", "harl_mini": "80 copies x 50 steps", "batch": 4000},
        "notes": "HARL's ShareDummyVecEnv (20 envs stepped in the trainer process). " + _HARL_SAME,
    },
    "harl/mappo": {
        "peer": "harl", "task": "MPE simple_spread (discrete, N=3)", "env_version": "mpe2 1.1.1 simple_spread_v3",
        "algo": "mappo", "peer_args": ["--algo", "mappo"], "k": (3, 1), "k_harl_mini": (24, 4),
        "harl_mini": {"config": "configs/mpe/simple_spread/mappo.yaml"},
        "sizes": {"peer": "20 subprocess envs x 200 steps", "harl_mini": "80 copies x 50 steps", "batch": 4000},
        "notes": "Shared actor on both sides (HARL share_param True; harl_mini adds a one-hot agent id, HARL "
                 "does not). HARL's default subprocess envs. " + _HARL_SAME,
    },
    "harl/hatrpo": {
        "peer": "harl", "task": "MPE simple_spread (discrete, N=3)", "env_version": "mpe2 1.1.1 simple_spread_v3",
        "algo": "hatrpo", "peer_args": ["--algo", "hatrpo"], "k": (3, 1), "k_harl_mini": (12, 2),
        "harl_mini": {"config": "configs/mpe/simple_spread/hatrpo.yaml"},
        "sizes": {"peer": "20 subprocess envs x 200 steps", "harl_mini": "80 copies x 50 steps", "batch": 4000},
        "notes": "kl_threshold 0.005, 10 CG iterations, 10 backtracks on both sides; the Fisher-vector product "
                 "differs: HARL double backprop of its discrete 'KL' sum_a(rho-1-log rho), harl_mini a "
                 "Gauss-Newton product of the true KL. HARL's default subprocess envs. " + _HARL_SAME,
    },
    "jaxmarl/ippo-16x128": {
        "peer": "jaxmarl", "task": "MPE simple_spread (discrete, N=3)",
        "env_version": "JaxMARL MPE_simple_spread_v3 (JAX port) vs mpe2 1.1.1 simple_spread_v3 (harl_mini)",
        "algo": "ippo", "peer_args": ["--num-envs", "16", "--num-steps", "128"], "k": (128, 8), "jax": True,
        "harl_mini": {"config": _JAX_MATCH, "set": {"num_envs": 16}},
        "sizes": {"peer": "16 envs x 128 steps, 4 epochs x 4 minibatches",
                  "harl_mini": "16 copies x 128 steps, 4 epochs x 4 minibatches", "batch": 2048},
        "notes": "JaxMARL baselines/IPPO/ippo_ff_mpe.py (make_train, unchanged; NUM_SEEDS 1). Matched: one "
                 "shared actor without agent id, [64,64] tanh, no ValueNorm/LayerNorm, lr 2.5e-4 annealed, "
                 "clip 0.2, entropy 0.01. Differs: see results/peers/configs/ippo_mpe_simple_spread_jaxmarl.yaml "
                 "(separate actor/critic passes, advantage standardisation per iteration, truncation "
                 "bootstrap); the envs are two implementations of simple_spread v3. The critic is shared on both "
                 "sides (harl_mini share_critic, since 2026-12-05; earlier records: one critic per agent).",
    },
    "jaxmarl/ippo-128x128": {
        "peer": "jaxmarl", "task": "MPE simple_spread (discrete, N=3)",
        "env_version": "JaxMARL MPE_simple_spread_v3 (JAX port) vs mpe2 1.1.1 simple_spread_v3 (harl_mini)",
        "algo": "ippo", "peer_args": ["--num-envs", "128", "--num-steps", "128"], "k": (16, 2), "jax": True,
        "harl_mini": {"config": _JAX_MATCH, "set": {"num_envs": 128}},
        "sizes": {"peer": "128 envs x 128 steps, 4 epochs x 4 minibatches",
                  "harl_mini": "128 copies x 128 steps, 4 epochs x 4 minibatches", "batch": 16384},
        "notes": "As jaxmarl/ippo-16x128 at 128 envs.",
    },
    "benchmarl/mappo-harl_mini-sizes": {
        "peer": "benchmarl", "task": "VMAS balance (continuous, N=4)", "env_version": "vmas 1.5.2 balance, n_agents 4",
        "algo": "mappo", "k": (2, 1),
        "peer_set": {"experiment": _BM_HM_SIZES, "model": {"num_cells": [64, 64], "activation_class": "torch.nn.ReLU"}},
        "harl_mini": {"config": "configs/vmas/balance/mappo.yaml",
                      "set": {"env_kwargs": {"n_agents": 4}, "hparams": {"agent_id": False}}},
        "sizes": {"peer": "1024 envs x 50 steps = 51,200 frames, 3 x 4 minibatches of 12,800",
                  "harl_mini": "1024 copies x 50 steps, 3 epochs x 4 minibatches", "batch": 51200},
        "notes": "harl_mini's configs/vmas/balance/mappo.yaml sizes on both sides: [64,64] ReLU, lr 5e-4, grad clip "
                 "5, clip 0.2, entropy 0, gamma 0.99, lambda 0.9; BenchMARL's balance task (4 agents) on both; "
                 "shared actor without agent id. Differs: BenchMARL's actor outputs a state-dependent scale and "
                 "a TanhNormal, harl_mini a state-independent log-std Gaussian (actions clipped); BenchMARL's "
                 "critic is a shared MLP on all agents' observations with one value per agent, harl_mini one "
                 "V(s) on the concatenated observations with ValueNorm; BenchMARL collects with torchrl's "
                 "SyncDataCollector and steps actor and critic on each minibatch, harl_mini runs the actor "
                 "epochs, then the critic epochs.",
    },
    "benchmarl/mappo-benchmarl-defaults": {
        "peer": "benchmarl", "task": "VMAS balance (continuous, N=4)", "env_version": "vmas 1.5.2 balance, n_agents 4",
        "algo": "mappo", "k": (2, 1), "peer_set": {},
        "harl_mini": {"config": "configs/vmas/balance/mappo.yaml",
                      "set": {"num_envs": 10, "env_kwargs": {"n_agents": 4},
                              "hparams": {"num_steps": 600, "hidden": [256, 256], "activation": "tanh",
                                          "lr": 5e-5, "critic_lr": 5e-5, "ppo_epochs": 45, "num_minibatches": 15,
                                          "critic_epochs": 45, "critic_minibatches": 15, "agent_id": False}}},
        "sizes": {"peer": "10 envs x 600 steps = 6,000 frames, 45 passes x 15 minibatches of 400",
                  "harl_mini": "10 copies x 600 steps, 45 epochs x 15 minibatches", "batch": 6000},
        "notes": "BenchMARL 1.5.2's defaults (base_experiment.yaml, mappo.yaml, mlp.yaml [256,256] Tanh, lr 5e-5, "
                 "grad clip 5) on both sides; other differences as in benchmarl/mappo-harl_mini-sizes.",
    },
}


# ---------------------------------------------------------------------------------------------
# environment of the runs
# ---------------------------------------------------------------------------------------------

def run_env() -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        env[k] = "1"
    env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    env["JAX_PLATFORMS"] = "cpu"
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["WANDB_MODE"] = "disabled"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in drivers/
    env.pop("PYTHONPATH", None)
    return env


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def git(*args) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()


# ---------------------------------------------------------------------------------------------
# peer set-up
# ---------------------------------------------------------------------------------------------

def sh(cmd: list[str], log, **kw) -> None:
    log(f"  $ {shlex.join(cmd)}")
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-20:])
        raise SystemExit(f"command failed ({r.returncode}): {shlex.join(cmd)}\n{tail}")


def ensure_venv(peer: str, cache: Path, log) -> Path:
    """The peer's venv (created and pinned on first use, or when the pins changed); its python."""
    spec = PEERS[peer]
    venv = cache / f"{peer}-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".harl_mini_peers.json"
    want = {"packages": spec["packages"], "python": f"{sys.version_info.major}.{sys.version_info.minor}"}
    if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return python
    log(f"setting up the {peer} venv in {venv} (a few minutes)")
    if venv.exists():
        shutil.rmtree(venv)
    sh([sys.executable, "-m", "venv", str(venv)], log)
    constraint = cache / "torch-constraint.txt"
    constraint.write_text("torch==2.13.0\n")  # never let a dependency pull a CUDA torch
    pip = [str(python), "-m", "pip", "install", "-q", "-c", str(constraint)]
    if any(p.startswith("torch==") for p in spec["packages"]):  # the local CPU wheel first, alone
        sh(pip + ["torch==2.13.0"], log)
    sh(pip + spec["packages"], log)
    stamp.write_text(json.dumps(want))
    return python


def ensure_source(peer: str, given: str | None, cache: Path, log) -> tuple[Path, str]:
    """(checkout path, commit description) of HARL/JaxMARL: ``given`` or a pinned clone."""
    spec = PEERS[peer]
    if given:
        path = Path(given).expanduser().resolve()
        if not path.is_dir():
            raise SystemExit(f"--{peer}-src: {path} is not a directory")
        return path, describe_commit(path, spec["commit"])
    path = cache / "src" / spec["name"].split("/")[1]
    if not (path / ".git").is_dir():
        log(f"cloning {spec['repo']} at {spec['commit'][:7]} into {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["git", "clone", "-q", spec["repo"], str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"could not clone {spec['repo']} ({r.stderr.strip()[-300:]}); pass a checkout "
                             f"with --{peer}-src PATH")
        sh(["git", "-C", str(path), "checkout", "-q", spec["commit"]], log)
    return path, describe_commit(path, spec["commit"])


def describe_commit(path: Path, pinned: str) -> str:
    """The checkout's commit (git), else the content of a ``.peer_commit`` file, else 'unknown'."""
    r = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    if r.returncode == 0 and (path / ".git").exists():
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain"], capture_output=True,
                               text=True).stdout.strip()
        return r.stdout.strip() + (" (dirty)" if dirty else "")
    marker = path / ".peer_commit"
    if marker.is_file():
        return marker.read_text().strip()
    return f"unknown (not a git checkout; pinned {pinned})"


def versions(python: Path, names: list[str]) -> dict:
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps({n: (m.version(n) if n else '') for n in sys.argv[1:]}))")
    r = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr.strip()[-200:]}


# ---------------------------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------------------------

def run_one(cmd: list[str], cwd: Path, taskset: str | None, timeout: float) -> dict:
    if taskset:
        cmd = ["taskset", "-c", taskset, *cmd]
    before = loadavg()
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, env=run_env(), capture_output=True, text=True, timeout=timeout)
        out, rc = p.stdout, p.returncode
        err = p.stderr
    except subprocess.TimeoutExpired as exc:
        out, rc, err = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or ""), \
            "timeout", ""
    wall = time.perf_counter() - t0
    after = loadavg()
    result = None
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
    rec = {"cmd": shlex.join(cmd), "returncode": rc, "process_wall_s": round(wall, 2), "load_before": before,
           "load_after": after}
    if result is None:
        rec["error"] = "\n".join((out + "\n" + (err or "")).strip().splitlines()[-15:])
    else:
        rec["result"] = result
    return rec


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

def summarise(ratios: list[float]) -> dict:
    if not ratios:
        return {"ratio_median": None, "ratio_min": None, "ratio_max": None}
    return {"ratio_median": round(statistics.median(ratios), 3), "ratio_min": round(min(ratios), 3),
            "ratio_max": round(max(ratios), 3)}


def table(doc: dict) -> str:
    """results.json as the Markdown table of README.md (``--table``)."""
    def r(x):
        return "–" if x is None else f"{x:.2f}"

    def med(xs):
        return f"{statistics.median(xs):,.0f}" if xs else "–"

    rows = ["| cell | harl_mini / peer (wall): median [min–max] | pairs | per CPU-second: median [min–max] "
            "| peer env-steps/s (median) | harl_mini env-steps/s (median) | with JAX compile: median [min–max] |",
            "|---|---|---|---|---|---|---|"]
    for c in doc["cells"]:
        cpu, wc = c["cpu_rates"], c.get("with_compile")
        rows.append(f"| `{c['cell']}` | **{r(c['ratio_median'])}** [{r(c['ratio_min'])}–{r(c['ratio_max'])}] "
                    f"| {c['pairs']} | {r(cpu['ratio_median'])} [{r(cpu['ratio_min'])}–{r(cpu['ratio_max'])}] "
                    f"| {med(c['peer_rates'])} | {med(c['harl_mini_rates'])} | "
                    + (f"{r(wc['ratio_median'])} [{r(wc['ratio_min'])}–{r(wc['ratio_max'])}]" if wc else "")
                    + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="results/peers/run.sh", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one pair per cell, short runs (a smoke test)")
    ap.add_argument("--peers", default="harl,jaxmarl,benchmarl", help="comma-separated peers to run")
    ap.add_argument("--cells", default=None,
                    help=f"comma-separated cells (default: all of --peers): {', '.join(CELLS)}")
    ap.add_argument("--pairs", type=int, default=None, help="pairs per cell (default 3; --quick: 1)")
    ap.add_argument("--harl-src", default=None, help="a HARL checkout (default: clone at the pinned commit)")
    ap.add_argument("--jaxmarl-src", default=None, help="a JaxMARL checkout (default: clone at the pinned commit)")
    ap.add_argument("--cache", default="~/.cache/harl_mini_peers", help="where the peer venvs and clones live")
    ap.add_argument("--harl-mini-python", default=str(REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--jax-taskset", default="0",
                    help="CPU list for taskset in the JaxMARL cells, both sides ('none': no pinning)")
    ap.add_argument("--nice", type=int, default=0, help="add this niceness to this script (and so to every run)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    ap.add_argument("--out", default=str(HERE), help="folder of the log and results.json")
    ap.add_argument("--setup-only", action="store_true", help="create venvs and checkouts, run nothing")
    ap.add_argument("--table", action="store_true", help="print results.json (or --quick's) as Markdown, run nothing")
    args = ap.parse_args(argv)
    if args.table:
        path = Path(args.out) / ("results-quick.json" if args.quick else "results.json")
        print(table(json.loads(path.read_text())))
        return 0

    if args.nice:
        os.nice(args.nice)
    peers = [p for p in args.peers.split(",") if p]
    for p in peers:
        if p not in PEERS:
            ap.error(f"unknown peer {p!r}; available: {', '.join(PEERS)}")
    cells = args.cells.split(",") if args.cells else [c for c in CELLS if CELLS[c]["peer"] in peers]
    for c in cells:
        if c not in CELLS:
            ap.error(f"unknown cell {c!r}; available: {', '.join(CELLS)}")
    peers = [p for p in PEERS if any(CELLS[c]["peer"] == p for c in cells)]
    pairs = args.pairs or (1 if args.quick else 3)
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    today = _dt.date.today().isoformat()
    log_path = out / (f"log-quick-{today}.txt" if args.quick else f"log-{today}.txt")
    json_path = out / ("results-quick.json" if args.quick else "results.json")
    lines: list[str] = []

    def log(msg: str = "") -> None:
        print(msg, flush=True)
        lines.append(msg)

    # ---- set-up
    t_start = time.perf_counter()
    hm_python = Path(args.harl_mini_python)
    if not hm_python.exists():
        raise SystemExit(f"harl_mini's python {hm_python} not found (make the project venv first, or pass "
                         "--harl-mini-python)")
    info = {}
    for p in peers:
        python = ensure_venv(p, cache, log)
        src, commit = (None, PEERS[p]["commit"])
        if p == "harl":
            src, commit = ensure_source(p, args.harl_src, cache, log)
        elif p == "jaxmarl":
            src, commit = ensure_source(p, args.jaxmarl_src, cache, log)
        info[p] = {"python": python, "src": src, "commit": commit or "PyPI package (no checkout)",
                   "versions": versions(python, PEERS[p]["show"])}
    if args.setup_only:
        for p, i in info.items():
            print(f"{p}: {i['python']}  source {i['src']}  commit {i['commit']}  {i['versions']}")
        return 0

    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    # what the measured harl_mini code differs by from the commit (others may have uncommitted edits)
    dirty_files = git("diff", "--name-only", "HEAD", "--", "harl_mini", "configs").split()
    diff_sha1 = hashlib.sha1(subprocess.run(["git", "-C", str(REPO), "diff", "HEAD", "--", "harl_mini", "configs"],
                                            capture_output=True).stdout).hexdigest() if dirty_files else None
    header = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"), "harl_mini_commit": commit,
        "harl_mini_dirty": dirty, "harl_mini_dirty_files": dirty_files, "harl_mini_diff_sha1": diff_sha1,
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "threads": 1,
        "niceness": os.nice(0), "quick": args.quick, "pairs": pairs,
        "harl_mini_versions": versions(hm_python, ["torch", "numpy", "mpe2", "vmas"]),
        "env": {k: v for k, v in run_env().items() if k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS",
                                                           "JAX_PLATFORMS")},
        "jax_taskset": None if args.jax_taskset == "none" else args.jax_taskset,
        "command": "results/peers/run.sh " + shlex.join(argv if argv is not None else sys.argv[1:]),
    }
    log(f"harl_mini peer benchmark  {header['date']}  ({'quick' if args.quick else 'full'})")
    log(f"harl_mini {commit[:12]}{' (dirty: uncommitted changes to tracked files)' if dirty else ''}; "
        f"{header['harl_mini_versions']}")
    if dirty_files:
        log(f"  uncommitted changes measured in harl_mini/ and configs/ (diff sha1 {diff_sha1[:12]}): "
            + ", ".join(dirty_files))
    log(f"CPU: {header['cpu']} x {header['cpu_count']}; niceness {header['niceness']}; one thread per process "
        f"({header['env']}); JaxMARL cells pinned to CPU {header['jax_taskset']}")
    for p, i in info.items():
        log(f"peer {p}: {PEERS[p]['name']} {PEERS[p]['version']}, commit {i['commit']}, {i['versions']}")
    log(f"command: {header['command']}")
    log(f"load average at start: {loadavg()}")
    log()

    results = []
    for name in cells:
        cell = CELLS[name]
        peer = cell["peer"]
        k = cell["k"][1 if args.quick else 0]
        k_hm = cell.get("k_harl_mini", cell["k"])[1 if args.quick else 0]
        taskset = None if (not cell.get("jax") or args.jax_taskset == "none") else args.jax_taskset
        i = info[peer]
        if peer == "harl":
            peer_cmd = [str(i["python"]), str(DRIVERS / "harl_driver.py"), "--harl-src", str(i["src"]),
                        "--iterations", str(k), *cell["peer_args"]]
        elif peer == "jaxmarl":
            peer_cmd = [str(i["python"]), str(DRIVERS / "jaxmarl_driver.py"), "--jaxmarl-src", str(i["src"]),
                        "--updates", str(k), *cell["peer_args"]]
        else:
            peer_cmd = [str(i["python"]), str(DRIVERS / "benchmarl_driver.py"), "--iterations", str(k),
                        "--set", json.dumps(cell["peer_set"])]
        hm = cell["harl_mini"]
        hm_cmd = [str(hm_python), str(DRIVERS / "harl_mini_driver.py"), "--config", hm["config"],
                  "--iterations", str(k_hm), "--set", json.dumps(hm.get("set", {}))]
        log(f"== {name}: {cell['task']}, {cell['algo']}; timed iterations per run: peer {k}, harl_mini {k_hm}"
            + (f"; taskset -c {taskset}" if taskset else ""))
        runs = []
        for pair in range(pairs):
            for side, cmd, cwd in (("peer", peer_cmd, Path(tempfile.gettempdir())), ("harl_mini", hm_cmd, REPO)):
                rec = run_one(cmd, cwd, taskset, args.timeout)
                rec.update(pair=pair + 1, side=side)
                runs.append(rec)
                r = rec.get("result")
                if r is None:
                    log(f"  pair {pair + 1} {side:<9} FAILED ({rec['returncode']}): {rec['error'][-600:]}")
                    continue
                extra = f", with compile {r['rate_incl_first']:,.0f} (compile {r['compile_s']:.1f} s)" \
                    if "compile_s" in r else f", incl. first iteration {r['rate_incl_first']:,.0f}"
                log(f"  pair {pair + 1} {side:<9} {r['rate']:>9,.0f} env-steps/s{extra}; "
                    f"{r['rate_cpu']:,.0f} per CPU-s; busy threads {r['busy_threads']}, "
                    f"cpu/wall {r['cpu_per_wall']:.2f}, children {r['children']}; "
                    f"load {rec['load_before'][0]:.2f} -> {rec['load_after'][0]:.2f}; "
                    f"process {rec['process_wall_s']:.0f} s")
        ok = [(a["result"], b["result"]) for a, b in zip(runs[0::2], runs[1::2]) if "result" in a and "result" in b]
        entry = {
            "cell": name, "peer": PEERS[peer]["name"], "peer_version": PEERS[peer]["version"],
            "peer_commit": i["commit"], "peer_packages": i["versions"], "task": cell["task"],
            "env_version": cell["env_version"], "algo": cell["algo"], "sizes": cell["sizes"],
            "iterations_timed": {"peer": k, "harl_mini": k_hm},
            "harl_mini_rates": [round(h["rate"]) for _, h in ok], "peer_rates": [round(p["rate"]) for p, _ in ok],
            **summarise([h["rate"] / p["rate"] for p, h in ok]),
            "pairs": len(ok),
            "cpu_rates": {"harl_mini": [round(h["rate_cpu"]) for _, h in ok],
                          "peer": [round(p["rate_cpu"]) for p, _ in ok],
                          **summarise([h["rate_cpu"] / p["rate_cpu"] for p, h in ok])},
            "with_compile": None, "taskset": taskset,
            "date": header["date"], "harl_mini_commit": commit, "harl_mini_dirty": dirty,
            "harl_mini_dirty_files": dirty_files, "harl_mini_diff_sha1": diff_sha1,
            "notes": cell["notes"], "runs": runs,
        }
        if cell.get("jax"):
            entry["with_compile"] = {
                "harl_mini_rates": [round(h["rate_incl_first"]) for _, h in ok],
                "peer_rates": [round(p["rate_incl_first"]) for p, _ in ok],
                "compile_s": [round(p["compile_s"], 1) for p, _ in ok],
                **summarise([h["rate_incl_first"] / p["rate_incl_first"] for p, h in ok]),
            }
        results.append(entry)
        log(f"  ratio harl_mini/peer: median {entry['ratio_median']}, min {entry['ratio_min']}, "
            f"max {entry['ratio_max']} ({entry['pairs']} pairs); per CPU-second: median "
            f"{entry['cpu_rates']['ratio_median']}"
            + (f"; with JAX compile: median {entry['with_compile']['ratio_median']}" if cell.get("jax") else ""))
        log()

    total = time.perf_counter() - t_start
    header["wall_s"] = round(total)
    header["load_avg"] = {"end": loadavg()}
    log("== summary: harl_mini env-steps/s over the peer's, per interleaved pair (wall clock, one thread)")
    log(f"{'cell':<36} {'median':>7} {'min':>7} {'max':>7} {'pairs':>5} {'per CPU-s':>9}  peer / harl_mini median rate")
    for e in results:
        with_c = f"  (with compile {e['with_compile']['ratio_median']})" if e["with_compile"] else ""
        med = (lambda xs: statistics.median(xs) if xs else float("nan"))
        log(f"{e['cell']:<36} {e['ratio_median'] or float('nan'):>7.2f} {e['ratio_min'] or float('nan'):>7.2f} "
            f"{e['ratio_max'] or float('nan'):>7.2f} {e['pairs']:>5} "
            f"{e['cpu_rates']['ratio_median'] or float('nan'):>9.2f}"
            f"  {med(e['peer_rates']):,.0f} / {med(e['harl_mini_rates']):,.0f}{with_c}")
    log(f"total wall time {total / 60:.1f} min; load average at end {header['load_avg']['end']}")

    out.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as f:  # a day's runs share one log, each block with its own header
        if f.tell():
            f.write("\n" + "=" * 100 + "\n\n")
        f.write("\n".join(lines) + "\n")
    previous = []
    if json_path.exists():
        try:
            previous = [c for c in json.loads(json_path.read_text()).get("cells", []) if c["cell"] not in cells]
        except (ValueError, KeyError):
            previous = []
    order = {c: n for n, c in enumerate(CELLS)}
    merged = sorted(previous + results, key=lambda c: order.get(c["cell"], len(order)))
    doc = {"format": FORMAT, **header, "log": log_path.name, "cells": merged}
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {log_path} and {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
