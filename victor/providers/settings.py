"""The settings every provider takes, declared once: what each accepts and how to fix a bad
value (``Provider.__init__`` and ``Agent`` check them), and the explicit pass-through ones
(``extra_body`` & co.)."""

from __future__ import annotations

from collections.abc import Mapping

from .._util import Setting, instance_setting, number_setting

__all__ = ["PROVIDER_SETTINGS", "PASS_THROUGH_SETTINGS"]

#: The settings every provider takes besides ``model``: what each accepts, how to fix it.
PROVIDER_SETTINGS: dict[str, Setting] = {
    # The upper bound is the provider's: ``Provider.max_temperature``.
    "temperature": number_setting("use a number, 0.0 or more", at_least=0.0),
    "max_tokens": number_setting("use a positive integer", whole=True, above=0),
    "api_key": instance_setting(
        "use the key as a string, or set the provider's environment variable", str, secret=True
    ),
    "base_url": instance_setting(
        "use the endpoint's URL as a string, e.g. 'http://127.0.0.1:8000/v1'", str
    ),
    "timeout": number_setting(
        "use a positive number of seconds (e.g. timeout=30), or None for no limit",
        above=0,
        optional=True,
    ),
    "max_retries": number_setting(
        "use a whole number of retries, 0 or more (e.g. max_retries=2)", whole=True, at_least=0
    ),
}

#: Explicit pass-through: fields sent to the API as they are, for parameters a provider
#: does not name in ``api_options`` (``extra_body``), and the SDKs' request options.
PASS_THROUGH_SETTINGS: dict[str, Setting] = {
    "extra_body": instance_setting(
        "use a dict of fields to send in the request body as they are, e.g. "
        "extra_body={'top_k': 40}",
        Mapping,
    ),
    "extra_headers": instance_setting(
        "use a dict of HTTP header names to values, e.g. extra_headers={'x-trace': 'abc'}",
        Mapping,
    ),
    "extra_query": instance_setting(
        "use a dict of URL query parameters, e.g. extra_query={'api-version': '2024-06-01'}",
        Mapping,
    ),
}
