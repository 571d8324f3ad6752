"""Secrets out of everything that leaves the host: URLs, environ, cmdline, configs, logs.

* :func:`strip_url_credentials` drops ``user:password@`` from a URL (``reported_to``, logs).
* :func:`redact_text` rewrites text elements: ``NAME=value`` / ``NAME: value`` /
  ``"name": "value"`` whose name says secret (password, token, secret, key, credential,
  cookie, session, auth...), ``--password=x`` / ``--token x`` style options, ``Authorization:`` headers, and passwords inside URLs. Values
  become ``<redacted>``; names, structure and line counts stay, so a reader still sees
  what was set. It is applied to every text element of a bundle, the environment and
  command lines included, and to Sentry's event text.
* :class:`Scrubber` replaces known secret strings (the credentials a reporter was given)
  wherever they appear, for log lines and server messages.

Pure functions; :data:`REDACTED` is the replacement.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"

# A name is secret when one of its words (split at punctuation and camelCase) is one of these,
# or two adjacent words make one of the pairs. "PWD" alone is the working directory, not one.
_SECRET_TOKENS = frozenset({"password", "passwd", "pass", "passphrase", "passwords", "secret", "secrets",
                            "token", "tokens", "apikey", "credential", "credentials", "cookie", "cookies",
                            "auth", "authorization", "bearer", "jwt", "dsn", "signature", "privatekey",
                            "pwd", "pw", "sessionid", "secretkey", "accesskey"})
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"),
                           ("session", "id"), ("client", "secret"), ("account", "key"), ("master", "key")})
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_NOT_SECRET = frozenset({"pwd", "oldpwd"})
# NAME=value (environ lines, shell assignments, key=value configs, cmdline words)
_ASSIGN = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<sep>[ \t]*=[ \t]*)(?P<value>'[^']*'|\"[^\"]*\"|[^\s'\"]+)")
# "name": "value" (JSON) and name: value (YAML, headers)
_JSON_PAIR = re.compile(r"(?P<name>\"[^\"\n]{1,128}\")(?P<sep>\s*:\s*)(?P<value>\"(?:[^\"\\\n]|\\.)*\")")
_COLON_PAIR = re.compile(r"(?m)^(?P<indent>[ \t]*)(?P<name>[A-Za-z_][A-Za-z0-9_.\-]{0,127})(?P<sep>[ \t]*:[ \t]+)(?P<value>\S.*)$")
# --password secret / --token=secret (value in the next word or after =)
_OPTION_NEXT = re.compile(r"(?P<opt>(?<![\w-])--?[A-Za-z][A-Za-z0-9_-]*)(?P<sep>[ \t]+)(?P<value>'[^']*'|\"[^\"]*\"|[^\s'\"-][^\s'\"]*)")
_AUTH_HEADER = re.compile(r"(?i)(?P<name>(?:proxy-)?authorization)(?P<sep>[ \t]*[:=][ \t]*)(?P<value>[^\r\n]+)")
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^\s:/@'\"]*):(?P<password>[^\s@/'\"]+)@")


def is_secret_name(name: str) -> bool:
    """True when a variable/option/key name says it holds a secret (``DB_PASSWORD``,
    ``githubToken``, ``api-key``, ``MYSQL_PWD``; not ``PWD``, ``AUTHOR``, ``XAUTHORITY``)."""
    bare = name.strip("-")
    if bare.lower() in _NOT_SECRET:
        return False
    words = [w.lower() for w in _WORD_SPLIT.split(bare) if w]
    if any(w in _SECRET_TOKENS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:], strict=False))


def strip_url_credentials(url: str) -> str:
    """*url* without ``user:password@`` (libreport writes ``upload: URL=`` this way)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL_USERINFO.sub(lambda m: m.group("scheme"), url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _keep_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[0] + REDACTED + value[0]
    return REDACTED


def redact_text(text: str) -> str:
    """*text* with secret values replaced by ``<redacted>`` (see the module docstring)."""
    out = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{REDACTED}@", text)
    out = _AUTH_HEADER.sub(lambda m: m.group("name") + m.group("sep") + REDACTED, out)

    def assign(m: re.Match[str]) -> str:
        if not is_secret_name(m.group("name")) or m.group("value").startswith(REDACTED):
            return m.group(0)
        return m.group("name") + m.group("sep") + _keep_quotes(m.group("value"))

    out = _ASSIGN.sub(assign, out)

    def json_pair(m: re.Match[str]) -> str:
        if not is_secret_name(m.group("name")[1:-1]):
            return m.group(0)
        return m.group("name") + m.group("sep") + f'"{REDACTED}"'

    out = _JSON_PAIR.sub(json_pair, out)

    def colon_pair(m: re.Match[str]) -> str:
        if not is_secret_name(m.group("name")) or REDACTED in m.group("value"):
            return m.group(0)
        return m.group("indent") + m.group("name") + m.group("sep") + REDACTED

    out = _COLON_PAIR.sub(colon_pair, out)
    out = _OPTION_NEXT.sub(lambda m: m.group("opt") + m.group("sep") + _keep_quotes(m.group("value"))
                           if is_secret_name(m.group("opt")) and REDACTED not in m.group("value")
                           else m.group(0), out)
    return out


class Scrubber:
    """Replaces each known secret (credentials given to a reporter) in text."""

    def __init__(self, secrets: list[str | None] | tuple[str | None, ...] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        """Also hide *secret* from now on."""
        if secret and len(secret) >= 3 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return redact_text(strip_urls(text))


def strip_urls(text: str) -> str:
    """Every ``scheme://user:password@`` in *text* without its credentials."""
    return _URL_USERINFO.sub(lambda m: m.group("scheme"), text)


# ---------------------------------------------------------------- environ and cmdline elements
# Both hold libreport-quoted strings (reporter.elements.quote_arg): a bare word, or a word in
# single quotes with \' \" \\ \r \n \t \xNN escapes.

_UNESCAPE = {"'": "'", '"': '"', "\\": "\\", "r": "\r", "n": "\n", "t": "\t"}


def split_quoted(text: str) -> list[str]:
    """The strings of a libreport-quoted, space-separated text (``cmdline``)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t\n":
            i += 1
            continue
        if text[i] == "'":
            j = i + 1
            buf: list[str] = []
            while j < n and text[j] != "'":
                if text[j] == "\\" and j + 1 < n:
                    esc = text[j + 1]
                    if esc == "x" and j + 3 < n:
                        try:
                            buf.append(chr(int(text[j + 2:j + 4], 16)))
                            j += 4
                            continue
                        except ValueError:
                            pass
                    buf.append(_UNESCAPE.get(esc, esc))
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            out.append("".join(buf))
            i = j + 1
            continue
        j = i
        while j < n and text[j] not in " \t\n":
            j += 1
        out.append(text[i:j])
        i = j
    return out


def quote(arg: str) -> str:
    """libreport's quoting of one string (the text form of :func:`reporter.elements.quote_arg`)."""
    from reporter.elements import quote_arg

    return quote_arg(arg.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")


def _redact_arg(arg: str) -> str:
    name, eq, _value = arg.partition("=")
    if eq and is_secret_name(name):
        return f"{name}={REDACTED}"
    return strip_urls_keep_user(arg)


def strip_urls_keep_user(text: str) -> str:
    """Passwords in URLs replaced, user names kept (``https://bob:<redacted>@host``)."""
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{REDACTED}@", text)


def redact_cmdline(text: str) -> str:
    """A ``cmdline`` element with secret option values replaced: ``--password=x``,
    ``--password x``, ``TOKEN=x`` words and passwords in URLs."""
    args = split_quoted(text.rstrip("\n"))
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next and not arg.startswith("-"):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = arg.startswith("-") and "=" not in arg and is_secret_name(arg)
        out.append(_redact_arg(arg))
    tail = "\n" if text.endswith("\n") else ""
    return " ".join(quote(a) for a in out) + tail


def redact_environ(text: str) -> str:
    """An ``environ`` element (one quoted ``NAME=value`` a line) with secret values replaced."""
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        if not line:
            out.append(line)
            continue
        words = split_quoted(line)
        value = words[0] if len(words) == 1 else line
        out.append(quote(_redact_arg(value)) if len(words) == 1 else redact_text(line))
    return "\n".join(out)


#: Elements with their own redaction; every other text element gets :func:`redact_text`.
ELEMENT_REDACTORS = {"environ": redact_environ, "cmdline": redact_cmdline,
                     "container_cmdline": redact_cmdline}


def redact_element(name: str, text: str) -> str:
    """Redact element *name*'s text with the rule for that element."""
    return ELEMENT_REDACTORS.get(name, redact_text)(text)
