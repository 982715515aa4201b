"""What the tiling rules need to know about each block's memory accesses, read off the
unscheduled PrimFunc's TVMScript (this TVM exposes no buffer-access API to Python).

For each block: is its innermost spatial axis the contiguous (last) index of every input it
appears in? If not (e.g. Kᵀ in Q·Kᵀ), vectorizing along it means strided loads or gathers.
"""

from __future__ import annotations

import re

_BLOCK = re.compile(r'T\.sblock\("([^"]+)"\)')
_REMAP = re.compile(r'(\S.*?)\s*=\s*T\.axis\.remap\("([SR]+)",\s*\[([^\]]*)\]\)')
_READS = re.compile(r"T\.reads\((.*)\)$")
_ACCESS = re.compile(r"(\w+)\[([^\[\]]*)\]")


def innermost_contiguous(script: str) -> dict[str, bool]:
    """block name -> whether its innermost spatial axis is contiguous in every read using it."""
    result: dict[str, bool] = {}
    block = None
    spatial: list[str] = []
    for line in script.splitlines():
        line = line.strip()
        m = _BLOCK.search(line)
        if m:
            block, spatial = m.group(1), []
            continue
        m = _REMAP.match(line)
        if m and block:
            names = [v.strip() for v in m.group(1).split(",")]
            spatial = [v for v, kind in zip(names, m.group(2)) if kind == "S"]
            continue
        m = _READS.match(line)
        if m and block and spatial:
            inner = spatial[-1]
            ok = True
            for _, indices in _ACCESS.findall(m.group(1)):
                parts = [p.strip() for p in indices.split(",")]
                uses = [re.search(rf"\b{re.escape(inner)}\b", p) is not None for p in parts]
                if any(uses) and not uses[-1]:
                    ok = False
            result[block] = ok
    return result
