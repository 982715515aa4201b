"""The `shared-mcts` command line. Every user mistake ends as one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .errors import DeviceUnavailable, UserError
from .proposers import DEFAULT_MODELS


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise UserError(f"{self.prog}: {message}")


def _add_target(p):
    p.add_argument("--target", default=None, help="'host' (default: detect this CPU), a preset name, or a TVM target JSON dict")


def _add_measure(p):
    g = p.add_argument_group("measurement")
    g.add_argument("--number", type=int, default=1, help="runs averaged per timing (raised to reach --min-repeat-ms)")
    g.add_argument("--repeat", type=int, default=3, help="timings per candidate; the median is its latency")
    g.add_argument("--min-repeat-ms", type=int, default=50)
    g.add_argument("--cache-flush", action="store_true", help="flush the CPU cache before each run")
    g.add_argument("--build-workers", type=int, default=0, help="parallel build processes (0: one per core)")
    g.add_argument("--build-timeout", type=float, default=30.0, help="seconds per candidate build (MetaSchedule default)")
    g.add_argument("--run-timeout", type=float, default=60.0, help="seconds per candidate run")
    g.add_argument("--rpc", default=None, metavar="HOST:PORT:KEY",
                   help="run candidates on the device registered with key KEY at the TVM RPC tracker HOST:PORT "
                        "(builds stay on this machine)")
    g.add_argument("--rpc-wait", type=float, default=30.0,
                   help="seconds a vanished RPC device may take to come back before the run stops (resumable)")


def _measure_config(args):
    from .measure import MeasureConfig
    from .measure.measurer import RPCAddress

    for name in ("number", "repeat", "min_repeat_ms"):
        if getattr(args, name) < (0 if name == "min_repeat_ms" else 1):
            raise UserError(f"--{name.replace('_', '-')} must be positive")
    if args.build_timeout <= 0 or args.run_timeout <= 0:
        raise UserError("timeouts must be positive")
    if args.build_workers < 0:
        raise UserError("--build-workers must be 0 (one per core) or more")
    if args.rpc_wait < 0:
        raise UserError("--rpc-wait must not be negative")
    if args.rpc is not None:
        RPCAddress.parse(args.rpc)  # a malformed address fails here, before anything starts
    return MeasureConfig(number=args.number, repeat=args.repeat, min_repeat_ms=args.min_repeat_ms,
                         enable_cpu_cache_flush=args.cache_flush, build_workers=args.build_workers,
                         build_timeout_s=args.build_timeout, run_timeout_s=args.run_timeout,
                         rpc=args.rpc, rpc_wait_s=args.rpc_wait)


def cmd_workloads(args) -> int:
    from .workloads import list_workloads

    rows = [(w.name, " ".join(f"{k}={v}" for k, v in w.shapes.items()), f"{w.flops / 1e9:.3g}", w.description)
            for w in list_workloads()]
    widths = [max(len(r[i]) for r in rows + [("name", "shapes", "GFLOP", "")]) for i in range(3)]
    print(f"{'name':<{widths[0]}}  {'shapes':<{widths[1]}}  {'GFLOP':>{widths[2]}}  description")
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}")
    print("\nAlso accepted wherever a workload is named: path/to/file.py:function (returns a PrimFunc), "
          "or a TVMScript file. Workload files are code: only use files you trust.")
    return 0


def cmd_methods(args) -> int:
    from .methods import METHOD_HELP
    from .proposers import PROPOSER_HELP

    print("methods (bench --methods):")
    for name, text in METHOD_HELP.items():
        print(f"  {name:<20} {text}")
    print("models (tune --models, bench --models for mcts):")
    for name, text in PROPOSER_HELP.items():
        print(f"  {name:<20} {text}")
    return 0


def cmd_target(args) -> int:
    import json

    from .hardware import host_info, resolve_target

    target = resolve_target(args.target)
    info = host_info(target, measure_peak=True)
    print(f"target: {json.dumps(target)}")  # JSON, as --target accepts it
    print(f"cpu:    {info.model_name}")
    print(f"peak:   {info.peak_formula()}")
    measured = f"{info.peak_measured_gflops:.0f} GFLOP/s, " if info.peak_measured_gflops is not None else ""
    print(f"peak measured: {measured}{info.peak_measured_how}")
    print(f"caches: L1d {info.l1d_bytes} B, L2 {info.l2_bytes} B, L3 {info.l3_bytes} B")
    return 0


def cmd_check(args) -> int:
    import json

    from .hardware import host_info, resolve_target
    from .measure import Measurer, check_correctness
    from .progress import format_latency
    from .workloads import get_workload

    workload = get_workload(args.workload)
    target = resolve_target(args.target)
    mod = workload.mod()
    check = check_correctness(workload, mod, target, seed=args.seed)
    print(f"{workload.name}: untuned program vs {check.reference}: "
          f"{'OK' if check.ok else 'WRONG'} (max |error| {check.max_abs_error:.3g}, tolerance {check.tolerance:.3g})")
    (m,) = Measurer(target, _measure_config(args)).measure_mods([mod])
    if not m.ok:
        print(f"measurement failed ({m.error_kind}): {m.error}")
        return 1
    # The peak of the machine that ran the program: measure it here only when it ran here.
    peak, peak_name = host_info(target, measure_peak=args.rpc is None).reference_peak()
    gflops = workload.flops / m.latency_s / 1e9
    print(f"{workload.name}: untuned latency {format_latency(m.latency_s)} "
          f"({gflops:.2f} GFLOP/s, {100 * gflops / peak:.2f}% of the {peak:.0f} GFLOP/s {peak_name}), target {json.dumps(target)}")
    return 0 if check.ok else 1


def cmd_bench(args) -> int:
    from .bench.matrix import parse_int_list, parse_name_list
    from .bench.report import write_report
    from .bench.run import run_bench
    from .hardware import resolve_target
    from .methods import ANCHORS, get_method
    from .methods.vendor import torch_available

    from .llm.config import parse_model_specs

    workloads = parse_name_list(args.workloads, "--workloads")
    methods = parse_name_list(args.methods, "--methods")
    models = parse_model_specs(args.models)
    for m in methods:
        get_method(m, models)  # shared:* needs the models to check its router against
    if not args.no_anchors:
        methods += [a for a in ANCHORS if a not in methods and (a != "torch" or torch_available())]
    trials = parse_int_list(args.trials, "--trials", minimum=1)
    seeds = parse_int_list(args.seeds, "--seeds", minimum=0)
    if args.remeasure_repeat < 1:
        raise UserError("--remeasure-repeat must be positive")
    target = resolve_target(args.target)
    run_bench(workloads, methods, trials, seeds, Path(args.out), target, _measure_config(args),
              remeasure_repeat=args.remeasure_repeat, models=models)
    path = write_report(Path(args.out))
    print(f"report: {path}")
    return 0


def cmd_tune(args) -> int:
    from .progress import format_latency
    from .tune import tune

    run = dict(workload=args.workload, trials=args.trials, seed=args.seed, models=args.models, out=args.out,
               target=args.target, router=args.router)
    if args.resume:
        from .run_folder import run_identity

        start = run_identity(Path(args.resume))
        run = dict(workload=start.get("workload_arg") or start["workload"], trials=start["trials"], seed=start["seed"],
                   models=start.get("models_arg") or ",".join(start["models"]), out=args.resume,
                   target=start["target"], router=start["router"])
        if args.rpc is None and start.get("rpc"):  # measure where the run began unless told otherwise
            args.rpc = start["rpc"]
    elif args.workload is None:
        raise UserError("tune: give a WORKLOAD, or --resume RUN")
    if run["trials"] < 1:
        raise UserError("--trials must be at least 1")
    result = tune(**run, measure=_measure_config(args), wall_clock_s=args.time_limit,
                  remeasure_repeat=args.remeasure_repeat, llm_cache=args.llm_cache, replay=args.replay)
    print(f"best: {format_latency(result.best_latency_s)} (re-measured), untuned {format_latency(result.untuned_latency_s)}"
          + (f", {result.speedup_over_untuned:.1f}x" if result.speedup_over_untuned else "")
          + f"; correct: {result.correct}; run folder: {result.out}")
    return 0 if result.correct else 1


def cmd_report(args) -> int:
    from .bench.report import write_report

    path = write_report(Path(args.dir))
    print(path.read_text() if args.print else f"report: {path}")
    return 0


def cmd_show(args) -> int:
    from .show import show

    image, page, text = show(Path(args.run))
    print(text)
    print(f"tree: {image}, {page}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="shared-mcts", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("workloads", help="list the built-in workloads").set_defaults(fn=cmd_workloads)
    sub.add_parser("methods", help="list the tuning methods bench can run").set_defaults(fn=cmd_methods)
    p = sub.add_parser("target", help="show the detected target and its fp32 peak")
    _add_target(p)
    p.set_defaults(fn=cmd_target)

    p = sub.add_parser("check", help="build the untuned program, check it against numpy, time it")
    p.add_argument("workload")
    p.add_argument("--seed", type=int, default=0)
    _add_target(p)
    _add_measure(p)
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser("bench", help="run a workloads x methods x trials x seeds matrix (resumable)")
    p.add_argument("--workloads", required=True, help="comma list of workload names or files")
    p.add_argument("--methods", required=True, help="comma list (see `shared-mcts methods`)")
    p.add_argument("--trials", default="32", help="trial budgets, e.g. 32,64")
    p.add_argument("--seeds", default="0", help="seeds, e.g. 0-4 or 0,1")
    p.add_argument("--out", required=True, help="bench folder; rerunning with the same folder resumes")
    p.add_argument("--no-anchors", action="store_true", help="skip the numpy/torch vendor anchors")
    p.add_argument("--models", default="expert,mutate", help="models of the mcts method: comma list or models.toml")
    p.add_argument("--remeasure-repeat", type=int, default=10, help="timings of each final schedule in a fresh process")
    _add_target(p)
    _add_measure(p)
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("tune", help="tune one workload with MCTS over the given models")
    p.add_argument("workload", nargs="?")
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="finish the unfinished run in RUN with its own arguments (also: the same tune command again)")
    p.add_argument("--trials", type=int, default=32, help="measured candidates (exact)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default=DEFAULT_MODELS,
                   help=f"comma list of models, or a models.toml file (default {DEFAULT_MODELS}; see `shared-mcts methods`)")
    p.add_argument("--router", default="bandit",
                   help="which model expands each node: bandit (default), colt, phase, round-robin, single:MODEL")
    p.add_argument("--llm-cache", default=None, help="folder where LLM answers are cached across runs")
    p.add_argument("--replay", default=None, metavar="RUN",
                   help="rerun a finished run exactly: LLM answers and measurements come from RUN's records "
                        "(anything not recorded there is measured; no model is called)")
    p.add_argument("--out", default=None, help="run folder (database, best schedule, tree, ledger, summary)")
    p.add_argument("--time-limit", type=float, default=None, help="wall-clock limit in seconds")
    p.add_argument("--remeasure-repeat", type=int, default=10)
    _add_target(p)
    _add_measure(p)
    p.set_defaults(fn=cmd_tune)

    p = sub.add_parser("show", help="draw a tuning run's tree (PNG + HTML) and print a per-model summary")
    p.add_argument("run")
    p.set_defaults(fn=cmd_show)

    p = sub.add_parser("report", help="write report.md and plots for a bench folder")
    p.add_argument("dir")
    p.add_argument("--print", action="store_true", help="also print the report")
    p.set_defaults(fn=cmd_report)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"shared-mcts: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _one_line_warning
    try:
        args = build_parser().parse_args(argv)
        return args.fn(args)
    except UserError as e:
        print(f"shared-mcts: error: {e}", file=sys.stderr)
        return 2
    except DeviceUnavailable as e:
        print(f"shared-mcts: stopped: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("shared-mcts: interrupted (finished bench cells are saved; rerun to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
