"""The operators' admin API: HTTP and JSON in the Binance dialect, for instruments, states, the
kill switch, accounts, orders on behalf of participants, money and the ledger.

- ``fields``: reading a request's fields and answering errors with Binance's codes;
- ``commands``: one builder per endpoint that changes state (units and rules: ``gateway.edge``);
- ``render``: events and orders as JSON;
- ``apikeys``: the API keys of the REST door (made, listed, revoked in its key store);
- ``app``: the routes and handlers, ``make_app`` and ``serve``;
- ``console``: the staff console, a static web application on the same port whose pages fetch
  this API's JSON (pages of other packages list their scripts with ``console.add_script``);
- ``ports``: what it needs of the venue, the ledger and the key store, implemented by the
  composition root.

Imports the engine and the rest of the gateway only (the key store: ``gateway.rest.keys``).
"""
