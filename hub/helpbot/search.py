"""Ranked retrieval over help articles: BM25 on weighted fields, one index per language.

Each article is indexed as one bag of terms in which a title or keyword term counts
several times a body term (a simple form of BM25F): users phrase questions like our
keyword lists (colloquial synonyms written into each article's front matter), far more
than like our prose. Rarity (IDF) is taken from titles and keywords where a word occurs
there, so a word every article mentions in passing still identifies the one article
about it. A query is expanded with a small colloquial table before scoring.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from hub.helpbot.article import Article
from hub.helpbot.intents import mentions_security
from hub.helpbot.synonyms import expansions
from hub.helpbot.text import is_unigram, normalize, tokenize

FIELD_WEIGHTS = {"title": 3.0, "keywords": 2.0, "summary": 1.5, "body": 0.5, "phrasings": 0.5}
# Field weights multiply term counts, so counts run higher than BM25's usual k1=1.2
# assumes; a larger k1 keeps "mentioned everywhere" apart from "mentioned in passing".
K1 = 3.0
B = 0.5  # mild length normalisation: long articles are long because they are thorough
# A lone Chinese character in a query ("工" of 人工 and of 工作日) says little; bi-grams
# carry the meaning, uni-grams only break ties and catch one-character words.
UNIGRAM_WEIGHT = 0.3
# Words added by the colloquial table weigh less than the customer's own words: when a
# question names two things ("how long does a refund take"), the word they typed wins.
EXPANSION_WEIGHT = 0.6

# Confidence: the best hit must score at least MIN_SCORE and beat the runner-up by MARGIN.
# Chinese queries yield several terms per word (bi-grams and uni-grams), so their scores
# run about twice as high as English ones; the floors differ accordingly.
MIN_SCORE = {"zh": 3.0, "en": 1.5}
MARGIN = 1.1
# A wrong answer to a security question costs most (an account being taken over while the
# bot talks about SMS codes): when an article on such a topic is a close runner-up, the
# winner must lead it by this much, else the bot asks rather than answers.
CAREFUL_TOPICS = frozenset({"security"})
CAREFUL_MARGIN = 1.6
# A question that says it is about the account's safety (被盗, 异地登录, hacked, "someone
# asked for my code": hub.helpbot.intents.mentions_security) ranks the security articles
# this much higher, and is never answered with another topic's article with confidence.
SECURITY_BOOST = 1.5
# A question about the account's safety with two security articles close together (taken
# over, or tricked into giving a code away?): the first must lead the other by this much.
SECURITY_PAIR_MARGIN = 1.2
MAX_QUERY_CHARS = 500  # longer text is cut: a question does not need more, scoring stays cheap


@dataclass(frozen=True)
class Hit:
    """One search result."""

    slug: str
    title: str
    score: float

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of the search endpoint."""
        return {"slug": self.slug, "title": self.title, "score": self.score}


class SearchIndex:
    """A BM25 index over the articles of one language."""

    def __init__(self, articles: Iterable[Article], lang: str) -> None:
        self.lang = lang
        self._docs: list[tuple[Article, dict[str, float], float]] = []
        self._careful: set[str] = set()
        df: Counter[str] = Counter()
        topical_df: Counter[str] = Counter()
        for article in articles:
            tf = _weighted_terms(article)
            if article.topic in CAREFUL_TOPICS:
                self._careful.add(article.slug)
            self._docs.append((article, tf, sum(tf.values())))
            df.update(tf.keys())
            topical_df.update(set(tokenize(" ; ".join([article.title, *article.keywords]))))
        n = len(self._docs)
        self._avg_len = sum(length for _, _, length in self._docs) / n if n else 1.0
        # Rarity is judged on what articles are about (title, keywords) where possible:
        # every article ends with "contact support", yet only one is about it, and 客服
        # must not count for nothing there. Words in no title or keyword fall back to
        # their rarity across whole articles.
        self._idf = {t: _idf(n, topical_df.get(t) or f) for t, f in df.items()}

    def search(self, query: str, limit: int = 5) -> list[Hit]:
        """Articles matching `query`, best first; empty when nothing matches."""
        text = normalize(query[:MAX_QUERY_CHARS])
        own = set(tokenize(text))
        extra = set(tokenize(" ".join(expansions(text, self.lang)))) - own
        terms = {t: 1.0 for t in own} | {t: EXPANSION_WEIGHT for t in extra}
        if not terms or limit <= 0:
            return []
        boost = SECURITY_BOOST if self._careful and mentions_security(text) else 1.0
        hits = []
        for article, tf, length in self._docs:
            score = self._score(terms, tf, length)
            if article.slug in self._careful:
                score *= boost
            if score > 0:
                hits.append(Hit(article.slug, article.title, round(score, 4)))
        hits.sort(key=lambda h: (-h.score, h.slug))
        return hits[:limit]

    def best(self, query: str, exclude: Collection[str] = ()) -> tuple[Hit | None, bool]:
        """The best hit and whether it is clear enough for the bot to answer with it; the
        articles in `exclude` are left out before judging (as if they did not exist)."""
        hits = [h for h in self.search(query, limit=3 + len(exclude)) if h.slug not in exclude]
        hits = hits[:3]
        if not hits:
            return None, False
        top = hits[0]
        careful_runner_up = any(
            h.slug in self._careful and h.score * CAREFUL_MARGIN > top.score for h in hits[1:]
        )
        security = mentions_security(query)
        if top.slug not in self._careful and (careful_runner_up or security):
            return top, False
        if security and any(
            h.slug in self._careful and h.score * SECURITY_PAIR_MARGIN > top.score for h in hits[1:]
        ):
            return top, False  # two security articles close: ask which, never guess
        return top, is_confident(hits[:2], self.lang)

    def _score(self, terms: Mapping[str, float], tf: Mapping[str, float], length: float) -> float:
        norm = K1 * (1 - B + B * length / self._avg_len)
        score = 0.0
        for term, query_weight in terms.items():
            f = tf.get(term)
            if f:
                weight = query_weight * (UNIGRAM_WEIGHT if is_unigram(term) else 1.0)
                score += weight * self._idf[term] * f * (K1 + 1) / (f + norm)
        return score


def _idf(n: int, df: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def is_confident(hits: list[Hit], lang: str) -> bool:
    """A clear winner: high enough, and ahead of the runner-up by a margin."""
    if not hits or hits[0].score < MIN_SCORE.get(lang, 3.0):
        return False
    return len(hits) < 2 or hits[0].score >= MARGIN * hits[1].score


def _weighted_terms(article: Article) -> dict[str, float]:
    fields = {
        "title": article.title,
        "keywords": " ; ".join(article.keywords),
        "summary": article.summary,
        "body": article.body,
        "phrasings": " ; ".join(article.phrasings),
    }
    tf: defaultdict[str, float] = defaultdict(float)
    for name, text in fields.items():
        for term in tokenize(text):
            tf[term] += FIELD_WEIGHTS[name]
    return dict(tf)
