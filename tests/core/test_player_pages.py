"""The player's pages: their language, their texts, and nothing in them but what they may show."""

from __future__ import annotations

import json
import re

import pytest

from custom_components.arcade_pay.player import pages


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("fr-FR,fr;q=0.9,de;q=0.5,en;q=0.4", "de"),
        ("fr, en;q=0.1, de;q=0.2", "de"),
        ("de;q=0, en", "en"),
        ("ja", "en"),
        ("de;q=abc, en", "en"),
        ("*", "en"),
    ],
)
def test_language_follows_the_browser_with_english_as_fallback(header: str | None, language: str) -> None:
    assert pages.negotiate(header) == language


def test_every_language_has_every_text_with_the_same_placeholders() -> None:
    english = json.loads((pages.STRINGS_DIR / "en.json").read_text())
    assert len(pages.languages()) >= 2
    for language in pages.languages():
        strings = json.loads((pages.STRINGS_DIR / f"{language}.json").read_text())
        assert strings.keys() == english.keys(), language
        for key, value in english.items():
            assert set(re.findall(r"{(\w+)}", strings[key])) == set(re.findall(r"{(\w+)}", value)), key


def test_credits_are_counted_in_words() -> None:
    assert pages.status_message("en", "delivered", "Galaga", 3) == "3 credits on Galaga. Press start!"
    assert pages.status_message("en", "waiting", "Galaga", 1) == "1 credit on the way to Galaga…"
    assert pages.status_message("de", "delivered", "Galaga", 3) == "3 Credits auf Galaga. Drück Start!"


def test_a_page_escapes_what_it_shows_and_loads_nothing_from_elsewhere() -> None:
    html = pages.page("en", 'Ms. <Pac> & "Man"', state="delivered", link=("Pay", "https://x.test/?a=1&b=2"))
    assert "<Pac>" not in html
    assert "Ms. &lt;Pac&gt; &amp; &quot;Man&quot;" in html
    assert 'href="https://x.test/?a=1&amp;b=2"' in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//(?!x\.test)""", html)


def test_only_a_page_that_waits_polls() -> None:
    assert "<script>" in pages.page("en", "…", state="waiting", poll=True)
    assert "<script>" not in pages.page("en", "…", state="delivered")


def test_a_redirect_page_redirects_by_itself() -> None:
    html = pages.page("en", "Opening…", state="opening", refresh_to="https://pay.test/c/cs_1")
    assert '<meta http-equiv="refresh" content="0;url=https://pay.test/c/cs_1">' in html
