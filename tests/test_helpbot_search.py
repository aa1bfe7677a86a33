"""Help center: articles, tokenization, ranked search, its accuracy floor, the HTTP routes."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from hub.helpbot.article import TOPICS, ArticleFormatError, parse_article
from hub.helpbot.catalog import HelpCenter, best, load_help_center, search
from hub.helpbot.routes import routes
from hub.helpbot.text import detect_lang, normalize, stem, tokenize

with warnings.catch_warnings():
    # Starlette 1.x warns at import when its test client runs on httpx rather than httpx2.
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

QUESTIONS = Path(__file__).parent / "data" / "help_questions.json"
REQUIRED = [
    "register-account",
    "payment-failed",
    "account-security",
    "arrival-delay",
    "reset-password",
    "contact-support",
]
# Measured with bench/help_eval.py (see docs/help-search.md); floors sit a little below.
TOP1_FLOOR = 0.92
TOP3_FLOOR = 0.95


# --- articles ---------------------------------------------------------------------------


def test_required_articles_exist_in_both_languages() -> None:
    help_center = load_help_center()
    for slug in REQUIRED:
        for lang in ("zh", "en"):
            article = help_center.get(slug, lang)
            assert article is not None, (slug, lang)
            assert article.title and article.summary and article.topic in TOPICS


def test_every_article_has_both_languages_and_real_content() -> None:
    help_center = load_help_center()
    zh = {a.slug for a in help_center.articles("zh")}
    assert zh == {a.slug for a in help_center.articles("en")}
    assert len(zh) >= 9
    for lang in ("zh", "en"):
        for article in help_center.articles(lang):
            assert article.body.count("\n## ") >= 2, article.slug
            assert len(article.keywords) >= 5, article.slug
            assert not article.summary.startswith("#")


def test_article_lookup_misses_return_none() -> None:
    help_center = load_help_center()
    assert help_center.get("no-such-article", "zh") is None
    assert help_center.get("reset-password", "fr") is None
    assert help_center.langs_of("reset-password") == ["zh", "en"]


def test_parse_article_reads_front_matter_and_first_paragraph() -> None:
    text = (
        "---\ntitle: T\ntopic: payment\nkeywords: a, b，c、d\n---\n# H\n\nFirst\nline.\n\nMore.\n"
    )
    article = parse_article(text, "s", "en")
    assert (article.title, article.topic, article.summary) == ("T", "payment", "First line.")
    assert article.keywords == ("a", "b", "c", "d")


@pytest.mark.parametrize(
    "text",
    ["no front matter", "---\ntopic: payment\n---\nx", "---\ntitle: T\ntopic: weather\n---\nx"],
)
def test_parse_article_refuses_bad_files(text: str) -> None:
    with pytest.raises(ArticleFormatError):
        parse_article(text, "s", "zh")


# --- text -------------------------------------------------------------------------------


def test_chinese_becomes_bigrams_and_meaningful_unigrams() -> None:
    tokens = tokenize("钱没到账")
    assert {"钱没", "没到", "到账"} <= set(tokens)
    assert "钱" in tokens
    assert "的" not in tokenize("我的钱")  # grammar characters are dropped as uni-grams


def test_english_is_stemmed_and_stopwords_dropped() -> None:
    assert tokenize("My transfers arrived") == ["transfer", "arriv"]
    assert stem("arrival") == stem("arrive") == stem("arrived")
    assert stem("payments") == stem("paying") == "pay"
    assert stem("transferred") == "transfer"
    assert tokenize("the of and is") == []


def test_typos_and_full_width_are_normalized() -> None:
    assert tokenize("forgot pasword") == tokenize("forgot password")
    assert normalize("ＡＢＣ１２３") == "abc123"
    assert tokenize("can't") == tokenize("cannot")


def test_mixed_text_keeps_both_languages() -> None:
    tokens = tokenize("App登不上 login")
    assert "app" in tokens and "登不" in tokens and "log" in tokens


@pytest.mark.parametrize(
    ("text", "lang"),
    [("收不到验证码", "zh"), ("my money", "en"), ("App 密码", "zh"), ("123", "zh"), ("", "zh")],
)
def test_detect_lang(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


# --- search -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "slug"),
    [
        ("钱没到账", "arrival-delay"),
        ("转账一直处理中", "arrival-delay"),
        ("收不到验证码", "sms-code"),
        ("忘记密码了", "reset-password"),
        ("账户被冻结了", "account-frozen"),
        ("付款失败", "payment-failed"),
        ("怎么注册", "register-account"),
        ("怎么联系客服", "contact-support"),
        ("有人冒充客服要验证码", "anti-fraud"),
        ("有人打电话让我说验证码", "anti-fraud"),
        ("陌生人知道我的验证码", "anti-fraud"),
        ("收到中奖短信让我点链接", "anti-fraud"),
        ("有陌生人登录我的账号", "account-security"),
        ("my transfer is stuck", "arrival-delay"),
        ("money hasn't arrived", "arrival-delay"),
        ("forgot my password", "reset-password"),
        ("account locked", "account-frozen"),
        ("payment declined", "payment-failed"),
        ("how do i sign up", "register-account"),
        ("contact customer service", "contact-support"),
        ("turn on two-step verification", "account-security"),
        ("someone asked for my verification code", "anti-fraud"),
        ("I got a text with a link asking me to log in", "anti-fraud"),
        ("i think my account was hacked", "account-security"),
    ],
)
def test_colloquial_questions_find_their_article(q: str, slug: str) -> None:
    hits = search(q)  # language detected from the question
    assert hits and hits[0].slug == slug


def test_hits_are_sorted_floats_and_limited() -> None:
    hits = search("转账", "zh", limit=3)
    assert 1 <= len(hits) <= 3
    assert all(isinstance(h.score, float) and h.score > 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert search("转账", "zh", limit=0) == []


def test_language_picks_the_index() -> None:
    assert search("forgot password", "en")[0].title == "Reset a forgotten password"
    assert search("忘记密码", "zh")[0].title == "忘记密码如何重置"
    assert search("忘记密码", "fr") == []


@pytest.mark.parametrize(
    "q",
    ["", "   ", "???", "asdfgh qwerty", "😀😀😀", "的的的", "the of and", "\x00\x1f", "a" * 5000],
)
def test_empty_and_garbage_queries_return_nothing(q: str) -> None:
    assert search(q) == []
    assert search(q, "en") == []
    assert best(q) == (None, False)


def test_best_is_confident_only_on_a_clear_winner() -> None:
    hit, confident = best("我的账户被冻结了怎么解冻")
    assert hit is not None and hit.slug == "account-frozen" and confident
    assert best("转账", "zh")[1] is False  # vague: several articles about as good


def test_empty_help_center_searches_nothing() -> None:
    empty = HelpCenter([])
    assert empty.search("转账") == [] and empty.best("转账") == (None, False)
    assert empty.articles("zh") == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["zh", "en", None]))
def test_search_never_fails(q: str, lang: str | None) -> None:
    hits = search(q, lang)
    assert all(h.score > 0 for h in hits)


# --- accuracy on the labelled questions -------------------------------------------------


def _questions() -> list[dict[str, str]]:
    questions: list[dict[str, str]] = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    return questions


def test_labelled_set_is_large_and_valid() -> None:
    questions = _questions()
    slugs = {a.slug for a in load_help_center().articles("zh")}
    assert sum(q["lang"] == "zh" for q in questions) >= 35
    assert sum(q["lang"] == "en" for q in questions) >= 35
    assert all(q["slug"] in slugs for q in questions)
    assert len({q["q"] for q in questions}) == len(questions)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_accuracy_floor(lang: str) -> None:
    questions = [q for q in _questions() if q["lang"] == lang]
    ranked = [[h.slug for h in search(q["q"], lang, limit=3)] for q in questions]
    top1 = sum(r[:1] == [q["slug"]] for r, q in zip(ranked, questions, strict=True))
    top3 = sum(q["slug"] in r for r, q in zip(ranked, questions, strict=True))
    assert top1 / len(questions) >= TOP1_FLOOR
    assert top3 / len(questions) >= TOP3_FLOOR


# --- customer-style questions: dev / held-back (bench/help_eval.py) ----------------------

HELD_BACK_TOP1_FLOOR = 0.92


def _customer() -> list[dict]:
    from bench.help_eval import load_customer_questions

    return load_customer_questions()


def test_customer_set_is_large_split_by_hash_and_labelled_with_articles() -> None:
    from bench.help_eval import part_of

    questions = _customer()
    slugs = {a.slug for a in load_help_center().articles("zh")}
    assert len(questions) >= 400 and len({q["q"] for q in questions}) == len(questions)
    for q in questions:
        assert q["part"] == part_of(q["q"]), q  # the split is the hash's, nobody moved one
        assert q["slugs"] and set(q["slugs"]) <= slugs, q
        assert q["lang"] == ("zh" if any("\u4e00" <= c <= "\u9fff" for c in q["q"]) else "en")
    held = [q for q in questions if q["part"] == "heldback"]
    assert 0.25 <= len(held) / len(questions) <= 0.35
    for lang in ("zh", "en"):
        covered = {s for q in questions if q["lang"] == lang for s in q["slugs"]}
        assert covered == slugs, lang


def test_packaged_phrasings_are_the_dev_part_and_never_a_held_back_question() -> None:
    from bench.help_eval import phrasings_of
    from hub.helpbot.catalog import read_phrasings

    questions = _customer()
    packaged = read_phrasings()
    assert packaged == phrasings_of([q for q in questions if q["part"] == "dev"])
    shipped = {q for by_slug in packaged.values() for qs in by_slug.values() for q in qs}
    assert not shipped & {q["q"] for q in questions if q["part"] == "heldback"}


def test_held_back_accuracy_and_no_confidently_wrong_security_answer() -> None:
    from bench.help_eval import evaluate

    held = [q for q in _customer() if q["part"] == "heldback"]
    tallies, _ = evaluate(held, load_help_center())
    # The held-back misses are deliberately not printed: they must not be tuned on.
    assert tallies["heldback"].top1_rate >= HELD_BACK_TOP1_FLOOR, tallies["heldback"].top1_rate
    assert tallies["heldback"].security_confident_wrong == 0


# --- HTTP routes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(Starlette(routes=routes))


def test_list_articles_defaults_to_chinese(client: TestClient) -> None:
    response = client.get("/api/help/articles")
    assert response.status_code == 200
    items = response.json()
    assert {i["slug"] for i in items} >= set(REQUIRED)
    assert all(i["lang"] == "zh" for i in items)
    assert set(items[0]) == {"slug", "title", "topic", "summary", "lang"}


def test_list_articles_in_english(client: TestClient) -> None:
    items = client.get("/api/help/articles", params={"lang": "en"}).json()
    assert all(i["lang"] == "en" for i in items) and len(items) >= 9


def test_get_article(client: TestClient) -> None:
    response = client.get("/api/help/articles/reset-password", params={"lang": "en"})
    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == "reset-password" and body["lang"] == "en"
    assert body["other_langs"] == ["zh"]
    assert "Forgot password" in body["body"] and body["summary"] and body["topic"] == "account"


def test_get_unknown_article_is_404(client: TestClient) -> None:
    response = client.get("/api/help/articles/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["message"]


def test_search_endpoint(client: TestClient) -> None:
    response = client.get("/api/help/search", params={"q": "钱没到账", "lang": "zh"})
    assert response.status_code == 200
    hits = response.json()
    assert hits[0]["slug"] == "arrival-delay"
    assert set(hits[0]) == {"slug", "title", "score"}
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    en = client.get("/api/help/search", params={"q": "my transfer is stuck"}).json()
    assert en[0]["slug"] == "arrival-delay"
    assert client.get("/api/help/search", params={"q": "zzzz"}).json() == []
    assert len(client.get("/api/help/search", params={"q": "转账", "limit": 2}).json()) <= 2


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "  "},
        {"q": "转账", "lang": "fr"},
        {"q": "x" * 501},
        {"q": "转账", "limit": "0"},
        {"q": "转账", "limit": "many"},
    ],
)
def test_search_endpoint_rejects_bad_queries(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/api/help/search", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"


def test_bad_lang_on_article_routes(client: TestClient) -> None:
    assert client.get("/api/help/articles", params={"lang": "de"}).status_code == 422
    assert client.get("/api/help/articles/refund", params={"lang": "de"}).status_code == 422


def test_summaries_the_bot_sends_are_plain_text():
    from hub.helpbot.catalog import read_articles

    articles = read_articles()
    assert any("**" in a.body for a in articles)  # the bodies do use markup...
    for a in articles:  # ...but what goes into a chat message does not
        assert "**" not in a.summary and "`" not in a.summary and "](" not in a.summary, a.slug


@pytest.mark.parametrize(
    ("q", "lang"),
    [
        ("手机丢了 账户怎么办", "zh"),
        ("有人login我的账户", "zh"),
        ("lost my phone what about my account", "en"),
        ("陌生人要我的验证码给不给", "zh"),
    ],
)
def test_a_question_about_the_accounts_safety_is_never_answered_confidently_off_topic(
    q: str, lang: str
) -> None:
    hit, confident = load_help_center().best(q, lang)
    security = {a.slug for a in load_help_center().articles(lang) if a.topic == "security"}
    assert hit is not None
    assert hit.slug in security or not confident, (hit, confident)
