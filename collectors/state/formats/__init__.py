"""Pure parsers of what the container and VM tools print and write (bytes/text in, frozen
dataclasses or plain values out; :class:`collectors.errors.StateError` for malformed input)."""
