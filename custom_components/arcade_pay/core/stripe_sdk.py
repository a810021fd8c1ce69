"""Stripe's SDK as Arcade Pay loads it: telemetry off, every module it needs imported now.

No Home Assistant import. Modules of core that call Stripe import ``stripe`` from here, so
that this runs first, at import time, in Home Assistant's import executor.
"""

from __future__ import annotations

from contextlib import suppress
import importlib
from typing import Final

import stripe

__all__ = ["stripe"]

# Telemetry would add a header per request and do blocking work on first use.
stripe.enable_telemetry = False

# The SDK imports these lazily, on first use, which would be inside Home Assistant's event
# loop. Importing them here does it while Home Assistant imports the integration, in its
# import executor. tests/core/test_stripe_gateway.py checks that the list is complete.
_LAZY_STRIPE_MODULES: Final = (
    "_account",
    "_account_service",
    "_any_iterator",
    "_api_requestor",
    "_api_resource",
    "_checkout_service",
    "_client_options",
    "_createable_api_resource",
    "_deletable_api_resource",
    "_event",
    "_event_notification_handler",
    "_expandable_field",
    "_invoice",
    "_line_item",
    "_list_object",
    "_listable_api_resource",
    "_multipart_data_generator",
    "_nested_resource_class_methods",
    "_oauth",
    "_oauth_service",
    "_object_classes",
    "_payment_link",
    "_payment_link_line_item_service",
    "_payment_link_service",
    "_person",
    "_price",
    "_price_service",
    "_product",
    "_product_service",
    "_refund",
    "_refund_service",
    "_search_result_object",
    "_searchable_api_resource",
    "_stripe_client",
    "_stripe_context",
    "_stripe_service",
    "_test_helpers",
    "_updateable_api_resource",
    "_v1_services",
    "_v2_services",
    "_webhook",
    "_webhook_endpoint",
    "_webhook_endpoint_service",
    "checkout",
    "checkout._session",
    "checkout._session_line_item_service",
    "checkout._session_service",
    "oauth_error",
    "v2",
    "v2._amount",
    "v2._list_object",
    "v2._search_result_object",
    "v2.core",
    "v2.core._event",
)
for _module in _LAZY_STRIPE_MODULES:
    with suppress(ModuleNotFoundError):  # Another SDK version may lay them out differently.
        importlib.import_module(f"stripe.{_module}")
