"""The new text of a reply: what its writer typed, without the quoted history or signature.

Mail clients mark the history in one of three ways, and :func:`strip_reply` knows all three:

1. ``>``-quoted lines, usually under an attribution line ("On Tue, 1 Dec 2026, Jane
   <jane@example.com> wrote:", "Am ... schrieb ...:", "Le ... a écrit :", "2022年1月1日(金)
   9:00 田中太郎 <taro@example.com>:"), above or below the new text (inline replies keep the
   text between the quotes);
2. a separator line ("-----Original Message-----", "-------- Oprindelig besked --------",
   "---------- Forwarded message ---------", "Begin forwarded message:");
3. an Outlook-style header block ("From: ... / Sent: ... / To: ... / Subject: ...", in any
   language, possibly bold as ``*From:*`` and after a line of underscores), or an attribution
   line followed by the unquoted original.

Everything from the first (2) or (3) on is history. Then the signature goes: from a ``-- ``
line on, and trailing "Sent from my iPhone"-style lines.

The line classifiers (:func:`header_field`, :func:`attribution_at`, :data:`FORWARD_MARKER`)
are shared with :mod:`mailhelper.read.forwards`, which reads the same blocks for their content.

    >>> strip_reply("Thanks, will do!\\n\\nOn Tue, 1 Dec 2026, Jane <j@x.org> wrote:\\n> Can you?")
    'Thanks, will do!'
"""

from __future__ import annotations

import re

# -- header labels of quoted and forwarded header blocks ------------------------------------

#: How clients label the fields of a quoted header block, per field, in the languages of
#: Gmail, Outlook (desktop, web, new), Apple Mail, Thunderbird, Yahoo, HubSpot and others.
HEADER_LABELS: dict[str, tuple[str, ...]] = {
    "from": (
        "From", "Von", "De", "Da", "Van", "Fra", "Från", "Od", "Nadawca", "Lähettäjä",
        "Feladó", "Kimden", "Gönderen", "От", "От кого", "Отправитель", "Від", "Від кого",
        "Mittente", "Šalje", "Expeditorul", "De la", "Saatja", "Absender", "Remetente",
        "Afzender", "送信元", "差出人", "送信者", "发件人", "寄件者", "寄件人", "보낸 사람",
        "Από", "מאת",
    ),
    "to": (
        "To", "An", "À", "A", "Para", "Aan", "Til", "Till", "Do", "Komu", "Кому", "Pre",
        "Kime", "Alıcı", "Címzett", "Vastaanottaja", "Prima", "Destinatarul", "Către", "Pour",
        "Adresat", "Destinatario", "Destinatário", "Empfänger", "送信先", "宛先", "收件人",
        "받는 사람", "Προς", "אל",
    ),
    "cc": (
        "Cc", "Kopie", "Kopie (CC)", "Kopio", "Kopi", "Kopia", "Kópia", "Másolat",
        "Másolatot kap", "Dw", "Копия", "Копія", "Bilgi", "Copie à", "Copia", "Cópia", "抄送",
        "副本", "참조", "Κοιν", "עותק",
    ),
    "bcc": ("Bcc", "Blindkopie", "Cci", "Cco", "Bcc (Blindkopie)"),
    "subject": (
        "Subject", "Betreff", "Objet", "Sujet", "Asunto", "Assunto", "Oggetto", "Onderwerp",
        "Emne", "Ämne", "Temat", "Předmět", "Predmet", "Tárgy", "Aihe", "Konu", "Тема",
        "Subiectul", "Subiect", "Naslov", "件名", "主题", "主旨", "제목", "Θέμα", "נושא",
    ),
    "date": (
        "Date", "Datum", "Dato", "Fecha", "Data", "Dată", "Дата", "Tarih", "Päivämäärä",
        "Päiväys", "Dátum", "Sent", "Sendt", "Gesendet", "Enviado", "Enviado el", "Enviado em",
        "Enviada", "Enviada em", "Data de envio", "Envoyé",
        "Envoyé le", "Lähetetty", "Elküldve", "Inviato", "Verzonden", "Wysłano", "Wysłane",
        "Trimis", "Отправлено", "Odoslané", "Odesláno", "Skickat", "Gönderildi", "Gönderilen",
        "Відправлено", "日付", "送信日時", "日期", "发送时间", "時間", "날짜", "보낸 날짜",
        "Ημερομηνία", "Στάλθηκε", "תאריך", "נשלח",
    ),
    "reply-to": (
        "Reply-To", "Antwort an", "Répondre à", "Responder a", "Rispondi a", "Antwoord aan",
        "Svar til", "Svara till", "Odpowiedź-do", "Ответ-Кому", "Yanıt Adresi",
    ),
}
_KIND_OF_LABEL = {label.casefold(): kind for kind, ls in HEADER_LABELS.items() for label in ls}
_LABELS = "|".join(
    re.escape(label) for label in sorted(_KIND_OF_LABEL, key=len, reverse=True)
)
#: "From: x", "*From:* x", "De : x", "送信元：x", "Subject:\tx" (Thunderbird pads with a tab).
_HEADER_LINE = re.compile(
    r"^[ \t]*\*{0,2}(?P<label>" + _LABELS + r")\*{0,2}[ \t]*[:：]\*{0,2}[ \t]*(?P<value>.*)$",
    re.IGNORECASE,
)


def header_field(line: str) -> tuple[str, str] | None:
    """``(field, value)`` when ``line`` is a quoted-header line, else None.

    >>> header_field("*Von:* Jane Doe [mailto:jane@x.org]"), header_field("Objet : Hello")
    (('from', 'Jane Doe [mailto:jane@x.org]'), ('subject', 'Hello'))
    """
    if len(line) > 2000 or not (":" in line[:60] or "：" in line[:60]):
        return None
    found = _HEADER_LINE.match(line)
    if not found:
        return None
    return _KIND_OF_LABEL[found.group("label").casefold()], found.group("value").strip(" *")


def header_block_at(lines: list[str], index: int) -> bool:
    """Whether a quoted header block (From plus at least two of Date/Sent, To, Cc, Subject
    within a few lines) starts at ``lines[index]``.

    >>> header_block_at(["From: Bob [mailto:b@x.org]", "Sent: Monday", "Subject: Hi"], 0)
    True
    """
    if header_field(lines[index]) is None:
        return False
    kinds = set()
    blanks = 0
    # Outlook may wrap "On Behalf Of" or a long To list onto an extra line, and Thunderbird
    # leaves a blank line here and there: look a few lines on, up to two blank lines.
    for line in lines[index : index + 8]:
        blanks = blanks + 1 if not line.strip() else 0
        if blanks >= 2:
            break
        field = header_field(line)
        if field:
            kinds.add(field[0])
    return "from" in kinds and len(kinds) >= 3


# -- separator lines ------------------------------------------------------------------------

_FORWARD_PHRASES = (
    r"forwarded message|forwarded e-?mail|weitergeleitete nachricht|message transf[ée]r[ée]"
    r"|message transmis|mensaje reenviado|mensagem (?:re)?encaminhada|messaggio inoltrato"
    r"|doorgestuurd bericht|videresendt (?:meddelelse|melding)|vidarebefordrat meddelande"
    r"|przekazana wiadomość|treść przekazanej wiadomości|přeposlaná zpráva|preposlaná správa"
    r"|továbbított üzenet|edelleenlähetetty viesti|välitetty viesti[^-]*"
    r"|пересылаемое сообщение|перенаправленное сообщение|пересланное сообщение"
    r"|переслане повідомлення|перенаправлене повідомлення|iletilen ileti|iletilmiş mesaj"
    r"|mesaj redirecționat|proslijeđena poruka|メッセージを転送|転送メッセージ"
    r"|転送されたメッセージ|转发的邮件|已转发邮件|전달된 메시지"
)
_APPLE_PHRASES = (
    r"begin forwarded message|anfang der weitergeleiteten nachricht"
    r"|début du message réexpédié|début du message transféré|inicio del mensaje reenviado"
    r"|início da mensagem (?:re)?encaminhada|inizio messaggio inoltrato"
    r"|begin doorgestuurd bericht|start på videresendt besked|videresendt melding"
    r"|vidarebefordrat mejl|początek przekazywanej wiadomości|začátek přeposílané zprávy"
    r"|začiatok preposlanej správy|továbbított levél kezdete|välitetty viesti alkaa"
    r"|započni proslijeđenu poruku|începe mesajul redirecționat"
    r"|начало переадресованного сообщения|початок листа, що пересилається|ileti başlangıcı"
    r"|転送されたメッセージ|전달된 메시지|forwarded message"
)
_ORIGINAL_PHRASES = (
    r"original message|ursprüngliche nachricht|originalnachricht|message d'origine"
    r"|message original|mensaje original|mensagem original|messaggio originale"
    r"|oorspronkelijk bericht|origineel bericht|oprindelig (?:besked|meddelelse)"
    r"|opprinnelig melding|ursprungligt meddelande|originalmeddelande|alkuperäinen viesti"
    r"|wiadomość oryginalna|oryginalna wiadomość|původní zpráva|pôvodná správa"
    r"|eredeti üzenet|исходное сообщение|оригинальное сообщение|orijinal mesaj"
    r"|mesaj original|元のメッセージ|原始邮件|원본 메시지"
)
#: A forward's own separator, in a dashed line (Gmail, Thunderbird, Yahoo; the Yahoo header
#: fields may follow on the same line: ``rest``) or as Apple Mail's "Begin forwarded message:".
FORWARD_MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:" + _FORWARD_PHRASES + r")\s*-{2,}(?P<rest>.*)"
    r"|(?:" + _APPLE_PHRASES + r")\s*[:：]\s*)$",
    re.IGNORECASE,
)
#: "-----Original Message-----" and its translations: a reply's history, or a forward's when
#: the subject says so (Outlook and IONOS forward under this line too).
ORIGINAL_MARKER = re.compile(
    r"^\s*-{2,}\s*(?:" + _ORIGINAL_PHRASES + r")\s*-{2,}\s*$", re.IGNORECASE
)
#: The line of underscores Outlook puts above its header block.
UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")


# -- attribution lines ----------------------------------------------------------------------

_VERBS = (
    r"wrote|writes|schrieb|schreibt|schreef|a écrit|a ecrit|escribió|escribio|escreveu"
    r"|ha scritto|scrisse|napisał\(a\)|napisała|napisał|napsal\(a\)|napsal|napísal"
    r"|kirjoitti|skrev følgende|skrev|skriver|написал\(а\)|написала|написал|пише|писал"
    r"|yazdı|ezt írta|írta|έγραψε|כתב|a scris|je napisal|写道|寫道|작성"
)
_ENDS_WITH_VERB = re.compile(r"\b(?:" + _VERBS + r")\s*[:：]$", re.IGNORECASE)
_HAS_VERB = re.compile(r"(?:^|[\s\"'>)])(?:" + _VERBS + r")\b", re.IGNORECASE)
_LEAD_WORD = re.compile(r"^(?:on|am|le|el|il|op|em|den|w dniu|dne|dnia)\b", re.IGNORECASE)
_MAILBOX = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_DIGIT = re.compile(r"\d")
#: Zoho and old Yahoo: "---- On Wed, 24 Feb 2021 14:02:50 +0530 x@y.com wrote ----".
_DASHED = re.compile(r"^-{2,}\s*(?P<inner>.*?)\s*-*$")
_QUOTED = re.compile(r"^\s{0,3}>")
_MAX_ATTRIBUTION = 400


def is_quoted(line: str) -> bool:
    return bool(_QUOTED.match(line))


def attribution_at(lines: list[str], index: int) -> int:
    """How many lines (1 to 3) the attribution line starting at ``lines[index]`` spans, or 0.

    An attribution ends with a colon and has a verb ("wrote", "schrieb", ...) or an address,
    plus a date or time, or opens with "On"/"Am"/"Le"... and ends with the verb. Clients wrap
    it: Gmail may even put the closing ">:" on a line of its own.

    >>> attribution_at(["Op 12 december 2016 19:05 schreef Jane <", "jane@x.org>:"], 0)
    2
    >>> attribution_at(["On your remote host you can run:"], 0)
    0
    """
    if not _may_attribute(lines, index):
        return 0
    joined = ""
    for span in range(1, 4):
        if index + span > len(lines):
            break
        line = lines[index + span - 1].strip()
        if not line or (span == 1 and is_quoted(line)):
            break
        if span > 1 and is_quoted(line) and not re.fullmatch(r">\s*[:：]", line):
            break
        joined = f"{joined} {line}".strip() if span > 1 else line
        if len(joined) > _MAX_ATTRIBUTION:
            break
        if _is_attribution(joined):
            # "Hi,\nOn Tue ... wrote:" is the attribution of its second line alone.
            later = any(
                attribution_at(lines, start) == index + span - start
                for start in range(index + 1, index + span)
            )
            return 0 if later else span
    return 0


def _may_attribute(lines: list[str], index: int) -> bool:
    """Whether an attribution can start at ``lines[index]`` at all: :func:`_is_attribution`
    needs a text that opens with a dashed line or ends with a colon, and the text it is given
    is up to three lines from there, stripped and joined. Most lines of a mail fail both, and
    this answers for them without a regular expression (it ran on every line, twice)."""
    if index < len(lines) and lines[index].lstrip().startswith("--"):
        return True
    for line in lines[index : index + 3]:
        # The substring tests first: most lines hold no colon, and they cost least.
        if (":" in line or "：" in line) and line.rstrip().endswith((":", "：")):
            return True
    return False


def _is_attribution(text: str) -> bool:
    dashed = _DASHED.match(text)
    if dashed and dashed.group("inner").lower().startswith("on "):
        inner = dashed.group("inner")
        return bool(re.search(r"\b(?:wrote|writes)\s*[:：]?$", inner, re.IGNORECASE))
    if not text.endswith((":", "：")):
        return False
    dated = bool(_DIGIT.search(text))
    if _ENDS_WITH_VERB.search(text):
        return dated or bool(_LEAD_WORD.match(text))
    if _HAS_VERB.search(text):
        return dated
    return dated and bool(_MAILBOX.search(text))


# -- the reply text -------------------------------------------------------------------------

#: The signature separator of RFC 3676 section 4.3 ("-- "), and its common space-less form.
_SIGNATURE = re.compile(r"^--\s*$")
#: Client-added lines that are not the writer's words.
_MOBILE_SIGNATURE = re.compile(
    r"^(?:sent from my |sent from \w+ for |sent with |sent from yahoo|sent from mail for"
    r"|sent from outlook|get outlook for |envoyé de mon |envoyé à partir de |envoyé depuis "
    r"|von meinem .* gesendet|gesendet von |enviado desde mi |enviado do meu |enviado de mi "
    r"|inviato da |verzonden met |verzonden vanaf |verstuurd vanaf |skickat från |sendt fra "
    r"|lähetetty |wysłane z |odesláno z |отправлено с |надіслано з |iphone'umdan "
    r"|iphoneから送信|从我的iphone发送|发自我的iphone|내 iphone에서 보냄)",
    re.IGNORECASE,
)
_RULE = re.compile(r"^[\s\-_=*~]+$")
_INVISIBLE_CHARACTERS = "\ufeff\u200b\u200e\u200f"
_INVISIBLE = str.maketrans(dict.fromkeys(_INVISIBLE_CHARACTERS))
#: The reply text is looked for in this many lines at most: each line costs a few regular
#: expressions (about 5 microseconds), and a million empty lines took 3 s. A writer's new text
#: is at the top; nobody writes ten thousand lines above the quote.
MAX_LINES = 10_000


def strip_reply(text: str) -> str:
    """The new text of a reply (see the module docstring); whole text when nothing is quoted.
    Only the first :data:`MAX_LINES` lines are read.

    >>> strip_reply("Hello\\n\\n-----Original Message-----\\nFrom: Bob\\n\\nHi")
    'Hello'
    >>> strip_reply("On 2 Apr 2012, Megan wrote:\\n> Hi\\nHello\\n\\n-- \\nMegan")
    'Hello'
    """
    if any(character in text for character in _INVISIBLE_CHARACTERS):  # translate is slow
        text = text.translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n", MAX_LINES)[:MAX_LINES]
    quoted = _quoted(lines, text)
    may_start = may_start_at(lines, text)
    end = _history_start(lines, quoted, may_start)
    # The quoted lines and the lazy quotes among them go; a set, as most lines are neither.
    dropped = {index for index, is_quote in enumerate(quoted) if is_quote}
    dropped.update(_lazy_quotes(lines, quoted, dropped))
    return _tidy(_without_signature(_kept(lines, end, dropped, may_start)))


def _kept(lines: list[str], end: int, dropped: set[int], may_start: set[int]) -> list[str]:
    """The lines before ``end`` that are the writer's, right-stripped: all but those in
    ``dropped`` and attributions (each with the lines it spans) at the lines of
    ``may_start`` (see :func:`may_start_at`)."""
    kept: list[str] = []
    index = 0
    # Every line between two of these is kept: such runs, most of a text, are copied whole.
    for special in [*sorted(dropped | may_start), end]:
        if special < index:  # among the lines of an attribution passed over
            continue
        special = min(special, end)
        kept += [line.rstrip() for line in lines[index:special]]
        index = special
        if index >= end:
            break
        if index in dropped:
            index += 1
            continue
        span = attribution_at(lines, index)
        if span:  # an attribution above quoted lines (history_start cut the other kind)
            index += span
            continue
        kept.append(lines[index].rstrip())
        index += 1
    return kept


def history_start(lines: list[str]) -> int:
    """The index of the first line of unquoted history (separator, header block, or an
    attribution line over unquoted text); ``len(lines)`` when there is none."""
    text = "\n".join(lines)
    return _history_start(lines, _quoted(lines, text), may_start_at(lines, text))


def _history_start(lines: list[str], quoted: list[bool], may_start: set[int]) -> int:
    """:func:`history_start`, given :func:`_quoted` and :func:`may_start_at` of ``lines``:
    only the lines in ``may_start`` are tried, as no test can find anything at the others."""
    for index in sorted(may_start):
        line = lines[index]
        if quoted[index] or not line.strip():
            continue
        if FORWARD_MARKER.match(line) or ORIGINAL_MARKER.match(line):
            return index
        if UNDERSCORES.match(line) and _footer_follows(lines, index):
            return index
        if header_block_at(lines, index):
            return index
        span = attribution_at(lines, index)
        if span and not quote_follows(lines, index + span):
            return index
    return len(lines)


def _quoted(lines: list[str], text: str) -> list[bool]:
    """:func:`is_quoted` of each line; ``text`` holds all of them (their join, or more). A
    quoted line has its ``>`` among its first four characters: a text without any ``>`` has
    none, and the substring test answers for most lines of the others without a regular
    expression."""
    if ">" not in text:
        return [False] * len(lines)
    return [">" in line[:4] and is_quoted(line) for line in lines]


#: What :func:`may_start_at` looks for: a colon, full-width too, a double dash, underscores.
_MARKS = (":", "：", "--", "__________")
_COLONS = (":", "：")


def may_start_at(lines: list[str], text: str) -> set[int]:
    """The indices of the lines at which history, a forward or an attribution may start:
    every other line fails :data:`FORWARD_MARKER`, :data:`ORIGINAL_MARKER`,
    :data:`UNDERSCORES`, :func:`header_field` (so :func:`header_block_at`) and
    :func:`attribution_at`, and so does any end of it (a line without its quote marks), as
    each needs one of these (found with substring tests, far cheaper than the tests
    themselves, which cost microseconds a line; most lines of a mail need none of them):

    - a colon in the line: a header field, Apple's "Begin forwarded message:";
    - ``--`` in it: a forward or "Original Message" separator, a dashed attribution;
    - ten underscores in it: Outlook's line over its header block;
    - a line ending with a colon in it or the two after it: an attribution, which may be
      wrapped over three lines (see :func:`_may_attribute`).

    ``text`` holds all the lines (their join, or more).
    """
    found: set[int] = set()
    for mark in _MARKS:
        if mark in text:  # one test of the whole text spares most texts a test of each line
            found.update([index for index, line in enumerate(lines) if mark in line])
    for index in [index for index in found if lines[index].rstrip().endswith(_COLONS)]:
        found.update(start for start in (index - 1, index - 2) if start >= 0)
    return found


def quote_follows(lines: list[str], index: int) -> bool:
    """The next non-blank line of the first five from ``lines[index]`` is quoted."""
    for line in lines[index : index + 5]:
        if line.strip():
            return is_quoted(line)
    return False


def _footer_follows(lines: list[str], index: int) -> bool:
    """A mailing-list footer (Mailman's "____\\nlist-name mailing list") follows."""
    return any("mailing list" in line.lower() for line in lines[index + 1 : index + 3])


def _lazy_quotes(lines: list[str], quoted: list[bool], quotes: set[int]) -> set[int]:
    """The indices of the lazy quotes: an unquoted line between two quoted ones is a quoted
    line that a client re-wrapped without adding the ``>`` (common in Gmail and MailMate).
    ``quoted`` is :func:`_quoted` of ``lines``, ``quotes`` the indices where it is true (a
    lazy quote is found from the line above it, as few lines are quoted)."""
    return {
        index + 1 for index in quotes
        if index + 2 < len(lines) and quoted[index + 2] and not quoted[index + 1]
        and lines[index + 1].strip() != "" and lines[index].strip(" >") != ""
    }


def _without_signature(lines: list[str]) -> list[str]:
    # A signature separator starts with "--": most texts have none at all.
    if "--" in "\n".join(lines):
        separators = [index for index, line in enumerate(lines)
                      if line.startswith("--") and _SIGNATURE.match(line)]
        if separators:
            lines = lines[: separators[0]]
    end = len(lines)
    while end and (not lines[end - 1].strip() or _RULE.match(lines[end - 1])
                   or _MOBILE_SIGNATURE.match(lines[end - 1].strip())):
        end -= 1
    return lines[:end]


def _tidy(lines: list[str]) -> str:
    text = "\n".join(lines).strip("\n")
    return re.sub(r"\n\s*\n(?:\s*\n)+", "\n\n", text).strip()


# -- the recap ------------------------------------------------------------------------------

#: How long a recap may be: about two lines of a reminder.
RECAP_CHARS = 200
#: A greeting that opens a mail: "Hi Jane,", "Hello both!", "Dear Dr. Raman,", "Hallo Jane,".
#: Only when it ends at a comma, "!" or the line's end within three more words: "Hi" is not
#: cut out of "Hi-fi prices went up".
_GREETING = re.compile(
    r"^(?:hi|hello|hey|hiya|dear|good (?:morning|afternoon|evening)|greetings|morning"
    r"|hallo|liebe|lieber|bonjour|salut|cher|chère|hola|querid[oa]|estimad[oa]|ciao|caro|cara"
    r"|hej|hoi|beste|olá|oi)(?:[ \t]+[^\s,!?:]+){0,3}?[ \t]*(?:[,!:]+|$)\s*",
    re.IGNORECASE,
)
#: A sign-off line: "Best,", "Thanks!", "Many thanks, José", "Kind regards". Everything from
#: it on (the name under it) is the signature, not the message.
_SIGN_OFF = re.compile(
    r"^(?:best(?: wishes| regards)?|(?:kind |warm |many |warmest )?(?:regards|wishes)"
    r"|(?:many |big )?thanks(?: again| so much| a lot| in advance)?|thank you(?: so much)?"
    r"|thx|ta|cheers|all the best|warmly|sincerely|yours(?: sincerely| truly)?|bw|br|kr"
    r"|speak soon|talk soon|take care|love|xx?|viele grüße|liebe grüße|mit freundlichen grüßen"
    r"|grüße|lg|vg|cordialement|bien à vous|amitiés|saludos|un saludo|abrazos|cordiali saluti"
    r"|saluti|groeten|met vriendelijke groet|hälsningar|mvh)"
    r"[ \t]*[,.!]*[ \t]*(?:[^\s,.!?][^,.!?]{0,40})?$",
    re.IGNORECASE,
)
#: A line that is only a name (one to three capitalised words), as a signature: "Bob", "José
#: Núñez", "J."; a line that ends a sentence is never one.
_NAME_LINE = re.compile(r"(?:[A-ZÀ-Þ][\w.'’-]*)(?: [A-ZÀ-Þ][\w.'’-]*){0,2}")
#: One-word answers that stand alone on a last line and are not a name.
_ANSWER_WORDS = frozenset({"yes", "no", "ok", "okay", "sure", "done", "agreed", "great",
                           "perfect", "fine", "absolutely", "definitely", "maybe"})
#: The end of a sentence inside a recap: a full stop, "!", "?" or "…" and a space.
_SENTENCE_END = re.compile(r"[.!?…](?=\s)")


#: The answers for one text computed elsewhere, as (text, :func:`strip_reply` of it, its
#: :func:`recap` at :data:`RECAP_CHARS` or None): the reading worker
#: (:mod:`mailhelper.engine.pipeline`) strips and recaps the reply text of each mail it
#: parses, and :func:`recap` of that text (the excerpt classify quotes) takes the answers
#: instead of computing them a second time here.
_handed: tuple[str, str, str | None] | None = None


def hand_over(text: str, stripped: str, recapped: str | None = None) -> None:
    """Let the next :func:`recap` of ``text`` take ``stripped`` for ``strip_reply(text)``
    and ``recapped`` (when given) for ``recap(text)``; the caller vouches that they are (it
    computed them, or had them computed, from that text)."""
    global _handed
    _handed = (text, stripped, recapped)


def recap(text: str, limit: int = RECAP_CHARS) -> str:
    """What a mail said, to quote back in a reminder: :func:`recap_stripped` of its new text
    (:func:`strip_reply`: no quoted history, no ``--`` signature).

    >>> recap("Hi Jane,\\n\\nCould you look over the plan?\\n\\nOn Mon, Bob wrote:\\n> old")
    'Could you look over the plan?'
    """
    handed = _handed
    if handed is not None and handed[0] == text:
        if limit == RECAP_CHARS and handed[2] is not None:
            return handed[2]
        return recap_stripped(handed[1], limit)
    return recap_stripped(strip_reply(text), limit)


def recap_stripped(text: str, limit: int = RECAP_CHARS) -> str:
    """:func:`recap` of a text :func:`strip_reply` already stripped: it without the greeting
    and the sign-off, on one line, and at most ``limit`` characters, cut after the last whole
    sentence that fits (a first sentence longer than that is cut at a word, with "…").

    A greeting on the line of the text is cut too and the text goes on capitalised; a mail
    that is nothing but a sign-off ("Thanks!") keeps it, as that is all it said.

    >>> recap_stripped("Hi Jane,\\n\\nCould you look over the plan? It is short.\\n\\nBest,\\nSam")
    'Could you look over the plan? It is short.'
    >>> recap_stripped("Hi both, could you look it over?\\n\\nThanks!")
    'Could you look it over?'
    >>> recap_stripped("One. " + "Two words here. " * 20, 40)
    'One. Two words here. Two words here.'
    """
    lines = [line.strip() for line in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    greeted = False
    for _ in range(3):  # "Hi Jane, hi Carlos," greets twice
        greeting = _GREETING.match(lines[0]) if lines else None
        if greeting is None or not (lines[0][greeting.end():] or any(lines[1:])):
            break  # a mail that is only a greeting keeps it
        lines[0] = lines[0][greeting.end():]
        greeted = True
        while len(lines) > 1 and not lines[0]:
            lines.pop(0)
    for index, line in enumerate(lines):
        if index and _SIGN_OFF.match(line) and any(lines[:index]):
            lines = lines[:index]
            break
    while lines and not lines[-1]:
        lines.pop()
    if (len(lines) > 2 and not lines[-2] and _NAME_LINE.fullmatch(lines[-1])
            and lines[-1].casefold() not in _ANSWER_WORDS):
        lines = lines[:-2]  # a name alone under the text: "Bob"
    flat = " ".join(" ".join(lines).split())
    if greeted:
        flat = flat[:1].upper() + flat[1:]
    if len(flat) <= limit:
        return flat
    ends = [m.end() for m in _SENTENCE_END.finditer(flat[: limit + 1])]
    if ends:
        return flat[: ends[-1]]
    cut = flat[: limit - 1].rsplit(" ", 1)[0] or flat[: limit - 1]
    return cut.rstrip(",;:") + "…"
