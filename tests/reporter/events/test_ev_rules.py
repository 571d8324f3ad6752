"""report_event.conf parsing against libreport's own rule fixtures and real hosts' files.

Expected values: libreport's tests/load_rule_list.at for tests/rules/ (rule counts, the
conditions of simple/newline_in_event/newline_condition/conditions, a command substring
per file), and for the event configuration real hosts carry, the rules read off the files
by hand (file, EVENT value, other conditions), in libreport's order: report_event.conf's
own rules after the files its first two lines include, events.d/*.conf in glob order.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reporter.events.rules import load_rules, parse_rules, split_lines, split_rule
from reporter.events.rules import Include, Rule

# load_rule_list.at: load_rule_list_rule_count / _empty / _conditions / _command
RULE_COUNTS = {"simple": 1, "oneline": 1, "include_simple": 1, "include_multiple": 4,
               "include_right_after_event": 2, "newline_in_event": 1, "newline_condition": 1,
               "comments": 2, "consecutive_events": 2, "empty": 0, "only_comments": 0}
CONDITIONS = {"simple": ["EVENT=report-gui"], "newline_in_event": ["EVENT=report-gui"],
              "newline_condition": ["EVENT=report-gui", "type=libreport"],
              "conditions": ["EVENT=test", "t=t", "x=2", "a=3"]}
COMMANDS = {"simple": "echo 'yes'", "oneline": "command", "newline_in_event": "echo 'yes'",
            "newline_condition": "this_is_not_a_condition=pls"}

# The event-conf fixture, read by hand: "file EVENT=x cond ...".
EVENT_CONF_RULES = """
abrt EVENT=post-create container_cmdline= remote!=1 component=
abrt EVENT=post-create container_cmdline!= remote!=1
abrt EVENT=post-create remote!=1
abrt EVENT=post-create runlevel= remote!=1
abrt EVENT=post-create remote=1
abrt EVENT=open-gui
abrt EVENT=notify
abrt EVENT=notify-dup
anaconda EVENT=workflow_AnacondaFedora component=anaconda
anaconda EVENT=workflow_AnacondaRHELBugzilla component=anaconda
anaconda EVENT=workflow_AnacondaUpload component=anaconda
bugzilla EVENT=report_Bugzilla analyzer=libreport
bugzilla EVENT=watch_Bugzilla reported_to~=Bugzilla
ccpp EVENT=post-create type=CCpp remote!=1
ccpp EVENT=collect_xsession_errors type=CCpp dso_list~=.*/libX11.*
ccpp EVENT=analyze_LocalGDB type=CCpp
ccpp EVENT=report_Bugzilla type=CCpp duphash!=
ccpp EVENT=report_uReport type=CCpp
ccpp EVENT=post_report type=CCpp
ccpp EVENT=analyze_CCpp type=CCpp
ccpp EVENT=report-gui type=CCpp
ccpp EVENT=report-cli type=CCpp
ccpp EVENT=report_systemd-journal type=CCpp analyzer=abrt-journal-core
koops EVENT=post-create type=Kerneloops remote!=1
koops EVENT=report_Bugzilla type=Kerneloops
koops EVENT=report_uReport type=Kerneloops
koops EVENT=post_report type=Kerneloops
koops EVENT=report-gui type=Kerneloops mce!=non-fatal
koops EVENT=report-cli type=Kerneloops
koops EVENT=report_systemd-journal type=Kerneloops
machine-id EVENT=post-create remote!=1
mailx EVENT=notify
mailx EVENT=notify-dup
mailx EVENT=report_Mailx
print EVENT=report_Logger
python3 EVENT=post-create type=Python3 remote!=1
python3 EVENT=report_Bugzilla type=Python3 component!=anaconda
python3 EVENT=report_uReport type=Python3
python3 EVENT=post_report type=Python3
python3 EVENT=report-gui type=Python3 component!=anaconda
python3 EVENT=report-cli type=Python3 component!=anaconda
python3 EVENT=report_systemd-journal type=Python3
uploader EVENT=report_Uploader
virtuozzo EVENT=post-create executable~=.*/prl_.*
virtuozzo EVENT=post-create executable~=.*/qemu-system.*
virtuozzo EVENT=post-create executable~=.*/qemu-kvm.*
virtuozzo EVENT=post-create executable~=.*/vz.*
vmcore EVENT=post-create type=vmcore remote!=1
vmcore EVENT=analyze_VMcore type=vmcore
vmcore EVENT=report_Kerneloops type=vmcore
vmcore EVENT=report_Bugzilla type=vmcore
vmcore EVENT=post_report type=vmcore
vmcore EVENT=report_uReport type=vmcore
vmcore EVENT=report-gui type=vmcore
vmcore EVENT=report-cli type=vmcore
vmcore EVENT=report_systemd-journal type=vmcore
xorg EVENT=post-create type=xorg remote!=1
xorg EVENT=report_Bugzilla type=xorg
xorg EVENT=report-gui type=xorg
xorg EVENT=report-cli type=xorg
xorg EVENT=report_systemd-journal type=xorg
report EVENT=report-gui type=libreport
report EVENT=report-cli type=libreport
"""


def _label(rule: Rule) -> str:
    base = os.path.basename(rule.source)
    short = base.removesuffix("_event.conf").removesuffix(".conf")
    return " ".join([short, *rule.conditions])


@pytest.mark.parametrize("name", sorted(RULE_COUNTS))
def test_libreport_rule_fixtures(fixtures_dir: Path, name: str) -> None:
    loaded = load_rules(str(fixtures_dir / "libreport-rules" / name))
    assert loaded.warnings == []
    assert len(loaded.rules) == RULE_COUNTS[name]
    if name in CONDITIONS:
        assert [c for r in loaded.rules for c in r.conditions] == CONDITIONS[name]
    if name in COMMANDS:
        assert all(COMMANDS[name] in r.command for r in loaded.rules)


def test_conditions_fixture_has_all_words(fixtures_dir: Path) -> None:
    loaded = load_rules(str(fixtures_dir / "libreport-rules" / "conditions"))
    assert loaded.rules[0].conditions == ("EVENT=test", "t=t", "x=2", "a=3")
    assert loaded.rules[0].command == "echo 'yes'"


def test_event_conf_fixture_rules_in_libreport_order(fixtures_dir: Path) -> None:
    root = fixtures_dir / "event-conf" / "report_event.conf"
    loaded = load_rules(str(root))
    assert loaded.warnings == []
    expected = [line for line in EVENT_CONF_RULES.strip().splitlines()]
    assert [_label(r) for r in loaded.rules] == expected
    # every file of events.d was read, report_event.conf first
    names = [os.path.basename(f) for f in loaded.files]
    assert names[0] == "report_event.conf"
    assert sorted(names[1:]) == sorted(os.listdir(fixtures_dir / "event-conf" / "events.d"))


def test_event_conf_commands(fixtures_dir: Path) -> None:
    loaded = load_rules(str(fixtures_dir / "event-conf" / "report_event.conf"))
    by = {_label(r): r for r in loaded.rules}
    # one-line rule: the command follows the conditions on the EVENT line
    assert by["mailx EVENT=report_Mailx"].command == "reporter-mailx"
    assert by["uploader EVENT=report_Uploader"].command == "reporter-upload"
    # condition-only rules have no command
    assert by["anaconda EVENT=workflow_AnacondaFedora component=anaconda"].command == ""
    # a multi-line command keeps its lines, indented comments and blank lines included
    post = by["ccpp EVENT=post-create type=CCpp remote!=1"].command
    assert post.startswith("if grep '^TracerPid:[[:space:]]*[123456789]' proc_pid_status")
    assert "abrt-action-analyze-c &&" in post and post.count("\n") > 40
    # the commented-out example rules of abrt_event.conf are gone with their command lines
    assert not any("reporter-upload -u scp" in r.command for r in loaded.rules)
    # a tab-indented rule (bugzilla_event.conf) is absorbed the same way
    assert "bugzilla_format_analyzer_libreport.conf" in by["bugzilla EVENT=report_Bugzilla analyzer=libreport"].command


def test_word_loop_corner_cases() -> None:
    # conditions stop at the first word without '=', and never continue on the next line
    assert split_rule("EVENT=a x=1 cmd y=2") == (("EVENT=a", "x=1"), "cmd y=2")
    assert split_rule("EVENT=a x=1\n  y=2 cmd") == (("EVENT=a", "x=1"), "y=2 cmd")
    assert split_rule("EVENT=a") == (("EVENT=a",), "")
    # a word counts as a condition whenever it holds '=' anywhere
    assert split_rule("EVENT=a a==b --opt=1 run") == (("EVENT=a", "a==b", "--opt=1"), "run")
    # "EVENTx" starts a rule without conditions (it then matches every event)
    lines = ["EVENTx run-me", "includefoo", "#c", "EVENT=b", "\tcmd", "include sub/*.conf"]
    items = list(parse_rules(lines, "f"))
    assert items[0] == Rule((), "EVENTx run-me", "f", 1)
    assert items[1] == Rule(("EVENT=b",), "cmd", "f", 4)
    assert items[2] == Include("sub/*.conf", 6)


def test_lines_as_fgetline() -> None:
    assert split_lines(b"a\nb") == ["a", "b"]
    assert split_lines(b"a\nb\n") == ["a", "b"]
    assert split_lines(b"a\0junk\n\n") == ["a", ""]


def test_include_relative_absolute_missing_and_depth(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "2.conf").write_text("EVENT=two\n  b\n")
    (tmp_path / "d" / "1.conf").write_text("EVENT=one\n  a\n")
    (tmp_path / "abs.conf").write_text("EVENT=abs\n")
    (tmp_path / "main").write_text(f"EVENT=first\ninclude d/*.conf\ninclude {tmp_path}/abs.conf\n"
                                   "include nothing-here/*.conf\nEVENT=last\n")
    loaded = load_rules(str(tmp_path / "main"))
    assert [r.events[0] for r in loaded.rules] == ["first", "one", "two", "abs", "last"]
    # a file that includes itself stops after 32 levels, like libreport
    (tmp_path / "loop").write_text("EVENT=x\ninclude loop\n")
    assert len(load_rules(str(tmp_path / "loop")).rules) == 33
    # an unreadable file is a warning, not an error
    missing = load_rules(str(tmp_path / "absent.conf"))
    assert missing.rules == [] and "Can't open" in missing.warnings[0]
