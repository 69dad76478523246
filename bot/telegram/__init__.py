"""The Telegram edge: alert rendering (pure), sending, and chat commands.

This package's ``__init__`` imports nothing on purpose: ``render`` is a pure module, and
importing it must not pull in python-telegram-bot. Only ``transport`` and ``commands`` import
the library.
"""
