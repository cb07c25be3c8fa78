"""What the pulse, the bot and the callables all work with: `platform` (the clients, the
clock, the app's OAuth registration) and `memory` (what one instance remembers between runs, so
unchanged data costs nothing). May import `store`, `broker` and `core`."""
