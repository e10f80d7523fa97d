"""Whether a request is written in a language the encoder does not read: a cheap guess.

An English encoder (the default MiniLM) maps a Spanish refund request or a French parcel
question to vectors far from every English utterance: the router abstains at 0.05-0.07 and, on
its own, says nothing about why. An encoder declares the languages it reads
(:attr:`Encoder.languages <semrouter.encoders.Encoder.languages>`, ISO 639-1 codes; ``None``
for many or unknown); when a request it could not route looks written in another language,
the router says so in the match (``reason="unsupported_language"`` and ``language``).

The guess (:func:`guess_language`) reads no model and downloads nothing:

- **script**: when most letters belong to one non-Latin script (Cyrillic, Greek, Arabic,
  Hebrew, Devanagari, Thai, Hangul, kana, Han...), that script names the language, or the
  BCP 47 tag ``und-<Script>`` when several languages share it (``und-Cyrl``);
- **function words** of Spanish, French, German, Italian, Portuguese and Dutch (articles,
  pronouns, prepositions, common verbs; words that are also English, such as "die", "in" or
  "me", are left out) and their marked letters (ñ, ß, ç, ã...): at least two distinct hits, and
  more than the request's English function words; capitalised words after the first are names
  and do not count ("flights to Los Angeles del Mar").

It runs only on requests that abstained (a routed request costs nothing) and takes a few
microseconds. Measured in ``benchmarks/language_flag.py``
(``benchmarks/results/language_flag.txt``): no English test request of CLINC150 or BANKING77 is
flagged, nor any English query of the multilingual set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._routes import RouteMatch

__all__ = ["flag_unread", "guess_language", "unread_language", "word_set"]


def word_set(words: str) -> frozenset[str]:
    """The white-space separated ``words`` as a set (word lists stay readable in the source)."""
    return frozenset(words.split())


# -- scripts ---------------------------------------------------------------------------------
#: (first code point, last code point, BCP 47 tag, ISO 639-1 codes of the languages using it).
_SCRIPTS: tuple[tuple[int, int, str, frozenset[str]], ...] = (
    (0x0370, 0x03FF, "el", frozenset({"el"})),
    (0x0400, 0x052F, "und-Cyrl", word_set("ru uk bg sr mk be kk ky mn tg")),
    (0x0530, 0x058F, "hy", frozenset({"hy"})),
    (0x0590, 0x05FF, "he", frozenset({"he", "yi"})),
    (0x0600, 0x06FF, "und-Arab", word_set("ar fa ur ps ku sd ug")),
    (0x0900, 0x097F, "und-Deva", word_set("hi mr ne sa")),
    (0x0980, 0x09FF, "bn", frozenset({"bn", "as"})),
    (0x0B80, 0x0BFF, "ta", frozenset({"ta"})),
    (0x0E00, 0x0E7F, "th", frozenset({"th"})),
    (0x10A0, 0x10FF, "ka", frozenset({"ka"})),
    (0x1100, 0x11FF, "ko", frozenset({"ko"})),
    (0x3040, 0x30FF, "ja", frozenset({"ja"})),
    (0x3400, 0x9FFF, "und-Hani", frozenset({"zh", "ja"})),
    (0xAC00, 0xD7AF, "ko", frozenset({"ko"})),
)
_LANGUAGES_OF = {tag: langs for _, _, tag, langs in _SCRIPTS}

# -- function words --------------------------------------------------------------------------
# Frequent words of each language that are not English words (nor frequent in English names
# alone: "los", "las", "san", "del" count only beside another hit). Accents are kept: a word
# written without its accent ("como", "esta") is listed both ways where it is common.
_WORDS: dict[str, frozenset[str]] = {
    "es": word_set(
        "el los las del una unos unas por para con sin que qué cómo dónde donde cuándo cuando "
        "cuál cuánto cuanto quiero quiere quisiera puedo puede puedes mis tus sus está están esta "
        "estoy hay muy más pero lo les se nos al este esto eso ese esa mañana hoy gracias "
        "necesito tengo tiene hola también sí mi su es un de la en y mí ayuda pedido dinero "
        "cuenta tarjeta vuelo ahora todavía hacer"
    ),
    "fr": word_set(
        "le les des une du au aux est et où quand comment pourquoi quel quelle je tu il elle nous "
        "vous ils mon ma mes ton votre vos notre nos ce cette ces qui que pas ne sur dans avec "
        "sans pour mais ou très bien merci bonjour veux voudrais peux puis suis avez avoir être "
        "fait faire colis remboursement aujourd'hui demain c'est j'ai n'est qu'il s'il un de la "
        "en y moi commande compte argent encore déjà"
    ),
    "de": word_set(
        "der das den dem des ein eine einen einem einer und ist nicht ich du er sie wir ihr mein "
        "meine meinen meinem dein ihre ihren unser kein keine mit für von zu auf aus bei nach "
        "über wie wo wann warum wer welche welcher kann können möchte möchten bitte danke habe "
        "hast haben sind wird werden noch schon auch heute morgen mir mich dich uns zurück geld "
        "bestellung paket konto karte flug wetter gibt es im vom zum zur dass oder aber sehr hier "
        "jetzt mal doch"
    ),
    "it": word_set(
        "il lo gli della dello delle degli dei nel nella con che non è sono sei ho hai ha abbiamo "
        "voglio vorrei posso puoi può quando come perché quale quanto mio mia miei mie tuo tua "
        "suo sua questo questa quello anche molto grazie ciao buongiorno oggi domani un una di da "
        "la mi ti ci si al alla allo del rimborso pacco soldi ordine conto carta volo ancora sul "
        "sulla cosa tutto"
    ),
    "pt": word_set(
        "um uma uns umas da das dos na nas nos pelo pela sem para que não é são está estou tem "
        "tenho quero queria posso pode onde quando como porque qual quanto meu minha meus minhas "
        "seu sua você vocês isso isto esse essa muito obrigado obrigada olá hoje amanhã de em ao "
        "à ainda também dinheiro pedido encomenda reembolso conta cartão voo pra aqui agora nao "
        "voce"
    ),
    "nl": word_set(
        "de het een en ik je jij u wij zij mijn jouw uw ons onze niet geen voor naar op uit bij "
        "waar wanneer waarom wat wie welke kan kunnen wil wilt graag dank bedankt heb hebt heeft "
        "hebben zijn wordt worden nog al ook vandaag morgen mij terug geld bestelling pakket "
        "rekening kaart vlucht weer er dat deze dit"
    ),
}
# English function words none of the languages above writes the same way ("in", "die", "me",
# "no", "a", "i", "do", "on", "so", "was", "will", "also", "has" are left out: they would
# hide a German, Spanish or Italian request).
_ENGLISH = word_set(
    "the and is are were be been to of my your you it this that what how can could does did for "
    "with at from we they have had would should there where when why who which not please want "
    "need get our their his just any some am or if than then about into out up an by its it's i'm "
    "i've don't can't won't"
)
# Common words of two languages (Spanish "que", Dutch "de"...) still count for each; the letter
# marks below add a hit to every language listed.
_MARKS: dict[str, tuple[str, ...]] = {
    "ñ": ("es",), "¿": ("es",), "¡": ("es",), "á": ("es", "pt"), "í": ("es", "pt"),
    "ó": ("es", "pt", "it"), "ú": ("es", "pt"), "ß": ("de",), "ä": ("de",), "ö": ("de",),
    "ü": ("de",), "ç": ("fr", "pt"), "œ": ("fr",), "ê": ("fr", "pt"), "è": ("fr", "it"),
    "à": ("fr", "it", "pt"), "â": ("fr", "pt"), "î": ("fr",), "ô": ("fr", "pt"),
    "û": ("fr",), "ë": ("fr", "nl"), "ï": ("fr", "nl"), "ã": ("pt",), "õ": ("pt",),
    "ì": ("it",), "ò": ("it",), "ù": ("it", "fr"),
}  # fmt: skip
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def guess_language(text: str) -> str | None:
    """The language ``text`` seems written in, when it is clearly not English; else ``None``.

    A BCP 47 tag: an ISO 639-1 code (``"es"``, ``"fr"``, ``"ja"``) or ``und-<Script>`` when
    only the script is known (``"und-Cyrl"``). ``None`` means English or too little to tell
    (names, codes, one word).

    Example:
        >>> guess_language("quiero que me devuelvan el dinero"), guess_language("refund me")
        ('es', None)
    """
    if not text.isascii():
        script = _script(text)
        if script is not None:
            return script
    words = _words(text)
    if not words:
        return None
    english = len(words & _ENGLISH)
    best, hits = None, 0
    for language, vocabulary in _WORDS.items():
        found = len(words & vocabulary)
        if not text.isascii():
            found += len({ch for ch in text.lower() if language in _MARKS.get(ch, ())})
        if found > hits:
            best, hits = language, found
    return best if hits >= 2 and hits > english else None


def unread_language(text: str, languages: frozenset[str] | None) -> str | None:
    """:func:`guess_language` of ``text`` when the encoder's ``languages`` do not include it;
    ``None`` when they do, when nothing is declared (``None``), or when ``text`` looks English
    and the encoder reads English."""
    if languages is None:
        return None
    guess = guess_language(text)
    if guess is None:
        return None
    covered = _LANGUAGES_OF.get(guess, frozenset({guess}))
    return None if covered & languages else guess


def flag_unread(
    found: list[list[RouteMatch]],
    texts: Sequence[str] | None,
    languages: frozenset[str] | None,
) -> list[list[RouteMatch]]:
    """``found`` with each abstaining match whose request the encoder cannot read marked
    ``reason="unsupported_language"`` and its ``language`` (in place; returned for chaining).

    Only matches that abstained below their threshold are looked at: routed requests, and every
    request of an encoder that declares no languages, cost one comparison.
    """
    if languages is None or texts is None:
        return found
    for matches, text in zip(found, texts):
        if matches and matches[0].name is None and matches[0].reason == "below_threshold":
            language = unread_language(text, languages)
            if language is not None:
                matches[0] = matches[0].model_copy(
                    update={"reason": "unsupported_language", "language": language}
                )
    return found


def _words(text: str) -> set[str]:
    """The lower-cased words of ``text``, less capitalised ones after the first (names:
    "Los Angeles", "Del Mar", "San Diego" are no Spanish)."""
    tokens = _TOKEN.findall(text)
    return {t.lower() for i, t in enumerate(tokens) if i == 0 or not t[0].isupper()}


def _script(text: str) -> str | None:
    """The tag of the non-Latin script most letters of ``text`` are written in, if any."""
    letters = 0
    counts: dict[str, int] = {}
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        code = ord(ch)
        if code < 0x0370:
            continue
        for low, high, tag, _ in _SCRIPTS:
            if low <= code <= high:
                counts[tag] = counts.get(tag, 0) + 1
                break
    if not counts:
        return None
    # Japanese mixes kana and Han: any kana makes Han text Japanese.
    if "ja" in counts and "und-Hani" in counts:
        counts["ja"] += counts.pop("und-Hani")
    tag, count = max(counts.items(), key=lambda item: item[1])
    return tag if 2 * count > letters else None
