"""Checks for Exercise 9.2: the value targets of a multi-agent rollout with automatic resets.

The student writes ``rollout_targets(env, actions, critic, gamma, lam)``: step an already
reset :class:`~harl_mini.envs.multi.MultiAgentVecEnv` through the given joint actions,
evaluate the centralised critic V on the global states, and return GAE's advantages and
value targets, each [T, B]. The point is which state each value belongs to: V(s_t) of the
state the step starts from, and after the step the bootstrap value of Chapter 9, eq.
``eq-next-value``, V_next,t = (1 − terminated_t)·V(final_state_t): after an automatic reset
the ``state`` the env returns already belongs to the next episode.

Oracle: the same rollout recorded from an identical environment (same game, same seed),
with ``harl_mini.advantages.gae`` (Chapter 2, eq. ``eq-gae``) on V(state_t) and
V(final_state_t). The environments are ``harl_mini.envs.markov.MarkovGameEnv`` on random
two-agent Markov games with an absorbing state (terminations) and time limits (truncations).
"""

from __future__ import annotations

import torch

from harl_mini.advantages import gae
from harl_mini.envs.markov import MarkovGameEnv
from harl_mini.grading.core import CheckFailed, register
from harl_mini.tabular import MarkovGame

__all__ = ["check_rollout_targets", "example_instance", "make_instance"]

F64 = torch.float64


def _game(gen: torch.Generator, states: int, counts: tuple[int, ...], p_end: float) -> MarkovGame:
    """A random game on ``states`` live states plus one absorbing state (the last), entered w.p. ``p_end``."""
    S = states + 1
    joint = (S, *counts, S)
    live = torch.rand(states, *counts, states, generator=gen, dtype=F64) + 0.05
    live = live / live.sum(-1, keepdim=True) * (1 - p_end)
    P = torch.zeros(joint, dtype=F64)
    P[:states, ..., :states] = live
    P[:states, ..., states] = p_end
    P[states, ..., states] = 1.0  # absorbing: stays, reward 0
    R = torch.zeros(S, *counts, dtype=F64)
    R[:states] = 2 * torch.rand(states, *counts, generator=gen, dtype=F64) - 1
    rho0 = torch.cat([torch.full((states,), 1.0 / states, dtype=F64), torch.zeros(1, dtype=F64)])
    return MarkovGame(P, R, 0.99, rho0, name="random-absorbing")


def make_instance(gen: torch.Generator, B: int, T: int, p_end: float, time_limit: int | None):
    """(make_env, actions, critic): a factory of identical fresh envs, T joint actions, a random V."""
    counts = (2, 3)
    game = _game(gen, 4, counts, p_end)
    seed = int(torch.randint(2**31 - 1, (), generator=gen))
    actions = [[torch.randint(n, (B,), generator=gen) for n in counts] for _ in range(T)]
    v = torch.randn(game.num_states, generator=gen, dtype=F64)
    v[-1] = 3.0 + torch.rand((), generator=gen, dtype=F64)  # V(absorbing) far from 0: a bootstrap there shows

    def critic(state: torch.Tensor) -> torch.Tensor:
        """V(s) for a batch of one-hot global states [B, S] (float64 [B])."""
        return torch.as_tensor(state).to(F64) @ v

    def make_env() -> MarkovGameEnv:
        return MarkovGameEnv(game, num_envs=B, seed=seed, time_limit=time_limit)

    return make_env, actions, critic


def example_instance():
    """The notebook's example: 4 copies, 12 steps, terminations and a time limit of 5."""
    make_env, actions, critic = make_instance(torch.Generator().manual_seed(9), 4, 12, 0.15, 5)
    return make_env(), actions, critic


def _record(env, actions, critic):
    """Run the rollout once; keep every value a target could be built from."""
    rec = {"v": [], "v_final": [], "v_after": [], "r": [], "term": [], "trunc": []}
    state = env.state
    for a in actions:
        rec["v"].append(critic(state))
        _, state, r, term, trunc, _, final_state = env.step([x.clone() for x in a])
        rec["v_final"].append(critic(final_state))
        rec["v_after"].append(critic(state))  # the state returned: the next episode's where one ended
        rec["r"].append(r.to(F64))
        rec["term"].append(term)
        rec["trunc"].append(trunc)
    return {k: torch.stack(v) for k, v in rec.items()}


def _targets(rec, gamma, lam, *, next_values=None, values=None, term=None, trunc=None):
    out = gae(rec["r"], rec["v"] if values is None else values,
              rec["v_final"] if next_values is None else next_values,
              rec["term"] if term is None else term, rec["trunc"] if trunc is None else trunc, gamma, lam)
    return out


def _in_words(t: int, b: int, rec) -> str:
    term, trunc = bool(rec["term"][t, b]), bool(rec["trunc"][t, b])
    kind = "a termination" if term else "a truncation" if trunc else "an ordinary step"
    text = f"step t={t} of copy {b} is {kind} (terminated={term}, truncated={trunc})"
    if t == rec["r"].shape[0] - 1:
        text += "; it is the last step of the batch"
    ends = [s for s in range(t + 1, rec["r"].shape[0]) if bool(rec["term"][s, b] | rec["trunc"][s, b])]
    if ends:
        text += f"; the next episode end in copy {b} is at t={ends[0]}"
    return text


#: part -> fixed (B, T, p_end, time_limit, gamma, lam), then a drawn case of the same kind
PARTS = {
    "no episode end in the batch": (3, 8, 0.0, None, 0.99, 0.95),
    "terminations only": (6, 16, 0.2, None, 0.97, 0.9),
    "truncations only": (6, 16, 0.0, 5, 0.97, 0.9),
    "terminations and truncations": (16, 24, 0.1, 6, 0.99, 0.95),
}


@register(function="rollout_targets", equation="eq-next-value", parts={part: 1 for part in PARTS})
def check_rollout_targets(student_fn, ctx) -> None:
    """GAE advantages and targets of a rollout: V(s_t) before each step, (1 − terminated)·V(final_state) after it.

    Each part runs the fixed case the notebook names and one drawn case of the same kind (more
    copies and steps, other γ, λ) on a random two-agent Markov game: no episode end inside the
    batch (the last step must bootstrap), terminations only (an absorbing state whose V is
    far from 0), truncations only (a time limit), and both. Both the advantages and the
    targets are compared with the oracle's.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| (float64 answers), ≤ 1e-5 +
    1e-4·|expected| (float32 answers): a few dozen roundings of numbers of order 10.
    """
    for part, fixed in PARTS.items():
        with ctx.part(part):
            B, T, p_end, limit, gamma, lam = fixed
            cases = [fixed, (B + int(torch.randint(1, 2 * B, (), generator=ctx.gen)),
                             T + int(torch.randint(0, T, (), generator=ctx.gen)), p_end,
                             None if limit is None else limit + int(torch.randint(-1, 3, (), generator=ctx.gen)),
                             round(0.9 + 0.099 * float(torch.rand((), generator=ctx.gen)), 3),
                             round(0.5 + 0.49 * float(torch.rand((), generator=ctx.gen)), 3))]
            for B, T, p_end, limit, gamma, lam in cases:
                make_env, actions, critic = make_instance(ctx.gen, B, T, p_end, limit)
                rec = _record(make_env(), actions, critic)
                out = ctx.call(make_env(), actions, critic, gamma, lam)
                if not isinstance(out, (tuple, list)) or len(out) != 2:
                    raise CheckFailed(f"rollout_targets returned a {type(out).__name__}"
                                      f"{f' of length {len(out)}' if isinstance(out, (tuple, list)) else ''};"
                                      " expected the pair (adv, returns)")
                adv, ret = _targets(rec, gamma, lam)
                done = rec["term"] | rec["trunc"]
                no_flag = torch.zeros_like(done)
                last_zero = rec["v_final"].clone()
                last_zero[-1] = 0.0
                hints = [
                    (lambda: _targets(rec, gamma, lam, next_values=rec["v_after"])[0],
                     "after an automatic reset `state` belongs to the next episode: bootstrap from "
                     "V(final_state_t), the state the step led to"),
                    (lambda: _targets(rec, gamma, lam, term=done, trunc=no_flag)[0],
                     "a truncation is not a terminal state: pass terminated and truncated to gae separately, "
                     "so that it bootstraps from V(final_state_t) there"),
                    (lambda: _targets(rec, gamma, lam, next_values=last_zero)[0],
                     "the batch ends without ending the episodes: the last step bootstraps from "
                     "V(final_state_(T−1)) like any other"),
                    (lambda: _targets(rec, gamma, lam, values=rec["v_final"])[0],
                     "values[t] is V of the state the step starts from (env.state before env.step), not of the "
                     "state it leads to"),
                    (lambda: _targets(rec, gamma, lam, term=no_flag, trunc=done)[0],
                     "at a termination there is no future: pass terminated to gae, which then ignores the "
                     "bootstrap value there"),
                ]
                what = f"(T={T}, B={B}, gamma={gamma:g}, lam={lam:g})"  # "Â (…) is wrong at …"
                kw = dict(where=lambda idx: f"step t={idx[0]} of copy {idx[1]}",
                          describe=lambda idx, rec=rec: _in_words(idx[0], idx[1], rec))
                ctx.close(out[0], adv, f"Â {what}", hints=hints, **kw)
                ctx.close(out[1], ret, f"the value target Â + V {what}",
                          hints=[(lambda: adv, "the targets are Â_t + V(s_t), not Â_t")], **kw)
