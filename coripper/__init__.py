"""coripper: minimize ELF core dumps and unwind them into satyr's core_backtrace.

Two rooms, and the layout shows which code the crash hook may import:

* :mod:`coripper.minimizer`: standard library only (the hook imports it);
* :mod:`coripper.unwinder`: pyelftools; may import the minimizer, never the other way round.

At the top: the shared exception tree (:mod:`coripper.errors`), the ``coripper`` command
(:mod:`coripper.cli`), the ``crashkit backtrace`` subcommand (:mod:`coripper.backtrace_cli`)
and terminal progress (:mod:`coripper.progress`). Importing this package is cheap on purpose.
"""

__version__ = "0.1.0"
