"""Turn a bench folder into `report.md` plus PNG plots."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from ..progress import format_latency
from .stats import bootstrap_geomean_ci, geomean, paired_ratios
from .store import load_bench

ANCHOR_ORDER = ("numpy", "torch")


def _md_escape(text) -> str:
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


class BenchResults:
    """Finished cells indexed by (workload, method, trials) → {seed: latency}."""

    def __init__(self, records: list[dict]):
        self.records = records
        self.latency: dict[tuple, dict[int, float]] = defaultdict(dict)
        self.cells: dict[tuple, dict[int, dict]] = defaultdict(dict)
        self.flops: dict[str, float] = {}
        for r in records:
            c = r["cell"]
            key = (c["workload"], c["method"], c["trials"])
            self.cells[key][c["seed"]] = r
            if r.get("flops"):
                self.flops[c["workload"]] = r["flops"]
            if r.get("status") == "ok" and r.get("latency_s"):
                self.latency[key][c["seed"]] = r["latency_s"]
        self.workloads = list(dict.fromkeys(r["cell"]["workload"] for r in records))
        self.methods = list(dict.fromkeys(r["cell"]["method"] for r in records))
        self.trial_budgets = sorted({r["cell"]["trials"] for r in records if r["cell"]["trials"]})

    def series(self, workload: str, method: str, trials: int) -> dict[int, float]:
        """Latency by seed; methods that ignore the budget are found under trials 0."""
        return self.latency.get((workload, method, trials)) or self.latency.get((workload, method, 0), {})

    def anchors(self, workload: str) -> list[tuple[str, float]]:
        """(library, median latency) of every vendor anchor measured for this workload."""
        found = []
        for name in ANCHOR_ORDER:
            values = self.latency.get((workload, name, 0))
            if values:
                found.append((name, statistics.median(values.values())))
        return found

    def rows(self):
        """(workload, method, trials) for every group with at least one cell, in a stable order."""
        keys = sorted(self.cells, key=lambda k: (self.workloads.index(k[0]), k[2], self.methods.index(k[1])))
        return keys


def comparison_pairs(methods: list[str]) -> list[tuple[str, str]]:
    """(candidate, baseline) pairs worth a paired speedup: every method over untuned, and every
    searching method over stock MetaSchedule at the same budget."""
    pairs = []
    for baseline in ("untuned", "metaschedule"):
        if baseline in methods:
            pairs += [(m, baseline) for m in methods if m != baseline and m not in ANCHOR_ORDER and m != "untuned"]
    return pairs


def _speedup_rows(res: BenchResults) -> list[dict]:
    rows = []
    budgets = res.trial_budgets or [0]
    for candidate, baseline in comparison_pairs(res.methods):
        for trials in budgets:
            per_workload = {}
            for w in res.workloads:
                base, cand = res.series(w, baseline, trials), res.series(w, candidate, trials)
                ratios = paired_ratios(base, cand)
                if not ratios:
                    continue
                per_workload[w] = {s: base[s] / cand[s] for s in sorted(set(base) & set(cand))}
                low, high = bootstrap_geomean_ci(ratios)
                rows.append(dict(workload=w, trials=trials, candidate=candidate, baseline=baseline, n=len(ratios),
                                 speedup=geomean(ratios), low=low, high=high))
            if len(per_workload) > 1:
                seeds = set.intersection(*(set(v) for v in per_workload.values()))
                if seeds:  # per seed, geomean over workloads; then bootstrap over seeds
                    per_seed = [geomean(per_workload[w][s] for w in per_workload) for s in sorted(seeds)]
                    low, high = bootstrap_geomean_ci(per_seed)
                    rows.append(dict(workload="geomean over " + ", ".join(per_workload), trials=trials, candidate=candidate,
                                     baseline=baseline, n=len(per_seed), speedup=geomean(per_seed), low=low, high=high))
    return rows


def write_report(bench_dir: Path) -> Path:
    settings, records = load_bench(bench_dir)
    res = BenchResults(records)
    peak = settings["host"]["peak_gflops"]
    lines = [f"# shared-mcts bench report: `{bench_dir}`", ""]
    lines += [
        f"- Host: {settings['host']['model_name']}; target `{settings['target']}`",
        f"- fp32 peak: {settings['peak_formula']}",
        f"- Measurement: {settings['measure']} (median of repeats per candidate; parallel builds, serial runs)",
        f"- Versions: {settings['versions']}",
        "- Latency = median over seeds of each cell's final latency: the best schedule, checked against numpy, "
        "then re-measured in a fresh process. Vendor anchors are timed in-process on the same inputs; "
        "'speed vs X' = X's latency / this latency (above 1: faster than X).",
        "",
        "## Best latency per workload and method",
        "",
    ]
    for workload in res.workloads:
        flops = res.flops.get(workload)
        anchors = res.anchors(workload)
        lines += [f"### {workload}" + (f" ({flops / 1e9:.3g} GFLOP)" if flops else ""), ""]
        header = "| method | trials | seeds ok | median latency | min-max over seeds | GFLOP/s | % of peak |"
        header += "".join(f" speed vs {name} |" for name, _ in anchors)
        lines += [header, "|" + "---|" * (header.count("|") - 1)]
        for w, method, trials in res.rows():
            if w != workload:
                continue
            cells = res.cells[(w, method, trials)]
            values = list(res.latency.get((w, method, trials), {}).values())
            ok = f"{len(values)}/{len(cells)}"
            if values:
                med = statistics.median(values)
                gflops = flops / med / 1e9 if flops else float("nan")
                row = (f"| {method} | {trials or '-'} | {ok} | {format_latency(med)} | "
                       f"{format_latency(min(values))} - {format_latency(max(values))} | {gflops:.1f} | {100 * gflops / peak:.1f}% |")
                row += "".join(f" {latency / med:.2f}x |" for _, latency in anchors)
            else:
                row = f"| {method} | {trials or '-'} | {ok} | failed | | | |" + " |" * len(anchors)
            lines.append(row)
        lines.append("")
    speedups = _speedup_rows(res)
    if speedups:
        lines += ["## Paired speedups (by seed)", "",
                  "Speedup = baseline latency / method latency for the same seed; geometric mean over seeds, "
                  "95% percentile-bootstrap interval over seeds (only indicative with few seeds: see n). "
                  "The geomean-over-workloads rows take, per seed, the geomean over workloads first.", "",
                  "| workload | trials | method | over | n | speedup | 95% CI |", "|---|---|---|---|---|---|---|"]
        for r in speedups:
            lines.append(f"| {r['workload']} | {r['trials'] or '-'} | {r['candidate']} | {r['baseline']} | {r['n']} | "
                         f"{r['speedup']:.2f}x | {r['low']:.2f}-{r['high']:.2f} |")
        lines.append("")
    usage = _model_usage_rows(res)
    if usage:
        lines += ["## Model usage", "",
                  "Per cell, mean over seeds. Calls count every attempt (failed and cached ones too); tokens are "
                  "prompt + completion as the model reported them (local models: llama.cpp's own count); "
                  "valid = edits that passed the knob checks and replayed in TVM, over all edits the model proposed; "
                  "fallbacks = calls that gave no valid edit and were handed to the named non-LLM proposer.", "",
                  "| workload | method | trials | model | expansions | calls | valid edits | tokens | model seconds | "
                  "dollars | fallbacks |", "|---|---|---|---|---|---|---|---|---|---|---|"] + usage + [""]
    costs = _cost_rows(res)
    if costs:
        lines += ["## Cost per method", "",
                  "Per cell, mean over seeds, all models of the run together. Strong = the model the routers escalate "
                  "to (largest strength, else highest expected cost). Dollars are computed from the models file's "
                  "prices; a non-LLM stand-in's price is the one given there, not a real model's. Cells recorded "
                  "before runs named their strong model are left out of this table.", "",
                  "| workload | method | trials | strong model | strong calls | strong share of expansions | "
                  "strong dollars | all dollars | tokens | model seconds | median latency |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"] + costs + [""]
    shared = _shared_rows(res)
    if shared:
        strong = sorted({r["strong"] for r in shared})
        lines += ["## Shared tree vs single models", "",
                  f"Strong model: {', '.join(f'`{_md_escape(s)}`' for s in strong)} (the largest `strength` in the "
                  "models file). " + (" ".join(
                      f"**`{_md_escape(s)}` is a non-LLM stand-in with an explicit price, not a frontier model: frontier-"
                      "model numbers need an API key and a real endpoint.**" for s in strong if s in STAND_INS)) + " "
                  "Reference = the single model with the lowest median latency at that workload and budget (chosen "
                  "after the fact, the hardest comparison), and the strong model alone. Speed = reference latency / "
                  "shared latency for the same seed (above 1: the shared tree is faster), geomean over seeds, 95% "
                  "bootstrap CI. Strong $ = mean dollars spent on the strong model per run. The aim: the shared tree "
                  "matches the reference (the CI reaches 1 or above) with at most half of its strong-model dollars.",
                  "", "| workload | trials | shared method | reference | n | speed vs reference (95% CI) | "
                  "strong calls: shared / reference | strong $: shared / reference | aim met |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in shared:
            lines.append(f"| {r['workload']} | {r['trials']} | {r['method']} | {r['reference']} | {r['n']} | "
                         f"{r['speedup']:.2f}x ({r['low']:.2f}-{r['high']:.2f}) | {r['calls']:.1f} / {r['ref_calls']:.1f} | "
                         f"{r['dollars']:.4g} / {r['ref_dollars']:.4g} | {r['verdict']} |")
        lines.append("")
    timing = _timing_rows(res)
    if timing:
        lines += ["## Wall time per cell", "", "| workload | method | trials | median wall | build | run | other |",
                  "|---|---|---|---|---|---|---|"] + timing + [""]
    failures = [r for r in records if r.get("status") != "ok"]
    if failures:
        lines += ["## Failed cells", "", "| cell | status | error |", "|---|---|---|"]
        for r in failures:
            lines.append(f"| {_md_escape(r['cell']['key'])} | {r['status']} | {_md_escape(r.get('error', ''))[:300]} |")
        lines.append("")
    plots = _plots(res, speedups, bench_dir)
    if plots:
        lines += ["## Plots", "", "Curves use the latencies measured during search (before re-measurement).", ""]
        lines += [f"![{name}]({name})" for name in plots] + [""]
    path = bench_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def cost_summary(cell: dict) -> dict | None:
    """One cell's spending, from its per-model statistics; None for cells without models, and for
    cells recorded before runs named their strong model (averaging those in as zero strong calls
    would understate the strong model's use)."""
    info = cell.get("info") or {}
    per_model = {k: v for k, v in (info.get("per_model") or {}).items() if k != "sample"}
    strongest = info.get("strongest")
    if not strongest or not any("expansions" in s for s in per_model.values()):
        return None
    strong = per_model.get(strongest, {})
    expansions = sum(s.get("expansions", 0) for s in per_model.values())
    return {"strongest": strongest, "strong_calls": strong.get("calls", 0),
            "strong_share": strong.get("expansions", 0) / expansions if expansions else 0.0,
            "strong_dollars": strong.get("dollars", 0.0),
            "dollars": sum(s.get("dollars", 0.0) for s in per_model.values()),
            "tokens": sum(s.get("prompt_tokens", 0) + s.get("completion_tokens", 0) for s in per_model.values()),
            "seconds": sum(s.get("model_seconds", 0.0) for s in per_model.values())}


def _cost_rows(res: BenchResults) -> list[str]:
    rows = []
    for w, method, trials in res.rows():
        summaries = [s for s in map(cost_summary, res.cells[(w, method, trials)].values()) if s]
        if not summaries:
            continue

        def mean(key):
            return sum(s[key] for s in summaries) / len(summaries)

        strong = ", ".join(sorted({s["strongest"] for s in summaries}))
        latencies = list(res.latency.get((w, method, trials), {}).values())
        rows.append(f"| {w} | {method} | {trials} | {_md_escape(strong)} | {mean('strong_calls'):.1f} | "
                    f"{100 * mean('strong_share'):.0f}% | {mean('strong_dollars'):.4g} | {mean('dollars'):.4g} | "
                    f"{mean('tokens'):.0f} | {mean('seconds'):.1f} | "
                    f"{format_latency(statistics.median(latencies)) if latencies else 'failed'} |")
    return rows


STAND_INS = ("expert", "mutate", "greedy")  # builtin proposers that a models file may price as a "strong model"


def _strong_use(cells: dict, strong: str) -> tuple[float, float]:
    """Mean (calls, dollars) of the strong model per run. A non-LLM model's 'calls' are its expansions."""
    stats = [((c.get("info") or {}).get("per_model") or {}).get(strong, {}) for c in cells.values()]
    if not stats:
        return 0.0, 0.0
    calls = [s.get("calls") or s.get("expansions", 0) for s in stats]
    return sum(calls) / len(stats), sum(s.get("dollars", 0.0) for s in stats) / len(stats)


def _shared_rows(res: BenchResults) -> list[dict]:
    """Each shared:* method against the best single model and against the strong model alone."""
    shared = [m for m in res.methods if m.startswith("shared:")]
    singles = [m for m in res.methods if m.startswith("mcts-single:")]
    rows = []
    for trials in res.trial_budgets:
        for w in res.workloads:
            strongest = [(c.get("info") or {}).get("strongest") for m in shared
                         for c in res.cells.get((w, m, trials), {}).values()]
            strongest = [s for s in strongest if s]
            medians = {m: statistics.median(res.series(w, m, trials).values()) for m in singles if res.series(w, m, trials)}
            if not strongest or not medians:
                continue
            strong = max(set(strongest), key=strongest.count)
            references = dict.fromkeys([min(medians, key=medians.get), f"mcts-single:{strong}"])
            for method in shared:
                calls, dollars = _strong_use(res.cells.get((w, method, trials), {}), strong)
                for reference in references:
                    ratios = paired_ratios(res.series(w, reference, trials), res.series(w, method, trials))
                    if not ratios:
                        continue
                    low, high = bootstrap_geomean_ci(ratios)
                    ref_calls, ref_dollars = _strong_use(res.cells.get((w, reference, trials), {}), strong)
                    matches = high >= 1.0
                    if ref_dollars > 0:
                        cheaper = dollars <= 0.5 * ref_dollars
                        verdict = "yes" if matches and cheaper else (
                            "no: slower" if not matches else f"no: {dollars / ref_dollars:.0%} of its strong $")
                    else:
                        verdict = ("matches; reference spends nothing on the strong model" if matches else "no: slower")
                    rows.append(dict(workload=w, trials=trials, method=method, strong=strong,
                                     reference=reference + (" (best single)" if reference == min(medians, key=medians.get) else ""),
                                     n=len(ratios), speedup=geomean(ratios), low=low, high=high, calls=calls,
                                     dollars=dollars, ref_calls=ref_calls, ref_dollars=ref_dollars, verdict=verdict))
    return rows


def _model_usage_rows(res: BenchResults) -> list[str]:
    rows = []
    for w, method, trials in res.rows():
        # Records from before the LLM issue counted expansions as "calls": left out rather than misread.
        cells = [c for c in res.cells[(w, method, trials)].values()
                 if any("expansions" in s for s in ((c.get("info") or {}).get("per_model") or {}).values())]
        if not cells:
            continue
        models = list(dict.fromkeys(m for c in cells for m in c["info"]["per_model"] if m != "sample"))
        for model in models:
            stats = [c["info"]["per_model"].get(model, {}) for c in cells]

            def mean(key):
                return sum(s.get(key, 0) for s in stats) / len(stats)

            edits = sum(s.get("edits", 0) for s in stats)
            valid = f"{100 * sum(s.get('valid_edits', 0) for s in stats) / edits:.0f}% of {edits / len(stats):.1f}" if edits else "-"
            rows.append(f"| {w} | {method} | {trials} | {_md_escape(model)} | {mean('expansions'):.1f} | {mean('calls'):.1f} | "
                        f"{valid} | {mean('prompt_tokens') + mean('completion_tokens'):.0f} | "
                        f"{mean('model_seconds'):.1f} | {mean('dollars'):.4g} | {mean('fallbacks'):.1f} |")
    return rows


def _timing_rows(res: BenchResults) -> list[str]:
    rows = []
    for w, method, trials in res.rows():
        cells = [c for c in res.cells[(w, method, trials)].values() if "wall_s" in c and "build_s" in c]
        if not cells or not trials:
            continue
        wall = statistics.median(c["wall_s"] for c in cells)
        build = statistics.median(c["build_s"] for c in cells)
        run = statistics.median(c["run_s"] for c in cells)
        rows.append(f"| {w} | {method} | {trials} | {wall:.0f} s | {build:.0f} s | {run:.0f} s | {max(wall - build - run, 0):.0f} s |")
    return rows


def _best_so_far(history: list) -> list[float]:
    best, curve = float("inf"), []
    for latency in history:
        if latency is not None:
            best = min(best, latency)
        curve.append(best)
    return curve


def _plots(res: BenchResults, speedups: list[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = []
    searching = [m for m in res.methods if any(res.cells.get((w, m, t)) for w in res.workloads for t in res.trial_budgets)]
    if searching:
        fig, axes = plt.subplots(1, len(res.workloads), figsize=(5 * len(res.workloads), 4), squeeze=False)
        for ax, workload in zip(axes[0], res.workloads):
            for method in searching:
                budgets = [t for t in res.trial_budgets if res.cells.get((workload, method, t))]
                if not budgets:
                    continue
                curves = [_best_so_far(c.get("history") or []) for c in res.cells[(workload, method, budgets[-1])].values()]
                curves = [c for c in curves if c]
                if not curves:
                    continue
                length = min(len(c) for c in curves)
                median = np.median(np.array([c[:length] for c in curves]), axis=0) * 1e3
                ax.plot(np.arange(1, length + 1), median, label=f"{method} (n={len(curves)})")
            for (name, latency), style in zip(res.anchors(workload), ("--", ":")):
                ax.axhline(latency * 1e3, color="gray", linestyle=style, label=name)
            ax.set_yscale("log")
            ax.set_title(workload)
            ax.set_xlabel("measured trials")
            ax.set_ylabel("best latency so far (ms, median over seeds)")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "latency_vs_trials.png", dpi=110)
        plt.close(fig)
        names.append("latency_vs_trials.png")
    bars = [r for r in speedups if r["baseline"] == ("metaschedule" if "metaschedule" in res.methods else "untuned")]
    if bars:
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(bars)), 4))
        labels = [f"{r['workload'][:24]}\n{r['candidate']} @{r['trials'] or '-'}" for r in bars]
        values = [r["speedup"] for r in bars]
        errors = np.array([[r["speedup"] - r["low"] for r in bars], [r["high"] - r["speedup"] for r in bars]])
        ax.bar(range(len(bars)), values, yerr=errors, capsize=3, color="tab:blue")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(f"speedup over {bars[0]['baseline']}\n(geomean by seed, 95% CI)")
        ax.set_yscale("log")
        fig.tight_layout()
        fig.savefig(out / "speedups.png", dpi=110)
        plt.close(fig)
        names.append("speedups.png")
    if any(cost_summary(c) for cells in res.cells.values() for c in cells.values()):
        fig, axes = plt.subplots(1, len(res.workloads), figsize=(5 * len(res.workloads), 4), squeeze=False)
        for ax, workload in zip(axes[0], res.workloads):
            for w, method, trials in res.rows():
                if w != workload:
                    continue
                cells = res.cells[(w, method, trials)]
                summaries = [(seed, cost_summary(c)) for seed, c in cells.items()]
                points = [(s["dollars"], res.latency[(w, method, trials)][seed] * 1e3) for seed, s in summaries
                          if s and seed in res.latency.get((w, method, trials), {})]
                if points:
                    ax.scatter([p[0] for p in points], [p[1] for p in points], label=f"{method} @{trials}", s=18)
            ax.set_yscale("log")
            ax.set_title(workload)
            ax.set_xlabel("dollars per run (models file prices)")
            ax.set_ylabel("best latency (ms), one point per seed")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "latency_vs_cost.png", dpi=110)
        plt.close(fig)
        names.append("latency_vs_cost.png")
    return names
