"""Third-party scripts the operator adds (PIPETOWER_THIRD_PARTY_SCRIPTS), and what they store.

The operator declares each script once, as JSON: its name, address, what it is
for, the consent category it needs (`analytics` or `ab_testing`) and the
cookies it stores. For example::

    [{"name": "Plausible", "src": "https://plausible.example.com/js/script.js",
      "purpose": "Counts visits to each page", "category": "analytics",
      "cookies": ["_pk_id", {"name": "IDE", "domain": "ads.example.net",
                             "lifetime": "1 year"}]}]

A cookie given by name alone is stored on this site, so Pipetower can remove
it. A cookie with a `domain` is stored by another website, which Pipetower
cannot remove (unless `"removable": true` says the domain is this site's own,
such as `.example.com` for `pipetower.example.com`).

From this one declaration come: the banner and the cookie page (each script,
what it stores, whether Pipetower can remove it), the script tags (only after
the matching consent), the Content-Security-Policy for them, and the deletion
of the removable cookies when consent is withdrawn, with a notice naming the
ones the person must remove themselves.

This module is read by the settings, so it imports no model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pipetower.config.env import ConfigurationError

VARIABLE = "PIPETOWER_THIRD_PARTY_SCRIPTS"
# The banner's consent categories and the consent purposes they stand for.
CATEGORIES = {"analytics": "analytics_cookies", "ab_testing": "ab_testing_cookies"}
CATEGORY_WORDS = {"analytics": "analytics", "ab_testing": "A/B testing"}
_COOKIE_NAME_FORBIDDEN = set(' \t\r\n,;=()<>@:\\"/[]?{}')


@dataclass(frozen=True)
class ScriptCookie:
    name: str
    lifetime: str = ""
    domain: str = ""  # empty: stored on this site
    removable: bool = True  # Pipetower can delete it with an expired Set-Cookie


@dataclass(frozen=True)
class ThirdPartyScript:
    name: str
    src: str
    purpose: str
    category: str  # a key of CATEGORIES
    cookies: tuple[ScriptCookie, ...] = ()

    @property
    def purpose_key(self) -> str:
        """The consent purpose (privacy.models.Purpose value) this script needs."""
        return CATEGORIES[self.category]

    @property
    def category_words(self) -> str:
        return CATEGORY_WORDS[self.category]

    @property
    def origin(self) -> str:
        parts = urlsplit(self.src)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def removable(self) -> list[ScriptCookie]:
        return [c for c in self.cookies if c.removable]

    @property
    def not_removable(self) -> list[ScriptCookie]:
        return [c for c in self.cookies if not c.removable]


def _fail(detail: str) -> ConfigurationError:
    return ConfigurationError(f"{VARIABLE}: {detail}")


def _text(entry: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(f"{where} needs a {key!r} (text)")
    return value.strip()


def _cookie(raw: Any, where: str) -> ScriptCookie:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise _fail(f"{where}: each cookie is a name or an object with a 'name'")
    unknown = set(raw) - {"name", "lifetime", "domain", "removable"}
    if unknown:
        raise _fail(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = _text(raw, "name", where)
    if any(ch in _COOKIE_NAME_FORBIDDEN for ch in name):
        raise _fail(f"{where}: {name!r} is not a valid cookie name")
    domain = _text(raw, "domain", where, required=False)
    removable = raw.get("removable", not domain)
    if not isinstance(removable, bool):
        raise _fail(f"{where}: 'removable' is true or false")
    return ScriptCookie(
        name=name,
        lifetime=_text(raw, "lifetime", where, required=False),
        domain=domain,
        removable=removable,
    )


def parse_third_party_scripts(raw: str, *, production: bool = False) -> list[ThirdPartyScript]:
    """The scripts declared in `raw` (JSON), or a ConfigurationError saying what is wrong."""
    if not raw.strip():
        return []
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _fail(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, list):
        raise _fail('a JSON list of scripts, e.g. [{"name": ..., "src": ...}]')
    scripts: list[ThirdPartyScript] = []
    for index, entry in enumerate(data, 1):
        where = f"script {index}"
        if not isinstance(entry, dict):
            raise _fail(f"{where} is not an object")
        unknown = set(entry) - {"name", "src", "purpose", "category", "cookies"}
        if unknown:
            raise _fail(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        name = _text(entry, "name", where)
        where = f"script {index} ({name})"
        src = _text(entry, "src", where)
        parts = urlsplit(src)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise _fail(f"{where}: 'src' must be a full http(s) address, not {src!r}")
        if production and parts.scheme != "https":
            raise _fail(f"{where}: 'src' must use https in production")
        category = entry.get("category")
        if category not in CATEGORIES:
            raise _fail(f"{where}: 'category' is one of {', '.join(CATEGORIES)}, not {category!r}")
        cookies = entry.get("cookies", [])
        if not isinstance(cookies, list):
            raise _fail(f"{where}: 'cookies' is a list")
        scripts.append(
            ThirdPartyScript(
                name=name,
                src=src,
                purpose=_text(entry, "purpose", where),
                category=category,
                cookies=tuple(_cookie(c, f"{where}, cookie {i}") for i, c in enumerate(cookies, 1)),
            )
        )
    names = [s.name for s in scripts]
    if len(set(names)) != len(names):
        raise _fail("two scripts have the same name")
    return scripts


def configured_scripts() -> list[ThirdPartyScript]:
    from django.conf import settings

    return list(getattr(settings, "THIRD_PARTY_SCRIPTS", []))


def script_cookie_delete(response: Any, cookie: ScriptCookie) -> None:
    """Ask the browser to drop a cookie Pipetower can remove (expiry in the past)."""
    response.delete_cookie(cookie.name, path="/", domain=cookie.domain or None, samesite="Lax")


def withdrawn_scripts(*, analytics: bool, ab_testing: bool) -> list[ThirdPartyScript]:
    """The configured scripts whose category these choices leave off."""
    allowed = {"analytics": analytics, "ab_testing": ab_testing}
    return [s for s in configured_scripts() if not allowed[s.category]]


def withdrawal_notice(scripts: list[ThirdPartyScript]) -> tuple[list[str], list[str], str]:
    """For scripts whose consent is off: the cookie names Pipetower removes, those it
    cannot (with the website that stores them), and a sentence saying both."""
    removed = sorted({c.name for s in scripts for c in s.removable})
    kept = sorted(
        {f"{c.name} ({c.domain})" if c.domain else c.name for s in scripts for c in s.not_removable}
    )
    parts = []
    if removed:
        parts.append(f"Pipetower removed these cookies: {', '.join(removed)}.")
    if kept:
        parts.append(
            "Pipetower cannot remove these, because other websites store them: "
            f"{', '.join(kept)}. Remove them in your browser's settings."
        )
    return removed, kept, " ".join(parts)
