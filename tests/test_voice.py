"""Whose voice a letter to a counterpart speaks in (``send_as``), and in which language.

With ``send_as: assistant`` a nudge or a thank-you says once, in its last line, that the
owner's mail assistant wrote it for the owner, and never speaks as the owner; with
``send_as: owner`` it is the owner's own letter, signed with their name. A thread in another
language than English gets no English recap. The reminders show the same letter as a draft.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from mailhelper.compose.render import Renderer, RenderJob
from mailhelper.decide.classify import Context, classify
from mailhelper.decide.events import NewThread
from mailhelper.model.settings import Settings
from mailhelper.model.values import Action, ActionKind, Address, Answer, Kind, Thread, ThreadState
from mailhelper.read.language import guess_language
from mailhelper.read.parse import parse_mail
from mailhelper.state.store import Store
from tests.rig.mailboxes import make_message
from tests.test_render import LONDON, NOW, T0, flat, parts

HELPER = Address("helper@example.com", "Sam's assistant")
JANE = Address("jane@example.org", "Okafor, Jane")
ENGLISH = ("Intro to Acme?", "Could you introduce me to someone at Acme?")
GERMAN = ("Kaffee nächste Woche?",
          "Hast du nächste Woche Zeit für einen Kaffee? Ich würde gern über das Projekt reden.")
OWNERS = {
    "named": Address("sam@example.com", "Sam Rivera"),
    "titled": Address("sam@example.com", "Dr. Sam Rivera"),
    "unnamed": Address("sam@example.com", ""),
}
#: The owner speaking in the first person: wrong in the assistant's voice, outside quotes.
FIRST_PERSON = re.compile(r"\b(?:I|I'm|I'd|I'll|me|my|mine)\b")


def renderer(send_as: str, owner: Address = OWNERS["named"]) -> Renderer:
    return Renderer(Settings(owners=(owner,), assistant=HELPER, timezone=LONDON,
                             send_as="owner" if send_as == "owner" else "assistant"))


def thread(owner: Address = OWNERS["named"], text: tuple[str, str] = ENGLISH,
           kind: Kind = Kind.ASK, state: ThreadState = ThreadState.OPEN) -> Thread:
    answers = ((Answer(JANE.email, T0 + timedelta(days=1), True, "Happy to help."),)
               if state is ThreadState.ANSWERED else ())
    return Thread(id=3, kind=kind, state=state, subject=text[0], owner=owner,
                  counterparts=(JANE,), created=T0, root_message_id="ask@mail.example.com",
                  last_owner_activity=T0, excerpt=text[1], answers=answers,
                  closed_at=T0 + timedelta(days=1) if state is ThreadState.DECLINED else None)


def letter(send_as: str, kind: ActionKind, data: dict[str, str], owner_key: str = "named",
           text: tuple[str, str] = ENGLISH, thread_kind: Kind = Kind.ASK,
           state: ThreadState = ThreadState.OPEN) -> tuple[str, str]:
    owner = OWNERS[owner_key]
    recipients = (JANE,) if kind in (ActionKind.NUDGE, ActionKind.THANK_YOU) else (owner,)
    job = RenderJob(Action(f"t3/{kind.value}/v", kind, NOW, 3, recipients, data),
                    thread(owner, text, thread_kind, state), NOW,
                    references=("ask@mail.example.com",))
    return parts(renderer(send_as, owner).render(job))


LETTERS = [
    (ActionKind.NUDGE, {"number": "1"}, Kind.ASK, ThreadState.OPEN),
    (ActionKind.NUDGE, {"number": "2"}, Kind.ASK, ThreadState.OPEN),
    (ActionKind.THANK_YOU, {"flavour": "helped"}, Kind.ASK, ThreadState.ANSWERED),
    (ActionKind.THANK_YOU, {"flavour": "helped"}, Kind.OFFER, ThreadState.ANSWERED),
    (ActionKind.THANK_YOU, {"flavour": "declined"}, Kind.OFFER, ThreadState.DECLINED),
]
IDS = ["nudge-1", "nudge-2", "thanks-ask", "thanks-offer", "thanks-declined"]


@pytest.mark.parametrize("owner_key", sorted(OWNERS))
@pytest.mark.parametrize(("kind", "data", "thread_kind", "state"), LETTERS, ids=IDS)
def test_the_assistant_says_once_that_it_writes_for_the_owner(
        owner_key: str, kind: ActionKind, data: dict[str, str], thread_kind: Kind,
        state: ThreadState) -> None:
    text, html = letter("assistant", kind, data, owner_key, thread_kind=thread_kind,
                        state=state)
    last = text.strip().splitlines()[-1]
    wanted = {"named": "Sam Rivera's mail assistant, on Sam's behalf (Sam is in Cc)",
              "titled": "Dr. Sam Rivera's mail assistant, on Sam's behalf (Sam is in Cc)",
              "unnamed": "The mail assistant of sam@example.com (in Cc), writing on their "
                         "behalf"}[owner_key]
    assert flat(text).endswith(wanted), text
    assert flat(text).count("assistant") == 1 and "assistant" in last
    assert html.count("assistant") == 1
    unquoted = re.sub(r"“[^”]*”", "", text)
    assert not FIRST_PERSON.search(unquoted), f"speaks as the owner: {text}"
    if owner_key != "unnamed":
        assert "Sam" in text.split("\n\n", 1)[1], "the body names the owner it speaks of"
    assert "sam@example.com" not in text or owner_key == "unnamed"


@pytest.mark.parametrize(("kind", "data", "thread_kind", "state"), LETTERS, ids=IDS)
def test_as_the_owner_it_is_their_own_letter_signed_with_their_name(
        kind: ActionKind, data: dict[str, str], thread_kind: Kind, state: ThreadState) -> None:
    text, html = letter("owner", kind, data, thread_kind=thread_kind, state=state)
    assert "assistant" not in text.lower() and "assistant" not in html.lower()
    assert text.strip().splitlines()[-1] == "Sam"
    assert re.search(r"\b(?:I|me|my)\b", text), "first person"
    assert "Sam" not in text.strip().rsplit("\n", 1)[0], "no third person about the owner"
    titled, _ = letter("owner", kind, data, "titled", thread_kind=thread_kind, state=state)
    assert titled.strip().splitlines()[-1] == "Sam"
    unnamed, _ = letter("owner", kind, data, "unnamed", thread_kind=thread_kind, state=state)
    assert unnamed.strip().splitlines()[-1] in ("Thanks,", "Best,"), "no address as a name"


@pytest.mark.parametrize("send_as", ["assistant", "owner"])
def test_a_thread_in_another_language_gets_no_english_recap(send_as: str) -> None:
    english, _ = letter(send_as, ActionKind.NUDGE, {"number": "1"})
    assert "“Could you introduce me to someone at Acme?”" in english
    german, german_html = letter(send_as, ActionKind.NUDGE, {"number": "1"}, text=GERMAN)
    assert "“" not in german and "Kaffee" not in german and "&#8220;" not in german_html
    assert "Kaffee" not in german_html.partition("<body")[2]
    assert len(german.strip().splitlines()) <= 8, "short and neutral"
    chinese, _ = letter(send_as, ActionKind.NUDGE, {"number": "2"},
                        text=("周四前的计划", "你能在周四之前看一下计划吗？"))
    assert "“" not in chinese and "计划" not in chinese
    # The owner's reminder still quotes the ask, whatever its language.
    reminder, _ = letter(send_as, ActionKind.FOLLOW_UP, {"number": "1", "of": "2"}, text=GERMAN)
    assert "Hast du nächste Woche Zeit" in reminder


@pytest.mark.parametrize("send_as", ["assistant", "owner"])
def test_the_reminders_show_the_letter_that_send_would_send(send_as: str) -> None:
    nudge, _ = letter(send_as, ActionKind.NUDGE, {"number": "1"})
    reminder, _ = letter(send_as, ActionKind.FOLLOW_UP, {"number": "1", "of": "2"})
    assert nudge.strip() in reminder
    thanks, _ = letter(send_as, ActionKind.THANK_YOU, {"flavour": "helped"},
                       state=ThreadState.ANSWERED)
    draft, _ = letter(send_as, ActionKind.THANK_YOU_DRAFT, {"flavour": "helped"},
                      state=ThreadState.ANSWERED)
    assert thanks.strip() in draft


def test_no_subject_is_pasted_into_a_letter() -> None:
    for send_as in ("assistant", "owner"):
        for kind, data, thread_kind, state in LETTERS:
            text, _ = letter(send_as, kind, data, thread_kind=thread_kind, state=state)
            assert "Intro to Acme" not in text, text


def test_a_letter_with_non_ascii_text_is_transfer_encoded() -> None:
    owner = Address("sam@example.com", "Sám Rivéra")
    job = RenderJob(Action("t3/nudge/v", ActionKind.NUDGE, NOW, 3, (JANE,), {"number": "1"}),
                    thread(owner, GERMAN), NOW)
    raw = renderer("assistant", owner).render(job).as_bytes()
    assert raw.isascii(), "8bit body: a server without 8BITMIME may mangle it"
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert "Sám Rivéra's mail assistant" in parts(message)[0]  # type: ignore[arg-type]


@pytest.mark.parametrize(("texts", "language"), [
    (ENGLISH, "en"),
    (GERMAN, "de"),
    (("AW: Termin", "Könnten Sie mir bitte bis Freitag Bescheid geben?"), "de"),
    (("Un café ?", "Est-ce que tu as le temps pour un café la semaine prochaine ?"), "fr"),
    (("Mudanza", "¿Podrías ayudarme con la mudanza el sábado?"), "es"),
    (("Trasloco", "Ciao, potresti darmi una mano con il trasloco?"), "it"),
    (("Verhuizing", "Kun je me helpen met de verhuizing?"), "nl"),
    (("Mudança", "Você poderia me ajudar com a mudança? Obrigado"), "pt"),
    (("周四前的计划", "你能在周四之前看一下计划吗？"), "zh"),
    (("木曜日までに", "計画を見てもらえますか？"), "ja"),
    (("План", "Не могли бы вы посмотреть план до четверга?"), "ru"),
    (("Q4 plan", ""), ""),
    (("Re: Q4 plan", "Could you look over the plan? Danke!"), "en"),
])
def test_the_language_guess(texts: tuple[str, str], language: str) -> None:
    assert guess_language(texts) == language


def test_an_owner_without_a_name_in_the_config_is_named_as_their_mail_names_them() -> None:
    settings = Settings(owners=(Address("sam@example.com"),), assistant=HELPER,
                        timezone=LONDON)
    raw = make_message("Sam Rivera <sam@example.com>", "Jane <jane@example.org>",
                       "Intro to Acme?", "Could you introduce me?", cc=HELPER.email,
                       date="Mon, 30 Nov 2026 08:59:00 +0000", message_id="<a1@example.com>")
    store = Store.open(Path(":memory:"), "example.com")
    event = classify(parse_mail(raw), Context(settings, store, NOW))
    assert isinstance(event, NewThread) and event.owner == Address("sam@example.com",
                                                                   "Sam Rivera")
    configured = dataclasses.replace(settings, owners=(Address("sam@example.com", "Sam R."),))
    event = classify(parse_mail(raw), Context(configured, store, NOW))
    assert isinstance(event, NewThread) and event.owner.name == "Sam R.", "the config wins"


@pytest.mark.parametrize(("kind", "data", "state"), [
    (ActionKind.FOLLOW_UP, {"number": "1", "of": "2"}, ThreadState.OPEN),
    (ActionKind.THANK_YOU_DRAFT, {"flavour": "helped"}, ThreadState.ANSWERED),
])
@pytest.mark.parametrize("send_as", ["assistant", "owner"])
def test_the_owner_is_offered_to_copy_only_a_letter_in_their_own_voice(
        send_as: str, kind: ActionKind, data: dict[str, str], state: ThreadState) -> None:
    """In the assistant's voice the draft is the assistant's letter, signed by it: the
    reminder offers ``send`` (the draft, or the owner's own words below it) and writing to
    them yourself, never "copy it" (the copy would be signed by the assistant)."""
    text, html = letter(send_as, kind, data, state=state)
    after = flat(text.split("-" * 63)[-1])
    shown_after = flat(re.sub(r"<[^>]+>", "", html.split("</blockquote>")[-1]))
    if send_as == "owner":
        assert "copy it" in after.lower()
        return
    for words, send in ((after, '"send"'), (shown_after, "send")):
        assert "copy it" not in words.lower(), words
        assert f"own words below {send}" in words, words
        assert re.search(r"yourself,? with me in Cc", words), words


@pytest.mark.parametrize(("data", "thread_kind", "state"), [
    ({"text": "Jane, any news on this?\n\nSam"}, Kind.ASK, ThreadState.OPEN),
    ({"about": "offer", "text": "The van on Saturday would be perfect."}, Kind.OFFER,
     ThreadState.OPEN),
    ({"about": "return_favor"}, Kind.ASK, ThreadState.DONE),
])
@pytest.mark.parametrize("send_as", ["assistant", "owner"])
def test_own_words_say_once_in_their_last_line_who_sent_them(
        send_as: str, data: dict[str, str], thread_kind: Kind, state: ThreadState) -> None:
    """``send`` with the owner's own words (and the return-the-favour letter): in the
    assistant's voice the last line of the text and of the HTML says once that the owner's
    assistant sent it on the owner's behalf; as the owner, just the words."""
    owner = OWNERS["named"]
    action = Action("l/1", ActionKind.LETTER, NOW, 3, (JANE,), data)
    job = RenderJob(action, thread(owner, ENGLISH, thread_kind, state), NOW,
                    references=("ask@mail.example.com",))
    text, html = parts(renderer(send_as, owner).render(job))
    body = html.split("<body", 1)[1]
    shown = [line for line in re.sub(r"<[^>]+>", "\n", body).splitlines() if line.strip()]
    if send_as == "owner":
        assert "assistant" not in text.lower() and "assistant" not in html.lower()
        return
    wanted = "Sam Rivera's mail assistant, on Sam's behalf (Sam is in Cc)"
    assert text.strip().splitlines()[-1] == wanted, text
    assert flat(text).count("assistant") == 1
    assert shown[-1].strip() == wanted, shown
    assert flat(" ".join(shown)).count("assistant") == 1
