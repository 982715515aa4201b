"""Workloads users bring: `file.py:function` returning a PrimFunc, or a TVMScript file.

A workload file is user code and is executed as such: only load files you trust.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from ..errors import UserError, last_line
from .base import Workload


def _as_prim_func(obj, origin: str):
    import tvm  # TVM: loaded on use (seconds to import)
    from tvm import tirx  # TVM: loaded on use (seconds to import)

    if isinstance(obj, tvm.IRModule):
        funcs = [f for _, f in obj.functions.items() if isinstance(f, tirx.PrimFunc)]
        if len(funcs) != 1:
            raise UserError(f"{origin}: expected one PrimFunc, the IRModule holds {len(funcs)}")
        return funcs[0]
    if not isinstance(obj, tirx.PrimFunc):
        raise UserError(f"{origin}: expected a tvm PrimFunc (e.g. from te.create_prim_func), got {type(obj).__name__}")
    return obj


def _num_inputs(func) -> int:
    """Number of leading parameters that are read-only inputs. Outputs are the parameters
    some block writes (read off the blocks' T.writes in the TVMScript, since this TVM exposes
    no buffer map in Python) and must come after every input (te.create_prim_func order)."""
    names = [str(p) for p in func.params]
    written = set()
    for group in re.findall(r"T\.writes\((.*)\)", func.script()):
        written.update(re.findall(r"(\w+)\[", group))
    is_output = [n in written for n in names]
    if not any(is_output):
        raise UserError("the workload's PrimFunc writes none of its parameters")
    first_out = is_output.index(True)
    if not all(is_output[first_out:]):
        raise UserError("the workload's PrimFunc must list its inputs first and its outputs last")
    return first_out


def _flops(func) -> float:
    import tvm  # TVM: loaded on use (seconds to import)
    from tvm.s_tir import analysis  # TVM: loaded on use (seconds to import)

    try:
        return float(analysis.estimate_tir_flops(tvm.IRModule({"main": func})))
    except Exception:  # estimate fails on some exotic bodies; FLOPs are then unknown
        return float("nan")


def _workload_from_func(func, spec: str) -> Workload:
    func = func.with_attr("global_symbol", "main")
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo  # TVM: loaded on use (seconds to import)

    infos = ArgInfo.from_prim_func(func)
    return Workload(
        name=spec,
        description=f"user workload from {spec}",
        shapes={str(p): "x".join(str(int(d)) for d in info.shape) for p, info in zip(func.params, infos)},
        flops=_flops(func),
        make_func=lambda: func,
        num_inputs=_num_inputs(func),
        reference=None,
        dtype=str(infos[-1].dtype),
    )


def load_python(path: Path, function: str, spec: str) -> Workload:
    if not path.is_file():
        raise UserError(f"workload file not found: {path}")
    module_name = f"shared_mcts_user_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader_spec)
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:  # user code: any error is theirs to fix
        raise UserError(f"{path}: importing it failed: {type(e).__name__}: {e}") from None
    fn = getattr(module, function, None)
    if not callable(fn):
        raise UserError(f"{path} has no function {function!r}")
    try:
        result = fn()
    except Exception as e:
        raise UserError(f"{spec}: calling it failed: {type(e).__name__}: {e}") from None
    sys.modules.pop(module_name, None)
    return _workload_from_func(_as_prim_func(result, spec), spec)


def load_tvmscript(path: Path) -> Workload:
    if not path.is_file():
        raise UserError(f"workload file not found: {path}")
    from tvm.script import from_source, tirx  # TVM: loaded on use (seconds to import)

    # The parser takes no import statements; the file's own `from tvm.script import tirx as T`
    # is supplied as a variable instead.
    source = path.read_text()
    functions = re.findall(r"^def (\w+)", source, re.M)
    if not re.search(r"@\s*[\w.]*prim_func", source) and functions:  # a Python workload file named without its function
        raise UserError(f"{path} holds no @T.prim_func; for a Python file name the function that returns the "
                        f"PrimFunc: {path}:FUNCTION (functions there: {', '.join(functions[:8])})")
    text = "\n".join(line for line in source.splitlines()
                     if not re.match(r"\s*(from\s+tvm\S*\s+import|import\s+tvm)", line))
    try:
        parsed = from_source(text, extra_vars={"T": tirx})
    except Exception as e:
        raise UserError(f"{path}: not valid TVMScript: {last_line(e)}") from None
    return _workload_from_func(_as_prim_func(parsed, str(path)), str(path))
