"""The bundle's cleaners: the safety filter that always runs, and ``--clean``'s obfuscation.

:func:`redact_private_keys` removes PEM private key blocks from anything the bundle holds,
with or without ``--clean``.

:class:`Cleaner` replaces host names, domain names, IPv4 and IPv6 addresses, MAC addresses
and user names with stable stand-ins (``host0``, ``domain0.example``, ``100.64.0.1``,
``2001:db8::1``, ``02:00:00:00:00:01``, ``user0``) and removes secrets (``password=...``,
``token: ...``, ``Authorization: ...``, ``scheme://user:pass@``). One :class:`Mapping`
serves the whole bundle and the HTML report, so a name maps to the same stand-in everywhere;
it is written to a private file outside the archive.

Speed is the point (sos's cleaner needs minutes for what this does in a second): every
detector is anchored on a literal byte (``.``, ``:``, ``=``) inside one compiled pattern, so
the regex engine's C loop skips most of the text, and Python runs only for real hits. Left
context is checked with look-behinds placed after the anchor. Known words (host, domain and
user names) are replaced by one C-level ``sub`` each, with a literal-first pattern.
Loopback, unspecified, broadcast and netmask-shaped addresses are kept.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

CHUNK = 1 << 20
REDACTED = b"********"

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.S)
_PEM_SUB = b"-----BEGIN \\1PRIVATE KEY----- [removed by crashkit] -----END \\1PRIVATE KEY-----"


def redact_private_keys(data: bytes) -> bytes:
    """*data* with every PEM private key block replaced (an unterminated one to the end)."""
    if b"PRIVATE KEY-----" not in data:
        return data
    return _PEM.sub(_PEM_SUB, data)


#: Keys whose value is a secret (case-insensitive, matched at the end of the key).
SECRET_KEYS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "api_key", "api-key",
               "access_key", "accesskey", "credentials", "credential", "private_key", "authorization")
_DIG = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_LABELS = re.compile(rb"[A-Za-z0-9][A-Za-z0-9.-]*$")
_HEXRUN = re.compile(rb"[0-9A-Fa-f:.]*")
_VALUE = re.compile(rb"[ \t]*[\"']?([^\s\"'&;,]+)")
_LINE_VALUE = re.compile(rb"[ \t]*([^\r\n]+)")
_NETMASK_OCTETS = frozenset({0, 128, 192, 224, 240, 248, 252, 254, 255})


#: Literal stems looked for in the lower-cased text; a hit is a secret only when the whole
#: key around it ends with one of :data:`SECRET_KEYS` and a ``=`` or ``:`` follows.
SECRET_STEMS = (b"pass", b"secret", b"token", b"key", b"credential", b"authorization")
_KEY_TAIL = re.compile(rb"[\w.-]*")
_SEPARATOR = re.compile(rb"[\"']?[ \t]*[=:][ \t]*[\"']?")
_SECRET_KEYS_B = tuple(k.encode() for k in SECRET_KEYS)


def _detectors(domains: Iterable[bytes]) -> list[tuple[str, re.Pattern[bytes]]]:
    """One literal-first pattern per detector (each pass is a fast C search)."""
    out = [("ip4", re.compile(rb"\.\d{1,3}\.\d{1,3}\.\d{1,3}")),
           ("colon", re.compile(rb":[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:|::")),
           ("url", re.compile(rb"://[^\s/:@]{1,256}:[^\s/@]{1,256}@"))]
    for d in sorted(set(domains), key=len, reverse=True):
        out.append(("domain", re.compile(rb"\." + re.escape(d) + rb"(?![\w-])")))
    return out


@dataclass
class Mapping:
    """Original -> stand-in, per kind; consistent for the whole bundle; thread-safe."""

    maps: dict[str, dict[str, str]] = field(default_factory=lambda: {
        "hostname": {}, "domain": {}, "ipv4": {}, "ipv6": {}, "mac": {}, "username": {}})
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, kind: str, original: str) -> str:
        table = self.maps[kind]
        found = table.get(original)
        if found is not None:
            return found
        with self._lock:
            found = table.get(original)
            if found is None:
                found = table[original] = _stand_in(kind, len(table))
            return found

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.maps.items()}

    def save(self, path: str) -> None:
        """The private mapping file (mode 0600, written atomically)."""
        tmp = f"{path}.tmp{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"note": "crashkit diagnose --clean: original -> stand-in. Keep private.",
                       **self.maps}, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)


def _stand_in(kind: str, n: int) -> str:
    if kind == "hostname":
        return f"host{n}"
    if kind == "domain":
        return f"domain{n}.example"
    if kind == "ipv4":
        n += 1
        return f"100.{64 + (n >> 16) % 64}.{(n >> 8) & 255}.{n & 255}"
    if kind == "ipv6":
        return f"2001:db8::{n + 1:x}"
    if kind == "mac":
        n += 1
        return f"02:00:00:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}"
    return f"user{n}"


def _keep_ipv4(octets: list[int]) -> bool:
    if octets[0] in (0, 127) or octets == [255, 255, 255, 255]:
        return True
    if all(o in _NETMASK_OCTETS for o in octets):  # 255.255.254.0 shaped
        bits = "".join(f"{o:08b}" for o in octets)
        return "01" not in bits and octets[0] == 255
    return False


class Cleaner:
    """Obfuscates bytes chunk by chunk with one shared :class:`Mapping`.

    *hostnames*, *domains* and *usernames* are what the host itself says it is called
    (hostname, FQDN, /etc/hosts, resolv.conf search domains, local users); names of other
    hosts in a known domain are found as ``label.domain``.
    """

    def __init__(self, hostnames: Iterable[str] = (), domains: Iterable[str] = (),
                 usernames: Iterable[str] = (), mapping: Mapping | None = None) -> None:
        self.mapping = mapping or Mapping()
        self.domains = sorted({d.strip(".").lower() for d in domains if d.strip(".")}, key=len, reverse=True)
        hosts = {h.lower() for h in hostnames if h}
        for fqdn in list(hosts):
            for d in self.domains:
                if fqdn.endswith("." + d):
                    hosts.add(fqdn[: -len(d) - 1])
        self._detectors = _detectors(d.encode() for d in self.domains)
        words: list[tuple[str, str, str]] = []
        fqdns: list[tuple[str, str, str]] = []
        for h in hosts:
            for d in self.domains:
                if h.endswith("." + d) and h != d:
                    stand_in = self.mapping.get("hostname", h[: -len(d) - 1]) + "." + self.mapping.get("domain", d)
                    fqdns.append(("fqdn", h, stand_in))
        for d in self.domains:
            words.append(("domain", d, self.mapping.get("domain", d)))
        for h in hosts:
            if "." in h and any(h.endswith("." + d) for d in self.domains):
                continue  # an FQDN: its host part and its domain are replaced separately
            words.append(("hostname", h, self.mapping.get("hostname", h)))
        for u in sorted({u for u in usernames if u}):
            words.append(("username", u, self.mapping.get("username", u)))
        words.sort(key=lambda w: len(w[1]), reverse=True)
        self._words = [(_word_pattern(w.encode()), rep.encode()) for _, w, rep in words]
        # Known FQDNs go first, as whole words: the domain detector then only meets the names
        # of other hosts in the domain, which are rare.
        self._fqdns = [(_word_pattern(w.encode()), rep.encode()) for _, w, rep in
                       sorted(fqdns, key=lambda w: len(w[1]), reverse=True)]
        self._memo: dict[tuple[str, bytes], bytes | None] = {}

    # ------------------------------------------------------------------ text
    def clean(self, data: bytes) -> bytes:
        """*data* obfuscated (line-aligned chunks of about :data:`CHUNK` bytes)."""
        if len(data) <= CHUNK:
            return self._chunk(data)
        out, i, n = [], 0, len(data)
        while i < n:
            j = data.find(b"\n", i + CHUNK)
            j = n if j < 0 else j + 1
            out.append(self._chunk(data[i:j]))
            i = j
        return b"".join(out)

    def clean_text(self, text: str) -> str:
        return self.clean(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")

    def _chunk(self, data: bytes) -> bytes:
        data = redact_private_keys(data)
        for pattern, rep in self._fqdns:
            data = pattern.sub(rep, data)
        spans: list[tuple[int, int, bytes]] = []
        for kind, pattern in self._detectors:
            handler = getattr(self, "_" + kind)
            last = -1
            for m in pattern.finditer(data):
                if m.start() < last:
                    continue
                hit = handler(data, m)
                if hit is not None:
                    spans.append(hit)
                    last = hit[1]
        self._secrets(data, spans)
        if spans:
            spans.sort()
            parts, pos = [], 0
            for a, b, rep in spans:
                if a < pos:
                    continue
                parts.append(data[pos:a])
                parts.append(rep)
                pos = b
            parts.append(data[pos:])
            data = b"".join(parts)
        for pattern, rep in self._words:
            data = pattern.sub(rep, data)
        return data

    def _secrets(self, data: bytes, spans: list[tuple[int, int, bytes]]) -> None:
        low = data.lower()
        seen: set[int] = set()       # key ends already judged (a key may hold two stems)
        for stem in SECRET_STEMS:
            i = low.find(stem)
            while i >= 0:
                end = _KEY_TAIL.match(low, i + len(stem)).end()  # type: ignore[union-attr]
                if end not in seen:
                    seen.add(end)
                    head = _KEY_TAIL.match(low[max(0, i - 64):i][::-1]).end()  # type: ignore[union-attr]
                    key = low[i - head:end]
                    if key.endswith(_SECRET_KEYS_B):
                        hit = self._secret_value(data, end, key.endswith(b"authorization"))
                        if hit is not None:
                            spans.append(hit)
                i = low.find(stem, end)

    def _secret_value(self, data: bytes, end: int, whole_line: bool) -> tuple[int, int, bytes] | None:
        sep = _SEPARATOR.match(data, end)
        if sep is None or not sep.group(0).strip(b" \t\"'"):
            return None
        v = (_LINE_VALUE if whole_line else _VALUE).match(data, sep.end())
        if v is None or not v.group(1) or v.group(1) == REDACTED:
            return None
        return v.start(1), v.end(1), REDACTED

    # ------------------------------------------------------- detectors (hits)
    def _ip4(self, data: bytes, m: re.Match[bytes]) -> tuple[int, int, bytes] | None:
        s, e = m.span()
        a = s
        while a > 0 and s - a < 3 and data[a - 1] in _DIG:
            a -= 1
        if a == s or (a > 0 and (data[a - 1] in _DIG or data[a - 1] == 46)):
            return None
        n = len(data)
        if e < n and (data[e] in _DIG or (data[e] == 46 and e + 1 < n and data[e + 1] in _DIG)):
            return None
        tok = data[a:e]
        key = ("4", tok)
        if key not in self._memo:
            octets = [int(p) for p in tok.split(b".")]
            self._memo[key] = None if max(octets) > 255 or _keep_ipv4(octets) else \
                self.mapping.get("ipv4", tok.decode()).encode()
        rep = self._memo[key]
        return None if rep is None else (a, e, rep)

    def _colon(self, data: bytes, m: re.Match[bytes]) -> tuple[int, int, bytes] | None:
        s, e = m.span()
        a = s
        while a > 0 and data[a - 1] in _HEX:
            a -= 1
        b = _HEXRUN.match(data, e).end()  # type: ignore[union-attr]
        tok = data[a:b].rstrip(b".:")
        key = ("6", tok)
        if key not in self._memo:
            self._memo[key] = self._colon_token(tok)
        rep = self._memo[key]
        return None if rep is None else (a, a + len(tok), rep)

    def _colon_token(self, tok: bytes) -> bytes | None:
        if len(tok) == 17 and tok.count(b":") == 5 and all(len(g) == 2 for g in tok.split(b":")):
            mac = tok.decode().lower()
            if mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"):
                return None
            return self.mapping.get("mac", mac).encode()
        try:
            addr = ipaddress.IPv6Address(tok.decode())
        except ValueError:
            return None
        if addr.is_loopback or addr.is_unspecified or addr.is_multicast:
            return None
        return self.mapping.get("ipv6", str(addr)).encode()

    def _url(self, data: bytes, m: re.Match[bytes]) -> tuple[int, int, bytes] | None:
        s, e = m.span()
        user = data[s + 3: e - 1].split(b":", 1)[0]
        return s + 3, e - 1, self.mapping.get("username", user.decode("utf-8", "replace")).encode() + b":" + REDACTED

    def _domain(self, data: bytes, m: re.Match[bytes]) -> tuple[int, int, bytes] | None:
        s, e = m.span()
        left = _LABELS.search(data, max(0, s - 253), s)
        a = left.start() if left else s
        if a == s:
            return None  # the bare domain: the word pass replaces it
        host = data[a:s].decode("ascii", "replace").lower()
        domain = data[s + 1:e].decode("ascii", "replace").lower()
        return a, e, (self.mapping.get("hostname", host) + "." + self.mapping.get("domain", domain)).encode()


def _word_pattern(word: bytes) -> re.Pattern[bytes]:
    """*word* as a whole word; the literal comes first so the engine searches for it fast."""
    w = re.escape(word)
    return re.compile(w + rb"(?<![\w-]" + w + rb")(?![\w-])")


def learn_names(hostname: str, fqdn: str, hosts_file: str, resolv_conf: str,
                passwd: str, min_uid: int = 1000) -> tuple[set[str], set[str], set[str]]:
    """(host names, domains, user names) to obfuscate, from the host's own files (pure)."""
    hosts = {h for h in (hostname, fqdn) if h and h not in ("localhost", "(none)")}
    domains: set[str] = set()
    if "." in fqdn:
        domains.add(fqdn.split(".", 1)[1])
    for line in hosts_file.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and not words[0].startswith(("127.", "::1", "fe00:", "ff0")):
            for name in words[1:]:
                if "localhost" not in name and "ip6-" not in name:
                    hosts.add(name)
                    if "." in name:
                        domains.add(name.split(".", 1)[1])
    for line in resolv_conf.splitlines():
        words = line.split()
        if words and words[0] in ("search", "domain"):
            domains.update(w for w in words[1:] if "." in w)
    users = set()
    for line in passwd.splitlines():
        f = line.split(":")
        if len(f) >= 7 and f[2].isdigit() and min_uid <= int(f[2]) < 65534:
            users.add(f[0])
    domains.discard("")
    return hosts, {d.lower() for d in domains}, users
