"""Rust symbol names (the "v0" mangling, RFC 2603) as a reader wants them in a title.

Rust code in the kernel is built with ``-Csymbol-mangling-version=v0``, so its frames
print as ``_RNvMs3_NtCs..._11rust_binder7processNtB5_7Process10update_ref``. This
module turns such a name into ``<rust_binder::process::Process>::update_ref``: paths,
inherent and trait impls, back-references and the basic types; generic arguments,
crate disambiguators and the instantiating crate are left out (as a title wants them).
Anything it does not understand is returned unchanged. Pure, linear, no regex.
"""

from __future__ import annotations

_BASIC = {
    "a": "i8", "b": "bool", "c": "char", "d": "f64", "e": "str", "f": "f32", "h": "u8", "i": "isize",
    "j": "usize", "l": "i32", "m": "u32", "n": "i128", "o": "u128", "s": "i16", "t": "u16", "u": "()",
    "v": "...", "x": "i64", "y": "u64", "z": "!", "p": "_",
}
_MAX_DEPTH = 64


class _Bad(Exception):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text  # the symbol after "_R"
        self.i = 0
        self.depth = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def take(self) -> str:
        ch = self.peek()
        if not ch:
            raise _Bad
        self.i += 1
        return ch

    def base62(self) -> int:
        if self.peek() == "_":
            self.i += 1
            return 0
        value = 0
        while True:
            ch = self.take()
            if ch == "_":
                return value + 1
            if ch.isdigit():
                digit = ord(ch) - 48
            elif "a" <= ch <= "z":
                digit = ord(ch) - 87
            elif "A" <= ch <= "Z":
                digit = ord(ch) - 29
            else:
                raise _Bad
            value = value * 62 + digit

    def decimal(self) -> int:
        start = self.i
        while self.peek().isdigit():
            self.i += 1
        if start == self.i:
            raise _Bad
        return int(self.s[start:self.i])

    def disambiguator(self) -> None:
        if self.peek() == "s":
            self.i += 1
            self.base62()

    def identifier(self) -> str:
        self.disambiguator()
        if self.peek() == "u":
            self.i += 1  # punycode: kept as it is
        length = self.decimal()
        if self.peek() == "_":
            self.i += 1
        name = self.s[self.i:self.i + length]
        if len(name) != length:
            raise _Bad
        self.i += length
        return name

    def backref(self, parse: str) -> str:
        target = self.base62()
        if target >= self.i - 1:
            raise _Bad
        saved = self.i
        self.i = target
        out = self.path() if parse == "path" else self.type()
        self.i = saved
        return out

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _Bad

    def path(self) -> str:
        self.enter()
        try:
            tag = self.take()
            if tag == "C":
                return self.identifier()
            if tag == "M":
                self.disambiguator()
                self.path()
                return f"<{self.type()}>"
            if tag == "X":
                self.disambiguator()
                self.path()
                typ = self.type()
                return f"<{typ} as {self.path()}>"
            if tag == "Y":
                typ = self.type()
                return f"<{typ} as {self.path()}>"
            if tag == "N":
                namespace = self.take()
                parent = self.path()
                name = self.identifier()
                if namespace.isupper():
                    kind = {"C": "closure", "S": "shim"}.get(namespace, namespace)
                    return f"{parent}::{{{kind}{'#' if not name else ':' + name}}}"
                return f"{parent}::{name}" if name else parent
            if tag == "I":
                base = self.path()
                while self.peek() != "E":
                    self.generic_arg()
                self.i += 1
                return base
            if tag == "B":
                return self.backref("path")
            raise _Bad
        finally:
            self.depth -= 1

    def generic_arg(self) -> None:
        if self.peek() == "L":
            self.i += 1
            self.base62()
        elif self.peek() == "K":
            self.i += 1
            self.const()
        else:
            self.type()

    def const(self) -> None:
        if self.peek() == "p":
            self.i += 1
            return
        if self.peek() == "B":
            self.i += 1
            self.base62()
            return
        self.take()  # the type
        if self.peek() == "n":
            self.i += 1
        while self.take() != "_":
            pass

    def type(self) -> str:
        self.enter()
        try:
            ch = self.peek()
            if ch in _BASIC:
                self.i += 1
                return _BASIC[ch]
            if ch in "RQ":
                self.i += 1
                if self.peek() == "L":
                    self.i += 1
                    self.base62()
                return ("&" if ch == "R" else "&mut ") + self.type()
            if ch in "PO":
                self.i += 1
                return ("*const " if ch == "P" else "*mut ") + self.type()
            if ch == "S":
                self.i += 1
                return f"[{self.type()}]"
            if ch == "A":
                self.i += 1
                inner = self.type()
                self.const()
                return f"[{inner}; _]"
            if ch == "T":
                self.i += 1
                items = []
                while self.peek() != "E":
                    items.append(self.type())
                self.i += 1
                return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
            if ch == "B":
                self.i += 1
                return self.backref("type")
            if ch in "CMXYNI":
                return self.path()
            raise _Bad  # fn pointers and dyn types do not occur in frame names we title
        finally:
            self.depth -= 1


def demangle(name: str) -> str:
    """``name`` demangled when it is a Rust v0 symbol, else ``name`` itself."""
    if not name.startswith("_R") or len(name) < 4:
        return name
    body = name[2:]
    if body[:1].isdigit():  # encoding version
        body = body.lstrip("0123456789")
    parser = _Parser(body)
    try:
        out = parser.path()
    except (_Bad, RecursionError, ValueError):
        return name
    return out
