"""A synthetic "web crawl": thousands of pages built from the bundled texts, with the mess a real crawl has.

Real pre-training data starts as crawled web pages (Common Crawl), and most of a crawl is not worth training on.
The lessons on cleaning and de-duplication need that mess without the internet, so this module manufactures it,
deterministically from a seed: originals (a passage inside a site's page template), exact and near duplicates,
mirrors, boilerplate, error pages and spam. Every page carries a hidden `label` (and, for a copy, the page it
copies), which tests and the UI use to score what the cleaning and dedup steps found. The kinds of page, one by
one: docs/architecture.md, "The generated crawl".

>>> docs = make_crawl(200, seed=1)
>>> len(docs), crawl_composition(docs)["original"]
(200, 100)
>>> make_crawl(200, seed=1) == docs
True
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from engine.extract import bundled
from engine.files import slug

DEFAULT_N_DOCS = 5_000
DEFAULT_SEED = 0
# Share of each kind of page; originals get what the others leave.
COMPOSITION = {
    "exact_dup": 0.10,
    "near_dup": 0.12,
    "mirror": 0.06,
    "boilerplate": 0.07,
    "short": 0.07,
    "spam": 0.08,
}
LABELS = ("original", *COMPOSITION)
CODE_SHARE = 0.15  # share of original pages taken from the code corpus (a programming blog)


@dataclass(frozen=True)
class CrawlDoc:
    id: int  # position in the crawl (pages come in crawl order; a copy always comes after its source)
    url: str
    text: str
    label: str  # one of LABELS
    source_id: int | None = None  # for exact_dup / near_dup / mirror: the id of the page copied
    flags: tuple[str, ...] = ()  # "unicode_variants" and/or "messy_whitespace"


def crawl_composition(docs: list[CrawlDoc]) -> dict[str, int]:
    """How many pages of each label, in LABELS order (0 for absent labels)."""
    counts = Counter(d.label for d in docs)
    return {label: counts[label] for label in LABELS}


def make_crawl(n_docs: int = DEFAULT_N_DOCS, seed: int = DEFAULT_SEED) -> list[CrawlDoc]:
    """The crawl sample: `n_docs` pages, the same list for the same (n_docs, seed). Cached."""
    return list(_make_crawl(n_docs, seed))


# --- page templates (the pieces are words; the pages are put together at random from a seed) ----------------

_SITE_WORDS = (["Daily", "Globe", "Quill", "Open", "Curtain", "Northern", "Bard's", "Lantern", "Pixel", "Stack"],
               ["Gazette", "Review", "Notes", "Stage", "Archive", "Journal", "Corner", "Digest", "Press", "Log"])  # fmt: skip
_SECTIONS = ["News", "Plays", "Poetry", "Essays", "Reviews", "Blog", "Tutorials", "Archive", "Events", "Shop"]
_TAGLINES = ["stories worth reading", "the best of the stage", "words, old and new", "notes from the margins",
             "all the world's a page", "reading together since 1999"]  # fmt: skip
_GENERIC = [  # cross-site boilerplate a CMS adds, with how often it appears on an ordinary page
    ("Skip to main content", 0.30),
    ("We use cookies to improve your experience. Accept all | Manage preferences", 0.35),
    ("Subscribe to our newsletter", 0.25),
    ("Share this page: Facebook | X | Email", 0.25),
    ("Cookie policy | Subscribe", 0.20),
    ("Advertisement", 0.10),
]
_HEAVY = ["Related posts", "Popular this week", "Sign in | Register", "Back to top"]
_SHORT_PAGES = ["Page not found.", "Loading…", "This page has moved.", "Access denied.", "Coming soon!",
                "Error 503: service unavailable.", "Nothing here yet.", "Please enable JavaScript."]  # fmt: skip
_SPAM_KEYWORDS = ["cheap tickets", "best prices", "free shipping", "discount codes", "casino bonus",
                  "replica watches", "weight loss pills", "instant loans", "crypto signals", "free followers"]  # fmt: skip
_SPAM_LINES = ["{a} {b} {a} online", "buy {a} now {a} {a} {b}", "best {a} best {b} best {a}",
               "{a} {a} {a} click here", "{b} {a} today only {a}", "top {a} {b} {a} {b}"]  # fmt: skip
_EDIT_WORDS = ["indeed", "truly", "perhaps", "surely", "now", "then", "still", "yet", "well", "so"]


@dataclass(frozen=True)
class _Site:
    name: str
    domain: str
    header: tuple[str, ...]
    footer: tuple[str, ...]


def _make_sites(rng: random.Random, n: int) -> list[_Site]:
    names = rng.sample([f"{a} {b}" for a in _SITE_WORDS[0] for b in _SITE_WORDS[1]], n)
    sites = []
    for name in names:
        sections = rng.sample(_SECTIONS, 4)
        legal = rng.sample(["Privacy policy", "Terms of use", "Cookie settings", "Accessibility"], 3)
        sites.append(
            _Site(
                name,
                re.sub(r"[^a-z]", "", name.lower()) + rng.choice([".com", ".org", ".net", ".co.uk"]),
                (f"{name} - {rng.choice(_TAGLINES)}", " | ".join(["Home", *sections, "About", "Contact"])),
                (f"© {rng.randint(2015, 2024)} {name}. All rights reserved.", " | ".join(legal)),
            )
        )
    return sites


def _wrap(rng: random.Random, site: _Site, title: str, body: str, heavy: bool = False) -> str:
    """Put a page body inside its site's template. Template lines are each present with high probability."""
    p = 1.0 if heavy else 0.9
    top = [line for line, share in _GENERIC[:2] if heavy or rng.random() < share]
    top += [line for line in site.header if rng.random() < p]
    bottom = [line for line, share in _GENERIC[2:] if heavy or rng.random() < share]
    bottom += _HEAVY if heavy else []
    bottom += [line for line in site.footer if rng.random() < p]
    return "\n".join([*top, title, "", body, "", *bottom]) if title else "\n".join([*top, body, *bottom])


# --- passages of the bundled texts ----------------------------------------------------------------------------


def _passages(target: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(title, body) passages of about `target` characters: Shakespeare by whole speeches, code by paragraphs."""

    def group(paragraphs: list[str], title_of) -> list[tuple[str, str]]:
        out, buf = [], []
        for para in paragraphs:
            buf.append(para)
            if sum(len(p) for p in buf) >= target:
                out.append((title_of(buf), "\n\n".join(buf)))
                buf = []
        return out

    def play_title(buf: list[str]) -> str:
        lines = buf[0].split("\n")
        speaker = lines[0].rstrip(":").title()
        return f"{speaker}: {' '.join(' '.join(lines[1:]).split()[:6])}"

    prose = bundled.split_documents(bundled.read_text("tinyshakespeare"))
    shakespeare = group(prose, play_title)
    code = []
    for module in bundled.split_documents(bundled.read_text("python_stdlib"), "files"):
        marker, _, source = module.partition("\n")
        path = marker.removeprefix("# ==== file: Lib/").removesuffix(" ====")
        parts = group(bundled.split_documents(source), lambda _buf, p=path: f"Reading the source of {p}")
        code += [(f"{title} (part {k + 1})", body) for k, (title, body) in enumerate(parts)]
    return shakespeare, code


# --- the noise a crawl adds -----------------------------------------------------------------------------------


def _unicode_variants(rng: random.Random, text: str) -> str:
    """Forms NFKC folds back: ligatures from PDF extraction, no-break and full-width spaces."""
    text = text.replace("fi", "ﬁ").replace("fl", "ﬂ")
    words = text.split(" ")
    for _ in range(max(1, len(words) // 25)):
        k = rng.randrange(len(words))
        words[k] = words[k] + rng.choice(["\u00a0", "\u3000"])
    return " ".join(words)


def _messy_whitespace(rng: random.Random, text: str) -> str:
    """Windows line endings, trailing spaces, doubled spaces, extra blank lines."""
    lines = [line + " " * rng.randint(0, 3) for line in text.split("\n")]
    lines = [line.replace(" ", "  ", 1) if rng.random() < 0.3 else line for line in lines]
    return "\r\n".join(lines).replace("\r\n\r\n", "\r\n\r\n\r\n", 2)


def _near_copy(rng: random.Random, body: str) -> str:
    """A copy with small edits: one word in about 150 changed (at least one); a long one may lose a line."""
    lines = body.split("\n")
    if len(lines) > 20 and rng.random() < 0.3:
        del lines[rng.randrange(1, len(lines))]
    words = [line.split(" ") for line in lines]
    slots = [(i, j) for i, ws in enumerate(words) for j, w in enumerate(ws) if w]
    for i, j in rng.sample(slots, max(1, len(slots) // 150)):
        w = words[i][j]
        words[i][j] = rng.choice([w[::-1] + "s", rng.choice(_EDIT_WORDS), f"{w} {rng.choice(_EDIT_WORDS)}"])
    return "\n".join(" ".join(ws) for ws in words)


def _spam(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(_SPAM_KEYWORDS, 2)
    lines = [rng.choice(_SPAM_LINES).format(a=a, b=b) for _ in range(rng.randint(8, 20))]
    return f"{a.title()} - {b} - best deals", "\n".join(lines)


# --- putting the crawl together -------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _make_crawl(n_docs: int, seed: int) -> tuple[CrawlDoc, ...]:
    if n_docs < 20:
        raise ValueError("a crawl sample needs at least 20 pages")
    rng = random.Random(seed)
    counts = {label: round(share * n_docs) for label, share in COMPOSITION.items()}
    n_orig = n_docs - sum(counts.values())
    n_code = round(CODE_SHARE * n_orig)
    # Passages shrink until every original page gets one of its own (about 400 characters for 5,000 pages).
    target = 600
    shakespeare, code = _passages(target)
    while len(shakespeare) < n_orig - n_code or len(code) < n_code:
        target = int(target * 0.85)
        if target < 100:
            raise ValueError(
                f"{n_docs:,} pages is more than the bundled texts can fill with distinct passages"
            )
        shakespeare, code = _passages(target)
    picked = rng.sample(shakespeare, n_orig - n_code) + rng.sample(code, n_code)
    rng.shuffle(picked)
    sites = _make_sites(rng, 8)

    pages: list[tuple[float, dict]] = []  # (crawl time, page) pairs, sorted at the end
    originals = []
    for k, (title, body) in enumerate(picked):
        site = rng.choice(sites)
        page_name = slug(title, fallback="page")
        page = {"label": "original", "site": site, "title": title, "body": body, "key": k,
                "url": f"https://{site.domain}/{page_name}-{k}", "source": None, "flags": ()}  # fmt: skip
        page["text"] = _wrap(rng, site, title, body)
        originals.append(page)
        pages.append((rng.random() * 0.9, page))

    def derived(label: str, make) -> None:
        for k in range(counts[label]):
            when, src = pages[rng.randrange(len(originals))]  # the first len(originals) pages are originals
            page = {**make(src, k), "label": label, "source": src["key"], "flags": ()}
            pages.append((when + (1 - when) * rng.uniform(0.01, 1), page))

    derived("exact_dup", lambda s, k: {"text": s["text"], "url": s["url"] + f"?utm_source=feed&id={k}"})
    derived(
        "near_dup",
        lambda s, k: {
            "url": s["url"] + f"/amp?v={k}",
            "text": s["text"].replace(s["body"], _near_copy(rng, s["body"]))
            + (f"\nUpdated {rng.randint(2016, 2024)}" if rng.random() < 0.3 else ""),
        },
    )

    def mirror(s: dict, k: int) -> dict:
        site = rng.choice([other for other in sites if other is not s["site"]])
        return {
            "url": f"https://{site.domain}/mirror/{s['key']}-{k}",
            "text": _wrap(rng, site, s["title"], s["body"]),
        }

    derived("mirror", mirror)
    extra = {"boilerplate": lambda site: _wrap(rng, site, "", _teaser(rng, picked), heavy=True),
             "short": lambda site: _wrap(rng, site, "", rng.choice(_SHORT_PAGES)),
             "spam": lambda site: _wrap(rng, site, *_spam(rng))}  # fmt: skip
    for label, make in extra.items():
        for k in range(counts[label]):
            site = rng.choice(sites)
            page = {"label": label, "text": make(site), "url": f"https://{site.domain}/{label}/{k}"}
            pages.append((rng.random(), {**page, "source": None, "flags": ()}))

    # A page in eight gets Unicode variants or messy whitespace (a copy then differs only in those forms).
    for _, page in pages:
        if rng.random() < 0.125:
            if rng.random() < 0.5:
                page["text"], page["flags"] = _unicode_variants(rng, page["text"]), ("unicode_variants",)
            else:
                page["text"], page["flags"] = _messy_whitespace(rng, page["text"]), ("messy_whitespace",)

    order = sorted(range(len(pages)), key=lambda i: pages[i][0])
    new_id = {pages[i][1]["key"]: pos for pos, i in enumerate(order) if pages[i][1]["label"] == "original"}
    docs = []
    for pos, i in enumerate(order):
        page = pages[i][1]
        source = new_id[page["source"]] if page["source"] is not None else None
        docs.append(CrawlDoc(pos, page["url"], page["text"], page["label"], source, page["flags"]))
    return tuple(docs)


def _teaser(rng: random.Random, passages: list[tuple[str, str]]) -> str:
    title = rng.choice(passages)[0]
    return title[:30].rstrip() + "… Read more"
