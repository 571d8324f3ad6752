"""The hook's config as ``crashkit hook install`` writes it: whatever the values, ``tomllib``
reads back exactly what was written (a value the hook cannot read would make the installed
hook run silently with its defaults)."""

from __future__ import annotations

import tomllib
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.corehook.config import HookConfig, parse_config, render_config

paths = st.text(min_size=1).map(lambda s: "/" + s.replace("\0", ""))


@settings(max_examples=300, deadline=None)
@given(spool=paths, log_file=st.one_of(st.none(), paths),
       ignored=st.lists(st.text(), max_size=5), budget=st.floats(min_value=0, max_value=1e6))
def test_rendered_config_round_trips(spool: str, log_file: str | None, ignored: list[str],
                                     budget: float) -> None:
    cfg = replace(HookConfig(), spool=spool, log_file=log_file, ignored_paths=tuple(ignored),
                  analysis_budget=budget)
    text = render_config(cfg)
    back = parse_config(tomllib.loads(text))
    assert back.warnings == ()
    assert back == cfg


def test_a_newline_in_a_value_is_escaped_not_written_raw() -> None:
    cfg = replace(HookConfig(), spool="/var/spool/crash\nkit", ignored_paths=("a\x1b[2J", 'q"uote'))
    text = render_config(cfg)
    assert "crash\nkit" not in text
    assert parse_config(tomllib.loads(text)) == cfg
