"""The pages a player sees without logging in: in their browser's language, phone-sized.

No Home Assistant import and no external asset (no font, script or image from elsewhere): the
page works behind a Home Assistant Cloud relay, which passes a body and its content type
only, and it tells nothing but what its URL is entitled to (one session's cabinet name,
credits and state). Texts are in ``strings/<language>.json``; English is the fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from html import escape
import json
from pathlib import Path
from typing import Final

STRINGS_DIR: Final = Path(__file__).parent / "strings"
FALLBACK_LANGUAGE: Final = "en"
# States after which the page stops polling: nothing will change any more by itself.
FINAL_STATES: Final = frozenset({"delivered", "refunded", "expired", "not_credited"})


@cache
def _load(language: str) -> Mapping[str, str]:
    text = (STRINGS_DIR / f"{language}.json").read_text(encoding="utf-8")
    strings: dict[str, str] = json.loads(text)
    return strings


@cache
def languages() -> tuple[str, ...]:
    """The languages the pages are translated into."""
    return tuple(sorted(path.stem for path in STRINGS_DIR.glob("*.json")))


def negotiate(accept_language: str | None) -> str:
    """Pick the best of our languages for an Accept-Language header (RFC 9110, 12.5.4)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary and quality > 0:
            ranked.append((-quality, position, primary))
    available = languages()
    for _, _, primary in sorted(ranked):
        if primary in available:
            return primary
    return FALLBACK_LANGUAGE


def text(language: str, key: str, **values: str | int) -> str:
    """One translated text, its placeholders filled in (values are not escaped here)."""
    template = _load(language).get(key) or _load(FALLBACK_LANGUAGE)[key]
    return template.format(**values)


def credits_text(language: str, credits: int) -> str:
    """'1 credit', '3 credits' in the player's language."""
    return text(language, "credits_one" if credits == 1 else "credits_other", count=credits)


def status_message(language: str, state: str, cabinet: str, credits: int) -> str:
    """What the player page says in ``state`` (a ledger PlayerView state)."""
    return text(language, state, cabinet=cabinet, credits=credits_text(language, credits))


_STYLE: Final = """
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#101522;
color:#f4f6fb;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{max-width:28rem;padding:2rem 1.5rem;text-align:center}
h1{font-size:1rem;font-weight:600;letter-spacing:.08em;text-transform:uppercase;color:#9aa4bf;
margin:0 0 1.5rem}
p.message{font-size:1.6rem;line-height:1.35;margin:0 0 1.5rem}
.state-delivered p.message{color:#5ee08a}.state-refunding p.message,.state-refused p.message{color:#ffb454}
p.hint{color:#9aa4bf;font-size:.9rem}
a.button{display:inline-block;background:#3d7eff;color:#fff;text-decoration:none;padding:.9rem 1.6rem;
border-radius:.6rem;font-size:1.1rem}
"""

_POLL: Final = """
(function(){var u=new URL(location.href);u.searchParams.set("format","json");
var m=document.querySelector("p.message"),h=document.querySelector("p.hint");
function tick(){fetch(u.toString(),{cache:"no-store"}).then(function(r){return r.json()}).then(function(s){
m.textContent=s.message;document.body.className="state-"+s.state;
if(s.final){if(h){h.remove()}}else{setTimeout(tick,1000)}}).catch(function(){setTimeout(tick,3000)})}
setTimeout(tick,1000)})();
"""


def page(
    language: str,
    message: str,
    *,
    state: str,
    link: tuple[str, str] | None = None,
    refresh_to: str | None = None,
    poll: bool = False,
) -> str:
    """A whole page: a message, an optional button (label, URL), a redirect or live polling."""
    head = ""
    if refresh_to is not None:
        head = f'<meta http-equiv="refresh" content="0;url={escape(refresh_to)}">'
    button = ""
    if link is not None:
        button = f'<p><a class="button" href="{escape(link[1])}">{escape(link[0])}</a></p>'
    hint = script = ""
    if poll:
        hint = f'<p class="hint">{escape(text(language, "keep_open"))}</p>'
        script = f"<script>{_POLL}</script>"
    return (
        f'<!doctype html><html lang="{escape(language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex"><meta name="referrer" content="no-referrer">'
        f"<title>{escape(text(language, 'title'))}</title>{head}<style>{_STYLE}</style></head>"
        f'<body class="state-{escape(state)}"><main><h1>{escape(text(language, "title"))}</h1>'
        f'<p class="message">{escape(message)}</p>{button}{hint}</main>{script}</body></html>'
    )
