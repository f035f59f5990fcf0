"""The venue's core: domain types, commands and events, order books and matching, the sequencer,
and the journal (write-ahead log, snapshots, recovery).

Its sections of the configuration file are ``[venue]``, ``[journal]`` and ``[[instruments]]``
(``engine.config``); ``engine.configfile`` is the typed reader every package reads its own
sections with.

It imports nothing else of the venue; every other package builds on it. The core is a
deterministic state machine: ``Core.apply(command) -> events`` reads no clock, draws no random
number and does no I/O, so replaying the journal rebuilds the same state (same ``state_hash``).
"""

from engine._native import activate as _activate

#: True when the compiled build of the hot modules is in use (see engine/_native.py).
NATIVE = _activate(__path__)
