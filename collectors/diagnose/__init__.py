"""``crashkit diagnose``: the support bundle (sections as plugins with time and size budgets,
a streaming cleaner, an atomic archive with a manifest) and its self-contained HTML report."""
