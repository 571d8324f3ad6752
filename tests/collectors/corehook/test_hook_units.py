"""Pure parts of the hook, on literal text: argv, /proc formatting, container cgroups,
config, spool-trim choice, duplicate keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.corehook import args as args_mod
from collectors.corehook import config as config_mod
from collectors.corehook import container, dedup, limits, procsnap
from collectors.errors import HookError

GOOD = ["4242", "7", "7", "4243", "1000", "1000", "11", "1700000000", "0", "1", "host", "crasher"]


def test_parse_args_all_fields():
    a = args_mod.parse_args(GOOD)
    assert (a.global_pid, a.pid, a.tid, a.global_tid, a.uid, a.gid, a.signal, a.time) == \
        (4242, 7, 7, 4243, 1000, 1000, 11, 1700000000)
    assert a.core_limit == 0 and a.hostname == "host" and a.dumpable == 1 and a.comm == "crasher"


def test_parse_args_unlimited_core_comm_with_spaces_and_config():
    a = args_mod.parse_args(["--config=/x/hook.toml", *GOOD[:8], "18446744073709551615", "2", "h",
                             "Web", "Content"])
    assert a.core_limit is None and a.comm == "Web Content" and a.config == "/x/hook.toml"
    assert a.dumpable == 2


@pytest.mark.parametrize("bad", [[], GOOD[:5], ["x", *GOOD[1:]], [*GOOD[:6], "-3", *GOOD[7:]],
                                 ["--config=rel", *GOOD], ["--evil", *GOOD], ["0", *GOOD[1:]]])
def test_parse_args_rejects_garbage(bad):
    with pytest.raises(HookError):
        args_mod.parse_args(bad)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=16))
def test_parse_args_fuzz_only_hookerror(words):
    try:
        args_mod.parse_args(words)
    except HookError:
        pass


def test_clean_exe():
    assert procsnap.clean_exe("/usr/bin/foo (deleted)") == "/usr/bin/foo"
    assert procsnap.clean_exe("/usr/bin/foo.#prelink#.Ab12Cd") == "/usr/bin/foo"
    assert procsnap.clean_exe("/usr/bin/foo") == "/usr/bin/foo"


def test_environ_redaction_and_quoting():
    raw = b"PATH=/bin\0DB_PASSWORD=s3cr3t\0GITHUB_TOKEN=abc\0aws_secret_access_key=k\0MSG=a b\0"
    assert procsnap.format_environ(raw) == (b"PATH=/bin\nDB_PASSWORD=<redacted>\nGITHUB_TOKEN=<redacted>\n"
                                            b"aws_secret_access_key=<redacted>\n'MSG=a b'\n")


def test_open_fds_format_matches_libreport():
    fds = [(0, "/dev/pts/6", b"pos:\t0\nflags:\t02\nmnt_id:\t29\n"), (3, "socket:[1]", b"pos:\t0\n")]
    assert procsnap.format_open_fds(fds) == (b"0:/dev/pts/6\npos:\t0\nflags:\t02\nmnt_id:\t29\n\n"
                                             b"3:socket:[1]\npos:\t0\n")


def test_namespaces_format():
    own = {ns: f"{ns}:[1]" for ns in procsnap.NAMESPACES}
    ref = dict(own, pid="pid:[2]", net=None)
    text = procsnap.format_namespaces(own, ref).decode()
    assert "pid : own\n" in text and "net : unknown\n" in text and "mnt : default\n" in text
    assert text.splitlines()[0] == "cgroup : default"


def test_status_helpers():
    st_ = procsnap.parse_status(b"Name:\tx\nUid:\t1000\t0\t0\t0\nVmLck:\t   12 kB\n")
    assert procsnap.status_ids(st_, "Uid") == (1000, 0, 0, 0)
    assert procsnap.vmlck_kb(st_) == 12


@pytest.mark.parametrize("text,expected", [
    ("0::/system.slice/docker-" + "ab" * 32 + ".scope\n", ("docker", "ab" * 32)),
    ("12:memory:/docker/" + "cd" * 32 + "\n", ("docker", "cd" * 32)),
    ("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + "ef" * 32 + ".scope\n",
     ("podman", "ef" * 32)),
    ("0::/machine.slice/libpod-" + "01" * 32 + ".scope/container\n", ("podman", "01" * 32)),
    ("0::/lxc.payload.web1/init.scope\n", ("lxc", "web1")),
    ("5:cpu:/lxc/db2\n", ("lxc", "db2")),
    ("0::/machine.slice/machine-fedora\\x2dbox.scope/payload\n", ("systemd-nspawn", "fedora-box")),
    ("0::/machine.slice/101\n", ("openvz", "101")),
    ("3:cpu:/101/\n", ("openvz", "101")),
    ("0::/machine.slice/6b7f5e12-3c4d-4a5b-8c9d-0e1f2a3b4c5d\n",
     ("openvz", "6b7f5e12-3c4d-4a5b-8c9d-0e1f2a3b4c5d")),
    ("0::/machine.slice/machine-qemu\\x2d1\\x2dvm.scope/libvirt/emulator\n", None),
    ("0::/user.slice/user-1000.slice/session-2.scope\n", None),
    ("0::/\n", None),
    ("garbage\n", None),
])
def test_cgroup_container_detection(text, expected):
    assert container.parse_cgroup_container(text) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_cgroup_parser_never_raises(text):
    container.parse_cgroup_container(text)


def test_find_container_init_walks_up_while_namespaces_match():
    parents = {50: 40, 40: 30, 30: 1}
    ns = {50: {"pid": "a", "mnt": "m"}, 40: {"pid": "a", "mnt": "m"}, 30: {"pid": "host", "mnt": "m"}}
    assert container.find_container_init(50, parents.get, lambda p: ns.get(p, {})) == 40
    assert container.find_container_init(30, parents.get, lambda p: ns.get(p, {})) == 30


def test_config_parse_defaults_unknown_and_bad_values():
    cfg = config_mod.parse_config({"hook": {"spool": "/s", "keep": "full", "bogus": 1,
                                            "compress": "lz4", "max_spool_size": -1}})
    assert cfg.spool == "/s" and cfg.keep == "full" and cfg.compress == "none"
    assert cfg.max_spool_size == config_mod.HookConfig().max_spool_size
    assert len(cfg.warnings) == 3 and any("bogus" in w for w in cfg.warnings)


def test_config_hash_core_is_off_by_default_and_parsed():
    assert config_mod.HookConfig().hash_core is False
    assert config_mod.parse_config({"hook": {"hash_core": True}}).hash_core is True
    bad = config_mod.parse_config({"hook": {"hash_core": "yes please"}})
    assert bad.hash_core is False and bad.warnings


def test_config_render_round_trip():
    import tomllib

    cfg = config_mod.HookConfig(spool="/a b/\"q\"", ignored_paths=("/usr/bin/*",), log_file="/l")
    assert config_mod.parse_config(tomllib.loads(config_mod.render_config(cfg))) == cfg


def test_config_missing_and_broken_files(tmp_path):
    assert config_mod.load_config(str(tmp_path / "none.toml")) == config_mod.HookConfig()
    bad = tmp_path / "bad.toml"
    bad.write_text("[hook\n")
    cfg = config_mod.load_config(str(bad))
    assert cfg == config_mod.HookConfig() and cfg.warnings


def test_pick_victim_prefers_old_and_large():
    e = limits.SpoolEntry
    now = 10_000.0
    entries = [e("new-big", 100 << 20, now), e("old-small", 1 << 20, now - 3600),
               e("old-big", 50 << 20, now - 3600)]
    assert limits.pick_victim(entries, now).path == "old-big"
    assert limits.pick_victim([], now) is None


def test_duplicate_key_depends_on_every_part():
    sig = dedup.site_signature("/bin/x", 11, "/bin/x", 0x1234)
    base = dedup.duplicate_key(1000, "CCpp", "/bin/x", None, sig)
    assert base == dedup.duplicate_key("1000", "CCpp", "/bin/x", "", sig)
    assert base != dedup.duplicate_key(0, "CCpp", "/bin/x", None, sig)
    assert base != dedup.duplicate_key(1000, "CCpp", "/bin/x", "c1", sig)
    assert base != dedup.duplicate_key(1000, "CCpp", "/bin/x", None,
                                       dedup.site_signature("/bin/x", 6, "/bin/x", 0x1234))


def test_example_config_is_valid_and_documents_the_defaults():
    import tomllib
    from pathlib import Path

    import collectors.corehook

    example = Path(collectors.corehook.__file__).with_name("crashkit-hook.conf.example")
    cfg = config_mod.parse_config(tomllib.loads(example.read_text()))
    assert cfg.warnings == () and cfg == config_mod.HookConfig()
