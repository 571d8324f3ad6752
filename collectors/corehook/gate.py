"""The crash hook's light pre-slot path: who captures fully, decided before any heavy import.

In a crash storm the kernel starts one hook per crash (``core_pipe_limit`` 0), hundreds at
once. A hook that imports its full machinery (reporter, the minimizer, dataclasses, typing:
~17 MiB of RSS) only to find every full-capture slot busy costs the host more than the crash
is worth, so the launcher first runs this module, which loads nothing but ``os``, ``fcntl``
and ``time`` (a Python process at ~9 MiB RSS, most of it the shared interpreter):

1. reads ``spool`` and ``max_full_hooks`` from ``hook.toml`` with a small reader of the
   simple TOML that ``crashkit hook install`` writes (anything else: the full reader decides);
2. reads the crash's executable and takes one of the ``flock``-ed slots
   ``<spool>/.crashkit-hook/hook-run.N``; held, the full hook runs in this process
   (:func:`admit` returns the descriptor);
3. the first crash of a program that has no core kept yet (no ``seen/<key>`` marker naming
   an existing directory) waits up to 5 s for a slot if none is free: one hook per program
   bucket, :data:`MAX_WAITERS` in all; while one waits, the other crashes leave the slots to
   it, and the program's other crashes shed at once while its first capture runs;
4. otherwise sheds: records what the crash signature and the count need from ``/proc/PID``
   (argv, exe, root, status, cgroup, cmdline, namespace links) in one small file under
   ``shed/``, splices the core to ``/dev/null`` and exits. The records are folded into problem
   directories by one hook at a time (``shed-fold.lock``, :mod:`.shedfold`): the shedding hook
   that finds the lock free after its drain becomes the folder, and a folder looks again after
   letting the lock go, so no record is left behind by a folder that was just finishing.

Nothing here raises to the caller: any surprise returns :data:`UNDECIDED` and the full hook
decides as before (it reads the config properly and sheds from its own snapshot).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

#: ``<spool>/.crashkit-hook``: the hook's state directory (:func:`limits.open_state_dir`).
STATE_DIR = ".crashkit-hook"
SLOT_PREFIX = "hook-run"
WAIT_PREFIX = "hook-wait"
FIRST_PREFIX = "hook-first"
SHED_DIR = "shed"
SEEN_DIR = "seen"
FOLD_LOCK = "shed-fold.lock"
RECORD_SUFFIX = ".rec"
#: Hooks waiting for a slot for the first crash of their program, at most.
MAX_WAITERS = 16
FIRST_BUCKETS = 1024
WAITING = "hook-waiting"
#: Seconds the first crash of a program waits for a slot (its core is the one worth keeping);
#: in the storms measured a full capture took up to ~1 s of the 2-core VM, so 2 s lost a few.
FIRST_CRASH_WAIT = 5.0
_POLL = 0.05
DEFAULT_SPOOL = "/var/spool/crashkit"
DEFAULT_FULL_HOOKS = 8
#: Returned by :func:`admit`: the crash was counted and its core drained; the hook is done.
SHED = -2
#: Returned by :func:`admit`: the full hook decides (no slot held).
UNDECIDED = -1
#: What a shed record keeps of ``/proc/PID`` (bytes, at most).
RECORD_LIMITS = {"status": 16 << 10, "cgroup": 16 << 10, "cmdline": 16 << 10}
MAX_RECORD = 128 << 10
#: Namespaces compared with PID 1's, in the order abrt writes them.
NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
              "time_for_children", "user", "uts")
MARKER_ENV = b"CRASHKIT_HOOK_CHILD="
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


# ------------------------------------------------------------------ hook.toml, the simple part

def _logical_lines(text: str) -> list[str] | None:
    """*text* as TOML logical lines (a multi-line array joined into one), comments dropped;
    ``None`` for what this reader leaves to tomllib (multi-line strings, unterminated
    strings; pure)."""
    out: list[str] = []
    cur: list[str] = []
    depth, quote, i, n = 0, "", 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                cur.append(text[i:i + 2])
                i += 2
                continue
            if c == "\n":
                return None
            quote = "" if c == quote else quote
        elif c in "\"'":
            if text.startswith(c * 3, i):
                return None
            quote = c
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "\n" and depth <= 0:
            out.append("".join(cur).strip())
            cur, depth = [], 0
            i += 1
            continue
        cur.append(c)
        i += 1
    return None if quote else out + ["".join(cur).strip()]


def _string(value: str) -> str | None:
    """A TOML string without escapes (``None``: something else; pure)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        if value[0] not in inner and "\\" not in inner:
            return inner
    return None


def _bare(name: str) -> bool:
    return bool(name) and name.replace("_", "").replace("-", "").isalnum() and name.isascii()


def parse_settings(text: str) -> tuple[str, int] | None:
    """``(spool, max_full_hooks)`` from hook.toml text, defaults where absent; ``None`` when
    the text holds anything this reader does not know for sure (pure)."""
    lines = _logical_lines(text)
    if lines is None:
        return None
    spool, slots, section = DEFAULT_SPOOL, DEFAULT_FULL_HOOKS, ""
    for line in lines:
        if not line:
            continue
        if line.startswith("["):
            section = line[1:-1].strip() if line.endswith("]") and not line.startswith("[[") else "?"
            if not _bare(section):
                return None  # quoted or dotted table names: tomllib knows
            continue
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not _bare(key):
            return None  # dotted or quoted keys: tomllib knows
        if section != "hook":
            continue
        if key == "spool":
            found = _string(value)
            if found is None or not found.startswith("/"):
                return None
            spool = found
        elif key == "max_full_hooks":
            if not (value.isascii() and value.isdigit()):
                return None
            slots = int(value)
    return spool, slots


def read_settings(path: str) -> tuple[str, int] | None:
    """:func:`parse_settings` of the file at *path* (missing: the defaults)."""
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError:
        return DEFAULT_SPOOL, DEFAULT_FULL_HOOKS
    try:
        raw = os.read(fd, 1 << 20)
    finally:
        os.close(fd)
    try:
        return parse_settings(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None


# ------------------------------------------------------------------ slots and markers

def open_state(spool: str, check_spool: bool = True) -> int:
    """``<spool>/.crashkit-hook`` (created 0700), refusing a spool (*check_spool*) or state
    directory that is a symlink, not ours or writable by others."""
    spool_fd = os.open(spool, _DIR)
    try:
        st = os.fstat(spool_fd)
        if check_spool and (st.st_uid != os.geteuid() or st.st_mode & 0o022):
            raise PermissionError(errno.EPERM, "spool not owned by us or writable by others", spool)
        try:
            os.mkdir(STATE_DIR, 0o700, dir_fd=spool_fd)
        except FileExistsError:
            pass
        fd = os.open(STATE_DIR, _DIR, dir_fd=spool_fd)
    finally:
        os.close(spool_fd)
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        os.close(fd)
        raise PermissionError(errno.EPERM, "state directory not owned by us or writable by others",
                              f"{spool}/{STATE_DIR}")
    return fd


def try_lock(dir_fd: int, name: str) -> int | None:
    """A held ``flock`` on the plain file *name* in *dir_fd* (created 0600), or ``None`` when
    somebody else holds it. The lock goes with the descriptor (or the process)."""
    return _lock_file(dir_fd, name, fcntl.LOCK_EX)


def try_slot(dir_fd: int, prefix: str, count: int) -> int | None:
    """A held lock on one of ``<prefix>.0`` .. ``<prefix>.<count-1>``, or ``None``."""
    for n in range(count):
        fd = try_lock(dir_fd, f"{prefix}.{n}")
        if fd is not None:
            return fd
    return None


def program_key(uid: int, exe: str, signal: int) -> str:
    """64-bit FNV-1a (hex) of uid, executable and signal: names the program's marker (pure)."""
    h = 0xCBF29CE484222325
    for byte in f"{uid}\0{exe}\0{signal}".encode("utf-8", "surrogateescape"):
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def clean_exe(target: str) -> str:
    """``/proc/PID/exe`` target to the ``executable`` element: drop `` (deleted)`` and
    prelink's ``.#prelink#.XXXXXX`` temporary suffix (libreport; pure)."""
    if target.endswith(" (deleted)"):
        target = target[:-len(" (deleted)")]
    at = target.find(".#prelink#.")
    return target[:at] if at > 0 else target


def mark_seen(spool: str, key: str, directory: str) -> None:
    """Remember that *directory* (in *spool*) keeps a core of the program *key*: its later
    crashes are shed at once when every slot is busy."""
    dfd = open_state(spool)
    try:
        name = os.path.basename(directory).encode("utf-8", "surrogateescape")
        _write_state_file(dfd, SEEN_DIR, key, name, tmp=f".{key}.{os.getpid()}", exclusive=False)
    finally:
        os.close(dfd)


def _write_state_file(state_fd: int, subdir: str, name: str, data: bytes, *, tmp: str,
                      exclusive: bool) -> None:
    """Write *data* as *subdir*/*name* of the state directory under a temporary name, then
    rename it, so that a reader never sees half of it; *subdir* is made on first use.
    *exclusive*: the temporary name must be new (O_EXCL), else it is truncated."""
    try:
        os.mkdir(subdir, 0o700, dir_fd=state_fd)
    except FileExistsError:
        pass
    sfd = os.open(subdir, _DIR, dir_fd=state_fd)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags | (os.O_EXCL if exclusive else os.O_TRUNC), 0o600, dir_fd=sfd)
        try:
            os.write(fd, data)
        except BaseException:
            os.close(fd)
            os.unlink(tmp, dir_fd=sfd)
            raise
        os.close(fd)
        os.rename(tmp, name, src_dir_fd=sfd, dst_dir_fd=sfd)
    finally:
        os.close(sfd)


def is_seen(state_fd: int, spool: str, key: str) -> bool:
    """A directory that keeps a core of program *key* still exists."""
    try:
        fd = os.open(f"{SEEN_DIR}/{key}", _READ, dir_fd=state_fd)
    except OSError:
        return False
    try:
        name = os.read(fd, 512).decode("utf-8", "surrogateescape")
    finally:
        os.close(fd)
    return bool(name) and "/" not in name and os.path.isdir(os.path.join(spool, name))


# ------------------------------------------------------------------ the crash, from argv and /proc

def crash_numbers(words: list[str]) -> tuple[int, int, int, int] | None:
    """``(global pid, uid, signal, time)`` from the kernel's words (``%P %p %i %I %u %g %s %t
    ...``, options first), ``None`` when they do not look right (the full parser says why)."""
    rest = [w for w in words if not w.startswith("--")]
    if len(rest) < 10 or not all(w.isascii() and w.isdigit() for w in rest[:10]):
        return None
    return int(rest[0]), int(rest[4]), int(rest[6]), int(rest[7])


def read_bounded(name: str, limit: int, dir_fd: int | None = None) -> bytes:
    """Read at most *limit* bytes of *name* (relative to *dir_fd*), never following a symlink
    (a FIFO or a device does not block: O_NONBLOCK)."""
    fd = os.open(name, _READ, dir_fd=dir_fd)
    try:
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def light_snapshot(pid: int, proc: str = "/proc") -> dict[str, bytes]:
    """What a shed crash's signature and count need from ``<proc>/<pid>``: fields of a shed
    record (``gone`` when the directory could not be opened). Never raises OSError."""
    out: dict[str, bytes] = {}
    try:
        dfd = os.open(f"{proc}/{pid}", _DIR)
    except OSError as exc:
        out["gone"] = (exc.strerror or str(exc)).encode()
        return out
    try:
        for link in ("exe", "root", "cwd"):
            try:
                out[link] = os.fsencode(os.readlink(link, dir_fd=dfd)[:4096])
            except OSError:
                pass
        for name, limit in RECORD_LIMITS.items():
            try:
                out[name] = read_bounded(name, limit, dfd)
            except OSError:
                pass
        for ns in NAMESPACES:
            try:
                out[f"ns.{ns}"] = os.fsencode(os.readlink(f"ns/{ns}", dir_fd=dfd)[:256])
            except OSError:
                pass
        exe = os.path.basename(out.get("exe", b""))
        if b"python" in exe or b"crashkit-hook" in exe:
            try:
                env = read_bounded("environ", 1 << 20, dfd)
            except OSError:
                env = b""
            out["own"] = b"1" if (b"\0" + MARKER_ENV) in (b"\0" + env) else b"0"
    finally:
        os.close(dfd)
    return out


def encode_record(fields: dict[str, bytes]) -> bytes:
    """``name NUL length NUL value`` for each field (pure)."""
    return b"".join(k.encode() + b"\0" + str(len(v)).encode() + b"\0" + v for k, v in fields.items())


def decode_record(data: bytes) -> dict[str, bytes]:
    """The fields of :func:`encode_record`; ValueError on anything else (pure)."""
    out: dict[str, bytes] = {}
    i = 0
    while i < len(data):
        name_end = data.index(b"\0", i)
        len_end = data.index(b"\0", name_end + 1)
        size = int(data[name_end + 1:len_end])
        value = data[len_end + 1:len_end + 1 + size]
        if size < 0 or len(value) != size:
            raise ValueError("truncated record")
        out[data[i:name_end].decode("ascii")] = value
        i = len_end + 1 + size
    return out


def write_record(state_fd: int, fields: dict[str, bytes], when: int, pid: int) -> str:
    """Write one shed record (temporary name, then renamed: a folder never reads half of
    one); returns its name in ``shed/``."""
    name = f"{when}-{pid}-{os.getpid()}{RECORD_SUFFIX}"
    _write_state_file(state_fd, SHED_DIR, name, encode_record(fields)[:MAX_RECORD],
                      tmp=f".{name}.tmp", exclusive=True)
    return name


def pending_records(state_fd: int) -> list[str]:
    """Names of the shed records waiting to be folded, oldest first."""
    try:
        sfd = os.open(SHED_DIR, _DIR, dir_fd=state_fd)
    except FileNotFoundError:
        return []
    try:
        return sorted(n for n in os.listdir(sfd) if n.endswith(RECORD_SUFFIX) and not n.startswith("."))
    finally:
        os.close(sfd)


def drain(fd: int = 0) -> None:
    """Read *fd* to EOF into /dev/null (splice; a read loop where splice fails). Never raises."""
    try:
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        try:
            while os.splice(fd, null, 1 << 20) > 0:
                pass
            return
        except OSError:
            pass
        buf = bytearray(1 << 16)
        while os.readv(fd, [buf]) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(null)


# ------------------------------------------------------------------ the decision

def _lock_file(dir_fd: int, name: str, how: int) -> int | None:
    """:func:`try_lock` with *how* (``LOCK_SH`` or ``LOCK_EX``)."""
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                 0o600, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PermissionError(errno.EPERM, "lock file is not a plain file", name)
        fcntl.flock(fd, how | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise


def waiters_present(state_fd: int) -> bool:
    """Some first crash of a program waits for a slot (it holds ``hook-waiting`` shared)."""
    probe = _lock_file(state_fd, WAITING, fcntl.LOCK_EX)
    if probe is None:
        return True
    os.close(probe)
    return False


def _wait_for_first(state_fd: int, slots: int) -> int | None:
    """A slot for the first crash of a program, waited for up to :data:`FIRST_CRASH_WAIT`
    seconds by at most :data:`MAX_WAITERS` hooks; while they wait, other crashes leave the
    slots that free up to them (:func:`waiters_present`)."""
    waiter = try_slot(state_fd, WAIT_PREFIX, MAX_WAITERS)
    if waiter is None:
        return None
    waiting = _lock_file(state_fd, WAITING, fcntl.LOCK_SH)
    try:
        deadline = time.monotonic() + FIRST_CRASH_WAIT
        while time.monotonic() < deadline:
            time.sleep(_POLL)
            slot = try_slot(state_fd, SLOT_PREFIX, slots)
            if slot is not None:
                return slot
    finally:
        os.close(waiter)
        if waiting is not None:
            os.close(waiting)
    return None


def _first_crash_slot(state_fd: int, key: str, slots: int) -> int | None:
    """The slot of the first crash of program *key* (no core of it kept yet): only one hook
    per program bucket tries (the bucket stays locked while this process lives, its capture
    runs), the others shed: their core would be the same program's."""
    bucket = try_lock(state_fd, f"{FIRST_PREFIX}.{int(key[:4], 16) % FIRST_BUCKETS}")
    if bucket is None:
        return None
    slot = try_slot(state_fd, SLOT_PREFIX, slots)
    if slot is None:
        slot = _wait_for_first(state_fd, slots)
    if slot is None:
        os.close(bucket)
    return slot  # the bucket's descriptor is left open on purpose


def _slot(state_fd: int, spool: str, exe: str, key: str, slots: int) -> int | None:
    """The full-capture slot this crash gets, if any."""
    if exe and not is_seen(state_fd, spool, key):
        return _first_crash_slot(state_fd, key, slots)
    if waiters_present(state_fd):
        return None  # the slots that free up go to the programs without a core yet
    return try_slot(state_fd, SLOT_PREFIX, slots)


def _shed(state_fd: int, words: list[str], fields: dict[str, bytes], numbers: tuple[int, int, int, int],
          slots: int, config: str) -> int:
    """Record the crash, drain its core, fold the records when nobody else does."""
    fields = {"argv": "\0".join(words).encode("utf-8", "surrogateescape"),
              "slots": str(slots).encode(), **fields}
    write_record(state_fd, fields, numbers[3], numbers[0])
    drain(0)
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)  # no reader left on the pipe: the kernel may reap the process
        os.close(null)
        lock = try_lock(state_fd, FOLD_LOCK)
        if lock is not None:
            from collectors.corehook import shedfold

            shedfold.fold_while_pending(config, state_fd, lock)
    except BaseException:  # noqa: BLE001 - the crash is counted (its record is written)
        pass
    return SHED


def admit(words: list[str]) -> int:
    """The full-capture slot for this crash (a held descriptor), :data:`SHED` when the crash
    was counted without its core, or :data:`UNDECIDED` (the full hook decides). Never raises."""
    config = next((w[len("--config="):] for w in words[:2] if w.startswith("--config=/")), None)
    numbers = crash_numbers(words)
    if config is None or numbers is None:
        return UNDECIDED
    try:
        settings = read_settings(config)
        if settings is None or settings[1] <= 0:
            return UNDECIDED
        spool, slots = settings
        state_fd = open_state(spool)
    except (OSError, ValueError):
        return UNDECIDED
    try:
        fields = light_snapshot(numbers[0])
        exe = clean_exe(os.fsdecode(fields.get("exe", b"")))
        slot = _slot(state_fd, spool, exe, program_key(numbers[1], exe, numbers[2]), slots)
        if slot is not None:
            return slot
        return _shed(state_fd, [w for w in words if not w.startswith("--")], fields, numbers,
                     slots, config)
    except (OSError, ValueError):
        return UNDECIDED
    finally:
        os.close(state_fd)


def records(state_fd: int, names: list[str]) -> Iterator[tuple[str, dict[str, bytes] | None]]:
    """``(name, fields)`` of each shed record (``None``: unreadable or garbage)."""
    for name in names:
        try:
            fd = os.open(f"{SHED_DIR}/{name}", _READ, dir_fd=state_fd)
        except OSError:
            continue  # folded meanwhile
        try:
            data = os.read(fd, MAX_RECORD + 1)
        finally:
            os.close(fd)
        try:
            yield name, decode_record(data)
        except ValueError:
            yield name, None


def remove_record(state_fd: int, name: str) -> None:
    """Delete a folded record."""
    try:
        os.unlink(f"{SHED_DIR}/{name}", dir_fd=state_fd)
    except FileNotFoundError:
        pass
