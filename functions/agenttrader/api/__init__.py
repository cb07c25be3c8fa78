"""The callables a person's page (and an admin's) calls: `guard` is the one shape every callable
has (who is calling, strict input, a rate limit, failures as callable error codes), `callables`
the account, keys, signal, trade and admin handlers, `strategy_callables` the strategies and
risk limits, `alpaca_connect` Connect with Alpaca. May import `pulse` (a sync on request), `bot`,
`context`, `store`, `broker` and `core`; nothing imports it but `runtime` and `main.py`."""
