"""Every install hint in the code names an extra that pyproject.toml defines (or "core")."""

import ast
import tomllib
from pathlib import Path

import pytest

from qtts_bench.errors import MissingExtraError

ROOT = Path(__file__).resolve().parents[1]
HINT_CALLS = {"require": 1, "MissingExtraError": 1, "import_optional": 2}  # callee -> index of the extra


def _extras_named_in_code() -> list[tuple[str, int, str]]:
    """(file, line, extra) for every literal or module-constant extra passed to a hint call."""
    found = []
    for path in sorted((ROOT / "qtts_bench").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                     and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                     for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            index = HINT_CALLS.get(name)
            if index is None or len(node.args) <= index:
                continue
            arg = node.args[index]
            if isinstance(arg, ast.Constant):
                found.append((path.name, node.lineno, arg.value))
            elif isinstance(arg, ast.Name) and arg.id in constants:
                found.append((path.name, node.lineno, constants[arg.id]))
    return found


def test_every_install_hint_names_an_existing_extra():
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = _extras_named_in_code()
    assert len(named) > 10  # the scan finds the hints (it would pass vacuously otherwise)
    wrong = [f"{f}:{line}: '{extra}'" for f, line, extra in named if extra not in extras | {"core"}]
    assert not wrong, f"install hints naming extras pyproject.toml lacks: {wrong}"


@pytest.mark.parametrize("extra, expected", [("mos", "pip install 'qtts-bench[mos]'"),
                                             ("core", "core dependency")])
def test_hint_text(extra, expected):
    assert expected in str(MissingExtraError("x", extra, "y"))
