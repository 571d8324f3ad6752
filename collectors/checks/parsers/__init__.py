"""Pure parsers for what the checks read: ``/proc`` and ``/sys`` text, ``wtmp`` records,
journal lines and tool output. Text or bytes in, frozen dataclasses or plain values out;
nothing here opens a file or runs a command."""
