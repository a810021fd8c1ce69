"""Write translations/en.json from strings.json, resolving [%key:…%] references like HA core does.

Run after editing strings.json: ``.venv/bin/python scripts/translations.py``. The test suite
fails when en.json is out of date.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

INTEGRATION = Path(__file__).resolve().parent.parent / "custom_components" / "arcade_pay"
REFERENCE = re.compile(r"\[%key:([^%]+)%\]")


def resolved(strings: dict[str, Any]) -> dict[str, Any]:
    """Return strings.json with every reference replaced by the text it names."""
    root = {"component": {"arcade_pay": strings}}

    def lookup(path: str) -> Any:
        node: Any = root
        for part in path.split("::"):
            node = node[part]
        return resolve(node)

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, str):
            return REFERENCE.sub(lambda match: lookup(match.group(1)), node)
        return node

    return resolve(strings)  # type: ignore[no-any-return]


def main() -> None:
    """Regenerate translations/en.json."""
    strings = json.loads((INTEGRATION / "strings.json").read_text(encoding="utf-8"))
    text = json.dumps(resolved(strings), indent=2, ensure_ascii=False) + "\n"
    (INTEGRATION / "translations" / "en.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
