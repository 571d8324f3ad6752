"""reporter: crashkit's libreport — problem directories, event rules, reporters, upload service.

Kept free of imports: the crash hook imports :mod:`reporter.dumpdir` directly.
"""
