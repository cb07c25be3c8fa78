"""The outside services a person's credential reaches: `alpaca` (Alpaca's trading and data
APIs, retried, with answers checked) and `keystore` (each person's Alpaca credential in Secret
Manager, cached by the instance). May import `core` only."""
