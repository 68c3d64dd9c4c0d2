"""Does ``torch.compile`` speed up one rollout step of IPPO on the CPU?

The step without the environment, at the peer benchmark's JaxMARL sizes (3 agents, 16 copies,
[64, 64] tanh actor and critic shared by the agents): the actor's logits, inverse-CDF sampling
of the actions with their log-probabilities, and the critic's values. Timed eager and compiled
(``torch.compile``, inductor, default mode; the first call compiles and is timed apart),
alternating in ``--rounds`` rounds of ``--calls`` calls each, one thread. Run:

    OMP_NUM_THREADS=1 python results/speed/compile_step.py > results/speed/compile_step.txt
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from harl_mini.provenance import cpu_model

    def mlp(out):
        return torch.nn.Sequential(torch.nn.Linear(18, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
                                   torch.nn.Linear(64, out))

    actor, critic = mlp(5), mlp(1)
    obs = torch.randn(3, args.copies, 18)

    def step(obs, u):
        logits = actor(obs)                                          # [N, B, 5]
        z = logits - logits.amax(-1, keepdim=True)
        cdf = z.exp().cumsum(-1)
        total = cdf[..., -1:]
        a = (cdf < u.unsqueeze(-1) * total).sum(-1).clamp(max=4)     # inverse-CDF sample
        logp = z.gather(-1, a.unsqueeze(-1)).squeeze(-1) - total.squeeze(-1).log()
        return a, logp, critic(obs).squeeze(-1)

    u = torch.rand(3, args.copies)
    t0 = time.perf_counter()
    compiled = torch.compile(step)
    with torch.no_grad():
        ref, out = step(obs, u), compiled(obs, u)
    compile_s = time.perf_counter() - t0
    same = torch.equal(ref[0], out[0]) and all(torch.allclose(x, y, atol=1e-6) for x, y in zip(ref[1:], out[1:]))

    def per_call(fn):
        with torch.no_grad():
            t = time.perf_counter()
            for _ in range(args.calls):
                fn(obs, u)
            return (time.perf_counter() - t) / args.calls * 1e6

    times = {"eager": [], "compiled": []}
    for r in range(args.rounds):
        for name, fn in (("eager", step), ("compiled", compiled))[:: 1 if r % 2 == 0 else -1]:
            times[name].append(per_call(fn))
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}; {cpu_model()} x{os.cpu_count()}; torch "
          f"{torch.__version__}; 1 thread; load average at start {os.getloadavg()[0]:.2f}")
    print(f"# {args.copies} copies x 3 agents; {args.rounds} rounds x {args.calls} calls; compile + first call "
          f"{compile_s:.1f} s; compiled output equals eager: {same}")
    for name, ts in times.items():
        print(f"{name:<9} median {statistics.median(ts):6.1f} us per step  [" + ", ".join(f"{t:.1f}" for t in ts) + "]")
    ratio = statistics.median(times["eager"]) / statistics.median(times["compiled"])
    print(f"SUMMARY compiled speed-up (eager / compiled time per step): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
