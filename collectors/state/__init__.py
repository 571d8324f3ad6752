"""Container and VM state of the host (``crashkit state``) and the one attribution of a process
to its container or VM (:mod:`collectors.state.attribution`).

Keep this file empty of imports: the crash hook imports :mod:`collectors.state.attribution`,
and whatever this package imports at start-up would load into every crash the host has.
"""
