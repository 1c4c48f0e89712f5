"""Secrets never reach the log: tokens in paths and query strings are redacted.

Some addresses carry a secret: an invitation (`/teams/join/<token>/`), a
"this wasn't me" link, an unsubscribe or export download link, allauth's email
confirmation and password reset keys. Django logs the path of every 4xx and 5xx
answer ("Gone: /teams/join/…/"), so a used or expired invitation's token ended
up in the web log. `RedactSecrets`, a filter on the log handler, rewrites every
record before it is written:

- the routes come from the URL configuration itself: any route with a
  parameter named `token`, `key` or `uidb36` (a new such route is covered
  without touching this file), and the secret part becomes `[redacted]`;
- query-string values of `token`, `key`, `code`, `secret` and `password` too.

The web server's own access log (granian) is off; with a proxy in front, set
its access log not to record query strings, or to use the same rules.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

SECRET_PARAMETERS = frozenset({"token", "key", "uidb36"})
REDACTED = "[redacted]"
QUERY_SECRET = re.compile(r"([?&](?:token|key|code|secret|password)=)[^&\s#\"']+", re.IGNORECASE)


def _strip(regex: str) -> str:
    return regex.removeprefix("^").removesuffix(r"\Z").removesuffix("$")


@lru_cache(maxsize=1)
def secret_routes() -> tuple[re.Pattern[str], ...]:
    """One regex per route whose parameters carry a secret, from the URL configuration."""
    from django.urls import URLResolver, get_resolver

    found: list[re.Pattern[str]] = []

    def walk(patterns: Any, prefix: str) -> None:
        for pattern in patterns:
            regex = prefix + _strip(pattern.pattern.regex.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, regex)
                continue
            compiled = re.compile("/" + regex)
            if SECRET_PARAMETERS & set(compiled.groupindex):
                found.append(compiled)

    walk(get_resolver().url_patterns, "")
    return tuple(found)


def redact(text: str) -> str:
    """`text` with the secret parts of secret-bearing paths and query values replaced."""
    text = QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    if "/" not in text:
        return text
    for route in secret_routes():
        match = route.search(text)
        while match is not None:
            spans = sorted(
                (match.span(name) for name in SECRET_PARAMETERS & set(route.groupindex)),
                reverse=True,
            )
            for start, end in spans:
                if start >= 0:
                    text = text[:start] + REDACTED + text[end:]
            match = route.search(text, match.start() + 1)
    return text


class RedactSecrets(logging.Filter):
    """A handler filter: redacts each record's message (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as usual
            return True
        try:
            cleaned = redact(message)
        except Exception:  # the URL configuration is not loadable yet: query rules only
            cleaned = QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
