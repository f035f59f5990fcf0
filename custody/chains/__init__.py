"""The venue's chain adapters: clients of the chains' own node interfaces, and transaction builders
that compute digests for the HSM to sign (``btc_tx``)."""
