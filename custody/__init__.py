"""Custody: the assets themselves.

Owns keys in an HSM via PKCS#11 (python-pkcs11; SoftHSM2 by default), deposit addresses (BIP32/44/84
for BTC, Ethereum), deposit watching with confirmations and reorgs, withdrawals (queue, limits,
approvals, signing, broadcast), hot/cold sweeps and proof of reserves. Deposits and withdrawals
reach the core as sequenced commands.

May import ``engine`` only. Filled in by later work.
"""
