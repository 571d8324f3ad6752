"""``crashkit completion bash|zsh|man``, and the generator of what it prints: the static bash
and zsh completion scripts and the man pages crashkit(8), crashkit-hook(8) and coripper(1).

All of them are generated from the argparse definitions themselves (the full ``crashkit``
parser of :func:`collectors.cli.build_parser`, coripper's :func:`coripper.cli.build_parser`,
and the hook's argv table in :mod:`collectors.corehook.args`), then checked in under
``collectors/data/`` and shipped in the package; tests/test_cli_docs.py regenerates them
and fails when they differ, so they cannot drift. After changing a command's options::

    python -m collectors.clidocs --write

Completion is static (shtab), so pressing TAB costs no interpreter start-up; printing a
shipped file is all ``crashkit completion`` does at run time.
"""

from __future__ import annotations

import argparse
import os
import sys

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SCRIPTS = {"bash": ("completion/crashkit.bash", "completion/coripper.bash"),
           "zsh": ("completion/_crashkit", "completion/_coripper")}
MAN_PAGES = ("man/man8/crashkit.8", "man/man8/crashkit-hook.8", "man/man1/coripper.1")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``completion``."""
    p = subparsers.add_parser(
        "completion", help="print the bash or zsh completion script",
        description="Print the static completion script of crashkit and coripper for bash or zsh "
                    "(e.g. crashkit completion bash > /etc/bash_completion.d/crashkit, or "
                    "crashkit completion zsh > \"${fpath[1]}/_crashkit\"), or with 'man' the "
                    "directory of the man pages (man -M \"$(crashkit completion man)\" crashkit).")
    p.add_argument("shell", choices=("bash", "zsh", "man"), help="bash, zsh, or man")
    p.set_defaults(func=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    """Print the shipped script (or the man directory)."""
    if args.shell == "man":
        print(os.path.join(DATA, "man"))
        return 0
    for rel in SCRIPTS[args.shell]:
        with open(os.path.join(DATA, rel), encoding="utf-8") as f:
            sys.stdout.write(f.read())
    return 0


# ------------------------------------------------------------------------ generation


def _coripper_parser() -> argparse.ArgumentParser:
    from coripper.cli import build_parser

    parser = build_parser()
    parser.prog = "coripper"
    return parser


def _crashkit_parser() -> argparse.ArgumentParser:
    from collectors.cli import build_parser

    return build_parser()


def completions() -> dict[str, str]:
    """The completion scripts, by path below :data:`DATA`."""
    import shtab

    out = {}
    for shell, (crashkit_rel, coripper_rel) in SCRIPTS.items():
        out[crashkit_rel] = shtab.complete(_crashkit_parser(), shell=shell)
        out[coripper_rel] = shtab.complete(_coripper_parser(), shell=shell)
    return out


def generate() -> dict[str, str]:
    """Every generated file, by path below :data:`DATA`."""
    from collectors import manpage

    files = completions()
    files[MAN_PAGES[0]] = manpage.crashkit_page(_crashkit_parser())
    files[MAN_PAGES[1]] = manpage.hook_page(_crashkit_parser())
    files[MAN_PAGES[2]] = manpage.coripper_page(_coripper_parser())
    return files


def stale() -> list[str]:
    """The shipped files that differ from what the parsers generate now."""
    out = []
    for rel, text in generate().items():
        try:
            with open(os.path.join(DATA, rel), encoding="utf-8") as f:
                if f.read() == text:
                    continue
        except FileNotFoundError:
            pass
        out.append(rel)
    return out


def write() -> list[str]:
    """Regenerate the shipped files; returns those that changed."""
    changed = stale()
    for rel, text in generate().items():
        if rel in changed:
            path = os.path.join(DATA, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python -m collectors.clidocs [--write]``: check (exit 1 when stale) or regenerate."""
    parser = argparse.ArgumentParser(prog="python -m collectors.clidocs", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="regenerate the shipped files")
    args = parser.parse_args(argv)
    os.environ["COLUMNS"] = "80"  # help text is wrapped the same wherever this runs
    if args.write:
        for rel in write():
            print(f"wrote {os.path.join(DATA, rel)}")
        return 0
    out = stale()
    for rel in out:
        print(f"stale: {os.path.join(DATA, rel)} (run python -m collectors.clidocs --write)")
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main())
