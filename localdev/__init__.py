"""Local development: stand-ins for the services with no Firebase emulator (Alpaca, Secret
Manager), helpers that speak to the Firebase emulators over REST, and demo seeding."""

ALPACA_PORT = 9911
"""Where the Alpaca stand-in listens for the demo and the tests (ALPACA_*_BASE_URL)."""
SECRETS_PORT = 9912
"""Where the Secret Manager stand-in listens (SECRET_MANAGER_EMULATOR_HOST)."""
