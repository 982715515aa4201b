"""Turn a bench folder into `report.md` plus PNG plots.

Every ratio is paired by seed. Its primary interval is the Student t interval on the log-ratios
(bench/stats.py); the percentile bootstrap is a secondary column. Every table row says what it
rests on: how many seeds, how many distinct commits, how many cells were measured under load."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import journal
from ..errors import UserError
from ..progress import format_latency
from ..search.credit import ModelStats
from ..search.engine import SAMPLE
from .stats import (
    CONFIDENCE,
    HEADLINE_MIN_SEEDS,
    NONINFERIORITY_MARGIN,
    Interval,
    RatioEstimate,
    estimate_ratio,
    paired_ratios,
    per_seed_geomean,
)
from .store import RESULTS, SETTINGS

ANCHOR_ORDER = ("numpy", "torch")
METASCHEDULE_FAMILY = "metaschedule"  # every method whose name starts with this is a MetaSchedule configuration
# Records written before the bench kept provenance named the stock configuration `metaschedule`.
LEGACY_METASCHEDULE = ("metaschedule", "metaschedule-stock")
BEST_METASCHEDULE = "best MetaSchedule"
STAND_INS = ("expert", "mutate", "greedy")  # builtin proposers that a models file may price as a "strong model"


def _md_escape(text) -> str:
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


# --- reading: a records file may hold torn or foreign lines; none of them may crash the report ---

def _positive(value) -> float | None:
    """A positive finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _bench_record(obj) -> dict | None:
    """A copy of one bench record with the fields the report reads made safe to read, or None when
    the JSON value is not a bench record. A legacy `metaschedule` record is renamed here."""
    cell = _dict(obj.get("cell")) if isinstance(obj, dict) else {}
    workload, method, trials, seed = (cell.get(k) for k in ("workload", "method", "trials", "seed"))
    if not (isinstance(workload, str) and isinstance(method, str) and _is_int(trials) and _is_int(seed)):
        return None
    record = dict(obj)
    record["cell"] = dict(cell, key=str(cell.get("key", f"{workload}|{method}|{trials}|{seed}")))
    if method == LEGACY_METASCHEDULE[0] and "provenance" not in obj:
        record["cell"].update(method=LEGACY_METASCHEDULE[1], recorded_method=method)
    info = _dict(obj.get("info"))
    record["info"] = dict(info, per_model={k: v for k, v in _dict(info.get("per_model")).items() if isinstance(v, dict)})
    history = obj.get("history")
    record["history"] = [_positive(x) for x in history] if isinstance(history, list) else []
    return record


def _read_records(path: Path) -> tuple[list[dict], int]:
    """The usable bench records in file order, and how many non-empty lines were not one (torn by
    a kill, not UTF-8, not JSON, or JSON of something else)."""
    lines, skipped = journal.read_counting(path)
    records = [r for r in map(_bench_record, lines) if r is not None]
    return records, skipped + len(lines) - len(records)


def _read_settings(bench_dir: Path) -> dict:
    path = bench_dir / SETTINGS
    if not path.is_file():
        raise UserError(f"{bench_dir} is not a bench folder (no {SETTINGS})")
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        settings = None
    if not isinstance(settings, dict):
        raise UserError(f"{path} is corrupt (not a JSON object); move it away or restore it")
    return settings


# --- provenance: what each number rests on ---

def _commit(record: dict) -> tuple[str, bool] | None:
    """(commit, dirty) of the source tree that measured this cell; None when unknown."""
    provenance = _dict(record.get("provenance"))
    commit = provenance.get("commit")
    return (commit, provenance.get("dirty") is True) if isinstance(commit, str) and commit else None


def _load(record: dict) -> dict | None:
    load = _dict(record.get("load"))
    return load if isinstance(load.get("flagged"), bool) else None


@dataclass(frozen=True)
class Basis:
    """What one table row rests on: its seeds, the commits of its cells, and its cells measured
    while the machine was not quiet."""

    seeds: int
    commits: frozenset[str]
    dirty: bool  # some cell ran from a checkout with uncommitted changes
    unknown_commit: int  # cells without a recorded commit
    flagged: int
    unknown_load: int  # cells without a load record
    cells: int

    @classmethod
    def of(cls, cells: Iterable[dict], seeds: int) -> Basis:
        cells = list({id(c): c for c in cells}.values())  # a baseline cell may serve several pairs
        commits = [_commit(c) for c in cells]
        loads = [_load(c) for c in cells]
        return cls(seeds=seeds, commits=frozenset(c[0] for c in commits if c), dirty=any(c and c[1] for c in commits),
                   unknown_commit=commits.count(None), flagged=sum(1 for lo in loads if lo and lo["flagged"]),
                   unknown_load=loads.count(None), cells=len(cells))

    def column(self) -> str:
        """`seeds / commits / flagged`, e.g. `10 / 1 commit / 0 flagged` or `5 / commit unknown / load unknown`."""
        if self.commits:
            commits = f"{len(self.commits)} commit{'s' if len(self.commits) > 1 else ''}"
            commits += " (dirty)" if self.dirty else ""
            commits += " + commit unknown" if self.unknown_commit else ""
        else:
            commits = "commit unknown"
        if not self.unknown_load:
            load = f"{self.flagged} flagged"
        else:
            load = "load unknown" if self.unknown_load == self.cells else f"{self.flagged} flagged + load unknown"
        return f"{self.seeds} / {commits} / {load}"


class BenchResults:
    """Finished cells indexed by (workload, method, trials) → {seed: record}."""

    def __init__(self, records: list[dict]):
        self.cells: dict[tuple, dict[int, dict]] = defaultdict(dict)
        latest = {}
        for index, r in enumerate(records):  # a cell recorded twice (rerun): the later record counts
            c = r["cell"]
            latest[(c["workload"], c["method"], c["trials"], c["seed"])] = index
        self.records = [records[i] for i in sorted(latest.values())]
        self.flops: dict[str, float] = {}
        for r in self.records:
            c = r["cell"]
            self.cells[(c["workload"], c["method"], c["trials"])][c["seed"]] = r
            if _positive(r.get("flops")):
                self.flops[c["workload"]] = float(r["flops"])
        self.latency = {key: self._ok_values(cells, "latency_s") for key, cells in self.cells.items()}
        self.search_best = {key: self._ok_values(cells, "search_best_s") for key, cells in self.cells.items()}
        self.workloads = list(dict.fromkeys(r["cell"]["workload"] for r in self.records))
        self.methods = list(dict.fromkeys(r["cell"]["method"] for r in self.records))
        self.trial_budgets = sorted({r["cell"]["trials"] for r in self.records if r["cell"]["trials"]})

    @staticmethod
    def _ok_values(cells: dict[int, dict], field: str) -> dict[int, float]:
        values = {seed: _positive(r.get(field)) for seed, r in cells.items() if r.get("status") == "ok"}
        return {seed: v for seed, v in values.items() if v is not None}

    def key(self, workload: str, method: str, trials: int) -> tuple:
        """The group holding this method's cells at this budget; methods that ignore the budget
        are found under trials 0."""
        key = (workload, method, trials)
        return key if self.latency.get(key) else (workload, method, 0)

    def series(self, workload: str, method: str, trials: int) -> dict[int, float]:
        """Re-measured latency by seed."""
        return self.latency.get(self.key(workload, method, trials), {})

    def cell(self, workload: str, method: str, trials: int, seed: int) -> dict:
        return self.cells[self.key(workload, method, trials)][seed]

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
        return sorted(self.cells, key=lambda k: (self.workloads.index(k[0]), k[2], self.methods.index(k[1])))

    def metaschedule_family(self, space: str | None = None) -> list[str]:
        """MetaSchedule configurations; with `space`, only those searching that design space."""
        return [m for m in self.methods if m.startswith(METASCHEDULE_FAMILY) and (space is None or space_of(m) == space)]

    def best_metaschedule(self, workload: str, trials: int, space: str | None = None) -> str | None:
        """The MetaSchedule configuration with the lowest median latency at this workload and budget
        (among those searching `space`, when given)."""
        medians = {m: statistics.median(s.values()) for m in self.metaschedule_family(space)
                   if (s := self.latency.get((workload, m, trials)))}
        return min(medians, key=medians.get) if medians else None


def space_of(method: str) -> str:
    """The design space a method searched: its `@SPACE` suffix, widened when it has none."""
    return method.partition("@")[2] or "widened"


# --- paired comparisons ---

@dataclass(frozen=True)
class Comparison:
    workload: str  # or "geomean over a, b, c"
    trials: int
    candidate: str
    baseline: str
    estimate: RatioEstimate
    basis: Basis


Resolver = Callable[[str, int], "str | None"]  # (workload, trials) → the baseline method there


def _fixed(method: str) -> Resolver:
    return lambda workload, trials: method


def compare(res: BenchResults, candidate: str, baseline_label: str, resolve: Resolver, trials: int) -> list[Comparison]:
    """Candidate over the baseline that `resolve` names per workload, paired by seed: one row per
    workload, plus the geomean over workloads (per seed the geomean over the workloads, then the
    interval over the seeds that have every workload)."""
    rows, per_workload, pairs = [], {}, {}
    for w in res.workloads:
        baseline = resolve(w, trials)
        if baseline is None or baseline == candidate:
            continue
        ratios = paired_ratios(res.series(w, baseline, trials), res.series(w, candidate, trials))
        if not ratios:
            continue
        per_workload[w] = ratios
        pairs[w] = {s: (res.cell(w, baseline, trials, s), res.cell(w, candidate, trials, s)) for s in ratios}
        label = baseline_label if baseline == baseline_label else f"{baseline_label}: {baseline}"
        rows.append(Comparison(w, trials, candidate, label, estimate_ratio(ratios.values()),
                               Basis.of((c for pair in pairs[w].values() for c in pair), len(ratios))))
    if len(per_workload) > 1:
        per_seed = per_seed_geomean(per_workload)
        if per_seed:
            used = (c for w in per_workload for s in per_seed for c in pairs[w][s])
            rows.append(Comparison("geomean over " + ", ".join(per_workload), trials, candidate, baseline_label,
                                   estimate_ratio(per_seed.values()), Basis.of(used, len(per_seed))))
    return rows


@dataclass(frozen=True)
class ComparisonSection:
    title: str
    text: str
    rows: list[Comparison]


def comparison_sections(res: BenchResults) -> list[ComparisonSection]:
    budgets = res.trial_budgets or [0]
    searching = [m for m in res.methods if m != "untuned" and m not in ANCHOR_ORDER]
    family = res.metaschedule_family()
    sections = []

    def rows(pairs) -> list[Comparison]:
        return [r for candidate, label, resolve in pairs for t in budgets for r in compare(res, candidate, label, resolve, t)]

    if "untuned" in res.methods:
        sections.append(ComparisonSection("Over untuned", "", rows((m, "untuned", _fixed("untuned")) for m in searching)))
    if family:
        others = [m for m in searching if m not in family]
        # Against the best configuration that searched the same design space as the candidate.
        pairs = [(m, BEST_METASCHEDULE + ("" if space_of(m) == "widened" else f" @{space_of(m)}"),
                  lambda w, t, m=m: res.best_metaschedule(w, t, space_of(m)))
                 for m in others if res.metaschedule_family(space_of(m))]
        if len(family) > 1:  # and each configuration on its own, each pair of configurations once
            pairs += [(m, config, _fixed(config)) for i, config in enumerate(family) for m in others + family[i + 1:]]
        text = ("`best MetaSchedule` = per workload and budget, the MetaSchedule configuration (a method named "
                "`metaschedule*`) searching the same design space as the method (`@SPACE` suffix; none = widened) "
                "with the lowest median latency there, chosen after the fact: the hardest "
                "MetaSchedule to beat, and a choice that favours MetaSchedule (picking the best of several noisy "
                "configurations flatters it).")
        sections.append(ComparisonSection("Over MetaSchedule", text, rows(pairs)))
    # The same method on another design space (`mcts` and `mcts@stock`): what the space gains it.
    other_spaces = [(m.partition("@")[0], m) for m in searching if "@" in m and m.partition("@")[0] in searching]
    if other_spaces:
        sections.append(ComparisonSection(
            "Widened space over another space", "Each method over itself searching the space named after `@`.",
            rows((widened, other, _fixed(other)) for widened, other in other_spaces)))
    singles = [m for m in res.methods if m.startswith("mcts-single:")]
    if len(singles) > 1:
        sections.append(ComparisonSection(
            "Single models against each other", "Each pair once: the model listed first over the other.",
            rows((a, b, _fixed(b)) for i, a in enumerate(singles) for b in singles[i + 1:])))
    return [s for s in sections if s.rows]


def _interval_text(interval: Interval | None) -> str:
    return f"{interval.low:.2f}-{interval.high:.2f}" if interval else "none (1 seed)"


def _note(n: int) -> str:
    if n < 2:
        return "one seed: no interval"
    return f"< {HEADLINE_MIN_SEEDS} seeds: not a headline" if n < HEADLINE_MIN_SEEDS else ""


INTERVALS_TEXT = (
    f"Speedup = baseline latency / method latency for the same seed (above 1: the method is faster), geometric "
    f"mean over seeds. **Primary interval**: {CONFIDENCE:.0%} Student t interval on the mean of the log-ratios, "
    "exp(mean ± t(n-1) · sd / √n). The percentile bootstrap is a secondary column only: with 5-10 seeds it is too "
    "narrow (simulated 5-seed benches in tests/test_stats.py: it misses the true ratio far more often than 5%). "
    "Geomean-over-workloads rows take, per seed, the geomean over the workloads, then the interval over the seeds "
    f"that have every workload. Rows resting on fewer than {HEADLINE_MIN_SEEDS} seeds say so in the note column: "
    "they are indicative, not enough for a headline claim. One seed gives no interval. "
    "`seeds / commits / flagged` = the seeds the row rests on, the distinct source commits of its cells "
    "(`commit unknown`: recorded before the bench kept provenance), and how many of its cells were measured "
    "while the machine was not quiet (`load unknown`: no load record).")


def _comparison_table(rows: list[Comparison]) -> list[str]:
    lines = ["| workload | trials | method | over | n | speedup | 95% t interval | 95% bootstrap (secondary) | "
             "seeds / commits / flagged | note |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e = r.estimate
        lines.append(f"| {_md_escape(r.workload)} | {r.trials or '-'} | {_md_escape(r.candidate)} | "
                     f"{_md_escape(r.baseline)} | {e.n} | {e.geomean:.2f}x | {_interval_text(e.t)} | "
                     f"{_interval_text(e.bootstrap)} | {r.basis.column()} | {_note(e.n)} |")
    return lines


# --- the report ---

def _peak(host: dict) -> tuple[float | None, str]:
    """The peak that '% of peak' divides by, and the words that name it."""
    measured = _positive(host.get("peak_measured_gflops"))
    if measured:
        how = host.get("peak_measured_how")
        return measured, f"of the measured peak {measured:.0f} GFLOP/s" + (f" ({_md_escape(how)})" if how else "")
    formula = _positive(host.get("peak_gflops"))
    if formula:
        return formula, f"of the formula's peak {formula:.0f} GFLOP/s (no measured peak in bench.json)"
    return None, "no peak recorded in bench.json"


def _run_peak(record: dict) -> float | None:
    """The peak measured by the bench run that measured this cell; None for cells recorded
    before runs stored their own."""
    return _positive(_dict(record.get("peak")).get("gflops"))


def _cell_peak(record: dict, folder_peak: float | None) -> float | None:
    """The cell's own run's peak, else bench.json's (the folder's first run)."""
    return _run_peak(record) or folder_peak


def _run_peaks_line(res: BenchResults) -> str | None:
    """What the per-cell peaks were, when cells carry their own."""
    run_peaks = [_run_peak(r) for r in res.records]
    peaks = {p for p in run_peaks if p}
    if not peaks:
        return None
    without = run_peaks.count(None)
    return (f"- Each bench run measures the peak again and stores it in its cells: {len(peaks)} measured peak"
            f"{'s' if len(peaks) > 1 else ''} here, {min(peaks):.0f}-{max(peaks):.0f} GFLOP/s. `% of peak` is the "
            "median over seeds of each cell's GFLOP/s over the peak its own run measured"
            + (f" ({without} cells recorded before runs stored a peak use the one above)" if without else "")
            + ": a machine whose speed changed between runs is judged against its speed at the time.")


def _latency_sections(res: BenchResults, peak: float | None) -> list[str]:
    lines = []
    for workload in res.workloads:
        flops = res.flops.get(workload)
        anchors = res.anchors(workload)
        lines += [f"### {_md_escape(workload)}" + (f" ({flops / 1e9:.3g} GFLOP)" if flops else ""), ""]
        header = ("| method | trials | seeds ok | median latency | min-max over seeds | median search-time best | "
                  "search-time / re-measured | GFLOP/s | % of peak |")
        header += "".join(f" speed vs {name} |" for name, _ in anchors) + " seeds / commits / flagged |"
        lines += [header, "|" + "---|" * (header.count("|") - 1)]
        for key in res.rows():
            w, method, trials = key
            if w != workload:
                continue
            cells = res.cells[key]
            latency, search = res.latency.get(key, {}), res.search_best.get(key, {})
            ok = f"{len(latency)}/{len(cells)}"
            if not latency:
                lines.append(f"| {_md_escape(method)} | {trials or '-'} | {ok} | failed |" + " |" * (6 + len(anchors))
                             + f" {Basis.of(cells.values(), 0).column()} |")
                continue
            med = statistics.median(latency.values())
            gflops = flops / med / 1e9 if flops else None
            shares = [flops / latency[s] / 1e9 / p for s in latency if flops and (p := _cell_peak(cells[s], peak))]
            of_peak = statistics.median(shares) if shares else None
            bias = [search[s] / latency[s] for s in latency if s in search]
            lines.append(
                f"| {_md_escape(method)} | {trials or '-'} | {ok} | {format_latency(med)} | "
                f"{format_latency(min(latency.values()))} - {format_latency(max(latency.values()))} | "
                f"{format_latency(statistics.median(search.values())) if search else '-'} | "
                f"{f'{statistics.median(bias):.2f}' if bias else '-'} | "
                f"{f'{gflops:.1f}' if gflops else '-'} | {f'{100 * of_peak:.1f}%' if of_peak else '-'} |"
                + "".join(f" {anchor / med:.2f}x |" for _, anchor in anchors)
                + f" {Basis.of((cells[s] for s in latency), len(latency)).column()} |")
        lines.append("")
    return lines


def _packing_lines(res: BenchResults) -> list[str]:
    """How much of each latency is the weight packing the tables leave out."""
    rows = []
    for key in res.rows():
        pairs = [(c["latency_s"], c["latency_inkernel_s"]) for c in res.cells[key].values()
                 if c.get("status") == "ok" and _positive(c.get("latency_s")) and _positive(c.get("latency_inkernel_s"))]
        if pairs:
            w, method, trials = key
            packed, inkernel = statistics.median(p for p, _ in pairs), statistics.median(i for _, i in pairs)
            rows.append(f"| {_md_escape(w)} | {_md_escape(method)} | {trials or '-'} | {len(pairs)} | "
                        f"{format_latency(packed)} | {format_latency(inkernel)} | {inkernel / packed:.2f} |")
    if not rows:
        return []
    return ["## Weight packing", "",
            "Schedules that pack layout-free (weight) parameters are timed on weights packed beforehand, as a "
            "deployment that packs its constants once does (and as MetaSchedule's builder times them): every latency "
            "above excludes that packing. Here the same final schedules are also re-timed with the packing inside "
            "every call (medians over the seeds whose schedule packs weights).", "",
            "| workload | method | trials | seeds | weights pre-packed | packed in the kernel | ratio |",
            "|---|---|---|---|---|---|---|"] + rows + [""]


def _metaschedule_lines(res: BenchResults) -> list[str]:
    """What each MetaSchedule configuration was, and which one is 'best' where."""
    family = res.metaschedule_family()
    if not family:
        return []
    lines = ["MetaSchedule configurations in this bench:", ""]
    for method in family:
        cells = [r for (_, m, _), group in res.cells.items() if m == method for r in group.values()]
        recorded = Counter((r["info"].get("num_trials_per_iter"), r["info"].get("warmup_samples")) for r in cells
                           if "num_trials_per_iter" in r["info"])
        parts = [f"{per_iter} candidates per iteration, XGBoost warm-up {warmup} samples ({count} cells)"
                 for (per_iter, warmup), count in recorded.items()]
        legacy = sum(1 for r in cells if r["cell"].get("recorded_method"))
        if legacy:
            parts.append(f"{legacy} cells recorded as `{LEGACY_METASCHEDULE[0]}` before the bench kept provenance, read "
                         "as the stock configuration the bench ran then (64 candidates per iteration, XGBoost's "
                         "default warm-up: random scores below 100 measured samples)")
        unknown = len(cells) - sum(recorded.values()) - legacy
        if unknown:
            parts.append(f"{unknown} cells without a recorded configuration")
        lines.append(f"- `{_md_escape(method)}`: " + "; ".join(parts))
    spaces = list(dict.fromkeys(space_of(m) for m in family))
    several = len(spaces) > 1  # say which design space only when the bench compares several
    lines += ["", "| workload | trials |" + (" space |" if several else "") +
              " best MetaSchedule (lowest median) | median latency per configuration |",
              "|---|---|---|---|" + ("---|" if several else "")]
    for w in res.workloads:
        for t in res.trial_budgets:
            for space in spaces:
                best = res.best_metaschedule(w, t, space)
                if best:
                    medians = ", ".join(f"{_md_escape(m)} {format_latency(statistics.median(s.values()))}"
                                        for m in res.metaschedule_family(space) if (s := res.latency.get((w, m, t))))
                    lines.append(f"| {_md_escape(w)} | {t} |" + (f" {space} |" if several else "") +
                                 f" {_md_escape(best)} | {medians} |")
    return lines + [""]


def write_report(bench_dir: Path) -> Path:
    settings = _read_settings(bench_dir)
    records, skipped = _read_records(bench_dir / RESULTS)
    res = BenchResults(records)
    host = _dict(settings.get("host"))
    peak, peak_words = _peak(host)
    lines = [f"# shared-mcts bench report: `{_md_escape(bench_dir)}`", ""]
    lines += [
        f"- Host: {_md_escape(host.get('model_name', 'unknown'))}; target `{settings.get('target')}`",
        f"- fp32 peak (formula): {_md_escape(settings.get('peak_formula', 'not recorded'))}",
    ]
    if _positive(host.get("peak_measured_gflops")):
        lines.append(f"- fp32 peak (measured by the folder's first run): {host['peak_measured_gflops']:.0f} GFLOP/s, "
                     f"{_md_escape(host.get('peak_measured_how', 'how not recorded'))}")
    run_peaks = _run_peaks_line(res)
    lines += [
        f"- % of peak is {peak_words}." if run_peaks is None else run_peaks,
        f"- Measurement: {settings.get('measure')} (median of repeats per candidate; parallel builds, serial runs)",
        f"- Versions (bench.json, from the bench's first run): {settings.get('versions')}",
        "- Latency = median over seeds of each cell's **re-measured** latency (`latency_s`): the best schedule, "
        "checked against the reference, then timed again in a fresh process. `search-time best` "
        "(`search_best_s`) is the best latency seen during the search: the fastest of many noisy timings is "
        "biased low (taking the minimum favours lucky timings), which is why every table and ratio uses the "
        "re-measured latency; `search-time / re-measured` is the median over seeds of their ratio. Vendor anchors "
        "are timed in-process on the same inputs; 'speed vs X' = X's latency / this latency (above 1: faster "
        "than X).",
        "",
        "## Best latency per workload and method",
        "",
        "`seeds / commits / flagged`: see \"Paired speedups\" below.",
        "",
    ]
    lines += _latency_sections(res, peak)
    lines += _packing_lines(res)
    sections = comparison_sections(res)
    if sections:
        lines += ["## Paired speedups (by seed)", "", INTERVALS_TEXT, ""]
        for section in sections:
            lines += [f"### {section.title}", ""] + ([section.text, ""] if section.text else [])
            if section.title == "Over MetaSchedule":
                lines += _metaschedule_lines(res)
            lines += _comparison_table(section.rows) + [""]
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
        lines += _shared_section(shared)
    timing = _timing_rows(res)
    if timing:
        lines += ["## Wall time per cell", "", "| workload | method | trials | median wall | build | run | other |",
                  "|---|---|---|---|---|---|---|"] + timing + [""]
    failures = [r for r in res.records if r.get("status") != "ok" or _positive(r.get("latency_s")) is None]
    if failures:
        lines += ["## Failed cells", "", "| cell | status | error |", "|---|---|---|"]
        for r in failures:
            status = r.get("status") if r.get("status") != "ok" else "ok, but no usable latency_s"
            lines.append(f"| {_md_escape(r['cell']['key'])} | {_md_escape(status)} | "
                         f"{_md_escape(r.get('error', ''))[:300]} |")
        lines.append("")
    lines += _provenance_section(res, skipped)
    plots = _plots(res, sections, bench_dir)
    if plots:
        lines += ["## Plots", "", "Curves use the latencies measured during search (before re-measurement); "
                  "speedup bars show the 95% t interval.", ""]
        lines += [f"![{name}]({name})" for name in plots] + [""]
    path = bench_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def _counted(counter: Counter, describe: Callable[[object], str]) -> str:
    return "; ".join(f"{describe(value)} ({count} cells)" for value, count in counter.most_common())


def _provenance_section(res: BenchResults, skipped: int) -> list[str]:
    records = res.records
    lines = ["## Provenance", "",
             f"- {len(records)} cells in `{RESULTS}`" + (f"; {skipped} lines skipped (torn, not JSON, or not a bench "
                                                       "record)" if skipped else "; no line skipped") + "."]
    if any("provenance" not in r for r in records):
        lines.append("- Records without provenance predate the structural design space: their searching methods "
                     "searched MetaSchedule's stock design space only, on workloads that declared no weights.")
    legacy = sum(1 for r in records if r["cell"].get("recorded_method"))
    if legacy:
        lines.append(f"- {legacy} cells recorded as `{LEGACY_METASCHEDULE[0]}` without provenance are read as "
                     f"`{LEGACY_METASCHEDULE[1]}` (the stock configuration the bench ran then).")
    commits = Counter(_commit(r) for r in records)
    unknown = commits.pop(None, 0)
    if commits:
        lines.append("- Commits: " + _counted(commits, lambda c: f"`{c[0]}`" + (" (dirty)" if c[1] else "")))
    if unknown:
        lines.append(f"- Commit unknown: {unknown} of {len(records)} cells (recorded before the bench kept provenance, "
                     "or not run from a git checkout).")
    provenances = [_dict(r.get("provenance")) for r in records if isinstance(r.get("provenance"), dict)]
    for field, name in (("versions", "Versions"), ("cpu", "CPUs"), ("llvm_cpu", "LLVM CPUs"), ("target", "Targets")):
        seen = Counter(json.dumps(p[field], sort_keys=True) if isinstance(p[field], (dict, list)) else str(p[field])
                       for p in provenances if field in p)
        if seen:
            lines.append(f"- {name} seen: " + _counted(seen, lambda v: f"`{_md_escape(v)}`"))
    loads = [(r, _load(r)) for r in records]
    no_load = sum(1 for _, load in loads if load is None)
    flagged = [(r, load) for r, load in loads if load and load["flagged"]]
    if no_load:
        lines.append(f"- Load unknown: {no_load} of {len(records)} cells (no load record).")
    if len(records) > no_load:
        lines.append(f"- Flagged (measured while the machine was not quiet): {len(flagged)} of {len(records) - no_load} "
                     "cells with a load record.")
    lines.append("")
    if flagged:
        lines += ["| cell | other processes' CPU share | load average before | why |", "|---|---|---|---|"]
        for r, load in flagged:
            share, before = _positive(load.get("other_share")), load.get("loadavg_before")
            lines.append(f"| {_md_escape(r['cell']['key'])} | {f'{share:.1%}' if share else '-'} | "
                         f"{before if isinstance(before, (int, float)) else '-'} | {_md_escape(load.get('why', ''))} |")
        lines.append("")
    return lines


def model_stats(cell: dict) -> dict[str, ModelStats] | None:
    """A cell's per-model statistics (fresh samples of the design space left out); None for cells
    without models, and for records from before the LLM issue, which counted expansions as
    "calls" (left out rather than misread)."""
    raw = {k: v for k, v in ((cell.get("info") or {}).get("per_model") or {}).items() if k != SAMPLE}
    if not any("expansions" in s for s in raw.values()):
        return None
    return {name: ModelStats.from_dict(s) for name, s in raw.items()}


def cost_summary(cell: dict) -> dict | None:
    """One cell's spending, from its per-model statistics; None for cells without models, and for
    cells recorded before runs named their strong model (averaging those in as zero strong calls
    would understate the strong model's use)."""
    stats = model_stats(cell)
    strongest = (cell.get("info") or {}).get("strongest")
    if not strongest or stats is None:
        return None
    strong = stats.get(strongest, ModelStats())
    expansions = sum(s.expansions for s in stats.values())
    return {"strongest": strongest, "strong_calls": strong.calls,
            "strong_share": strong.expansions / expansions if expansions else 0.0,
            "strong_dollars": strong.dollars,
            "dollars": sum(s.dollars for s in stats.values()),
            "tokens": sum(s.tokens for s in stats.values()),
            "seconds": sum(s.model_seconds for s in stats.values())}


def _cost_rows(res: BenchResults) -> list[str]:
    rows = []
    for w, method, trials in res.rows():
        summaries = [s for s in map(cost_summary, res.cells[(w, method, trials)].values()) if s]
        if not summaries:
            continue

        def mean(key):
            return sum(s[key] for s in summaries) / len(summaries)

        strong = ", ".join(sorted({str(s["strongest"]) for s in summaries}))
        latencies = list(res.latency.get((w, method, trials), {}).values())
        rows.append(f"| {_md_escape(w)} | {_md_escape(method)} | {trials} | {_md_escape(strong)} | "
                    f"{mean('strong_calls'):.1f} | {100 * mean('strong_share'):.0f}% | {mean('strong_dollars'):.4g} | "
                    f"{mean('dollars'):.4g} | {mean('tokens'):.0f} | {mean('seconds'):.1f} | "
                    f"{format_latency(statistics.median(latencies)) if latencies else 'failed'} |")
    return rows


def _strong_use(cells: Iterable[dict], strong: str) -> tuple[float, float]:
    """Mean (calls, dollars) of the strong model per run. A non-LLM model's 'calls' are its expansions."""
    stats = [ModelStats.from_dict(c["info"]["per_model"].get(strong, {})) for c in cells]
    if not stats:
        return 0.0, 0.0
    calls = [s.calls or s.expansions for s in stats]
    return sum(calls) / len(stats), sum(s.dollars for s in stats) / len(stats)


@dataclass(frozen=True)
class SharedRow:
    workload: str
    trials: int
    method: str
    strong: str
    reference: str
    estimate: RatioEstimate
    basis: Basis
    calls: float
    dollars: float
    ref_calls: float
    ref_dollars: float

    @property
    def verdict(self) -> str:
        """The aim: non-inferior to the reference (lower t bound >= the margin) at <= half its strong dollars."""
        matches = self.estimate.noninferior()
        if matches is None:
            return "no interval (1 seed)"
        if not matches:
            return f"no: lower bound {self.estimate.t.low:.2f} < {NONINFERIORITY_MARGIN}"
        if self.ref_dollars <= 0:
            return "non-inferior; reference spends nothing on the strong model"
        if self.dollars <= 0.5 * self.ref_dollars:
            return "yes"
        return f"no: {self.dollars / self.ref_dollars:.0%} of its strong $"


def _shared_rows(res: BenchResults) -> list[SharedRow]:
    """Each shared:* method against the best single model and against the strong model alone."""
    shared = [m for m in res.methods if m.startswith("shared:")]
    singles = [m for m in res.methods if m.startswith("mcts-single:")]
    rows = []
    for trials in res.trial_budgets:
        for w in res.workloads:
            strongest = [c["info"].get("strongest") for m in shared for c in res.cells.get((w, m, trials), {}).values()]
            strongest = [s for s in strongest if isinstance(s, str) and s]
            medians = {m: statistics.median(res.series(w, m, trials).values()) for m in singles if res.series(w, m, trials)}
            if not strongest or not medians:
                continue
            strong = max(set(strongest), key=strongest.count)
            best = min(medians, key=medians.get)
            for method in shared:
                calls, dollars = _strong_use(res.cells.get((w, method, trials), {}).values(), strong)
                for reference in dict.fromkeys([best, f"mcts-single:{strong}"]):
                    base, cand = res.series(w, reference, trials), res.series(w, method, trials)
                    ratios = paired_ratios(base, cand)
                    if not ratios:
                        continue
                    cells = [res.cell(w, m, trials, s) for s in ratios for m in (reference, method)]
                    ref_calls, ref_dollars = _strong_use(res.cells.get((w, reference, trials), {}).values(), strong)
                    rows.append(SharedRow(w, trials, method, strong, reference + (" (best single)" if reference == best else ""),
                                          estimate_ratio(ratios.values()), Basis.of(cells, len(ratios)),
                                          calls, dollars, ref_calls, ref_dollars))
    return rows


def _shared_section(rows: list[SharedRow]) -> list[str]:
    strong = sorted({r.strong for r in rows})
    lines = ["## Shared tree vs single models", "",
             f"Strong model: {', '.join(f'`{_md_escape(s)}`' for s in strong)} (the largest `strength` in the "
             "models file). " + " ".join(
                 f"**`{_md_escape(s)}` is a non-LLM stand-in with an explicit price, not a frontier model: frontier-"
                 "model numbers need an API key and a real endpoint.**" for s in strong if s in STAND_INS) + " "
             "Reference = the single model with the lowest median latency at that workload and budget (chosen "
             "after the fact, the hardest comparison), and the strong model alone. Speed = reference latency / "
             "shared latency for the same seed (above 1: the shared tree is faster), geomean over seeds, with the 95% "
             "t interval (primary) and the percentile bootstrap (secondary; see \"Paired speedups\" for both and for "
             "`seeds / commits / flagged`). Strong $ = mean dollars spent on the strong model per run. "
             f"**The aim**: the shared tree is non-inferior to the reference within a {1 - NONINFERIORITY_MARGIN:.0%} "
             f"margin (the lower bound of the t interval of its speed is at least {NONINFERIORITY_MARGIN}: at worst 5% "
             "slower, with 95% confidence) with at most half of the reference's strong-model dollars. An interval "
             "that merely reaches 1.0 is not a match: a wide interval reaches anything.", "",
             "| workload | trials | shared method | reference | n | speed vs reference | 95% t interval | "
             "95% bootstrap (secondary) | strong calls: shared / reference | strong $: shared / reference | "
             "seeds / commits / flagged | aim met | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e = r.estimate
        lines.append(f"| {_md_escape(r.workload)} | {r.trials} | {_md_escape(r.method)} | {_md_escape(r.reference)} | "
                     f"{e.n} | {e.geomean:.2f}x | {_interval_text(e.t)} | {_interval_text(e.bootstrap)} | "
                     f"{r.calls:.1f} / {r.ref_calls:.1f} | {r.dollars:.4g} / {r.ref_dollars:.4g} | {r.basis.column()} | "
                     f"{r.verdict} | {_note(e.n)} |")
    return lines + [""]


def _model_usage_rows(res: BenchResults) -> list[str]:
    rows = []
    for w, method, trials in res.rows():
        cells = [stats for c in res.cells[(w, method, trials)].values() if (stats := model_stats(c)) is not None]
        if not cells:
            continue
        for model in dict.fromkeys(m for c in cells for m in c):
            stats = [c.get(model, ModelStats()) for c in cells]

            def mean(values) -> float:
                return sum(values) / len(stats)

            edits = sum(s.edits for s in stats)
            valid = f"{100 * sum(s.valid_edits for s in stats) / edits:.0f}% of {edits / len(stats):.1f}" if edits else "-"
            rows.append(f"| {_md_escape(w)} | {_md_escape(method)} | {trials} | {_md_escape(model)} | "
                        f"{mean(s.expansions for s in stats):.1f} | {mean(s.calls for s in stats):.1f} | "
                        f"{valid} | {mean(s.tokens for s in stats):.0f} | {mean(s.model_seconds for s in stats):.1f} | "
                        f"{mean(s.dollars for s in stats):.4g} | {mean(s.fallbacks for s in stats):.1f} |")
    return rows


def _timing_rows(res: BenchResults) -> list[str]:
    rows = []
    for w, method, trials in res.rows():
        times = [[c.get(k) for k in ("wall_s", "build_s", "run_s")] for c in res.cells[(w, method, trials)].values()]
        times = [t for t in times if all(_positive(x) is not None or x == 0 for x in t)]
        if not times or not trials:
            continue
        wall, build, run = (statistics.median(t[i] for t in times) for i in range(3))
        rows.append(f"| {_md_escape(w)} | {_md_escape(method)} | {trials} | {wall:.0f} s | {build:.0f} s | {run:.0f} s | "
                    f"{max(wall - build - run, 0):.0f} s |")
    return rows


def _best_so_far(history: list) -> list[float]:
    best, curve = float("inf"), []
    for latency in history:
        if latency is not None:
            best = min(best, latency)
        curve.append(best)
    return curve


def _plots(res: BenchResults, sections: list[ComparisonSection], out: Path) -> list[str]:
    import matplotlib  # matplotlib: only for plots

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib: only for plots

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
    by_title = {section.title: section.rows for section in sections}
    bars = [r for r in by_title.get("Over MetaSchedule", []) if r.baseline.startswith(BEST_METASCHEDULE)] \
        or by_title.get("Over untuned", [])
    if bars:
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(bars)), 4))
        labels = [f"{r.workload[:24]}\n{r.candidate} @{r.trials or '-'}" for r in bars]
        values = [r.estimate.geomean for r in bars]
        # a row without an interval (one seed) gets no error bar rather than a fake one
        errors = np.array([[r.estimate.geomean - r.estimate.t.low if r.estimate.t else 0 for r in bars],
                           [r.estimate.t.high - r.estimate.geomean if r.estimate.t else 0 for r in bars]])
        ax.bar(range(len(bars)), values, yerr=errors, capsize=3, color="tab:blue")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        over = BEST_METASCHEDULE if bars[0].baseline.startswith(BEST_METASCHEDULE) else bars[0].baseline
        ax.set_ylabel(f"speedup over {over}\n(geomean by seed, 95% t interval)")
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
