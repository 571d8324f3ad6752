"""The unwinder: a core's modules, CFI, inline and tail-call frames, symbols, and satyr's
``core_backtrace`` (:mod:`.backtrace`), on pyelftools.

It may import the minimizer (:mod:`coripper.minimizer.elfcore` parses the core's headers and
notes); the minimizer never imports it, and the crash hook never loads it (its
post-processing child does).
"""
