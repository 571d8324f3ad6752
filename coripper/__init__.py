"""coripper: minimize ELF core dumps and unwind them into satyr's core_backtrace.

Importing this package is cheap on purpose: the crash hook imports the stream
minimizer, which must not pull in pyelftools.
"""

__version__ = "0.1.0"
