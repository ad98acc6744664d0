"""Procedural English sentences from word lists, for text-to-speech sources.

A small grammar (statements, reported speech, questions, requests, two-clause sentences joined
by a conjunction, time and place phrases, numbers) over a few hundred words gives far more
distinct sentences than any fixed list: a corpus of a few hundred utterances almost never
repeats a sentence. Every sentence is a function of the random generator's state.
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_sentence"]

_NAMES = (
    "Anna Ben Carla David Elena Frank Grace Henry Irene Jack Karen Leo Maria Nathan Olivia Peter "
    "Rachel Samuel Tina Victor Wendy Oscar Julia Martin Laura Simon Nora Philip Helen Thomas "
    "Emily George Sophie Daniel Alice Robert Clara Edward Lucy Michael"
).split()
_PEOPLE = (
    "teacher doctor farmer driver pilot baker nurse painter student lawyer neighbour engineer "
    "cook gardener captain writer singer waiter manager officer child visitor scientist "
    "carpenter fisherman musician reporter soldier librarian"
).split()
_THINGS = (
    "letter window bottle basket ladder candle blanket bicycle camera mirror pencil engine "
    "garden kitchen bridge river island market station village tower forest castle harbour "
    "meadow valley chimney carpet envelope wallet umbrella telescope lantern notebook kettle "
    "violin barrel wagon fountain statue curtain jacket parcel ticket radio compass"
).split()
_ADJECTIVES = (
    "old young quiet noisy bright dark heavy narrow broken empty famous gentle yellow green "
    "wooden golden tiny enormous careful lazy clever strange ancient modern frozen warm dusty "
    "shiny crooked polite nervous cheerful silver purple hollow sturdy distant crowded"
).split()
_VERBS = tuple(  # (base, past) of transitive verbs
    tuple(pair.split("/"))
    for pair in (
        "carry/carried paint/painted find/found lose/lost build/built repair/repaired open/opened "
        "close/closed watch/watched follow/followed borrow/borrowed deliver/delivered "
        "clean/cleaned sell/sold buy/bought bring/brought hide/hid describe/described "
        "measure/measured move/moved visit/visited check/checked carve/carved wrap/wrapped "
        "push/pushed pull/pulled drop/dropped catch/caught throw/threw draw/drew "
        "photograph/photographed explore/explored forget/forgot remember/remembered "
        "polish/polished test/tested"
    ).split()
)
_INTRANSITIVE = (
    "waited arrived laughed shouted whispered slept wandered hurried stopped danced smiled "
    "listened disappeared returned complained hesitated"
).split()
_ADVERBS = (
    "slowly quickly quietly suddenly carefully happily nervously patiently loudly gently "
    "eagerly barely calmly"
).split()
_PREPOSITIONS = "near behind under beside across inside along past through above below".split()
_TIME_PHRASES = tuple(
    p.strip()
    for p in (
        "yesterday, today, this morning, last night, on Sunday, after lunch, before dinner, "
        "at midnight, in the spring, every winter, on Monday afternoon, later that evening, "
        "at dawn, last summer, next week, at noon, on Friday, an hour ago, during the storm"
    ).split(",")
)
_REPORT = "said thought explained believed noticed admitted claimed remembered".split()
_CONJ = ("but", "and", "so", "because", "while", "although", "until", "before", "after")
_NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve",
            "fifteen", "twenty", "thirty", "forty", "fifty", "a hundred")  # fmt: skip
_QUESTION = ("why", "when", "where", "how")


def _pick(rng: np.random.Generator, items) -> str:
    return items[int(rng.integers(len(items)))]


def _plural(noun: str) -> str:
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return {"child": "children", "fisherman": "fishermen"}.get(noun, noun + "s")


def _noun_phrase(rng: np.random.Generator, allow_name: bool = True) -> str:
    draw = rng.random()
    if allow_name and draw < 0.25:
        return _pick(rng, _NAMES)
    noun = _pick(rng, _PEOPLE if draw < 0.55 else _THINGS)
    det = _pick(rng, ("the", "the", "a", "my", "our", "their", "that", "this"))
    if det == "a" and noun[0] in "aeiou":
        det = "an"
    if rng.random() < 0.45:
        adj = _pick(rng, _ADJECTIVES)
        if det in ("a", "an"):
            det = "an" if adj[0] in "aeiou" else "a"
        return f"{det} {adj} {noun}"
    if rng.random() < 0.15:
        return f"{_pick(rng, _NUMBERS)} {_plural(noun)}"
    return f"{det} {noun}"


def _place(rng: np.random.Generator) -> str:
    return f"{_pick(rng, _PREPOSITIONS)} the {_pick(rng, _THINGS)}"


def _clause(rng: np.random.Generator) -> str:
    subject = _noun_phrase(rng)
    if rng.random() < 0.25:
        parts = [subject, _pick(rng, _INTRANSITIVE)]
    else:
        parts = [subject, _pick(rng, _VERBS)[1], _noun_phrase(rng)]
    if rng.random() < 0.3:
        parts.append(_pick(rng, _ADVERBS))
    if rng.random() < 0.4:
        parts.append(_place(rng))
    if rng.random() < 0.3:
        parts.append(_pick(rng, _TIME_PHRASES))
    return " ".join(parts)


def _sentence_once(rng: np.random.Generator) -> str:
    kind = rng.random()
    if kind < 0.3:
        text = _clause(rng) + "."
    elif kind < 0.5:
        text = f"{_clause(rng)}, {_pick(rng, _CONJ)} {_clause(rng)}."
    elif kind < 0.6:
        text = f"{_pick(rng, _TIME_PHRASES).capitalize()}, {_clause(rng)}."
    elif kind < 0.72:
        text = f"{_pick(rng, _NAMES)} {_pick(rng, _REPORT)} that {_clause(rng)}."
    elif kind < 0.86:
        base = _pick(rng, _VERBS)[0]
        q = _pick(rng, _QUESTION)
        if rng.random() < 0.5:
            text = f"{q} did {_noun_phrase(rng)} {base} {_noun_phrase(rng)}?"
        else:
            text = f"did {_noun_phrase(rng)} {base} {_noun_phrase(rng)} {_place(rng)}?"
    elif kind < 0.94:
        base = _pick(rng, _VERBS)[0]
        text = (
            f"please {base} {_noun_phrase(rng, allow_name=False)} {_place(rng)}, "
            f"and {_pick(rng, _VERBS)[0]} {_noun_phrase(rng, allow_name=False)}."
        )
    else:
        text = f"{_clause(rng)}!"
    return text[0].upper() + text[1:]


def make_sentence(rng: np.random.Generator, min_words: int = 8, max_words: int = 22) -> str:
    """One random English sentence (or two) of ``min_words`` to ``max_words`` words.

    Args:
        rng (np.random.Generator): random generator.
        min_words (int): fewest words; short sentences get a second sentence appended.
        max_words (int): most words; longer drafts are drawn again.

    Returns:
        str: the text, capitalised and punctuated.
    """
    if not 1 <= min_words <= max_words:
        raise ValueError(f"Need 1 <= min_words <= max_words, got {min_words}, {max_words}.")
    for _ in range(100):
        text = _sentence_once(rng)
        while len(text.split()) < min_words:
            text += " " + _sentence_once(rng)
        if len(text.split()) <= max_words:
            return text
    return " ".join(text.split()[:max_words])  # pragma: no cover - practically unreachable
