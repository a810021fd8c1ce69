"""House rules of the repository's code and tests, enforced.

* No module imports a test module (``test_*.py``): what tests share lives in ``conftest.py``
  files and helper modules (``tests/helpers/``, ``tests/core/helpers.py``,
  ``tests/robustness/real_mqtt.py``). Every import counts: relative or absolute, inside a
  function, or through ``importlib``. Helpers kept in a test module are where nobody looks for
  them, and moving or renaming that test breaks another file.
* No tracker references in code or tests ("Issue N", "item N.M", "#N", "ticket N"): a comment
  says the rule it stands for, which stays true when the tracker moves or the issue closes. A
  qualified upstream reference (``home-assistant/frontend#28185``) names someone else's bug and
  is allowed.

Each check is first shown a synthetic violation, and must flag it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
import re

import pytest

REPO = Path(__file__).resolve().parents[1]
# Where test code lives; pytest's pythonpath (pyproject.toml) holds the repository and tools/.
TEST_DIRS = ("tests", "e2e", "cabinet/tests")
IMPORT_ROOTS = (".", "tools")
# Code and tests: everything but the README and docs/, which are prose for the people using it.
CODE_DIRS = ("custom_components", "tests", "cabinet", "e2e", "bench", "tools", "scripts", ".ci", "blueprints")
TEXT_SUFFIXES = frozenset({"", ".py", ".md", ".yaml", ".yml", ".json", ".toml", ".sh", ".txt", ".ambr"})
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", ".venv", "test-artifacts"})

TRACKER_REFERENCE = re.compile(
    r"\bissues?\s*#?\d+"  # "Issue N", "issues N and M", "issue #N"
    r"|\bitems?\s+\d+(?:\.\d+)*\b"  # "item N.M"
    r"|\btickets?\s*#?\d+"
    r"|\bGH-\d+"
    r"|(?<![\w&#/\"'=-])#\d{1,5}\b",  # a bare "#N" (not an upstream "repo#N", an entity, a colour)
    re.IGNORECASE,
)


# --- no test module imported -----------------------------------------------------------------------


def python_files(root: Path, directories: tuple[str, ...]) -> Iterator[Path]:
    for directory in directories:
        for path in sorted((root / directory).rglob("*.py")):
            if not SKIPPED_DIRS & set(path.relative_to(root).parts):
                yield path


def is_test_module(path: Path) -> bool:
    return path.suffix == ".py" and path.stem.startswith("test_")


def imported_names(source: str) -> Iterator[tuple[int, int, str]]:
    """(line, level, dotted name) of everything a module imports, and of each name it imports from
    a module (``from . import test_x`` imports a module too)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, 0, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            yield node.lineno, node.level, module
            for alias in node.names:
                yield node.lineno, node.level, f"{module}.{alias.name}" if module else alias.name
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, 0, node.args[0].value


def resolve(root: Path, importer: Path, level: int, name: str) -> Path | None:
    """The file of the repository a dotted name imports, if it is one (a package's __init__.py
    stands for the package)."""
    if level:
        bases = [importer.parents[level - 1]]
    else:
        # pytest puts a test file's directory on sys.path when it is not in a package.
        own = [importer.parent] if not (importer.parent / "__init__.py").exists() else []
        bases = [root / directory for directory in IMPORT_ROOTS] + own
    parts = name.split(".") if name else []
    for base in bases:
        target = base.joinpath(*parts)
        for candidate in (target.with_name(f"{target.name}.py"), target / "__init__.py"):
            if parts and candidate.is_file():
                return candidate
    return None


def imports_of_test_modules(root: Path) -> list[str]:
    """Every import of a test module by any module of the test code, as "file:line imports module"."""
    found = []
    for path in python_files(root, TEST_DIRS):
        for line, level, name in imported_names(path.read_text(encoding="utf-8")):
            target = resolve(root, path, level, name)
            if target is not None and is_test_module(target) and target != path:
                found.append(f"{path.relative_to(root)}:{line} imports {target.relative_to(root)}")
    return sorted(set(found))


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_import_check_flags_a_test_module_imported_by_any_route(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "tests/__init__.py": "",
            "tests/conftest.py": "from .helpers import MACHINE_ID\n",
            "tests/helpers/__init__.py": "MACHINE_ID = 'cab'\n",
            "tests/test_delivery.py": "def pay() -> None: ...\n",
            "tests/test_relative.py": "from .test_delivery import pay\n",
            "tests/test_absolute.py": "import tests.test_delivery\n",
            "tests/test_package.py": "from . import test_delivery\n",
            "tests/test_late.py": "def test_x() -> None:\n    from tests.test_delivery import pay\n",
            "tests/test_dynamic.py": "import importlib\nimportlib.import_module('tests.test_delivery')\n",
            "tests/core/__init__.py": "",
            "tests/core/test_up.py": "from ..test_delivery import pay\n",
            # Not in a package: pytest puts its directory on sys.path.
            "cabinet/tests/test_flat.py": "import test_other\n",
            "cabinet/tests/test_other.py": "",
            # Allowed: conftest, helpers, a third-party module named like a test, the package itself.
            "tests/test_allowed.py": (
                "from aiohttp.test_utils import TestClient\nfrom . import helpers\n"
                "from .conftest import MACHINE_ID\nfrom .helpers import MACHINE_ID as M\n"
            ),
        },
    )
    assert imports_of_test_modules(tmp_path) == [
        "cabinet/tests/test_flat.py:1 imports cabinet/tests/test_other.py",
        "tests/core/test_up.py:1 imports tests/test_delivery.py",
        "tests/test_absolute.py:1 imports tests/test_delivery.py",
        "tests/test_dynamic.py:2 imports tests/test_delivery.py",
        "tests/test_late.py:2 imports tests/test_delivery.py",
        "tests/test_package.py:1 imports tests/test_delivery.py",
        "tests/test_relative.py:1 imports tests/test_delivery.py",
    ]


def test_no_module_imports_a_test_module() -> None:
    assert imports_of_test_modules(REPO) == []


# --- no tracker references -------------------------------------------------------------------------


def text_files(root: Path, directories: tuple[str, ...]) -> Iterator[Path]:
    for directory in directories:
        for path in sorted((root / directory).rglob("*")):
            relative = path.relative_to(root).parts
            hidden = any(part.startswith(".") for part in relative[1:])
            if (
                path.is_file()
                and path.suffix in TEXT_SUFFIXES
                and not hidden
                and not SKIPPED_DIRS & set(relative)
            ):
                yield path


def tracker_references(root: Path) -> list[str]:
    """Every tracker reference in the code and tests, as "file:line: the reference"."""
    found = []
    for path in text_files(root, CODE_DIRS):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # Not text (a binary without a suffix).
        for number, line in enumerate(text.splitlines(), 1):
            found.extend(
                f"{path.relative_to(root)}:{number}: {m[0]}" for m in TRACKER_REFERENCE.finditer(line)
            )
    return sorted(found)


def test_the_tracker_check_flags_every_kind_of_reference(tmp_path: Path) -> None:
    # Written from parts, so that this file holds no reference itself.
    issue, item, ticket = "Issue", "item", "ticket"
    write(
        tmp_path,
        {
            "custom_components/arcade_pay/x.py": f'"""{issue} {7}, {item} {1}.{4}: the rule."""\n',
            "tests/test_x.py": f"# see #{12} and {issue.lower()}s {7} and {8}\n",
            "cabinet/README.md": f"Dropped ({ticket} {3}, {issue.lower()} #{9}, GH-{5}).\n",
            "scripts/develop": f"# {item.title()} {16}\n",
            # Allowed: an upstream bug, colours, entities, other numbers next to the words.
            "tests/browser/ui.py": (
                "# home-assistant/frontend#28185\ncolour = '#000000'\n"
                "html = '&#8230;'\n# issue_id = f'{x}', an item's 3 fields, line_items[0]\n"
            ),
            "README.md": f"{issue} {14}: prose is not checked.\n",
        },
    )
    assert tracker_references(tmp_path) == [
        f"cabinet/README.md:1: GH-{5}",
        f"cabinet/README.md:1: {issue.lower()} #{9}",
        f"cabinet/README.md:1: {ticket} {3}",
        f"custom_components/arcade_pay/x.py:1: {issue} {7}",
        f"custom_components/arcade_pay/x.py:1: {item} {1}.{4}",
        f"scripts/develop:1: {item.title()} {16}",
        f"tests/test_x.py:1: #{12}",
        f"tests/test_x.py:1: {issue.lower()}s {7}",
    ]


def test_no_tracker_references_in_code_or_tests() -> None:
    assert tracker_references(REPO) == []


@pytest.mark.parametrize("directory", sorted({*TEST_DIRS, *CODE_DIRS}))
def test_the_checked_directories_exist(directory: str) -> None:
    """A directory renamed away would silently be checked no more."""
    assert (REPO / directory).is_dir()
