"""The core_pattern crash hook: capture, snapshot, spool. Keep imports light: the kernel waits on us."""
