"""Diagnose sections, one module each; every :class:`~collectors.diagnose.base.Section`
subclass defined in a module here is part of the bundle (adding one is one new file)."""
