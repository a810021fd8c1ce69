"""Links between the documentation files are relative and lead to a file and heading that exist.

The README is rendered by HACS and GitHub, docs/ by GitHub: a link is written relative to the
file it is in, and an anchor is GitHub's slug of a heading of the target file.
"""

from __future__ import annotations

from pathlib import Path
import re

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = (REPO / "README.md", REPO / "cabinet" / "README.md", *sorted((REPO / "docs").glob("*.md")))

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.DOTALL | re.MULTILINE)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def _prose(text: str) -> str:
    """The text without code blocks, where a ``#`` line or ``](`` is no heading or link."""
    return _FENCE.sub("", text)


def anchors(text: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown text (duplicates get -1, -2 …)."""
    found: set[str] = set()
    for heading in _HEADING.findall(_prose(text)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def broken_links(document: Path) -> list[str]:
    """Each link of ``document`` that is absolute or leads nowhere, with the reason."""
    problems = []
    for target in _LINK.findall(_CODE.sub("", _prose(document.read_text(encoding="utf-8")))):
        if re.match(r"[a-z]+:", target):
            continue  # http(s) and mailto: not ours to check offline
        if target.startswith("/"):
            problems.append(f"{target}: not relative")
            continue
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.exists():
            problems.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            problems.append(f"{target}: no such heading in {file.name}")
    return problems


def test_every_documentation_link_leads_somewhere() -> None:
    problems = {str(document.relative_to(REPO)): broken_links(document) for document in DOCUMENTS}
    assert not {document: broken for document, broken in problems.items() if broken}


def test_broken_and_absolute_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Game over over HTTP (the earlier system's)\n")
    document = tmp_path / "page.md"
    document.write_text(
        "# Page\n\n```text\n# not a heading\n[x](missing.md)\n```\n\n"
        "[good](other.md#game-over-over-http-the-earlier-systems) [self](#page) [web](https://example.com)\n"
        "[gone](gone.md) [heading](other.md#not-a-heading) [root](/docs/other.md) [code](#not-a-heading)\n"
    )
    assert broken_links(document) == [
        "gone.md: no such file",
        "other.md#not-a-heading: no such heading in other.md",
        "/docs/other.md: not relative",
        "#not-a-heading: no such heading in page.md",
    ]
