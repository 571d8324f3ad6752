# gdb Python script used by tests/coripper/test_unwind.py as the independent oracle: prints one
# JSON line per thread with every frame gdb shows (frame type, pc, function name).
# Written for this project; run as `gdb -batch -x gdb_frames.py EXE CORE`.
import json

import gdb

for thread in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num):
    thread.switch()
    frame = gdb.newest_frame()
    frames = []
    while frame is not None and len(frames) < 100000:
        frames.append([frame.type(), frame.pc(), frame.name()])
        try:
            frame = frame.older()
        except gdb.error:
            break
    print("CRASHKIT-THREAD " + json.dumps({"tid": thread.ptid[1], "frames": frames}))
