"""The small shared kernel every layer may use, importing nothing of the package: `money`
(exact Decimal and its rounding), `errors` (the product's error codes), `config` (the deploy's
params) and `clients` (the SDK clients, created lazily)."""
