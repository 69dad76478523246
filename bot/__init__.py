"""newsbot: watches news feeds and pushes keyword-selected stories to Telegram."""

__version__ = "0.1.0"
