"""One state plugin per technology (registered in :mod:`collectors.state.registry`)."""
