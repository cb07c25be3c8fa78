"""The scheduled run that keeps everyone fresh: `run` (the lease, the fan-out, freshness and
the run's record), `cadence` (when a run syncs, by Alpaca's market clock) and `sync` (one
person's sync, and a batch of them, which runs the bot for people with strategies). May import
`bot`, `context`, `store`, `broker` and `core`."""
