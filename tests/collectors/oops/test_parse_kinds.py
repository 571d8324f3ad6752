"""One hand-written sample per report kind (tests/collectors/oops/data, see README.md there),
each in a different log prefix style. Expected values are read off the samples by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.oops.parse import scan_text

DATA = Path(__file__).parent / "data"

# file: (kind, title, function, start_line, end_line, truncated)
EXPECTED = {
    "kasan_uaf.log": ("kasan", "KASAN: slab-use-after-free Read in tcp_close", "tcp_close", 4, 41, False),
    "kcsan.log": ("kcsan", "KCSAN: data-race in ext4_mark_iloc_dirty / ext4_do_update_inode",
                  "ext4_mark_iloc_dirty", 3, 14, False),
    "ubsan.log": ("ubsan", "UBSAN: shift-out-of-bounds in qfq_change_class", "qfq_change_class", 3, 18, False),
    "kfence.log": ("kfence", "KFENCE: use-after-free read in test_use_after_free_read", "test_use_after_free_read",
                   3, 12, False),
    "lockdep_circular.log": ("lockdep", "possible deadlock in team_del_slave", "team_del_slave", 3, 37, False),
    "hung_task.log": ("hung-task", "INFO: task hung in jbd2_journal_commit_transaction",
                      "jbd2_journal_commit_transaction", 2, 20, False),
    # a stall in smp_call_function* is titled smp_call_function whatever the variant
    "soft_lockup.log": ("soft-lockup", "BUG: soft lockup in smp_call_function", "smp_call_function", 2, 22, False),
    # the NMI caught the task outside any interrupt: no entry point to read the stalled code
    # from, so no frame can be trusted (syzkaller's rule; see test_title.py for the usual case)
    "rcu_stall.log": ("rcu-stall", "INFO: rcu detected stall in corrupted", "corrupted", 2, 21, False),
    "warning_new.log": ("warning", "WARNING in kvm_arch_vcpu_ioctl_run", "kvm_arch_vcpu_ioctl_run", 3, 22, False),
    # the "Kernel panic - not syncing: Fatal exception" tail belongs to the GPF report; the
    # list debugging helper at RIP is infrastructure, its caller is the culprit
    "panic_fatal_gpf.log": ("gpf", "general protection fault in process_one_work",
                            "process_one_work", 2, 26, False),
    "bug_at.log": ("bug", "kernel BUG in ext4_do_update_inode", "ext4_do_update_inode", 3, 16, False),
    # a reboot ("Linux version") cuts the report off before its call trace
    "null_deref_truncated.log": ("null-ptr-deref",
                                 "BUG: unable to handle kernel NULL pointer dereference in ext4_map_blocks",
                                 "ext4_map_blocks", 2, 9, True),
    "oom.log": ("oom", "Out of memory: Killed process stress", "__handle_mm_fault", 2, 24, False),
    "mce.log": ("mce", "MCE: machine check exception", None, 2, 6, False),
    "sleeping_atomic.log": ("sleeping-in-atomic", "BUG: sleeping function called from invalid context in mydrv_queue_request",
                            "mydrv_queue_request", 2, 14, False),
    "sched_atomic.log": ("scheduling-while-atomic", "BUG: scheduling while atomic in mydrv_wait_ready",
                         "mydrv_wait_ready", 2, 15, False),
    "list_add.log": ("list-corruption", "BUG: corrupted list in mydev_register", "mydev_register", 2, 16, False),
    "refcount.log": ("refcount", "WARNING: refcount bug in l2cap_chan_put", "l2cap_chan_put", 3, 13, False),
    # the page's owner is read from "page last allocated via"; without page_owner, none
    "bad_page.log": ("bad-page", "BUG: Bad page state in corrupted", "corrupted", 2, 15, False),
    "workqueue_lockup.log": ("workqueue-lockup", "BUG: workqueue lockup", None, 2, 6, False),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name: str) -> None:
    kind, title, function, start, end, truncated = EXPECTED[name]
    reports = scan_text((DATA / name).read_text())
    assert len(reports) == 1, [r.title for r in reports]
    (r,) = reports
    assert (r.kind, r.title, r.function, r.start_line, r.end_line, r.truncated) == (
        kind, title, function, start, end, truncated)
    assert "sample written from" not in r.text


def test_caller_ids_keep_other_cpus_out() -> None:
    (r,) = scan_text((DATA / "kasan_uaf.log").read_text())
    assert "e1000e" not in r.text  # printed by caller T17 in the middle of T4242's report
    assert r.kernel_version == "6.6.0-rc1"  # from the boot's "Linux version" line
    assert (r.cpu, r.pid, r.comm) == (1, 4242, "syz-executor")
    assert r.hardware.startswith("QEMU Standard PC")


def test_kmsg_dictionary_lines_are_skipped() -> None:
    (r,) = scan_text((DATA / "hung_task.log").read_text())
    assert "SUBSYSTEM=" not in r.text
    assert r.tainted == "GOE"
    assert set(r.taint_meanings) == {"G", "O", "E"}
    assert r.kernel_version == "6.1.0-13-amd64"
    assert (r.pid, r.comm) == (312, "jbd2/sda1-8")


def test_syslog_lines_of_other_programs_are_ignored() -> None:
    (r,) = scan_text((DATA / "ubsan.log").read_text())
    assert "systemd" not in r.text
    assert r.frames[0].function == "dump_stack_lvl"
    assert r.frames[3].module == "sch_qfq"


def test_rip_modules_and_frames() -> None:
    (r,) = scan_text((DATA / "bug_at.log").read_text())
    assert r.rip == "ext4_do_update_inode+0x6b0/0x6c0 [ext4]"
    assert r.tainted == "PO"
    assert [f.function for f in r.frames][:2] == ["ext4_mark_iloc_dirty", "__ext4_mark_inode_dirty"]
    assert r.frames[0].offset == 0x5b and r.frames[0].size == 0x80 and r.frames[0].reliable
    (g,) = scan_text((DATA / "panic_fatal_gpf.log").read_text())
    assert g.modules == ("nvmet_tcp", "nvmet", "nvme_fabrics")
    assert not g.frames[0].reliable  # "? die_addr"


def test_two_reports_in_a_row_are_two() -> None:
    text = (DATA / "warning_new.log").read_text()
    body = text.splitlines()[1:]
    reports = scan_text("\n".join(body + body))
    assert [r.start_line for r in reports] == [2, 2 + len(body)]
    assert reports[0].duphash == reports[1].duphash is not None


def test_titles_carry_no_volatile_numbers() -> None:
    for name in EXPECTED:
        for r in scan_text((DATA / name).read_text()):
            assert not any(ch.isdigit() for ch in r.title.replace("ext4", "").replace("l2cap", "").replace("jbd2", "")), r.title


def test_old_style_warning_and_panic_titles() -> None:
    log = (
        "WARNING: at drivers/net/wireless/foo.c:123 foo_tx+0x23/0x50 [foo]()\n"
        "Pid: 12, comm: kworker/0:1 Not tainted 3.10.0-957.el7.x86_64 #1\n"
        "Call Trace:\n"
        " [<ffffffff81067c33>] warn_slowpath_common+0x83/0xc0\n"
        " [<ffffffff81067cd1>] warn_slowpath_null+0x1a/0x20\n"
        " [<ffffffffa0123456>] foo_tx+0x23/0x50 [foo]\n"
        "---[ end trace 1234567890abcdef ]---\n"
        "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\n"
    )
    (w,) = scan_text(log)
    # A panic printed right after a report's "---[ end trace" is its consequence (oops in init,
    # panic_on_warn): it joins that report, as syzkaller treats it. The 2.6/3.x headline
    # ("WARNING: at FILE FUNC()") fits none of the WARNING forms: it is the title, normalised.
    assert (w.kind, w.title, w.kernel_version) == (
        "warning", "WARNING: at drivers/net/wireless/foo.c:LINE foo_tx [foo]()", "3.10.0-957.el7.x86_64")
    assert w.function == "foo_tx"
    assert w.end_line == 8 and "Attempted to kill init" in w.text
    (p,) = scan_text(log.splitlines()[-1])
    assert (p.kind, p.title) == ("panic", "kernel panic: Attempted to kill init!")
