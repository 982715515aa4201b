"""`shared-mcts show RUN`: the search tree as a picture (PNG) and an HTML page (SVG with a
tooltip per node), plus a per-model summary. Nodes are coloured by the model that proposed
them, sized by visits and labelled with their measured latency; the path to the best is drawn
thick. Everything that came from a model (edits, rationales) is HTML-escaped."""

from __future__ import annotations

import html
import json
import math
import os
import sys
from pathlib import Path

from .errors import UserError
from .progress import format_latency
from .search.credit import ModelStats

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f" ({e.msg} at line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
        raise UserError(f"{path} is damaged: not valid JSON{where}; {what}") from None


def load_run(run: Path) -> tuple[dict, dict]:
    tree_path, summary_path = run / "tree.json", run / "summary.json"
    if not tree_path.is_file():
        raise UserError(f"{run} holds no finished tuning run (no tree.json)")
    tree = _read_json(tree_path, "it is written at the end of a run")
    if not isinstance(tree, dict) or not isinstance(tree.get("nodes"), list) or not tree["nodes"]:
        raise UserError(f"{tree_path} is damaged: it holds no tree nodes")
    summary = _read_json(summary_path, "it is written at the end of a run") if summary_path.is_file() else {}
    if not os.access(run, os.W_OK):
        raise UserError(f"{run} is not writable: show writes tree.png and tree.html there")
    return tree, summary


def layout(nodes: list[dict]) -> dict[int, tuple[float, int]]:
    """x: leaves left to right in depth-first order, parents centred over their children; y: depth."""
    position: dict[int, tuple[float, int]] = {}
    next_leaf = [0.0]

    def place(node_id: int) -> float:
        node = nodes[node_id]
        kids = node["children"]
        if not kids:
            x = next_leaf[0]
            next_leaf[0] += 1
        else:
            xs = [place(k) for k in kids]
            x = (xs[0] + xs[-1]) / 2
        position[node_id] = (x, node["depth"])
        return x


    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(nodes) + 100))
    place(0)
    return position


def best_path(nodes: list[dict]) -> set[int]:
    measured = [n for n in nodes if n.get("latency_s") is not None]
    if not measured:
        return set()
    current = min(measured, key=lambda n: (n["latency_s"], n["id"]))["id"]
    path = set()
    while current is not None:
        path.add(current)
        current = nodes[current]["parent"]
    return path


def colours(nodes: list[dict]) -> dict[str, str]:
    names = sorted({n["proposer"] for n in nodes[1:]})
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _radius(visits: int) -> float:
    return 4 + 3 * math.sqrt(max(visits, 1))


def svg(nodes: list[dict]) -> str:
    position, on_path, colour = layout(nodes), best_path(nodes), colours(nodes)
    width = max(x for x, _ in position.values()) + 1
    depth = max(y for _, y in position.values()) + 1
    sx, sy, pad = 34, 70, 30
    w, h = int(width * sx + 2 * pad), int(depth * sy + 2 * pad)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             'font-family="sans-serif" font-size="9">']

    def at(node_id):
        x, y = position[node_id]
        return pad + x * sx, pad + y * sy

    for n in nodes[1:]:
        (x0, y0), (x1, y1) = at(n["parent"]), at(n["id"])
        thick = n["id"] in on_path and n["parent"] in on_path
        parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" '
                     f'stroke="{"#000" if thick else "#bbb"}" stroke-width="{3 if thick else 1}"/>')
    for n in nodes:
        x, y = at(n["id"])
        fill = "#fff" if n["id"] == 0 else colour[n["proposer"]]
        if n.get("status") == "failed":
            fill = "#eee"
        tip = (f"node {n['id']} by {n['proposer']}: {format_latency(n.get('latency_s'))}; visits {n['visits']}\n"
               f"edit {json.dumps(n.get('edit'))}\n{n.get('rationale') or ''}" + (f"\n{n['error']}" if n.get("error") else ""))
        parts.append(f'<g><title>{html.escape(tip)}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="{_radius(n["visits"]):.1f}" '
                     f'fill="{fill}" stroke="{"#000" if n["id"] in on_path else "#666"}" '
                     f'stroke-width="{2.5 if n["id"] in on_path else 0.8}"/></g>')
        if n.get("latency_s") is not None:
            parts.append(f'<text x="{x:.1f}" y="{y + _radius(n["visits"]) + 10:.1f}" text-anchor="middle">'
                         f'{html.escape(format_latency(n["latency_s"]))}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def png(nodes: list[dict], path: Path) -> None:
    import matplotlib  # matplotlib: only for plots

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib: only for plots

    position, on_path, colour = layout(nodes), best_path(nodes), colours(nodes)
    width = max(x for x, _ in position.values()) + 1
    depth = max(y for _, y in position.values()) + 1
    fig, ax = plt.subplots(figsize=(min(4 + 0.35 * width, 60), 2 + 1.1 * depth))
    for n in nodes[1:]:
        (x0, y0), (x1, y1) = position[n["parent"]], position[n["id"]]
        thick = n["id"] in on_path and n["parent"] in on_path
        ax.plot([x0, x1], [y0, y1], color="black" if thick else "#bbbbbb", lw=2.5 if thick else 0.8, zorder=1)
    for name, c in colour.items():
        mine = [n for n in nodes[1:] if n["proposer"] == name]
        ax.scatter([position[n["id"]][0] for n in mine], [position[n["id"]][1] for n in mine],
                   s=[12 * _radius(n["visits"]) for n in mine], c=[c if n.get("status") != "failed" else "#eeeeee" for n in mine],
                   edgecolors=["black" if n["id"] in on_path else "#666666" for n in mine], label=name, zorder=2)
    for n in nodes[1:]:
        if n.get("latency_s") is not None and (n["id"] in on_path or len(nodes) <= 80):
            x, y = position[n["id"]]
            ax.annotate(format_latency(n["latency_s"]), (x, y), textcoords="offset points", xytext=(0, -14),
                        ha="center", fontsize=6)
    from matplotlib.ticker import MaxNLocator  # matplotlib: only for plots

    ax.invert_yaxis()
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("depth")
    ax.set_xticks([])
    ax.legend(loc="upper right", fontsize=7, markerscale=0.5)
    ax.set_title("search tree (colour: model; size: visits; black: path to the best)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def model_table(summary: dict) -> list[list[str]]:
    header = ["model", "expansions", "calls", "valid edits", "tokens", "seconds", "dollars", "measured", "improved parent",
              "new bests", "fallbacks"]
    rows = [header]
    for name, raw in (summary.get("per_model") or {}).items():
        s = ModelStats.from_dict(raw)
        valid = f"{100 * s.valid_edits / s.edits:.0f}% of {s.edits}" if s.edits else "-"
        rows.append([name, str(s.expansions), str(s.calls), valid, str(s.tokens), f"{s.model_seconds:.1f}",
                     f"{s.dollars:.4g}", str(s.measured), str(s.improved_parent), str(s.new_bests), str(s.fallbacks)])
    return rows


def show(run: Path) -> tuple[Path, Path, str]:
    tree, summary = load_run(run)
    nodes = tree["nodes"]
    png(nodes, run / "tree.png")
    table = model_table(summary)
    text = "\n".join("  ".join(f"{cell:>12}" if i else f"{cell:<20}" for i, cell in enumerate(row)) for row in table)
    head = (f"{summary.get('workload', '?')}: best {format_latency(summary.get('best_latency_s'))} by "
            f"{summary.get('best_proposer')}, {summary.get('trials')} trials, router {summary.get('router') or '-'}")
    rows = "".join("<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{html.escape(c)}</{'th' if i == 0 else 'td'}>"
                                    for c in row) + "</tr>" for i, row in enumerate(table))
    legend = " ".join(f'<span style="color:{c}">&#9679; {html.escape(name)}</span>' for name, c in colours(nodes).items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(head)}</title>"
            "<style>body{font-family:sans-serif} table{border-collapse:collapse} td,th{border:1px solid #ccc;"
            "padding:2px 6px;text-align:right} .tree{overflow:auto;border:1px solid #ddd}</style></head><body>"
            f"<h2>{html.escape(head)}</h2><p>{legend}. Size: visits; black: the path to the best; grey: failed. "
            f"Hover a node for its edit and rationale.</p><div class='tree'>{svg(nodes)}</div>"
            f"<h3>Models</h3><table>{rows}</table></body></html>")
    (run / "tree.html").write_text(page)
    return run / "tree.png", run / "tree.html", head + "\n" + text
