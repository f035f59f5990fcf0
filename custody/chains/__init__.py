"""Chain adapters: the venue's view of each blockchain: clients of the chains' own node
interfaces (reads, broadcasts) and transaction builders that compute the digests the token signs
(``btc_tx``, ``ethereum_tx``).

``py_ecc`` (imported by eth-account, hence by web3) raises the interpreter's recursion limit to
100,000 for the whole process when it is imported; at that depth a deeply nested JSON document
given to ``json.loads`` by any door overflows the C stack and kills the process instead of
raising ``RecursionError``. The Ethereum modules import it and then call ``restore_recursion_limit``
so the venue's parsers keep Python's guard (the venue never computes pairings, the one use of
the deep limit; the test chain's own process keeps it).
"""

import sys

#: The venue's recursion limit: Python's default.
RECURSION_LIMIT = 1000


def restore_recursion_limit() -> None:
    sys.setrecursionlimit(RECURSION_LIMIT)
