"""Help center and help bot.

- `catalog`: articles (data files in `articles/`) loaded once; `search`, `best`.
- `search`, `text`, `synonyms`: ranked retrieval for Chinese and English questions.
- `dialogue`: the bot's pure state machine (`respond`, `on_transaction_update`, `greeting`).
- `routes`: the public `/api/help/...` HTTP endpoints.
"""
