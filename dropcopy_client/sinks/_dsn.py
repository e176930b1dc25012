"""Connection strings without their passwords, for logs, reprs and error messages (no psycopg needed)."""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["password_of", "redact_dsn", "scrub"]

MASK = "***"
_URI_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<password>[^&#]*)", re.IGNORECASE)
# key = value form: password=secret  or  password = 'sec ret'
_KV_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<password>'(?:[^'\\]|\\.)*'|[^\s']\S*)", re.IGNORECASE
)


def _is_uri(dsn: str) -> bool:
    return "://" in dsn.split(" ", 1)[0]


def redact_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***`` (URI userinfo, URI ``?password=``, ``password=...``)."""
    if not _is_uri(dsn):
        return _KV_PASSWORD.sub(lambda m: m.group("head") + MASK, dsn)
    userinfo_start = dsn.index("://") + 3
    authority_end = len(dsn)
    for mark in "/?#":
        index = dsn.find(mark, userinfo_start)
        if index >= 0:
            authority_end = min(authority_end, index)
    # the userinfo ends at the last "@" of the authority (a password may hold a raw "@")
    at = dsn.rfind("@", userinfo_start, authority_end)
    if at >= 0 and ":" in dsn[userinfo_start:at]:
        user = dsn[userinfo_start:at].split(":", 1)[0]
        dsn = f"{dsn[:userinfo_start]}{user}:{MASK}{dsn[at:]}"
    return _URI_QUERY_PASSWORD.sub(lambda m: m.group("head") + MASK, dsn)


def password_of(dsn: str) -> str | None:
    """The password written in ``dsn``, if any (best effort, never raises)."""
    try:
        if _is_uri(dsn):
            query = _URI_QUERY_PASSWORD.search(dsn)
            if query:
                return urllib.parse.unquote(query.group("password")) or None
            netloc = urllib.parse.urlsplit(dsn).netloc
            userinfo, sep, _ = netloc.rpartition("@")
            if sep and ":" in userinfo:
                return urllib.parse.unquote(userinfo.split(":", 1)[1]) or None
            return None
        match = _KV_PASSWORD.search(dsn)
        if match is None:
            return None
        value = match.group("password")
        if value.startswith("'") and value.endswith("'") and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        return value or None
    except ValueError:
        return None


def scrub(text: str, dsn: str) -> str:
    """``text`` (an error message, say) with the password of ``dsn`` and the DSN itself masked."""
    password = password_of(dsn)
    text = text.replace(dsn, redact_dsn(dsn))
    if password and len(password) >= 3:
        for form in {password, urllib.parse.quote(password, safe=""), urllib.parse.quote(password)}:
            text = text.replace(form, MASK)
    return text
