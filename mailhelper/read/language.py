"""Which language a thread is written in: a cheap, deterministic guess from its words.

Pure. Letters to a counterpart are written in English; a thread in another language gets a
short, neutral letter without an English recap pasted into it. The guess needs no model and
no dependency: the script of the letters first (Han, kana, Hangul, Cyrillic, Greek, Arabic,
Hebrew, Thai, Devanagari), then, for Latin script, which language's most common short words
(stopwords) the text holds most::

    >>> guess_language(["Könntest du dir den Plan bis Donnerstag ansehen?"])
    'de'
    >>> guess_language(["Could you look over the plan before Thursday?"])
    'en'
    >>> guess_language(["王小明，你能帮我看看这个计划吗？"])
    'zh'
    >>> guess_language(["Q4 plan"])
    ''

``""`` means the words say too little to tell. The guess reads only what it is given: the
subject, the owner's ask and the counterparts' answers, as the caller picks them.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

__all__ = ["guess_language"]

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: The commonest short words of each language the guess tells apart: function words that
#: carry no topic. A word in two lists ("la", "die", "is") votes for both; the rest decide.
STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words(
        "the and you your to of is it that for on with be are this have can could would "
        "will me my we our please thanks thank if about just what when would should any "
        "from at by was not do does did let know look over before after i'm i'd i'll "
        "hi hello dear could"),
    "de": _words(
        "der die das und ist nicht ich du sie wir ihr mit für auf den dem des ein eine "
        "einen zu von bitte danke könntest könnten kannst können hast habe bis noch "
        "auch schon mir dir mich dich uns euch wie was wann ob oder aber hallo liebe "
        "lieber grüße viele ja nein"),
    "fr": _words(
        "le la les et est pas je tu vous nous il elle avec pour sur des une un du au aux "
        "ce cette ces qui que quoi merci bonjour salut pourriez pourrais peux pouvez "
        "mon ma mes ton ta votre vos avant après jusqu'à bien cordialement oui non "
        "c'est j'ai"),
    "es": _words(
        "el la los las y es no yo tú usted nosotros con para por una un del al que qué "
        "gracias hola podrías puedes puede podría antes después mi mis tu tus su sus "
        "está estás muy sí pero también como cuando saludos"),
    "it": _words(
        "il lo la gli le e è non io tu lei noi con per una uno del della che grazie "
        "ciao potresti puoi può prima dopo mio mia tuo tua sono sei molto anche come "
        "quando saluti"),
    "pt": _words(
        "o a os as e é não eu você nós com para por uma um do da dos das que obrigado "
        "obrigada olá oi poderia pode antes depois meu minha seu sua muito também "
        "como quando abraços"),
    "nl": _words(
        "de het een en is niet ik jij je u wij we met voor op van te dat die wat "
        "wanneer bedankt dank hallo kun kunt zou zouden graag voor na mijn jouw jullie "
        "ook nog maar groeten"),
}
#: Letters that only some languages write: a small vote each, for short texts.
_LETTER_HINTS = {"ß": "de", "ä": "de", "ö": "de", "ü": "de", "ñ": "es", "¿": "es", "¡": "es",
                 "ç": "fr", "è": "fr", "ê": "fr", "à": "fr", "œ": "fr", "ã": "pt", "õ": "pt",
                 "ĳ": "nl"}
#: The script of a letter (the first word of its Unicode name) and the language it tells.
_SCRIPTS = {"CJK": "zh", "HIRAGANA": "ja", "KATAKANA": "ja", "HANGUL": "ko",
            "CYRILLIC": "ru", "GREEK": "el", "ARABIC": "ar", "HEBREW": "he", "THAI": "th",
            "DEVANAGARI": "hi"}
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
#: Reply and forward prefixes in several languages: they say which client, not which words.
_PREFIX = re.compile(r"^(?:\s*(?:re|aw|sv|vs|wg|fw|fwd|tr|rv|enc|r)\s*:)+", re.IGNORECASE)
#: A script other than Latin wins when this share of the letters is written in it.
SCRIPT_SHARE = 0.3
#: The fewest stopwords a Latin-script text must hold before a language is named.
MIN_HITS = 2


def _script(char: str) -> str | None:
    name = unicodedata.name(char, "")
    first = name.split(" ", 1)[0]
    return _SCRIPTS.get(first)


def guess_language(texts: Iterable[str]) -> str:
    """An ISO 639-1 code for the language of ``texts`` taken together, or ``""`` when they
    say too little. English wins a tie: a mixed thread still reads English letters well.

    >>> guess_language(["Re: Kaffee", "Hast du morgen Zeit für einen Kaffee?"])
    'de'
    >>> guess_language(["Pourriez-vous relire le plan avant jeudi ?"])
    'fr'
    >>> guess_language(["¿Podrías revisar el plan antes del jueves?"])
    'es'
    >>> guess_language(["Привет — café à Zürich"])
    'ru'
    """
    text = " ".join(_PREFIX.sub("", t) for t in texts if t)
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return ""
    scripts = Counter(s for s in (_script(c) for c in letters) if s is not None)
    if scripts:
        top, count = scripts.most_common(1)[0]
        if count / len(letters) >= SCRIPT_SHARE:
            # Japanese writes Han characters too: any kana makes Han text Japanese.
            return "ja" if top == "zh" and scripts["ja"] else top
    words = [w.replace("’", "'") for w in _WORD.findall(text.lower())]
    votes: dict[str, float] = {lang: float(sum(w in stop for w in words))
                               for lang, stop in STOPWORDS.items()}
    hits = max(votes.values())
    for char in text.lower():
        if char in _LETTER_HINTS:
            votes[_LETTER_HINTS[char]] += 0.5  # a letter is a weaker sign than a word
    best, score = max(votes.items(), key=lambda item: (item[1], item[0] == "en"))
    if hits < MIN_HITS and score < MIN_HITS:
        return ""
    return "en" if votes["en"] >= score else best
