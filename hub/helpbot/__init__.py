"""Help center and help bot.

- `catalog`: articles (data files in `articles/`) loaded once; `search`, `best`.
- `search`, `text`, `synonyms`: ranked retrieval for Chinese and English questions.
- `dialogue`: the bot's pure state machine (`respond`, `on_transaction_update`, `greeting`).
- `routes`: the public `/api/help/...` HTTP endpoints.
"""

from hub.helpbot.article import Article
from hub.helpbot.catalog import HelpCenter, best, load_help_center, search
from hub.helpbot.search import Hit

__all__ = ["Article", "HelpCenter", "Hit", "best", "load_help_center", "search"]
