"""collectors: everything that reads the host — the crash hook, kernel oopses, container state, checks.

Kept free of imports: the crash hook imports :mod:`collectors.corehook.hook` directly.
"""
