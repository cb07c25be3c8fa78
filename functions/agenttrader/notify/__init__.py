"""Telling people what the bot did beyond the page: their webhook, signed and sent only to
public addresses (`webhook`)."""
