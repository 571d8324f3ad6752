"""libreport event rules (docs/formats/libreport.md §3): loading, matching, running, workflows.

``report_event.conf`` and its includes are parsed by :mod:`reporter.events.rules`, conditions
matched by :mod:`reporter.events.conditions`, event options read by
:mod:`reporter.events.options`, and an event is run on a problem directory by
:mod:`reporter.events.engine`. Kept free of imports.
"""
