"""Checks for Exercise 9.1: a ``MultiAgentVecEnv`` adapter for a small game, the ring rendezvous.

The student writes ``RingMeetEnv(num_envs, size, time_limit, seed)``, a subclass of
:class:`harl_mini.envs.multi.MultiAgentVecEnv` that keeps the step contract of Chapter 9
(Definition ``def-vec-env-step``) for this game:

* two agents on a ring of L cells; agent i's action a^i ∈ {0, 1, 2} moves it by a^i − 1
  (mod L), both at once;
* the ring distance after the move is d = min((p^2 − p^1) mod L, (p^1 − p^2) mod L); the
  team reward is 1 if d = 0 and −d/L otherwise;
* agent i observes [onehot(p^i), onehot((p^j − p^i) mod L)] (2L entries, j the other
  agent); the global state is [onehot(p^1), onehot(p^2)];
* the episode terminates when the agents meet (d = 0 after the move) and is truncated when
  it has lasted ``time_limit`` steps without meeting (never both);
* an episode starts at (p^1, p^2) uniform over the ordered pairs with p^1 ≠ p^2, drawn from
  the environment's own generator, which ``reset(seed)`` seeds.

Oracle: the reference game of this module (:func:`observe`, :func:`move`, :func:`team_reward`),
played side by side with the student's environment on the same actions. The reference adopts
the student's fresh starts (they are random) after checking that they are valid, so one
mistake fails its own part and does not cascade.
"""

from __future__ import annotations

import torch

from harl_mini.envs.multi import MultiAgentVecEnv
from harl_mini.grading.core import CheckFailed, call_student, register

__all__ = ["check_ring_env", "observe", "move", "team_reward", "ring_distance", "decode_state"]

INTERFACE = "attributes and starts"
DYNAMICS = "moves, observations and reward"
FLAGS = "termination vs truncation"
FINAL = "final observations"
RESET = "auto-reset of the finished copies only"
SEEDING = "seeding and reproducibility"
PARTS = (INTERFACE, DYNAMICS, FLAGS, FINAL, RESET, SEEDING)

#: the notebook's example: (num_envs, size, time_limit, seed)
EXAMPLE = (8, 7, 10, 0)
#: float32 one-hots are exact; the reward −d/L is one float32 rounding from the exact value
TOL = 1e-6


# --------------------------------------------------------------------------- the reference game


def ring_distance(p: torch.Tensor, size: int) -> torch.Tensor:
    """d = min((p^2 − p^1) mod L, (p^1 − p^2) mod L) for positions p [B, 2]."""
    diff = (p[:, 1] - p[:, 0]) % size
    return torch.minimum(diff, size - diff)


def observe(p: torch.Tensor, size: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Observations [onehot(p^i), onehot((p^j − p^i) mod L)] and state [onehot(p^1), onehot(p^2)], float64."""
    eye = torch.eye(size, dtype=torch.float64)
    own = [eye[p[:, 0]], eye[p[:, 1]]]
    offset = [eye[(p[:, 1] - p[:, 0]) % size], eye[(p[:, 0] - p[:, 1]) % size]]
    return [torch.cat([own[i], offset[i]], 1) for i in range(2)], torch.cat(own, 1)


def move(p: torch.Tensor, actions, size: int) -> torch.Tensor:
    """p^i ← (p^i + a^i − 1) mod L for both agents at once."""
    return (p + torch.stack([torch.as_tensor(a).long() for a in actions], 1) - 1) % size


def team_reward(p: torch.Tensor, size: int) -> torch.Tensor:
    """1 where the agents share a cell, −d/L elsewhere (float64)."""
    d = ring_distance(p, size)
    return torch.where(d == 0, torch.ones_like(d, dtype=torch.float64), -d.to(torch.float64) / size)


def decode_state(state, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions [B, 2] read from a state [B, 2L], and a [B] mask of rows that are two exact one-hots."""
    s = torch.as_tensor(state).detach().cpu().to(torch.float64)
    blocks = s.reshape(s.shape[0], 2, size)
    onehot = ((blocks == 0) | (blocks == 1)).all(-1) & (blocks.sum(-1) == 1)
    return blocks.argmax(-1), onehot.all(-1)


# --------------------------------------------------------------------------- words


def _pos(p, b) -> str:
    return f"({int(p[b, 0])}, {int(p[b, 1])})"


def _step_words(t, b, t_ep, p, actions, p_next, size, time_limit) -> str:
    a = (int(actions[0][b]), int(actions[1][b]))
    d = int(ring_distance(p_next[b:b + 1], size)[0])
    return (f"step t={t}, copy {b}: step {t_ep + 1} of its episode (time_limit={time_limit}, L={size});"
            f" positions {_pos(p, b)} before, actions {a} (moves {a[0] - 1:+d}, {a[1] - 1:+d}),"
            f" positions {_pos(p_next, b)} after, ring distance {d}")


# --------------------------------------------------------------------------- playing the student's env


class _Problems:
    """The first problem found in each part (message, input, hint)."""

    def __init__(self):
        self.first: dict[str, tuple[str, str | None, str | None]] = {}

    def add(self, part, message, input=None, hint=None):
        self.first.setdefault(part, (message, input, hint))

    def raise_for(self, part):
        if part in self.first:
            message, input, hint = self.first[part]
            raise CheckFailed(message, input=input, hint=hint)


def _build(ctx, student_cls, num_envs, size, time_limit, seed):
    env = call_student(student_cls, num_envs, size, time_limit, seed)
    name = getattr(student_cls, "__name__", "RingMeetEnv")
    if not isinstance(env, MultiAgentVecEnv):
        raise CheckFailed(f"`{name}({num_envs}, {size}, {time_limit}, {seed})` gave a {type(env).__name__}, not a "
                          "MultiAgentVecEnv", hint="write `class RingMeetEnv(MultiAgentVecEnv):` and construct it "
                                                   "with RingMeetEnv(num_envs, size, time_limit, seed)")
    want = {"num_envs": num_envs, "num_agents": 2, "obs_dims": [2 * size, 2 * size],
            "action_spaces": [("discrete", 3), ("discrete", 3)], "state_dim": 2 * size}
    for key, value in want.items():
        got = getattr(env, key, None)
        if (list(got) if isinstance(got, (list, tuple)) and key != "num_envs" else got) != value:
            raise CheckFailed(f"env.{key} is {got!r}; expected {value!r} (num_envs={num_envs}, size={size})")
    return env


def _unpack(out, B):
    if not isinstance(out, tuple) or len(out) != 7:
        raise CheckFailed(f"step() returned {type(out).__name__}"
                          f"{f' of length {len(out)}' if isinstance(out, tuple) else ''}; expected the 7-tuple "
                          "(obs, state, reward, terminated, truncated, final_obs, final_state)")
    obs, state, reward, term, trunc, fobs, fstate = out
    return ([torch.as_tensor(o).detach().cpu().to(torch.float64) for o in obs],
            torch.as_tensor(state).detach().cpu().to(torch.float64),
            torch.as_tensor(reward).detach().cpu().to(torch.float64),
            torch.as_tensor(term).detach().cpu().bool(), torch.as_tensor(trunc).detach().cpu().bool(),
            [torch.as_tensor(o).detach().cpu().to(torch.float64) for o in fobs],
            torch.as_tensor(fstate).detach().cpu().to(torch.float64))


def _rows_equal(obs, state, want_obs, want_state) -> torch.Tensor:
    """[B] bool: every observation row and the state row match."""
    ok = (state - want_state).abs().le(TOL).all(1)
    for o, w in zip(obs, want_obs):
        ok &= (o - w).abs().le(TOL).all(1)
    return ok


def _policy(gen, p, t_ep, target, size):
    """Actions that make each copy meet exactly at its target step (0: drift without meeting)."""
    B = p.shape[0]
    d = ring_distance(p, size)
    toward = torch.where((p[:, 1] - p[:, 0]) % size == d, 1, -1)  # agent 0's way along the shorter arc
    k = target - t_ep  # steps left until the target, this one included
    r = torch.where(target > 0, (d - 2 * (k - 1)).clamp(0, 2), torch.zeros_like(d))
    r = torch.minimum(r, d)
    pick = torch.randint(2, (B,), generator=gen)  # which agent moves when r = 1
    drift = torch.randint(-1, 2, (B,), generator=gen)  # both agents the same way when r = 0
    a0 = torch.where(r == 2, toward, torch.where(r == 1, torch.where(pick == 0, toward, 0), drift))
    a1 = torch.where(r == 2, -toward, torch.where(r == 1, torch.where(pick == 1, -toward, 0), drift))
    return [(a0 + 1).long(), (a1 + 1).long()]


def _targets(gen, p, time_limit, size):
    """Per copy: meet at step H (¼), never (¼), or at a random feasible step ≤ H (½)."""
    B = p.shape[0]
    first = (ring_distance(p, size) + 1) // 2
    u = torch.rand(B, generator=gen)
    anywhere = first + (torch.rand(B, generator=gen) * (time_limit - first + 1)).long().clamp(max=time_limit - first)
    return torch.where(u < 0.25, torch.full_like(first, time_limit), torch.where(u < 0.5, torch.zeros_like(first),
                                                                                  anywhere))


def _play(ctx, student_cls, case) -> _Problems:
    """Play the student's env against the reference for a few episodes per copy; collect problems per part."""
    B, size, time_limit, seed = case
    problems = _Problems()
    env = _build(ctx, student_cls, B, size, time_limit, seed)
    obs, state = call_student(env.reset, seed)
    obs = [torch.as_tensor(o).detach().cpu().to(torch.float64) for o in obs]
    state = torch.as_tensor(state).detach().cpu().to(torch.float64)
    p, valid = decode_state(state, size)
    if not bool(valid.all()):
        b = int(torch.nonzero(~valid)[0])
        raise CheckFailed(f"after reset({seed}), state[{b}] is not two one-hots of length {size}: {state[b].tolist()}")
    want_obs, _ = observe(p, size)
    if not bool(_rows_equal(obs, state, want_obs, state).all()):
        b = int(torch.nonzero(~_rows_equal(obs, state, want_obs, state))[0])
        problems.add(INTERFACE, f"after reset({seed}), the observations of copy {b} do not match its state "
                                f"(positions {_pos(p, b)})", hint="agent i sees [onehot(p^i), onehot((p^j − p^i) mod L)]")
    if bool((ring_distance(p, size) == 0).any()):
        b = int(torch.nonzero(ring_distance(p, size) == 0)[0])
        problems.add(INTERFACE, f"after reset({seed}), copy {b} starts with both agents in cell {int(p[b, 0])}",
                     hint="a start has p^1 ≠ p^2 (the agents have not met yet)")
    t_ep = torch.zeros(B, dtype=torch.long)
    target = _targets(ctx.gen, p, time_limit, size)
    unchanged, truncations = 0, 0
    for t in range(3 * time_limit + 2):
        actions = _policy(ctx.gen, p, t_ep, target, size)
        nobs, nstate, reward, term, trunc, fobs, fstate = _unpack(call_student(env.step, actions), B)
        p_next = move(p, actions, size)
        met = ring_distance(p_next, size) == 0
        want_trunc = ~met & (t_ep + 1 >= time_limit)
        done = met | want_trunc
        post_obs, post_state = observe(p_next, size)
        words = lambda b: _step_words(t, b, int(t_ep[b]), p, actions, p_next, size, time_limit)  # noqa: E731
        # reward: every copy
        bad = (reward - team_reward(p_next, size)).abs() > TOL
        if bool(bad.any()):
            b = int(torch.nonzero(bad)[0])
            plain = abs(int(p_next[b, 1]) - int(p_next[b, 0]))
            hint = ("the distance on a ring goes the short way round: min((p² − p¹) mod L, (p¹ − p²) mod L)"
                    if abs(float(reward[b]) + plain / size) < TOL and plain != int(ring_distance(p_next, size)[b])
                    else None)
            problems.add(DYNAMICS, f"reward[{b}] is {float(reward[b]):.6g}; expected "
                                   f"{float(team_reward(p_next, size)[b]):.6g} (1 if the agents meet, else −d/L)",
                         input=words(b), hint=hint)
        # flags: every copy
        for flag, want, what in ((term, met, "terminated"), (trunc, want_trunc, "truncated")):
            bad = flag != want
            if bool(bad.any()):
                b = int(torch.nonzero(bad)[0])
                hint = None
                if what == "terminated" and bool(want_trunc[b]) and bool(term[b]):
                    hint = "a time limit is a truncation, not a termination: the state reached is not terminal"
                elif what == "truncated" and bool(met[b]) and bool(trunc[b]):
                    hint = ("a copy whose agents meet on the last allowed step is terminated only: a terminal "
                            "state wins, and the two flags are never both set")
                elif what == "truncated" and not bool(met[b]) and int(t_ep[b]) + 1 in (time_limit - 1, time_limit,
                                                                                        time_limit + 1):
                    hint = (f"the {time_limit}-th step of an episode is its last: truncate when episode_t + 1 == "
                            "time_limit (the base class increments episode_t after _step, and your own step "
                            "counter must restart for a copy that was reset)")
                problems.add(FLAGS, f"{what}[{b}] is {bool(flag[b])}; expected {bool(want[b])}", input=words(b),
                             hint=hint)
        # what the step led to: final_* everywhere; obs/state too where the copy goes on
        led_to = _rows_equal(fobs, fstate, post_obs, post_state)
        for part, mask in ((DYNAMICS, ~done), (FINAL, done)):
            bad = mask & ~led_to
            if bool(bad.any()):
                b = int(torch.nonzero(bad)[0])
                hint = None
                if part == FINAL and bool(_rows_equal(fobs, fstate, nobs, nstate)[b]):
                    hint = ("final_obs and final_state must hold what the step led to, before the reset; "
                            "you returned the next episode's first observation")
                elif part == DYNAMICS and not bool((fstate[b] - post_state[b]).abs().le(TOL).all()):
                    hint = "p^i ← (p^i + a^i − 1) mod L for both agents; the state is [onehot(p^1), onehot(p^2)]"
                elif part == DYNAMICS:
                    hint = "agent i sees [onehot(p^i), onehot((p^j − p^i) mod L)], j the other agent"
                kind = ("ended" if part == FINAL else "did not end") + " in this step"
                problems.add(part, f"final_obs/final_state of copy {b}, which {kind}, are not the positions the "
                                   f"move led to, {_pos(p_next, b)}", input=words(b), hint=hint)
        same = _rows_equal(nobs, nstate, fobs, fstate)
        bad = ~done & ~same
        if bool(bad.any()):
            b = int(torch.nonzero(bad)[0])
            problems.add(RESET, f"copy {b} did not end in this step, but its obs/state differ from final_obs/"
                                "final_state (it was reset, or obs is not what the step led to)", input=words(b),
                         hint="reset only the copies where terminated | truncated; the others go on")
        p_new, valid = decode_state(nstate, size)
        start_obs, _ = observe(p_new, size)
        fresh = valid & (ring_distance(p_new, size) > 0) & _rows_equal(nobs, nstate, start_obs, nstate)
        bad = done & ~fresh
        if bool(bad.any()):
            b = int(torch.nonzero(bad)[0])
            problems.add(RESET, f"copy {b} ended in this step, but obs/state do not hold a new start (two distinct "
                                f"cells and matching observations): state {nstate[b].tolist()}", input=words(b),
                         hint="where terminated | truncated, draw a new start for that copy in the same step")
            break  # the reference cannot adopt a start it cannot read
        truncations += int(want_trunc.sum())
        unchanged += int((want_trunc & valid & (p_new == p_next).all(1)).sum())
        # go on from the student's positions where they can be read (one mistake, one failing part)
        p = torch.where((done | valid).unsqueeze(1), p_new, p_next)
        t_ep = torch.where(done, torch.zeros_like(t_ep), t_ep + 1)
        if bool(done.any()):
            new_target = _targets(ctx.gen, p, time_limit, size)
            target = torch.where(done, new_target, target)
    # a truncated copy restarts somewhere random: it stays where it was with probability 1/(L(L−1))
    if truncations >= 20 and unchanged > truncations / 2:
        problems.add(RESET, f"{unchanged} of {truncations} truncated copies kept their positions: they were not reset",
                     hint="a truncated copy ends its episode too: reset it in the same step")
    return problems


def _start_counts(ctx, student_cls, size, seed) -> None:
    """One reset of many copies: every start p^1 ≠ p^2, each ordered pair within ±50 % of its share."""
    B = 16384
    env = _build(ctx, student_cls, B, size, 4, seed)
    _, state = call_student(env.reset, seed)
    p, valid = decode_state(state, size)
    if not bool(valid.all()):
        b = int(torch.nonzero(~valid)[0])
        raise CheckFailed(f"reset({seed}) with {B} copies: state[{b}] is not two one-hots of length {size}")
    same = p[:, 0] == p[:, 1]
    if bool(same.any()):
        raise CheckFailed(f"reset({seed}) with {B} copies: {int(same.sum())} copies start with both agents in one "
                          "cell", hint="a start has p^1 ≠ p^2")
    counts = torch.bincount(p[:, 0] * size + p[:, 1], minlength=size * size).reshape(size, size)
    share = B / (size * (size - 1))
    off = ~torch.eye(size, dtype=torch.bool)
    low, high = counts[off].min().item(), counts[off].max().item()
    if low < 0.5 * share or high > 1.5 * share:
        i, j = divmod(int(torch.argmax((counts - share).abs() * off)), size)
        raise CheckFailed(f"reset({seed}) with {B} copies, L={size}: the start ({i}, {j}) came {int(counts[i, j])} "
                          f"times; each of the {size * (size - 1)} ordered pairs with p^1 ≠ p^2 should come about "
                          f"{share:.0f} times", hint="draw (p^1, p^2) uniformly among the pairs with p^1 ≠ p^2, e.g. "
                                                     "p^2 = (p^1 + k) mod L with k uniform in 1..L−1")


def _seeding(ctx, student_cls, case) -> None:
    """Same seed and actions → identical outputs, whatever the global RNG; another seed → other starts."""
    B, size, time_limit, seed = case
    a = _build(ctx, student_cls, B, size, time_limit, seed)
    b = _build(ctx, student_cls, B, size, time_limit, seed)
    first = [torch.as_tensor(x).clone() for x in (*a.obs, a.state)]
    if not all(torch.equal(torch.as_tensor(x), y) for x, y in zip((*b.obs, b.state), first)):
        raise CheckFailed(f"two environments built with seed={seed} start differently",
                          hint="seed the env's own torch.Generator in _reset(seed) and draw the starts from it")
    steps = 2 * time_limit + 3
    for t in range(steps):
        actions = [torch.randint(3, (B,), generator=ctx.gen) for _ in range(2)]
        out_a = _unpack(call_student(a.step, [x.clone() for x in actions]), B)
        torch.manual_seed(int(torch.randint(2**31 - 1, (), generator=ctx.gen)))  # the global RNG moves on
        torch.rand(7)
        out_b = _unpack(call_student(b.step, [x.clone() for x in actions]), B)
        for name, x, y in zip(("obs", "state", "reward", "terminated", "truncated", "final_obs", "final_state"),
                              out_a, out_b):
            xs, ys = (x, y) if isinstance(x, list) else ([x], [y])
            if not all(torch.equal(u, v) for u, v in zip(xs, ys)):
                raise CheckFailed(f"two environments built with seed={seed} and given the same actions differ in "
                                  f"{name} at step t={t} (the global random generator was reseeded in between)",
                                  hint="draw every start, including those of automatic resets, from the env's own "
                                       "torch.Generator (torch.randint(..., generator=self.gen)), never from the "
                                       "global generator")
    other = _build(ctx, student_cls, B, size, time_limit, seed + 1)
    if torch.equal(torch.as_tensor(other.state), first[-1]):
        raise CheckFailed(f"seeds {seed} and {seed + 1} give the same starts in all {B} copies",
                          hint="reset(seed) must seed the generator with that seed: self.gen.manual_seed(seed)")
    obs, state = call_student(a.reset, seed)
    if not torch.equal(torch.as_tensor(state), first[-1]):
        raise CheckFailed(f"reset({seed}) after {steps} steps does not give the starts of a new environment with "
                          f"seed={seed}", hint="reseed the generator in _reset when a seed is given")


def _cases(ctx):
    """The notebook's example, then two drawn ones."""
    cases = [EXAMPLE]
    for _ in range(2):
        size = int(torch.randint(5, 9, (), generator=ctx.gen))
        cases.append((int(torch.randint(16, 65, (), generator=ctx.gen)), size,
                      int(torch.randint(3, 9, (), generator=ctx.gen)), int(torch.randint(1, 10**6, (), generator=ctx.gen))))
    return cases


@register(function="RingMeetEnv", equation="def-vec-env-step", parts={part: 1 for part in PARTS})
def check_ring_env(student_cls, ctx) -> None:
    """The ring rendezvous env keeps the step contract: its starts, moves, flags, final observations, resets, seeding.

    The student's env and the reference game are played side by side for 3·time_limit + 2
    steps, on the notebook's example (8 copies, L = 7, time limit 10, seed 0) and on two drawn
    cases, with actions chosen so that copies meet at given steps (also at their last allowed
    step) or never meet; the starts are checked on one reset of 16,384 copies (each ordered
    pair within ±50 % of its share: a correct uniform draw falls outside with probability
    below 1e-9); seeding on two environments with the same seed, the global random generator
    reseeded between their steps.

    Tolerance: exact for the flags and the one-hot observations (|got − expected| ≤ 1e-6, far
    below their spacing of 1); |reward − expected| ≤ 1e-6 (−d/L in float32 is within 6e-8).
    """
    cases = _cases(ctx)
    played: dict[tuple, object] = {}

    def play(case):
        if case not in played:
            try:
                played[case] = _play(ctx, student_cls, case)
            except CheckFailed as exc:
                played[case] = exc
            except Exception as exc:  # noqa: BLE001 - an odd object from the student broke the comparison
                played[case] = CheckFailed(f"the check could not use your environment ({type(exc).__name__}: {exc})")
        got = played[case]
        if isinstance(got, CheckFailed):
            raise CheckFailed(got.message, input=got.input, hint=got.hint)
        return got

    with ctx.part(INTERFACE):
        for case in cases:
            play(case).raise_for(INTERFACE)
        _start_counts(ctx, student_cls, cases[1][1], cases[1][3])
    for part in (DYNAMICS, FLAGS, FINAL, RESET):
        with ctx.part(part):
            for case in cases:
                play(case).raise_for(part)
    with ctx.part(SEEDING):
        for case in cases[:2]:
            _seeding(ctx, student_cls, case)
