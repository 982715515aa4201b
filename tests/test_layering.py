"""The package's layers: every module imports only its own layer and the layers below it, and
imports inside functions are only for heavy third-party packages (TVM, llama.cpp, ...), each
with a reason on its line. Pure: reads the source, imports nothing."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "shared_mcts"

# Lowest first. A module (or a package: all its modules) may import its own layer and lower ones.
LAYERS = [
    ("version", "errors", "journal", "threads", "paths", "progress"),  # leaves
    ("models",),  # what a model is: specs and budgets
    ("search",),  # the pure search core and its port (proposal types, events, selectors)
    ("peak", "hardware", "tvm_compat"),  # the machine and TVM's target
    ("workloads", "space", "measure"),  # what is tuned, the schedule space, measurement
    ("costmodel", "ledger"),
    ("llm",),  # running language models
    ("proposers",),  # the models that plug into the core
    ("observers", "run_folder", "tuning", "interrupt"),  # one tuning run
    ("methods",),  # tuning methods for the bench
    ("bench",),
    ("show", "cli", "__init__", "__main__"),  # the user's side
]
# Imported where used, for a reason on the line: heavy (seconds to load) or optional.
HEAVY = ("tvm", "tvm_ffi", "llama_cpp", "treequest", "ulid", "torch", "matplotlib", "openai", "scipy")
VERSIONED = ("tomllib", "tomli")  # the TOML parser depends on the Python version


def _layer_of(dotted: str) -> int:
    first = dotted.split(".")[0] if dotted else "__init__"
    for i, entries in enumerate(LAYERS):
        if first in entries:
            return i
    raise AssertionError(f"shared_mcts.{dotted} is in no layer: add it to LAYERS")


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).with_suffix("")
        parts = list(relative.parts)
        dotted = ".".join(p for p in parts if p != "__init__") or "__init__"
        yield path, dotted, parts


def _imports(path: Path, parts: list[str]):
    """(imported shared_mcts module, line, inside a function, line text) for every import."""
    tree = ast.parse(path.read_text())
    lines = path.read_text().splitlines()
    package = parts[:-1]  # the importing module's package, relative to shared_mcts
    functions = {id(n) for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    inside = set()
    for node in ast.walk(tree):
        if id(node) in functions:
            inside |= {id(child) for child in ast.walk(node) if child is not node}
    type_checking = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_checking |= {id(child) for child in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [".".join(base + [a.name]) for a in node.names]
            else:
                names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            yield name, node.lineno, id(node) in inside, lines[node.lineno - 1], bool(getattr(node, "level", 0))


@pytest.mark.parametrize("path, dotted, parts", list(_modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_point_down_the_layers(path, dotted, parts):
    own = _layer_of(dotted)
    for name, line, local, text, relative in _imports(path, parts):
        ours = relative or name.startswith("shared_mcts")
        if ours:
            target = name.removeprefix("shared_mcts").lstrip(".")
            assert _layer_of(target) <= own, f"{path.name}:{line}: {dotted} (layer {own}) imports {target} from above"
            assert not local, f"{path.name}:{line}: an import of our own module inside a function: {text.strip()}"
        elif local:
            first = name.split(".")[0]
            assert first in HEAVY + VERSIONED, f"{path.name}:{line}: a function-local import of {name}: {text.strip()}"
            if first in HEAVY:
                assert "#" in text, f"{path.name}:{line}: say why this import is inside a function: {text.strip()}"


def test_the_core_knows_no_layer_above_it():
    for path, dotted, parts in _modules():
        if dotted.startswith("search"):
            for name, line, _, _, relative in _imports(path, parts):
                target = name.removeprefix("shared_mcts").lstrip(".") if relative or name.startswith("shared_mcts") else ""
                assert not target or target.split(".")[0] in ("search", "errors"), f"{path.name}:{line} imports {target}"
