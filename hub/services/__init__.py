"""Use cases: chat, notifications, the help bot's seat in a chat, the sweeper, broadcasts."""
