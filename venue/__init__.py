"""The composition root: the command line and the wiring of the pieces into processes.

It may import every other package of the venue; nothing imports it. ``venue.config`` loads the
configuration files in ``config/``: it reads the TOML and dispatches each top-level section to
the package that reads and checks it.
"""
