"""The package's structure: the model modules import one another at the top, in no circle, and
nothing of the services above them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parent.parent / "src" / "mlapi" / "model"


def test_no_model_module_imports_a_sibling_inside_a_function():
    # A function-local relative import is how a cycle gets hidden; third-party libraries may
    # still load lazily (onnx, sentencepiece: only the encoder kind needs them).
    found = []
    for path in sorted(MODEL.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found += [f"{path.name}:{inner.lineno}" for inner in ast.walk(node)
                          if isinstance(inner, ast.ImportFrom) and inner.level > 0]
    assert found == []


def test_each_model_module_imports_first_on_its_own():
    # Each one first, in a process where no other mlapi.model module is loaded yet: a circle
    # at the top would fail here with a partially initialised module.
    names = sorted(p.stem for p in MODEL.glob("*.py") if p.stem != "__init__")
    code = "\n".join([
        "import importlib, sys",
        f"for name in {names!r}:",
        "    for loaded in [m for m in sys.modules if m.startswith('mlapi.model')]:",
        "        del sys.modules[loaded]",
        "    importlib.import_module('mlapi.model.' + name)",
        "print('ok')",
    ])
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "ok"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against mlapi.model."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "mlapi.model" if node.level == 1 else "mlapi" if node.level == 2 else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("path", sorted(MODEL.glob("*.py")), ids=lambda p: p.name)
def test_model_modules_know_nothing_of_the_services(path):
    # model/ fits, scores, loads and decides; who stores corrections and versions is the
    # feedback service's and the registry's business (feedback/retrain.py wires them together).
    forbidden = [name for name in imported_modules(path)
                 if name.startswith(("mlapi.feedback", "mlapi.redis_store", "mlapi.kafka_bus",
                                     "mlapi.api", "mlapi.worker", "mlapi.local", "redis", "kafka",
                                     "sqlalchemy", "flask"))]
    assert forbidden == []


def test_the_import_check_sees_relative_and_absolute_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from ..feedback import db\nfrom . import pipeline\nimport redis\n"
                      "def f():\n    from ..redis_store import Registry\n")
    found = imported_modules(sample)
    assert {"mlapi.feedback.db", "mlapi.model.pipeline", "redis",
            "mlapi.redis_store.Registry"} <= found
