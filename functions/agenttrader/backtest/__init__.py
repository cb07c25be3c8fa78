"""Backtests: a strategy replayed on daily bars by the live bot's own rules (`engine`), and
the document a person's backtest is stored as (`document`)."""
