"""Surveillance: watching the flow for abuse.

Owns the detectors over the event stream (order-to-trade ratio, wash trades, spoofing, layering),
alerts and cases, the order book replayed at any moment, the tamper-evident audit chain and the
compliance console.

So far: the audit chain (``audit``: the store; ``chain``: kept by the running venue;
``checkpoint``: signed heads; ``verify``: ``venue audit verify``), its trail read back as rows
(``trail``) and served to the console (``pages``: ``/v1/audit``, ``/v1/audit.csv`` and the
page's script in ``static/``; the composition root adds them with their permissions); the
order book as of any seq or time rebuilt from snapshots and the journal (``replay``:
``book_at``, ``BookReplay`` keeping recent cores for scrubbing; served by ``pages`` as
``/v1/surveillance/book``); the alert shape detectors raise (``alerts``) and the alert and
case store (``store``: SQL through SQLAlchemy and Alembic, ``storeschema``, ``migrations/``;
``[surveillance_store]`` in ``storeconfig``), served on the admin API (``casepages``, the
list's query in ``alertquery``) with a case's STOR export (``stor``).

The detectors (``detect``: the feed, order-to-trade ratio, wash trades, spoofing and layering,
money flows, ``[surveillance]``, the batch run ``venue surveil`` uses) raise the ``alerts``
shape to any sink; the running venue's is the store.

May import ``engine`` only (and aiohttp for its pages, SQLAlchemy and Alembic for its store).
"""
