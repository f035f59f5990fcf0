"""Test chains for the venue's tests and the embedded demo: never for production.

``bitcoin_node`` is a regtest-like Bitcoin node in its own process that speaks Bitcoin Core's
JSON-RPC, so the venue's adapter (``custody.chains.bitcoin``) talks to it exactly as it would to a
real bitcoind. It keeps its blocks in the data folder its caller names; ``launch`` starts it as a
child process on a free port. Its parts: ``btc_codec`` (wire formats), ``btc_verify`` (script
checks, signatures by bitcoinlib), ``btc_chain`` (blocks, UTXO set, mempool, reorgs), ``jsonrpc``
(bitcoind's JSON-RPC over HTTP).

``ethereum_node`` is eth-tester on py-evm behind Ethereum's JSON-RPC (``ethereum_chain``: the
pool, mining, snapshots, reorganisations, the faucet and the test USDT), in memory only.
"""
