"""The one rule that keeps credentials out of files and messages: every URL's password and secret-named query values
become ``***``.

    postgresql://me:pa@ss@db:5432/x?sslmode=require&password=pw  ->  postgresql://me:***@db:5432/x?sslmode=require&password=***

A URL is ``scheme://`` up to whitespace or a quote. Its userinfo password runs from the first ``:`` to the *last* ``@``
before the host, so an unencoded ``@`` in a password hides its tail too. A query parameter whose name holds
``pass``, ``pwd``, ``secret``, ``token``, ``key``, ``credential`` or ``auth`` (any case) has its value masked.
``${VAR}`` references stay: they name a variable, not its value.
"""

from __future__ import annotations

import re

MASK = "***"
URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*://(?:[^\s'"<>`]*[^\s'"<>`:.,;)])?""")  # not the sentence's ':'/'.'
SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|credential|auth", re.IGNORECASE)
ENV_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def mask_secrets(text: str, secret: str | None = None) -> str:
    """``text`` with every URL credential (and the literal ``secret``, when given) replaced by ``***``."""
    if secret and not ENV_REF.fullmatch(secret):
        text = text.replace(secret, MASK)
    if "://" not in text:
        return text
    return URL.sub(lambda m: mask_url(m.group(0)), text)


def mask_url(url: str) -> str:
    """One URL with its userinfo password and secret-named query values as ``***``."""
    scheme, _, rest = url.partition("://")
    rest = _mask_userinfo(rest)
    head, q, query = rest.partition("?")
    if q:
        query = re.sub(r"([^&;=#]+)=([^&;#]*)", _mask_param, query)
    return f"{scheme}://{head}{q}{query}"


def _mask_userinfo(rest: str) -> str:
    """``user:password@host/...`` -> ``user:***@host/...``; the host starts after the last ``@`` before the path."""
    first_at = rest.find("@")
    colon = rest.find(":")
    if first_at < 0 or colon < 0 or colon > first_at or "/" in rest[:colon]:
        return rest
    path = rest.find("/", first_at)
    authority = rest if path < 0 else rest[:path]
    at = authority.rfind("@")
    password = authority[colon + 1 : at]
    if not password or ENV_REF.fullmatch(password):
        return rest
    return f"{rest[: colon + 1]}{MASK}{rest[at:]}"


def _mask_param(m: re.Match) -> str:
    name, value = m.group(1), m.group(2)
    if value and SECRET_NAME.search(name) and not ENV_REF.fullmatch(value):
        return f"{name}={MASK}"
    return m.group(0)


def masked(obj):
    """``obj`` (JSON-like: dicts, lists, strings) with ``mask_secrets`` applied to every string, keys included."""
    if isinstance(obj, str):
        return mask_secrets(obj)
    if isinstance(obj, dict):
        return {masked(k): masked(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [masked(v) for v in obj]
    return obj


def unencoded_at(url: str) -> bool:
    """True when the userinfo of ``url`` holds more than one ``@``: the password has an unencoded ``@``, which
    SQLAlchemy would read as part of the host (and print in its errors)."""
    rest = url.partition("://")[2]
    first_at = rest.find("@")
    if first_at < 0:
        return False
    path = rest.find("/", first_at)
    authority = rest if path < 0 else rest[:path]
    return authority.count("@") > 1
