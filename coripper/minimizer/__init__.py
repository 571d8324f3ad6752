"""The minimizer: ELF core reading and writing, in file and single-pass stream modes.

Standard library only, because the crash hook imports it (through :mod:`.stream`, the public
entry point): nothing here imports pyelftools, a compression library at start-up, or
:mod:`coripper.unwinder`. tests/coripper/test_stream.py pins that rule.
"""
