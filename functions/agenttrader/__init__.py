"""AgentTrader: a multi-tenant trading back end on Firebase."""
