"""Check plugins, one module per phase or per group of checks. Every :class:`Check`
subclass defined in a module here is registered; adding a check is one new class (or one
new module) here."""
