"""Each per-field extractor of collectors.oops.report on short literal kernel-log snippets.

The snippets are the lines the kernel prints (lib/dump_stack.c, arch/x86/kernel/dumpstack.c,
kernel/panic.c, mm/oom_kill.c, kernel/hung_task.c), reduced to what the field is read from;
the expected values are what the snippet says in plain text.
"""

from __future__ import annotations

from collectors.oops.report import (
    build_report,
    default_window,
    extract_frames,
    extract_hardware,
    extract_modules,
    extract_oom,
    extract_rip,
    extract_task,
    extract_title,
    extract_version,
)


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.strip("\n").splitlines()]


# --- version -----------------------------------------------------------------------------------
def test_version_from_the_cpu_line():
    lines = _lines("""
BUG: kernel NULL pointer dereference, address: 0000000000000008
CPU: 2 PID: 1234 Comm: modprobe Tainted: G           OE      6.5.0-14-generic #14-Ubuntu
""")
    assert extract_version(lines, None) == "6.5.0-14-generic"


def test_version_from_an_old_pid_line():
    lines = _lines("""
BUG: unable to handle kernel NULL pointer dereference at 00000000
Pid: 8003, comm: Xorg Not tainted (2.6.27.9-159.fc10.i686 #1)
""")
    assert extract_version(lines, None) == "2.6.27.9-159.fc10.i686"


def test_version_falls_back_to_the_boot_line_version():
    lines = _lines("""
WARNING: at fs/inode.c:1234 iput+0x10/0x20()
Call Trace:
""")
    assert extract_version(lines, "5.10.0-21-amd64") == "5.10.0-21-amd64"
    assert extract_version(lines, None) is None


# --- task --------------------------------------------------------------------------------------
def test_task_from_the_cpu_pid_comm_line():
    lines = _lines("CPU: 3 PID: 4242 Comm: kworker/3:1 Not tainted 6.1.0 #1")
    assert extract_task(lines) == (3, 4242, "kworker/3:1")


def test_task_from_a_warning_line_and_a_later_comm():
    lines = _lines("""
WARNING: CPU: 1 PID: 77 at net/core/dev.c:100 dev_foo+0x1/0x2
Pid: 77, comm: ip Not tainted 3.10.0 #1
""")
    assert extract_task(lines) == (1, 77, "ip")


def test_task_of_a_hung_task_report():
    lines = _lines("INFO: task jbd2/sda1-8:312 blocked for more than 120 seconds.")
    assert extract_task(lines) == (None, 312, "jbd2/sda1-8")


def test_task_from_i386_process_and_eflags_lines():
    lines = _lines("""
EIP: 0060:[<f88dec25>] EFLAGS: 00213246 CPU: 1
Process Xorg (pid: 8003, ti=f0a0c000 task=f2380000 task.ti=f0a0c000)
""")
    assert extract_task(lines) == (1, 8003, "Xorg")


def test_task_absent():
    assert extract_task(_lines("Kernel panic - not syncing: VFS: Unable to mount root fs")) == (None, None, None)


# --- hardware ----------------------------------------------------------------------------------
def test_hardware_name():
    lines = _lines("""
CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0 #1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
""")
    assert extract_hardware(lines) == "QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014"
    assert extract_hardware(_lines("Call Trace:")) is None


# --- modules -----------------------------------------------------------------------------------
def test_modules_with_taint_marks_and_a_continuation_line():
    lines = _lines("""
Modules linked in: nvidia(POE) snd_hda_intel(E) e1000e
 bridge stp llc [last unloaded: kvm]
CPU: 0 PID: 1 Comm: x Not tainted 6.1.0 #1
""")
    assert extract_modules(lines) == ["nvidia", "snd_hda_intel", "e1000e", "bridge", "stp", "llc"]


def test_modules_stop_at_a_frame_line():
    lines = _lines("""
Modules linked in: kvm_intel kvm
 kvm_vcpu_ioctl+0x25f/0x6b0 [kvm]
""")
    assert extract_modules(lines) == ["kvm_intel", "kvm"]
    assert extract_modules(_lines("RIP: 0010:foo+0x1/0x2")) == []


# --- RIP ---------------------------------------------------------------------------------------
def test_rip_of_x86_64():
    rip = extract_rip(_lines("""
Oops: 0002 [#1] PREEMPT SMP NOPTI
RIP: 0010:ext4_da_write_end+0x1f4/0x300 [ext4]
"""))
    assert rip is not None
    assert (rip.function, rip.offset, rip.size, rip.module) == ("ext4_da_write_end", 0x1F4, 0x300, "ext4")


def test_rip_of_arm64_pc_line():
    rip = extract_rip(_lines("pc : __list_del_entry_valid+0x7c/0xb0"))
    assert rip is not None and rip.function == "__list_del_entry_valid"


def test_rip_absent():
    assert extract_rip(_lines("INFO: rcu_sched self-detected stall on CPU")) is None


# --- frames ------------------------------------------------------------------------------------
def test_frames_of_the_call_trace_without_the_questionable_marker_lost():
    frames = extract_frames("null-ptr-deref", _lines("""
RIP: 0010:foo+0x10/0x20 [mymod]
Call Trace:
 <TASK>
 ? __die+0x20/0x70
 bar+0x30/0x40 [mymod]
 do_syscall_64+0x3f/0x90
 </TASK>
"""))
    assert [f.function for f in frames] == ["__die", "bar", "do_syscall_64"]
    assert [f.reliable for f in frames] == [False, True, True]
    assert frames[1].module == "mymod"


def test_frames_end_at_the_next_section():
    frames = extract_frames("kasan", _lines("""
BUG: KASAN: use-after-free in foo+0x1/0x2
Call Trace:
 foo+0x1/0x2
 bar+0x3/0x4
Allocated by task 12:
 kmalloc_trace+0x1/0x2
"""))
    assert [f.function for f in frames] == ["foo", "bar"]


def test_frames_of_lockdep_start_after_stack_backtrace():
    frames = extract_frames("lockdep", _lines("""
WARNING: possible circular locking dependency detected
-> #1 (&mm->mmap_lock){++++}-{3:3}:
       lock_acquire+0x1/0x2
stack backtrace:
Call Trace:
 dump_stack_lvl+0x1/0x2
 check_noncircular+0x1/0x2
"""))
    assert [f.function for f in frames] == ["dump_stack_lvl", "check_noncircular"]


# --- OOM ---------------------------------------------------------------------------------------
def test_oom_victim_and_invoker():
    extra = extract_oom(_lines("""
stress invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0
Out of memory: Killed process 4321 (stress) total-vm:1234kB, anon-rss:1000kB
"""))
    assert extra == {"victim": "stress", "invoker": "stress"}


def test_oom_memcg_kill():
    extra = extract_oom(_lines("Memory cgroup out of memory: Killed process 99 (java) total-vm:1kB"))
    assert extra == {"victim": "java", "memcg": "1"}


# --- title -------------------------------------------------------------------------------------
def test_title_of_a_null_pointer_dereference_names_the_rip_function():
    lines = _lines("""
BUG: kernel NULL pointer dereference, address: 0000000000000008
#PF: supervisor read access in kernel mode
Oops: 0000 [#1] PREEMPT SMP NOPTI
CPU: 1 PID: 10 Comm: insmod Tainted: G           O       6.1.0 #1
RIP: 0010:my_probe+0x15/0x30 [mydrv]
Call Trace:
 <TASK>
 do_one_initcall+0x41/0x200
 do_init_module+0x4c/0x1f0
 </TASK>
""")
    rip = extract_rip(lines)
    title, function = extract_title("null-ptr-deref", lines, default_window(lines), rip, extract_frames("null-ptr-deref", lines))
    # syzkaller's form of every NULL-dereference headline
    assert (title, function) == ("BUG: unable to handle kernel NULL pointer dereference in my_probe", "my_probe")


def test_title_of_a_warning_skips_the_warn_plumbing():
    lines = _lines("""
WARNING: CPU: 0 PID: 1 at drivers/gpu/drm/drm_foo.c:42 drm_foo_check+0x10/0x20
RIP: 0010:drm_foo_check+0x10/0x20
Call Trace:
 <TASK>
 ? __warn+0x81/0x130
 drm_foo_commit+0x22/0x40
 </TASK>
""")
    title, function = extract_title("warning", lines, default_window(lines), extract_rip(lines),
                                    extract_frames("warning", lines))
    assert (title, function) == ("WARNING in drm_foo_check", "drm_foo_check")


def test_title_of_a_kind_without_headline_uses_the_fallback():
    lines = _lines("Out of memory: Killed process 4321 (stress) total-vm:1234kB")
    title, function = extract_title("oom", lines, [], None, [])
    assert function is None
    assert "stress" in title


# --- build_report puts them together ------------------------------------------------------------
def test_build_report_fields():
    text = """
WARNING: CPU: 0 PID: 1 at drivers/gpu/drm/drm_foo.c:42 drm_foo_check+0x10/0x20
Modules linked in: drm e1000e
CPU: 0 PID: 1 Comm: swapper/0 Tainted: G        W          6.6.0 #1
Hardware name: Example Board
RIP: 0010:drm_foo_check+0x10/0x20
Call Trace:
 drm_foo_commit+0x22/0x40
---[ end trace 0000000000000000 ]---
"""
    lines = list(enumerate(text.strip("\n").splitlines(), 10))
    r = build_report("warning", "", 10, lines, truncated=False, boot_version=None)
    assert (r.start_line, r.end_line) == (10, 17)
    assert (r.cpu, r.pid, r.comm) == (0, 1, "swapper/0")
    assert r.kernel_version == "6.6.0"
    assert r.tainted == "GW"  # the flags as printed, ABRT's way
    assert r.hardware == "Example Board"
    assert r.modules == ("drm", "e1000e")
    assert r.rip == "drm_foo_check+0x10/0x20"
    assert [f.function for f in r.frames] == ["drm_foo_commit"]
    assert r.title == "WARNING in drm_foo_check"
