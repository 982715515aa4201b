"""The `shared-mcts` command line. Every user mistake ends as one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import warnings
from pathlib import Path

from .bench.matrix import parse_int_list, parse_name_list
from .bench.report import write_report
from .bench.run import run_bench
from .bench.store import RESULTS, read_records
from .errors import DeviceUnavailable, UserError
from .hardware import host_info, resolve_target
from .interrupt import exit_on_interrupt
from .llm.backends import check_spec
from .measure import MeasureConfig, Measurer, check_correctness
from .measure.measurer import RPCAddress
from .methods import ANCHORS, DEFAULT_MCTS_MODELS, get_method, method_help, with_space
from .methods.vendor import torch_available
from .paths import check_writable_folder
from .progress import format_latency
from .proposers import DEFAULT_MODELS, model_specs, proposer_help
from .run_folder import measurements_kept, run_identity
from .search.selection import selector_names
from .show import show
from .space.space import SPACE_HELP, SPACES
from .tuning import tune
from .version import __version__
from .workloads import get_workload, list_workloads

PROG = "shared-mcts"
RUNS_FOLDER = "runs"  # where `tune` without --out makes its run folder


def _remember(namespace, action: argparse.Action, value) -> None:
    """Which options were given on the command line (not defaulted), with their long name."""
    given = dict(getattr(namespace, "given", {}))
    given[action.dest] = (action.option_strings[-1], value)
    namespace.given = given


class _Store(argparse.Action):
    """argparse's `store` that also remembers the option was given: `tune --resume` refuses
    what it would ignore, and the resume command printed after Ctrl-C repeats what was given."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        if option_string is not None:  # positionals are "called" with their default when absent
            _remember(namespace, self, values)


class _Flag(argparse.Action):
    """`store_true`, remembering that it was given."""

    def __init__(self, option_strings, dest, default=False, required=False, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, required=required, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, True)
        _remember(namespace, self, None)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in --help, except the empty ones (None, False) that say nothing."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        for name in (None, "store"):
            self.register("action", name, _Store)
        self.register("action", "store_true", _Flag)

    def error(self, message):  # one line instead of usage + message; main() adds "shared-mcts: error:"
        command = self.prog.removeprefix(PROG).strip()
        raise UserError(f"{command}: {message}" if command else message)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _add_target(p):
    p.add_argument("--target", default=None, help="'host' (the default: detect this CPU), a preset name, or a TVM "
                                                  "target JSON dict (x86-64 CPUs only)")


def _add_measure(p):
    g = p.add_argument_group("measurement")
    g.add_argument("--number", type=int, default=1, help="runs averaged per timing (raised to reach --min-repeat-ms)")
    g.add_argument("--repeat", type=int, default=3, help="timings per candidate; the median is its latency")
    g.add_argument("--min-repeat-ms", type=int, default=50, help="milliseconds each timing lasts at least")
    g.add_argument("--cache-flush", action="store_true", help="flush the CPU cache before each run")
    g.add_argument("--build-workers", type=int, default=0, help="parallel build processes (0: one per core)")
    g.add_argument("--build-timeout", type=float, default=30.0, help="seconds per candidate build")
    g.add_argument("--run-timeout", type=float, default=60.0, help="seconds per candidate run")
    g.add_argument("--rpc", default=None, metavar="HOST:PORT:KEY",
                   help="run candidates on the device registered with key KEY at the TVM RPC tracker HOST:PORT "
                        "(builds stay on this machine)")
    g.add_argument("--rpc-wait", type=float, default=30.0,
                   help="seconds a vanished RPC device may take to come back before the run stops (resumable)")


def _add_space(p, what: str) -> None:
    p.add_argument("--space", default="widened", choices=SPACES,
                   help=f"{what}: " + "; ".join(f"{name}: {text}" for name, text in SPACE_HELP.items()))


def _measure_config(args):
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
    print("methods (bench --methods):")
    for name, text in method_help().items():
        print(f"  {name:<20} {text}")
    print("models (tune --models, bench --models for mcts):")
    for name, text in proposer_help().items():
        print(f"  {name:<20} {text}")
    return 0


def cmd_target(args) -> int:
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


def _command(argv: list[str]) -> str:
    return shlex.join([PROG, *argv])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _llm_specs(methods: list) -> list:
    """The LLM model specs the bench's methods will call (only the MCTS methods have models)."""
    specs = {}
    for method in methods:
        for spec in getattr(method, "models", []):
            if spec.is_llm:
                specs[spec.name] = spec
    return list(specs.values())


def _bench_kept(out: Path, argv: list[str]) -> str:
    cells = len(read_records(out / RESULTS))
    if not cells:
        return f"no cell had finished, nothing was kept; rerun with: {_command(argv)}"
    return (f"{_count(cells, 'finished cell')} kept in {out / RESULTS} (the cell in flight starts over); "
            f"resume with: {_command(argv)}")


def cmd_bench(args) -> int:
    out = Path(args.out)
    with exit_on_interrupt(lambda: _bench_kept(out, args.argv)):
        return _bench(args, out)


def _bench(args, out: Path) -> int:
    if not args.out.strip():
        raise UserError("--out is empty: give a folder name")
    workloads = parse_name_list(args.workloads, "--workloads")
    methods = [with_space(m, args.space) for m in parse_name_list(args.methods, "--methods")]
    models = model_specs(args.models)
    # shared:* needs the models to check its router against; every LLM a method will call is
    # checked now, before bench.json is written and before any cell runs.
    for spec in _llm_specs([get_method(m, models) for m in methods]):
        check_spec(spec)
    if not args.no_anchors:
        methods += [a for a in ANCHORS if a not in methods and (a != "torch" or torch_available())]
    trials = parse_int_list(args.trials, "--trials", minimum=1)
    seeds = parse_int_list(args.seeds, "--seeds", minimum=0)
    if args.remeasure_repeat < 1:
        raise UserError("--remeasure-repeat must be positive")
    target = resolve_target(args.target, remote=args.rpc is not None)
    check_writable_folder(out)
    run_bench(workloads, methods, trials, seeds, out, target, _measure_config(args),
              remeasure_repeat=args.remeasure_repeat, models=models)
    path = write_report(out)
    print(f"report: {path}")
    return 0


# Options that make a tuning run what it is: `--resume` takes them from the run.
RUN_IDENTITY = ("trials", "seed", "models", "router", "target", "out", "space")


def _resume_arguments(args) -> dict:
    """tune's arguments for `--resume RUN`, from the run's start record; an identity option
    given with a value other than the run's is refused (it would be silently ignored)."""
    run_dir = Path(args.resume)
    start = run_identity(run_dir)
    run = dict(workload=start.get("workload_arg") or start["workload"], trials=start["trials"], seed=start["seed"],
               models=start.get("models_arg") or ",".join(start["models"]), out=args.resume,
               target=start["target"], router=start["router"], space=start["space"])
    same = {
        "trials": lambda v: v == start["trials"], "seed": lambda v: v == start["seed"],
        "router": lambda v: v == start["router"], "models": lambda v: v.strip() == run["models"],
        "target": lambda v: resolve_target(v, remote=True) == start["target"],
        "out": lambda v: Path(v).resolve() == run_dir.resolve(),
        "space": lambda v: v == start["space"],
    }
    given = getattr(args, "given", {})
    if args.workload is not None and args.workload not in (run["workload"], start["workload"]):
        raise UserError(f"--resume {run_dir} continues a run of {run['workload']}: drop the workload {args.workload!r}")
    for dest in RUN_IDENTITY:
        if dest in given and not same[dest](given[dest][1]):
            option, value = given[dest]
            raise UserError(f"--resume {run_dir} continues the run with its own arguments: {option} {value} "
                            f"differs from the run's ({run[dest]}); drop {option}, or start a new run with another --out")
    if args.rpc is None and start.get("rpc"):  # measure where the run began unless told otherwise
        args.rpc = start["rpc"]
    return run


def _resume_command(run_dir: Path, args) -> str:
    """`shared-mcts tune --resume RUN` with every other option that was given (measurement
    settings, limits), so the rest of the run is measured as it began."""
    words = ["tune", "--resume", str(run_dir)]
    for dest, (option, value) in getattr(args, "given", {}).items():
        if dest in (*RUN_IDENTITY, "resume"):
            continue
        words += [option] if value is None else [option, str(value)]
    return _command(words)


def _tune_kept(folder: dict, args) -> str:


    run_dir = folder.get("path")
    kept = measurements_kept(run_dir) if run_dir is not None else None
    if kept is None:
        if run_dir is not None and args.out is None and not args.resume:
            try:
                os.rmdir(run_dir)  # the fresh folder made for this run, still empty (never removes anything else)
            except OSError:
                pass
        return f"nothing was measured yet, nothing was kept; rerun with: {_command(args.argv)}"
    return f"{_count(kept, 'measurement')} kept in {run_dir}; resume with: {_resume_command(run_dir, args)}"


def cmd_tune(args) -> int:
    folder: dict = {}
    with exit_on_interrupt(lambda: _tune_kept(folder, args)):
        return _tune(args, on_folder=lambda path: folder.update(path=path))


def _tune(args, on_folder) -> int:
    if args.resume:
        run = _resume_arguments(args)
    elif args.workload is None:
        raise UserError("tune: give a WORKLOAD, or --resume RUN")
    else:
        run = dict(workload=args.workload, trials=args.trials, seed=args.seed, models=args.models, out=args.out,
                   target=args.target, router=args.router, space=args.space)
    if args.remeasure_repeat < 1:  # tune() takes 0 (no re-measurement: bench re-measures itself); a user may not
        raise UserError("--remeasure-repeat must be positive")
    made: list[Path] = []

    def folder_made(path: Path) -> None:
        made.append(path)
        on_folder(path)

    try:
        result = tune(**run, measure=_measure_config(args), wall_clock_s=args.time_limit,
                      remeasure_repeat=args.remeasure_repeat, llm_cache=args.llm_cache, replay=args.replay,
                      new_out_under=RUNS_FOLDER if run["out"] is None else None, on_folder=folder_made)
    except DeviceUnavailable as lost:
        resume = f"; resume with `{PROG} tune --resume {made[0]}` when the device is back" if made else ""
        raise DeviceUnavailable(f"{lost}{resume}", lost.results) from None
    print(f"best: {format_latency(result.best_latency_s)} (re-measured), untuned {format_latency(result.untuned_latency_s)}"
          + (f", {result.speedup_over_untuned:.1f}x" if result.speedup_over_untuned else "")
          + f"; correct: {result.correct}; run folder: {result.out}")
    return 0 if result.correct else 1


def cmd_report(args) -> int:
    path = write_report(Path(args.dir))
    print(path.read_text() if args.print else f"report: {path}")
    return 0


def cmd_show(args) -> int:
    image, page, text = show(Path(args.run))
    print(text)
    print(f"tree: {image}, {page}")
    return 0


def _version() -> str:
    return f"{PROG} {__version__}"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("workloads", help="list the built-in workloads").set_defaults(fn=cmd_workloads)
    sub.add_parser("methods", help="list the tuning methods bench can run").set_defaults(fn=cmd_methods)
    p = sub.add_parser("target", help="show the detected target and its fp32 peak")
    _add_target(p)
    p.set_defaults(fn=cmd_target)

    p = sub.add_parser("check", help="build the untuned program, check it against numpy, time it")
    p.add_argument("workload", help="a workload name (see `shared-mcts workloads`), file.py:FUNCTION or a TVMScript file")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the random inputs")
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
    p.add_argument("--models", default=DEFAULT_MCTS_MODELS,
                   help="models of the mcts and shared:ROUTER methods: comma list or models.toml")
    p.add_argument("--remeasure-repeat", type=int, default=10, help="timings of each final schedule in a fresh process")
    _add_space(p, "design spaces searched by methods given without @SPACE")
    _add_target(p)
    _add_measure(p)
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("tune", help="tune one workload with MCTS over the given models")
    p.add_argument("workload", nargs="?",
                   help="a workload name (see `shared-mcts workloads`), file.py:FUNCTION or a TVMScript file")
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="finish the unfinished run in RUN with its own arguments (also: the same tune command again)")
    p.add_argument("--trials", type=int, default=32, help="measured candidates (exact)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the search (0 or more)")
    p.add_argument("--models", default=DEFAULT_MODELS,
                   help="comma list of models, or a models.toml file (see `shared-mcts methods`)")
    p.add_argument("--router", default="bandit", help=f"which model expands each node: {', '.join(selector_names())}")
    _add_space(p, "design spaces searched")
    p.add_argument("--llm-cache", default=None, help="folder where LLM answers are cached across runs")
    p.add_argument("--replay", default=None, metavar="RUN",
                   help="rerun a finished run exactly: LLM answers and measurements come from RUN's records "
                        "(anything not recorded there is measured; no model is called)")
    p.add_argument("--out", default=None,
                   help="run folder (database, best schedule, tree, ledger, summary): new, empty, or holding an "
                        f"unfinished run of the same arguments; default: a new {RUNS_FOLDER}/WORKLOAD-TIMESTAMP")
    p.add_argument("--time-limit", type=float, default=None, help="wall-clock limit in seconds")
    p.add_argument("--remeasure-repeat", type=int, default=10,
                   help="timings of the best schedule in a fresh process")
    _add_target(p)
    _add_measure(p)
    p.set_defaults(fn=cmd_tune)

    p = sub.add_parser("show", help="draw a tuning run's tree (PNG + HTML) and print a per-model summary")
    p.add_argument("run", help="a run folder")
    p.set_defaults(fn=cmd_show)

    p = sub.add_parser("report", help="write report.md and plots for a bench folder")
    p.add_argument("dir", help="a bench folder")
    p.add_argument("--print", action="store_true", help="also print the report")
    p.set_defaults(fn=cmd_report)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {message}", file=sys.stderr)


# The library names the argument at fault by its Python name; the CLI says its option.
OPTION_OF = {"target": "--target", "rpc": "--rpc", "models": "--models", "out": "--out", "resume": "--resume",
             "trials": "--trials", "seed": "--seed", "remeasure_repeat": "--remeasure-repeat",
             "wall_clock_s": "--time-limit", "replay": "--replay", "space": "--space", "router": "--router"}


def _in_cli_words(error: UserError) -> str:
    if error.argument in OPTION_OF:
        return f"{OPTION_OF[error.argument]} {error.problem}"
    return str(error)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    warnings.showwarning = _one_line_warning
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        return args.fn(args)
    except UserError as e:
        print(f"{PROG}: error: {_in_cli_words(e)}", file=sys.stderr)
        return 2
    except DeviceUnavailable as e:
        print(f"{PROG}: stopped: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:  # commands without a run folder to keep (tune and bench handle Ctrl-C themselves)
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
