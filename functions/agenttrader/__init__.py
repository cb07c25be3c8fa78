"""AgentTrader: a multi-tenant trading back end on Firebase.

Layers, each importing only from those below it (checked by import-linter in `make lint`):
`runtime` (the production wiring) above `api` and `migration`, above `pulse`, `bot`,
`context`, `store`, `broker` and the kernel `core`."""
