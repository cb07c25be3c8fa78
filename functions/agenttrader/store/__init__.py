"""The database's shapes: `paths` (every Firestore path, built in one place), `queries` (every
query), `models` (stored documents read and written), `firestore_io` (batched reads),
`optimistic` (read-decide-write with a precondition), `switches` (both kill-switches) and
`audit` (the audit trail). May import `broker` (the account's shape) and `core`."""
