"""harl_mini.viz.runs on tiny run folders written by harl_mini.provenance.write_run, and smoke
tests of the trust-region pictures of harl_mini.viz.trust_region (Chapters 4-5)."""

import json
import itertools
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from harl_mini import tabular  # noqa: E402
from harl_mini.errors import HarlMiniError  # noqa: E402
from harl_mini.provenance import run_manifest, write_run  # noqa: E402
from harl_mini.viz import runs as viz_runs  # noqa: E402
from harl_mini.viz import trust_region as viz_tr  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _rows(seed: int, n: int = 6, offset: float = 0.0):
    out = []
    for i in range(n):
        out.append({"iteration": i, "steps": 100 * (i + 1),
                    "episode_return": float("nan") if i == 0 else 10.0 * i + seed + offset,
                    "kl": 0.001 * (i + 1), "algo_note": "x"})
    return out


def _write(tmp_path, algo="ppo", env="gym:CartPole-v1", seed=0, reached=300, n=6, **extra):
    manifest = run_manifest(algo=algo, env=env, seed=seed, steps=100 * n, wall_time=1.5 + seed,
                            final_return=10.0 * (n - 1) + seed, target=25.0, steps_to_target=reached,
                            eval_deterministic={"episodes": 3, "mean": 40.0 + seed, "std": 0.0}, **extra)
    return write_run(tmp_path / f"{algo}_s{seed}", _rows(seed, n), manifest)


def test_load_run_reads_columns_and_manifest(tmp_path):
    folder = _write(tmp_path, seed=1)
    rows, manifest = viz_runs.load_run(folder)
    assert set(rows) == {"iteration", "steps", "episode_return", "kl", "algo_note"}
    np.testing.assert_array_equal(rows["steps"], [100, 200, 300, 400, 500, 600])
    assert rows["steps"].dtype == np.float64
    assert math.isnan(rows["episode_return"][0])  # NaN before the first episode survives the CSV
    assert rows["episode_return"][3] == 31.0
    assert rows["algo_note"].dtype == object  # non-numeric column kept as strings
    assert manifest["seed"] == 1 and manifest["algo"] == "ppo" and manifest["folder"] == str(folder)
    assert manifest["cpu"] and "git_commit" in manifest


def test_load_run_errors_name_the_problem(tmp_path):
    with pytest.raises(HarlMiniError, match="does not exist"):
        viz_runs.load_run(tmp_path / "nope")
    folder = _write(tmp_path)
    (folder / "manifest.json").unlink()
    with pytest.raises(HarlMiniError, match="manifest.json"):
        viz_runs.load_run(folder)
    folder = _write(tmp_path, seed=2)
    (folder / "metrics.csv").unlink()
    with pytest.raises(HarlMiniError, match="metrics.csv"):
        viz_runs.load_run(folder)
    folder = _write(tmp_path, seed=3)
    (folder / "metrics.csv").write_text("iteration,steps\n")
    with pytest.raises(HarlMiniError, match="no rows"):
        viz_runs.load_run(folder)
    folder = _write(tmp_path, seed=4)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(HarlMiniError, match="not valid JSON"):
        viz_runs.load_run(folder)
    (folder / "manifest.json").write_text(json.dumps([1, 2]))
    with pytest.raises(HarlMiniError, match="JSON object"):
        viz_runs.load_run(folder)
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(HarlMiniError, match="not a directory"):
        viz_runs.load_run(file)
    with pytest.raises(HarlMiniError, match="does not exist"):
        viz_runs.plot_runs([tmp_path / "missing"])
    with pytest.raises(HarlMiniError, match="empty"):
        viz_runs.results_table([])


def test_plot_runs_mean_band_and_per_seed(tmp_path):
    folders = [_write(tmp_path, seed=s) for s in range(3)]
    ax = viz_runs.plot_runs(folders, target=True)
    lines = ax.get_lines()
    mean = next(line for line in lines if line.get_label().endswith("mean"))
    x, y = mean.get_data()
    assert x[0] == 200 and x[-1] == 600  # NaN rows skipped, common range
    # mean over seeds 0, 1, 2 of 10 i + seed = 10 i + 1, linear in steps
    np.testing.assert_allclose(y, (x / 100 - 1) * 10 + 1, atol=1e-9)
    assert len(ax.collections) == 1  # the band
    assert any(line.get_label() == "target 25" for line in lines)
    assert "ppo (3 seeds)" in [t.get_text() for t in ax.get_legend().get_texts()][0]
    ax2 = viz_runs.plot_runs(folders, per_seed=True, y="kl")
    assert len(ax2.get_lines()) == 3 and ax2.get_ylabel() == "kl"
    ax3 = viz_runs.plot_runs(folders[0], band="std", target=30.0)  # a single folder: one line
    assert len(ax3.get_lines()) == 2
    assert viz_runs._steps_label(150_000) == "150k" and viz_runs._steps_label(2_500_000) == "2.5M"
    ax4 = viz_runs.plot_runs(folders, band="std")
    assert len(ax4.collections) == 1
    with pytest.raises(HarlMiniError, match="column 'nope'"):
        viz_runs.plot_runs(folders, y="nope")
    with pytest.raises(HarlMiniError, match="not numeric"):
        viz_runs.plot_runs(folders, y="algo_note")
    with pytest.raises(HarlMiniError, match="band"):
        viz_runs.plot_runs(folders, band="iqr")


def test_provenance_caption_and_results_table(tmp_path):
    folders = [_write(tmp_path, seed=s, reached=None if s == 2 else 300 + 100 * s) for s in range(3)]
    folders.append(_write(tmp_path, algo="trpo", seed=0))
    manifests = [viz_runs.load_run(f)[1] for f in folders]
    caption = viz_runs.provenance_caption(manifests)
    lines = caption.splitlines()
    assert len(lines) == 2  # one per (algo, env)
    assert lines[0].startswith("ppo on gym:CartPole-v1: seeds 0, 1, 2; 600 env steps each")
    assert "wall time 1.5, 2.5, 3.5 s" in lines[0]
    commit = manifests[0]["git_commit"]
    assert (commit[:7] if commit != "unknown" else "unknown") in lines[0]
    assert manifests[0]["cpu"] in lines[0]
    assert viz_runs.provenance_caption(folders[3]) == lines[1]  # a folder works too
    table = viz_runs.results_table(folders)
    rows = table.strip().splitlines()
    assert rows[0].startswith("| algo | env | seed | final return")
    assert len(rows) == 2 + 4 + 1  # header, separator, 4 runs, one mean row (ppo)
    assert "| ppo | CartPole-v1 | 2 | 52.0 | 42.0 | ≥ 25 | not reached | 600 | 3.5 |" in rows
    mean_row = next(r for r in rows if "**mean**" in r)
    assert "**350 (2/3 reached)**" in mean_row and "**51.0**" in mean_row and "**2.5**" in mean_row


def _write_eval_run(tmp_path, algo, seed, evals, env="mpe:simple_spread", every=2):
    """A run whose eval_return is logged every ``every`` rows (empty elsewhere), as the trainer does."""
    rows = []
    for i in range(len(evals) * every):
        rows.append({"iteration": i, "steps": 1000 * (i + 1), "episode_return": -100.0 + i,
                     "eval_return": evals[i // every] if (i + 1) % every == 0 else ""})
    manifest = run_manifest(algo=algo, env=env, seed=seed, steps=1000 * len(rows), wall_time=10.0 + seed,
                            steps_per_s=100.0 * (seed + 1), device="cpu")
    return write_run(tmp_path / f"{algo}_{env.split(':')[-1]}_s{seed}", rows, manifest)


def test_summarize_runs_takes_the_last_evaluation_per_seed(tmp_path):
    folders = [_write_eval_run(tmp_path, "happo", s, [-80.0, -60.0 + s]) for s in (2, 0, 1)]
    folders.append(_write_eval_run(tmp_path, "mappo", 0, [-70.0, -50.0, -40.0]))
    folders.append(_write_eval_run(tmp_path, "mappo", 0, [-30.0], env="vmas:balance"))
    summaries = viz_runs.summarize_runs(folders)
    assert [(s["algo"], s["env"]) for s in summaries] == [("happo", "mpe:simple_spread"),
                                                         ("mappo", "mpe:simple_spread"), ("mappo", "vmas:balance")]
    happo = summaries[0]
    assert happo["seeds"] == [0, 1, 2]  # sorted by seed
    np.testing.assert_array_equal(happo["final"], [-60.0, -59.0, -58.0])
    assert happo["at_steps"] == [4000] * 3 and happo["steps"] == [4000] * 3
    assert happo["mean"] == -59.0 and happo["std"] == pytest.approx(1.0)
    assert happo["wall_time"] == [10.0, 11.0, 12.0] and happo["steps_per_s"] == [100.0, 200.0, 300.0]
    assert summaries[1]["final"].tolist() == [-40.0] and summaries[1]["std"] == 0.0
    table = viz_runs.summary_table(summaries, labels={"happo": "HAPPO"},
                                   references={("happo", "mpe:simple_spread"): "≈ −62 (10 M)"})
    rows = table.strip().splitlines()
    assert len(rows) == 2 + 3 and rows[0].endswith("published |")
    assert rows[2] == ("| simple_spread | HAPPO | 3 | 4,000 | -59.0 ± 1.0 | -60.0, -59.0, -58.0 | 11 | 200 |"
                       " ≈ −62 (10 M) |")
    assert rows[3].startswith("| simple_spread | mappo | 1 | 6,000 | -40.0 ± 0.0 |") and rows[3].endswith("– |")
    assert "published" not in viz_runs.summary_table(summaries)
    with pytest.raises(HarlMiniError, match="column 'nope'"):
        viz_runs.summarize_runs(folders, y="nope")
    with pytest.raises(HarlMiniError, match="empty"):
        viz_runs.summary_table([])
    bad = write_run(tmp_path / "bad", [{"steps": 1, "eval_return": ""}], run_manifest(algo="x", env="y"))
    with pytest.raises(HarlMiniError, match="no finite value"):
        viz_runs.summarize_runs([bad])


BENCH_TEXT = """# recorded by the lead, 2026-11-22
harl_mini.marl.bench --scale: joint env-steps/s, env only vs end-to-end training (config sizes)
torch 2.13.0+cpu, 1 thread(s), Intel(R) Xeon(R) Processor ×2, no GPU

environment                algorithm device  copies  env steps/s  train steps/s  ratio
--------------------------------------------------------------------------------------
mpe:simple_spread          happo    cpu         80      102,345          9,876   0.10
vmas:balance               mappo    cpu      1,024       80,404         12,000   0.15
"""


def test_load_scale_bench_reads_rows_and_provenance(tmp_path):
    path = tmp_path / "bench.txt"
    path.write_text(BENCH_TEXT)
    rows, header = viz_runs.load_scale_bench(path)
    assert rows == [
        {"env": "mpe:simple_spread", "algo": "happo", "device": "cpu", "copies": 80, "env_steps_per_s": 102345.0,
         "train_steps_per_s": 9876.0, "ratio": 0.10},
        {"env": "vmas:balance", "algo": "mappo", "device": "cpu", "copies": 1024, "env_steps_per_s": 80404.0,
         "train_steps_per_s": 12000.0, "ratio": 0.15}]
    assert header[0] == "recorded by the lead, 2026-11-22" and header[1].startswith("harl_mini.marl.bench --scale")
    assert header[2].startswith("torch 2.13.0") and len(header) == 3
    with pytest.raises(HarlMiniError, match="no benchmark file"):
        viz_runs.load_scale_bench(tmp_path / "missing.txt")
    path.write_text("nothing here\n")
    with pytest.raises(HarlMiniError, match="no benchmark rows"):
        viz_runs.load_scale_bench(path)


def test_clip_objective_picture_uses_the_loss():
    ax = viz_tr.plot_clip_objective(0.2, +1)
    curve = next(line for line in ax.get_lines() if "min" in line.get_label())
    r, y = curve.get_data()
    np.testing.assert_allclose(y, np.minimum(r, np.clip(r, 0.8, 1.2)), atol=1e-12)
    ax = viz_tr.plot_clip_objective(0.1, -1)
    flat = next(line for line in ax.get_lines() if line.get_label().startswith("flat"))
    assert np.all(flat.get_data()[0] < 0.9)
    with pytest.raises(HarlMiniError, match="adv_sign"):
        viz_tr.plot_clip_objective(0.2, 0)
    with pytest.raises(HarlMiniError, match="clip_eps"):
        viz_tr.plot_clip_objective(1.5)


def test_trpo_bound_picture_and_curves():
    mdp = tabular.random_mdp(4, 2, gamma=0.6, seed=0)
    theta = torch.zeros(4, 2, dtype=torch.float64)
    c = viz_tr.trpo_bound_curves(mdp, theta)
    assert c["t"][0] == 0 and np.argmax(c["kl_bound"]) not in (0, len(c["t"]) - 1)  # peak inside
    assert np.all(c["J"] >= c["kl_bound"] - 1e-12) and np.all(c["J"] >= c["tv_bound"] - 1e-12)
    assert np.all(np.abs(c["J"] - c["L"]) <= c["sharp"] + 1e-12)
    ax = viz_tr.plot_trpo_bound(mdp, theta)
    assert len(ax.get_lines()) == 4 and len(ax.collections) == 1
    with pytest.raises(HarlMiniError, match="direction"):
        viz_tr.trpo_bound_curves(mdp, theta, direction=torch.zeros(4, 2))


def test_trpo_step_picture_marks_the_line_search():
    mdp = tabular.random_mdp(5, 3, gamma=0.9, seed=1)
    theta = 2.0 * torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _, axes = plt.subplots(1, 2)
    result = viz_tr.plot_trpo_step(mdp, theta, 0.2, axes=axes)
    assert result.accepted
    labels = [line.get_label() for line in axes[0].get_lines()]
    assert "accepted" in labels and "kl > delta" in labels
    with pytest.raises(HarlMiniError, match="delta"):
        viz_tr.plot_trpo_step(mdp, theta, 0.0)


def test_ppo_path_curves_respect_the_pessimistic_bound():
    mdp = tabular.random_mdp(4, 3, gamma=0.9, seed=2)
    theta = torch.randn(4, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    c = viz_tr.plot_ppo_path(mdp, theta, ts=np.linspace(0, 0.5, 11))
    assert np.all(c["clip"] <= c["gain"] + 1e-12)
    inside = c["max_ratio_dev"] <= 0.2
    assert inside[0] and np.allclose(c["clip"][inside], c["gain"][inside], atol=1e-12)


def test_widgets_build():
    import ipywidgets

    w = viz_tr.clip_objective_explorer(0.2)
    assert isinstance(w, ipywidgets.Widget)
    mdp = tabular.random_mdp(3, 2, gamma=0.5, seed=0)
    w2 = viz_tr.trpo_step_explorer(mdp, torch.zeros(3, 2, dtype=torch.float64), delta=0.05)
    assert isinstance(w2, ipywidgets.Widget)
    assert {c.description for c in w2.children if hasattr(c, "description")} >= {"δ"}


# --------------------------------------------------------------------------- Chapter 9: plots, bootstrap, peers


def test_chapter9_plots_draw_the_recorded_runs_and_the_benchmark(tmp_path):
    happo = [_write_eval_run(tmp_path, "happo", s, [-80.0, -60.0 + s, -50.0]) for s in (0, 1)]
    mappo = [_write_eval_run(tmp_path, "mappo", s, [-70.0, -65.0, -62.0]) for s in (0, 1)]
    fig, (ax_eval, ax_train) = plt.subplots(1, 2)
    viz_runs.plot_task_curves([(happo, "HAPPO", "C0"), (mappo, "MAPPO", "C2")], ax_eval, ax_train,
                              budget=30_000, title="mpe:simple_spread")
    assert [t.get_text() for t in ax_eval.get_legend().get_texts()] == ["HAPPO", "MAPPO"]
    assert ax_train.get_legend() is None and "training" in ax_train.get_title()
    # the training axis leaves out the first 10 % of the budget: the returns -100 and -99 of the
    # rows at 1,000 and 2,000 steps, so the axis starts above -99
    assert ax_train.get_ylim()[0] > -99.0
    with pytest.raises(HarlMiniError, match="no runs"):
        viz_runs.plot_task_curves([], ax_eval, ax_train, budget=1, title="x")
    path = tmp_path / "bench.txt"
    path.write_text(BENCH_TEXT)
    rows, _ = viz_runs.load_scale_bench(path)
    fig, ax = plt.subplots()
    viz_runs.plot_scale_bench(rows, ax, reference=1500.0, reference_label="one copy")
    assert len(ax.patches) == 2 * len(rows) and ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["simple_spread happo (80)", "balance mappo (1,024)"]
    with pytest.raises(HarlMiniError, match="no benchmark rows"):
        viz_runs.plot_scale_bench([], ax)


def _brute_prob_greater(x, y):
    """Every pair of ordered resamples, counted one by one."""
    import itertools

    def means(v):
        n = len(v)
        return [sum(v[i] for i in idx) / n for idx in itertools.product(range(n), repeat=n)]

    mx, my = means(x), means(y)
    return sum((u > v) + 0.5 * (u == v) for u in mx for v in my) / (len(mx) * len(my))


def test_exact_bootstrap_matches_brute_force_and_its_edge_cases():
    means, probs = viz_runs.bootstrap_means([0.0, 1.0])
    np.testing.assert_array_equal(means, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(probs, [0.25, 0.5, 0.25], rtol=0, atol=1e-15)
    means, probs = viz_runs.bootstrap_means([1.0, 2.0, 3.0])  # 27 draws: 1 of mean 1, 3 of 4/3, ...
    np.testing.assert_allclose(probs * 27, [1, 3, 6, 7, 6, 3, 1], rtol=0, atol=1e-12)
    rng = np.random.default_rng(0)
    for n, m in [(1, 1), (2, 3), (3, 3), (4, 2), (5, 3)]:
        x, y = rng.integers(-6, 7, n) / 4, rng.integers(-6, 7, m) / 4  # quarters: exact sums, exact ties
        assert viz_runs.bootstrap_prob_greater(x, y) == pytest.approx(_brute_prob_greater(list(x), list(y)), abs=1e-12)
    assert viz_runs.bootstrap_prob_greater([1.0, 2.0, 3.0], [3.0, 1.0, 2.0]) == 0.5  # same values: exactly 1/2
    assert viz_runs.bootstrap_prob_greater([5.0, 6.0, 7.0], [4.0, 4.5, 4.9]) == 1.0  # ranges apart: exactly 1
    assert viz_runs.bootstrap_prob_greater([4.0], [4.5, 5.0]) == 0.0
    # rounding cannot split a tie: 0.1 + 0.2 and 0.3 are not equal floats, their means count as equal
    assert viz_runs.bootstrap_prob_greater([0.1 + 0.2], [0.3]) == 0.5
    with pytest.raises(HarlMiniError, match="at most 8"):
        viz_runs.bootstrap_means(np.arange(9.0))
    with pytest.raises(HarlMiniError, match="finite"):
        viz_runs.bootstrap_means([1.0, float("nan")])


def _run(pair, side, rate=None, code=0):
    rec = {"pair": pair, "side": side, "returncode": code}
    if rate is not None:
        rec["result"] = {"rate": rate, "rate_cpu": 2 * rate}
    return rec


def test_pair_ratios_match_pairs_by_number_and_drop_failed_pairs():
    runs = [_run(1, "peer", 100.0), _run(1, "harl_mini", 300.0), _run(2, "peer", 200.0), _run(2, "harl_mini", 200.0),
            _run(3, "peer", 50.0), _run(3, "harl_mini", 400.0)]
    s = viz_runs.pair_ratios(runs)
    assert s["pairs"] == [1, 2, 3] and s["ratios"] == [3.0, 1.0, 8.0] and s["dropped"] == []
    assert (s["median"], s["min"], s["max"], s["n"]) == (3.0, 1.0, 8.0, 3)
    assert viz_runs.pair_ratios(runs[::-1]) == s  # the order of the records does not matter
    assert viz_runs.pair_ratios(runs, rate="rate_cpu")["ratios"] == [3.0, 1.0, 8.0]
    failed = runs[:4] + [_run(3, "peer", code=1), runs[5], _run(4, "peer", 10.0), _run(4, "harl_mini", 20.0)]
    s = viz_runs.pair_ratios(failed)
    assert s["pairs"] == [1, 2, 4] and s["dropped"] == [3] and s["median"] == 2.0  # pair 3 dropped whole
    even = viz_runs.pair_ratios(runs[:4] + [_run(4, "peer", 10.0), _run(4, "harl_mini", 20.0)][:2] + runs[4:])
    assert even["n"] == 4 and even["median"] == 2.5  # mean of the two middle ratios, 2 and 3
    lonely = viz_runs.pair_ratios([_run(1, "peer", 1.0), _run(2, "harl_mini", 1.0)])
    assert lonely["n"] == 0 and lonely["median"] is None and lonely["dropped"] == [1, 2]
    with pytest.raises(HarlMiniError, match="two peer runs"):
        viz_runs.pair_ratios([_run(1, "peer", 1.0), _run(1, "peer", 2.0)])
    with pytest.raises(HarlMiniError, match="side must be"):
        viz_runs.pair_ratios([_run(1, "other", 1.0)])
    with pytest.raises(HarlMiniError, match="'pair' and 'side'"):
        viz_runs.pair_ratios([{"side": "peer"}])


def test_ratio_words_follow_the_data():
    faster = viz_runs.pair_ratios([_run(1, "peer", 1.0), _run(1, "harl_mini", 3.0), _run(2, "peer", 1.0),
                                   _run(2, "harl_mini", 2.0)])
    slower = viz_runs.pair_ratios([_run(1, "peer", 4.0), _run(1, "harl_mini", 1.0)])
    mixed = viz_runs.pair_ratios([_run(1, "peer", 1.0), _run(1, "harl_mini", 2.0), _run(2, "peer", 2.0),
                                  _run(2, "harl_mini", 1.0), _run(3, "peer", 1.0), _run(3, "harl_mini", 0.9)])
    assert viz_runs.ratio_text(faster) == "2.50 [2.00–3.00]" and viz_runs.ratio_text(None) == "–"
    assert viz_runs.ratio_verdict(faster, "X").startswith("2.5× as fast as X (median of 2 pairs; every pair faster")
    assert viz_runs.ratio_verdict(slower, "X") == "slower than X in every pair: 0.25 of its rate (median of 1 pair, 0.25–0.25)"
    text = viz_runs.ratio_verdict(mixed, "X")
    assert text.startswith("faster than X in 1 of 3 pairs and slower in 2") and text.endswith("no consistent order")
    assert viz_runs.ratio_verdict(viz_runs.pair_ratios([]), "X") == "not measured (no complete pair)"


def test_the_recorded_peer_benchmark_reads_back_and_its_ratios_recompute(tmp_path):
    from harl_mini import data

    doc = viz_runs.load_peer_benchmark(data.path("results/peers/results.json"))
    assert doc["format"] == 1 and doc["cells"]
    for cell in doc["cells"]:  # results.json rounds its summaries to 3 decimals
        assert cell["wall"]["n"] == cell["pairs"]
        assert abs(cell["wall"]["median"] - cell["ratio_median"]) <= 6e-4
        assert abs(cell["cpu"]["median"] - cell["cpu_rates"]["ratio_median"]) <= 6e-4
        assert (cell["compile"] is None) == (cell["with_compile"] is None)
    table = viz_runs.peer_table(doc).strip().splitlines()
    assert len(table) == 2 + len(doc["cells"]) and table[0].startswith("| peer | cell |")
    with pytest.raises(HarlMiniError, match="no peer benchmark"):
        viz_runs.load_peer_benchmark(tmp_path / "missing.json")
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"format": 2}))
    with pytest.raises(HarlMiniError, match="expected format 1"):
        viz_runs.load_peer_benchmark(bad)
    bad.write_text(json.dumps({"format": 1, "date": "d", "harl_mini_commit": "c", "cpu": "x", "cells": [{"cell": "a"}]}))
    with pytest.raises(HarlMiniError, match=r"cells\[0\] has no peer"):
        viz_runs.load_peer_benchmark(bad)


def test_bootstrap_contrast_matches_brute_force():
    """The interval of a signed sum of resampled means, against enumerating every resample."""
    rng = np.random.default_rng(1)
    groups = [rng.integers(-8, 9, 3) / 4, rng.integers(-8, 9, 3) / 4, rng.integers(-8, 9, 2) / 4]
    signs = (1, -1, 1)

    def resample_means(v):
        n = len(v)
        return [sum(v[i] for i in idx) / n for idx in itertools.product(range(n), repeat=n)]

    all_values = sorted(sum(s * m for s, m in zip(signs, ms))
                        for ms in itertools.product(*(resample_means(list(g)) for g in groups)))
    k = len(all_values)
    est, lo, hi = viz_runs.bootstrap_contrast(groups, signs, level=0.9)
    assert est == pytest.approx(sum(s * g.mean() for s, g in zip(signs, groups)))
    # lo: the smallest value v with P(contrast ≤ v) ≥ 0.05; hi: the smallest with P ≥ 0.95
    assert lo == pytest.approx(all_values[math.ceil(0.05 * k - 1e-9) - 1])
    assert hi == pytest.approx(all_values[math.ceil(0.95 * k - 1e-9) - 1])
    assert lo <= est <= hi
    # the same seeds on both sides: the difference is centred on 0
    est, lo, hi = viz_runs.bootstrap_contrast([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0]], (1, -1))
    assert est == 0.0 and lo == -hi and hi > 0
    with pytest.raises(HarlMiniError, match="2 groups but 1 signs"):
        viz_runs.bootstrap_contrast([[1.0], [2.0]], (1,))
