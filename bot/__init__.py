"""The bot: settings, store, engine, run loop and the operator CLI."""

__version__ = "0.1.0"
