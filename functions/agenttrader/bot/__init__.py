"""The bot: what trades for a person. `strategies` decide on daily bars, `signals` size a
decision, `settings` are a person's stored strategies and limits, `risk` checks and trips the
limits, `performance` is the statistics' arithmetic; a run (`run`) decides for each strategy
and symbol, then enters (`entries`) or exits (`exits`), with paper orders sent and followed by
`orders` and a trade's record closed by `positions`; `books` writes the statistics and the
equity curve; `person` is what every step works with. May import `context`, `store`, `broker`
and `core`."""
