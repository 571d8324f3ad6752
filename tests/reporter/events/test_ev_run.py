"""Running events on real problem directories: conditions, order, environment, event_log.

Every command is run by /bin/sh in the directory, as libreport runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ev_helpers import make_dir  # noqa: E402

from reporter.events import engine, setup  # noqa: E402
from reporter.events.command import ShellCommand, trim_event_log  # noqa: E402
from reporter.events.options import EventCatalog, parse_event_xml  # noqa: E402
from reporter.events.rules import load_rules  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


def _run(conf: Path, path: Path, event: str, options: dict[str, str] | None = None) -> engine.EventRun:
    rules = load_rules(str(conf)).rules
    return engine.run_event(rules, str(path), event, ShellCommand(str(path), event, options or {}))


def test_rules_are_rechecked_before_each_command(tmp_path: Path) -> None:
    # The second rule only applies once the first has created 'foo' = bar (libreport's
    # "reordered rules work too" example), and the first rule runs only once.
    conf = tmp_path / "r.conf"
    conf.write_text("EVENT=post-create foo=bar\n    echo second >> order\n"
                    "EVENT=post-create\n    printf bar > foo; echo first >> order\n"
                    "EVENT=other\n    echo never >> order\n")
    d = make_dir(tmp_path / "spool", "d1", {})
    run = _run(conf, d, "post-create")
    assert [c.rc for c in run.commands] == [0, 0]
    assert (d / "order").read_text() == "first\nsecond\n"


def test_operators_regex_and_missing_elements(tmp_path: Path) -> None:
    conf = tmp_path / "r.conf"
    conf.write_text(
        "EVENT=e executable~=.*/qemu-kvm.* remote!=1 component=\n    echo regex >> hits\n"
        "EVENT=e executable~=^/usr/libexec/qemu-kvm$ \n    echo anchored >> hits\n"
        "EVENT=e executable~=qemu\\(-kvm\\)\\{1\\}$\n    echo bre-interval >> hits\n"
        "EVENT=e executable~=qemu-kvm+\n    echo ere-plus-is-literal >> hits\n"
        "EVENT=e maps~=^7f.*libc\n    echo any-line >> hits\n"
        "EVENT=e executable~=[\n    echo bad-regex >> hits\n"
        "EVENT=e executable!=/usr/libexec/qemu-kvm\n    echo inequal >> hits\n"
        "EVENT=e type=CCpp\n    echo equal >> hits\n")
    d = make_dir(tmp_path / "spool", "d2", {"executable": "/usr/libexec/qemu-kvm",
                                            "maps": "5555-6666 r-xp /bin/x\n7f00-7f01 r-xp /lib/libc.so.6\n"})
    _run(conf, d, "e")
    assert (d / "hits").read_text().split() == ["regex", "anchored", "bre-interval", "any-line", "equal"]


def test_exit_70_stops_the_chain_and_other_failures_stop_too(tmp_path: Path) -> None:
    conf = tmp_path / "r.conf"
    conf.write_text("EVENT=e\n    echo one >> log; exit 70\nEVENT=e\n    echo two >> log\n"
                    "EVENT=f\n    echo bad; exit 3\nEVENT=f\n    echo after >> log\n"
                    "EVENT=g\n    kill -TERM $$\n")
    d = make_dir(tmp_path / "spool", "d3", {})
    run = _run(conf, d, "e")
    assert run.rc == 70 and len(run.commands) == 1
    run = _run(conf, d, "f")
    assert run.rc == 3 and run.commands[0].last_line == "bad"
    assert _run(conf, d, "g").rc == 128 + 15
    assert (d / "log").read_text() == "one\n"
    assert not _run(conf, d, "nothing").handled


def test_environment_and_event_log(tmp_path: Path) -> None:
    xml_dir = tmp_path / "events"
    xml_dir.mkdir()
    (xml_dir / "report_X.xml").write_text(
        '<?xml version="1.0"?><event><name>X</name><options>'
        '<option type="text" name="X_URL"><default-value>http://default/</default-value></option>'
        '<option type="text" name="X_User"><default-value>from-xml</default-value></option>'
        '<option type="text" name="X_Unset"></option>'
        '<advanced-options><option name="X_Adv"><default-value>adv</default-value></option></advanced-options>'
        '</options></event>')
    conf_dir = tmp_path / "etc-events"
    conf_dir.mkdir()
    (conf_dir / "report_X.conf").write_text("# admin defaults\nX_User = from-conf  \nX_Extra=1\n")
    catalog = EventCatalog.load([str(xml_dir)])
    env = catalog.option_values("report_X", [str(conf_dir)])
    assert env == {"X_URL": "http://default/", "X_User": "from-conf", "X_Adv": "adv", "X_Extra": "1"}
    conf = tmp_path / "r.conf"
    conf.write_text("EVENT=report_X\n    env | grep -E '^(DUMP_DIR|EVENT|REPORT_CLIENT_SLAVE|X_[A-Za-z]+)=' | sort > env.txt\n"
                    "    echo ASK_YES_NO continue?; read answer; echo \"got [$answer]\"; pwd\n")
    d = make_dir(tmp_path / "spool", "d4", {})
    link = tmp_path / "link"
    link.symlink_to(d.parent)
    run = _run(conf, link / d.name, "report_X", env)
    assert run.rc == 0
    lines = (d / "env.txt").read_text().splitlines()
    assert lines == [f"DUMP_DIR={os.path.realpath(d)}", "EVENT=report_X", "REPORT_CLIENT_SLAVE=1",
                     "X_Adv=adv", "X_Extra=1", "X_URL=http://default/", "X_User=from-conf"]
    log = (d / "event_log").read_text()
    assert "> ASK_YES_NO continue?" in log and "> got [N]" in log  # answered non-interactively
    assert f"> {link / d.name}" in log or f"> {d}" in log


def test_event_log_trimmed_like_libreport() -> None:
    text = "".join(f"line {i:05d}\n" for i in range(4000))
    trimmed = trim_event_log(text)
    assert len(trimmed) <= 20 * 1024 and trimmed.startswith("line ") and text.endswith(trimmed)
    assert trim_event_log("short\n") == "short\n"


def test_list_possible_events_and_prefix(fixtures_dir: Path, tmp_path: Path) -> None:
    rules = load_rules(str(fixtures_dir / "event-conf" / "report_event.conf")).rules
    ccpp = make_dir(tmp_path / "spool", "ccpp", {"type": "CCpp", "analyzer": "abrt-journal-core"})
    events = engine.list_possible_events(rules, str(ccpp), "report")
    assert events == ["report_Mailx", "report_Logger", "report_uReport", "report-gui", "report-cli",
                      "report_systemd-journal", "report_Uploader"] or set(events) >= {
        "report_uReport", "report_Uploader", "report_systemd-journal", "report_Mailx", "report_Logger"}
    assert "report_Bugzilla" not in events  # CCpp needs a non-empty duphash
    assert engine.list_possible_events(rules, str(ccpp), "report_B") == []
    with_hash = make_dir(tmp_path / "spool", "ccpp2", {"type": "CCpp", "duphash": "abc"})
    assert "report_Bugzilla" in engine.list_possible_events(rules, str(with_hash), "report_")


def test_virtuozzo_rules_run_their_reporter(fixtures_dir: Path, tmp_path: Path) -> None:
    # OpenVZ's real events.d file: post-create runs reporter-vz for qemu-kvm crashes only.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "reporter-vz"
    fake.write_text("#!/bin/sh\necho \"reporter-vz ran in $(pwd) for $EVENT\" >> \"$DUMP_DIR/vz.log\"\n")
    fake.chmod(0o755)
    conf = tmp_path / "only-vz.conf"
    conf.write_text(f"include {fixtures_dir}/event-conf/events.d/virtuozzo_event.conf\n")
    vm = make_dir(tmp_path / "spool", "vm", {"executable": "/usr/libexec/qemu-kvm"})
    other = make_dir(tmp_path / "spool", "other", {"executable": "/usr/bin/sleep"})
    old_path = os.environ["PATH"]
    os.environ["PATH"] = f"{bindir}:{old_path}"
    try:
        assert _run(conf, vm, "post-create").rc == 0
        assert not _run(conf, other, "post-create").handled
    finally:
        os.environ["PATH"] = old_path
    assert (vm / "vz.log").read_text() == f"reporter-vz ran in {vm} for post-create\n"
    assert not (other / "vz.log").exists()


def test_fixture_event_descriptions_load(fixtures_dir: Path) -> None:
    catalog = EventCatalog.load([str(fixtures_dir / "event-conf" / "events")])
    assert catalog.warnings == []
    assert sorted(catalog.events) == ["report_Kerneloops", "report_Logger", "report_Uploader", "report_uReport"]
    up = catalog.events["report_Uploader"]
    assert [o.name for o in up.options] == ["Upload_URL", "Upload_Username", "Upload_Password", "http_proxy",
                                            "HTTPS_PROXY", "FTP_PROXY", "Upload_SSHPublicKey", "Upload_SSHPrivateKey"]
    assert up.exclude_items_by_default == ("event_log", "reported_to")
    ur = catalog.events["report_uReport"]
    assert ur.imports == ("watch_Bugzilla",)
    assert catalog.option_values("report_uReport", []) == {
        "uReport_URL": "https://retrace.fedoraproject.org/faf", "uReport_WatchReportedBugs": "yes",
        "uReport_ProcessUnpackaged": "no", "uReport_SSLVerify": "yes"}
    assert catalog.events["report_Kerneloops"].exclude_items_always == ("*",)
    with pytest.raises(ValueError):
        parse_event_xml(b"<event><options>", "broken")


def test_fixture_workflows_load(fixtures_dir: Path) -> None:
    from reporter.events.workflows import expand_chain, load_workflows

    flows, warnings = load_workflows([str(fixtures_dir / "event-conf" / "workflows")])
    assert warnings == []
    assert flows["workflow_UploadCCpp"].events == ("collect_*", "analyze_CCpp", "report_Uploader")
    assert flows["workflow_UploadCCpp"].priority == -99
    assert flows["workflow_uReport"].events == ("report_uReport",)
    assert expand_chain(["collect_*", "report_X"], ["collect_b", "collect_a", "other"]) == [
        "collect_a", "collect_b", "report_X"]


def test_crashkit_report_cli_runs_events_and_lists(tmp_path: Path) -> None:
    conf = tmp_path / "r.conf"
    conf.write_text("EVENT=report_Mine type=CCpp\n    echo mine-ran\n"
                    "EVENT=workflow_Mine\nEVENT=report_Stop\n    exit 70\n")
    d = make_dir(tmp_path / "spool", "cli", {})
    env = {**os.environ, "CRASHKIT_EVENT_CONF": str(conf), "PYTHONPATH": str(REPO)}
    cli = [sys.executable, "-m", "collectors.cli", "report"]
    out = subprocess.run([*cli, "--list-events", str(d), "--json"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["events"] == ["report_Mine", "workflow_Mine", "report_Stop"]
    out = subprocess.run([*cli, str(d), "-e", "report_Mine", "-e", "report_Stop", "-e", "report_Mine"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.count("mine-ran") == 1  # 70 ends the chain after it
    out = subprocess.run([*cli, str(d), "-e", "report_Stop", "-e", "report_Mine"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0 and "mine-ran" not in out.stdout  # 70: the chain stops, as success
    out = subprocess.run([*cli, str(tmp_path), "-e", "x"], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "not a problem directory" in out.stderr and "Traceback" not in out.stderr


def test_own_configuration_loads_and_applies(tmp_path: Path) -> None:
    # Without libreport, crashkit's report_event.conf stands in and includes our rules.
    st = setup.EventsSetup(setup.OWN_RULES)
    loaded = st.load_rules()
    assert loaded.warnings == []
    assert any(os.path.basename(r.source) == "crashkit_event.conf" for r in loaded.rules)
    ours = make_dir(tmp_path / "spool", "ours", {"crashkit_version": "0.1.0", "core_backtrace": "{}"})
    foreign = make_dir(tmp_path / "spool", "foreign", {"analyzer": "abrt-ccpp"})
    assert engine.list_possible_events(loaded.rules, str(ours), "post-create") == ["post-create"]
    assert engine.list_possible_events(loaded.rules, str(foreign), "post-create") == []
    flows = setup.applicable_workflows(st, str(foreign))
    assert [w.id for w in flows] == ["workflow_Crashkit"]
    assert st.catalog().warnings == []
