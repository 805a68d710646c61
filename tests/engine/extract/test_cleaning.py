"""Cleaning steps, each on a constructed case, and the defaults on the bundled corpora."""

from __future__ import annotations

from engine.extract import cleaning
from engine.extract.cleaning import CleaningOptions, clean
from engine.extract.corpus import load_corpus, load_documents

PROSE = " ".join(load_corpus("tinyshakespeare")[:1700].split())  # one paragraph of ~1,600 characters
ONLY = CleaningOptions(nfkc=False, whitespace=False, boilerplate=False, short=False, repetitive=False)


# --- cleaning ------------------------------------------------------------------------------------------------


def step(report, name):
    return next(s for s in report.steps if s.name == name)


def test_nfkc_step():
    docs = ["the ﬁnal act", "ＡＢＣ\u00a0plain", "already plain"]
    report = clean(docs, CleaningOptions(**{**ONLY.__dict__, "nfkc": True}))
    assert report.docs == ["the final act", "ABC plain", "already plain"]
    s = step(report, "nfkc")
    assert s.enabled and s.docs_changed == 2 and s.docs_removed == 0
    assert s.examples[0].before.startswith("the ﬁ") and s.examples[0].after.startswith("the fi")
    assert not step(report, "whitespace").enabled


def test_whitespace_step_keeps_indentation():
    docs = ["def f():\r\n    return  1   \n\n\n\n\nx\u00a0=\t2\u200b ", "tidy"]
    report = clean(docs, CleaningOptions(**{**ONLY.__dict__, "whitespace": True}))
    assert report.docs == ["def f():\n    return 1\n\nx = 2", "tidy"]
    s = step(report, "whitespace")
    assert s.docs_changed == 1 and s.chars_removed == len(docs[0]) - len(report.docs[0])


def test_boilerplate_step_removes_recurring_lines():
    pages = [f"Home | News | About\nStory {i}: something happened on day {i} of the festival.\nCookie policy | Subscribe"
             for i in range(10)]  # fmt: skip
    pages.append("Home | News | About\nCookie policy | Subscribe")  # nothing but boilerplate
    report = clean(pages, CleaningOptions(**{**ONLY.__dict__, "boilerplate": True}))
    assert report.docs[3] == "Story 3: something happened on day 3 of the festival."
    s = step(report, "boilerplate")
    assert dict(s.flagged) == {"Home | News | About": 11, "Cookie policy | Subscribe": 11}
    assert s.docs_changed == 11 and s.docs_removed == 1 and report.after.documents == 10
    # Lines that recur in too few documents are content, not boilerplate.
    assert step(clean(pages[:2], CleaningOptions()), "boilerplate").flagged == []


def test_short_step():
    docs = ["Page not found.", PROSE, "  ok  "]
    report = clean(docs, CleaningOptions(**{**ONLY.__dict__, "short": True, "min_chars": 20}))
    assert report.kept == [1] and step(report, "short").docs_removed == 2
    assert step(report, "short").examples[0].before == "Page not found."


def test_repetitive_step():
    spam = "buy cheap pills now " * 20
    report = clean(
        [spam, PROSE[:400], "best prices best prices click here " * 5],
        CleaningOptions(**{**ONLY.__dict__, "repetitive": True}),
    )
    assert report.kept == [1]
    s = step(report, "repetitive")
    assert s.docs_removed == 2 and "word 3-grams are repeats" in s.examples[0].note
    assert cleaning.repetition_score(spam) > 0.9 and cleaning.repetition_score(PROSE[:80]) < 0.3


def test_clean_reports_before_and_after():
    docs = [PROSE, PROSE[:30], "x y " * 50]
    report = clean(docs)
    assert report.before == cleaning.corpus_stats(docs)
    assert report.after.documents == 1 and report.docs == [PROSE] and report.kept == [0]
    assert [s.name for s in report.steps] == ["nfkc", "whitespace", "boilerplate", "short", "repetitive"]


def test_shakespeare_is_mostly_kept_by_default():
    docs = load_documents("tinyshakespeare")
    report = clean(docs)
    assert step(report, "boilerplate").flagged == []  # no speaker name is on 5% of the speeches
    assert step(report, "repetitive").docs_removed == 0
    assert 0.7 < report.after.documents / report.before.documents < 0.9  # only very short speeches go


def test_code_keeps_its_lines_with_the_suggested_options():
    modules = load_documents("python_stdlib")
    web = clean(modules)
    assert "else:" in dict(step(web, "boilerplate").flagged)  # the web filter would strip code lines
    report = clean(modules, cleaning.suggested_options("code"))
    assert report.after.documents == 29 and "        else:" in report.docs[0] + report.docs[-1]
