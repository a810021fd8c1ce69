"""The fake's permission model for restricted keys: just enough to refuse what a key may not use.

Stripe refuses a restricted key's request on a resource it has no permission for with HTTP 403
and a ``permission_error``. The fake reads the missing permissions from the key itself:
``rk_test_no-<resource>[-no-<resource>…]_<anything>`` has no permission on each named resource,
where ``<resource>`` is the first path segment after ``/v1/`` with ``_`` written as ``.``
(``products``, ``prices``, ``payment.links``, ``checkout``, ``webhook.endpoints``, ``refunds``).
Every other key may use everything.
"""

from __future__ import annotations

import re

_DENIED = re.compile(r"no-([a-z.]+)")


def refused_resource(api_key: str, path: str) -> str | None:
    """The resource of ``path`` that ``api_key`` may not use, or None."""
    if not api_key.startswith("rk_"):
        return None
    names = api_key.split("_", 2)[-1].partition("_")[0]  # rk_test_<names>_<anything>
    denied = {name.replace(".", "_") for name in _DENIED.findall(names)}
    resource = path.removeprefix("/v1/").split("/")[0]
    return resource if resource in denied else None


def refusal_message(api_key: str, resource: str) -> str:
    """Stripe's wording of the refusal."""
    return (
        f"The provided key '{api_key[:8]}***' does not have the required permissions for this "
        f"endpoint on account 'acct_1FakeArcadePay'. Having the '{resource}' permission would allow "
        "this request to continue."
    )
