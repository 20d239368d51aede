"""The new text of a reply, for each client's way of quoting, in several languages."""

from __future__ import annotations

import pytest

from mailhelper.read.replytext import (
    attribution_at,
    header_block_at,
    header_field,
    recap,
    strip_reply,
)

NEW = "Happy to help, send me the deck.\n\nBob"


@pytest.mark.parametrize(
    "attribution",
    [
        "On Tue, Dec 1, 2026 at 9:00 AM Jane Doe <jane@acme.com> wrote:",  # Gmail en
        "On 1 Dec 2026, at 09:00, Jane Doe <jane@acme.com> wrote:",  # Apple
        "On 12/01/2026 09:00 AM, Jane Doe wrote:",  # Thunderbird
        "On Tuesday, December 1, 2026, 09:00:00 AM GMT+1, Jane Doe <jane@acme.com> wrote:",
        "Am Di., 1. Dez. 2026 um 09:00 Uhr schrieb Jane Doe <jane@acme.com>:",  # Gmail de
        "Am 01.12.2026 um 09:00 schrieb Jane Doe:",  # Apple/Thunderbird de
        "Le mar. 1 déc. 2026 à 09:00, Jane Doe <jane@acme.com> a écrit :",  # Gmail fr
        "El mar, 1 dic 2026 a las 9:00, Jane Doe (<jane@acme.com>) escribió:",  # Gmail es
        "Em ter., 1 de dez. de 2026 às 09:00, Jane Doe <jane@acme.com> escreveu:",  # pt
        "Op di 1 dec. 2026 om 09:00 schreef Jane Doe <jane@acme.com>:",  # Gmail nl
        "Il giorno mar 1 dic 2026 alle ore 09:00 Jane Doe <jane@acme.com> ha scritto:",  # it
        "W dniu 1.12.2026 o 09:00, Jane Doe pisze <jane@acme.com>:",  # Thunderbird pl
        "вт, 1 дек. 2026 г. в 09:00, Jane Doe <jane@acme.com>:",  # Gmail ru
        "2026年12月1日(火) 9:00 Jane Doe <jane@acme.com>:",  # Gmail ja
        "tis 1 dec. 2026 kl. 09:00 skrev Jane Doe <jane@acme.com>:",  # Gmail sv
        "1 Dec 2026 at 09:00 Jane Doe <jane@acme.com> kirjoitti:",  # fi
    ],
)
def test_attribution_over_quoted_lines(attribution: str) -> None:
    text = f"{NEW}\n\n{attribution}\n\n> Could you help?\n>\n> Jane\n"
    assert strip_reply(text) == NEW


@pytest.mark.parametrize(
    "wrapped",
    [
        "On Tue, Dec 1, 2026 at 9:00 AM Jane Doe <jane@acme.com>\nwrote:",
        "Op 1 december 2026 09:00 schreef Jane Doe <\njane@acme.com>:",
        "tir. 1. des. 2026 kl. 09:00 skrev Jane Doe <jane@acme.com\n>:",
        "Em 1 de dezembro de 2026 às 09:00, Jane Doe (\njane@acme.com) escreveu:",
    ],
)
def test_attribution_wrapped_over_lines(wrapped: str) -> None:
    assert strip_reply(f"{NEW}\n\n{wrapped}\n\n> Could you help?") == NEW


@pytest.mark.parametrize(
    "history",
    [
        "-----Original Message-----\nFrom: Jane\nSent: Tuesday\nTo: Bob\nSubject: Help\n\nHi",
        "----- Original Message -----\nFrom: jane@acme.com\nTo: bob@x.org\nSubject: Help\n\nHi",
        "-------- Ursprüngliche Nachricht --------\nVon: Jane\n\nHi",
        "-------- Message d'origine --------\nDe : Jane\n\nHi",
        "-------- Mensaje original --------\nDe: Jane\n\nHi",
        "-------- Oprindelig besked --------\nFra: Jane\n\nHi",
        "________________________________\nFrom: Jane <jane@acme.com>\nSent: Tuesday\nTo: Bob\n"
        "Subject: Help\n\nHi",
        "From: Jane [mailto:jane@acme.com]\nSent: Tuesday, December 1, 2026 9:00 AM\nTo: Bob\n"
        "Subject: Help\n\nHi",
        "*From:* Jane [mailto:jane@acme.com]\n*Sent:* Tuesday\n*To:* Bob\n*Subject:* Help\n\nHi",
        "Von: Jane <jane@acme.com>\nGesendet: Dienstag, 1. Dezember 2026 09:00\nAn: Bob\n"
        "Betreff: Hilfe\n\nHallo",
        "De : Jane<mailto:jane@acme.com>\nEnvoyé le :mardi 1 décembre 2026 09:00\nÀ : Bob\n"
        "Objet :Aide\n\nSalut",
        "De: Jane\nEnviado el: martes, 1 de diciembre de 2026 9:00\nPara: Bob\n"
        "Asunto: Ayuda\n\nHola",
        "Da: Jane\nInviato: martedì 1 dicembre 2026 09:00\nA: Bob\nOggetto: Aiuto\n\nCiao",
        "Van: Jane\nVerzonden: dinsdag 1 december 2026 09:00\nAan: Bob\nOnderwerp: Hulp\n\nHoi",
        "De: Jane\nEnviada em: terça-feira, 1 de dezembro de 2026 09:00\nPara: Bob\n"
        "Assunto: Ajuda\n\nOlá",
        "Am 01.12.2026 21:11 schrieb Jane <jane@acme.com>:\n\nHallo, unquoted original",
        "---- On Tue, 01 Dec 2026 09:00:00 +0100 jane@acme.com wrote ----\n\nHi",
        "---------- Forwarded message ---------\nFrom: Jane <jane@acme.com>\n\nHi",
        "Begin forwarded message:\n\n> From: Jane <jane@acme.com>",
    ],
)
def test_unquoted_history_is_cut(history: str) -> None:
    assert strip_reply(f"{NEW}\n\n{history}\n") == NEW


def test_bottom_posting_and_inline_replies_keep_every_new_paragraph() -> None:
    text = (
        "On Tue, Dec 1, 2026 at 9:00 AM Jane <jane@acme.com> wrote:\n> Can you help?\n\n"
        "Sure.\n\n> And the deck?\n\nSending it now.\n"
    )
    assert strip_reply(text) == "Sure.\n\nSending it now."


def test_the_line_before_an_attribution_stays() -> None:
    text = "Hi,\nOn Tue, 2026-12-01 at 09:00 +0100, Jane wrote:\n> Can you help?\n\nYes."
    assert strip_reply(text) == "Hi,\n\nYes."


def test_a_rewrapped_quote_line_is_still_quoted() -> None:
    text = f"{NEW}\n\nOn Tue, Dec 1, 2026, Jane <j@x.org> wrote:\n> a long line that\nwrapped\n> on"
    assert strip_reply(text) == NEW


@pytest.mark.parametrize(
    "signature",
    [
        "-- \nBob Smith\nAcme",
        "--\nBob Smith",
        "Sent from my iPhone",
        "Envoyé de mon iPhone",
        "Von meinem iPhone gesendet",
        "Enviado desde mi iPhone",
        "Enviado do meu iPhone",
        "Inviato da iPhone",
        "Verzonden vanaf mijn iPhone",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
        "Envoyé à partir de Outlook pour iOS<https://aka.ms/o0ukef>",
    ],
)
def test_signatures_go(signature: str) -> None:
    assert strip_reply(f"{NEW}\n\n{signature}\n") == NEW


def test_text_that_only_looks_like_a_quote_header_stays() -> None:
    text = (
        "On your remote host you can run:\n\n    telnet 127.0.0.1 52698\n\n"
        "One outstanding question I had:\nwhy?"
    )
    assert strip_reply(text) == text


def test_plain_text_is_returned_whole() -> None:
    assert strip_reply("  Thanks!\r\n\r\n\r\n\r\nBob  ") == "Thanks!\n\nBob"
    assert strip_reply("") == ""


def test_an_attribution_is_at_most_three_lines() -> None:
    lines = ["Hi Bob", "On Tue, Dec 1, 2026 at 9:00 AM Jane", "Doe", "<jane@acme.com>", "wrote:"]
    assert attribution_at(lines, 1) == 0
    assert attribution_at(["Hi Bob", "On Tue, 1 Dec 2026, Jane", "wrote:"], 1) == 2


def test_header_labels() -> None:
    assert header_field("Betreff: Hilfe") == ("subject", "Hilfe")
    assert header_field("Kopie (CC): a@b.c") == ("cc", "a@b.c")
    assert header_field("件名：Intro") == ("subject", "Intro")
    assert header_field("Datum:\t1.12.2026") == ("date", "1.12.2026")
    assert header_field("Subject line of the text") is None
    assert header_block_at(["From: a", "To: b", "Subject: c"], 0)
    assert not header_block_at(["From: a", "", "", "To: b", "Subject: c"], 0)


@pytest.mark.timeout(60)
def test_long_hostile_input_stays_linear() -> None:
    text = ("> q\n" * 50_000) + ("On 1 x wrote:\n" * 20_000) + ("From: a\n" * 20_000)
    assert strip_reply(text) == ""


# -- recap: what a reminder quotes back --------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("Hi Jane,\n\nCould you look over the Q4 plan before Thursday?\n\nBest,\nJosé",
     "Could you look over the Q4 plan before Thursday?"),
    ("Hi both, could you look over the plan?\n\nThanks!\nSam", "Could you look over the plan?"),
    ("Dear Dr. Raman,\nwould you review my draft?\n\nKind regards,\nSam Rivera",
     "Would you review my draft?"),
    ("Happy to help! I'll write to Priya.\n\nBest, José", "Happy to help! I'll write to Priya."),
    ("Sure thing.\n\nCheers\nJosé\n-- \nJosé Núñez\nAcme Ltd", "Sure thing."),
    ("Looks good.\n\nOn Mon, 7 Dec 2026 at 09:00, Sam <sam@example.com> wrote:\n> Hi both,\n"
     "> could you look?", "Looks good."),
    ("Hallo Jane,\nkannst du mir helfen?\n\nViele Grüße\nSam", "Kannst du mir helfen?"),
    ("王さん、\n来週お時間ありますか？", "王さん、 来週お時間ありますか？"),
])
def test_recap_drops_greeting_sign_off_and_history(text: str, expected: str) -> None:
    assert recap(text) == expected


@pytest.mark.parametrize("text", ["Thanks!", "Hi Jane!", "Jane, any news?",
                                  "Hi-fi prices went up, sadly."])
def test_recap_keeps_a_mail_that_is_only_a_greeting_or_thanks(text: str) -> None:
    assert recap(text) == text


def test_recap_cuts_after_the_last_whole_sentence_that_fits() -> None:
    text = "Could you look over the plan? " + "It has a budget part that matters. " * 10
    cut = recap(text)
    assert len(cut) <= 200 and cut.endswith("matters.")
    assert cut.startswith("Could you look over the plan? It has")


def test_recap_cuts_one_long_sentence_at_a_word() -> None:
    text = "Could you " + "please " * 60 + "look?"
    cut = recap(text)
    assert len(cut) <= 200 and cut.endswith("please…")


@pytest.mark.parametrize(("text", "expected"), [
    ("Hi Jane, hi Carlos,\n\nWould one of you introduce me?\n\nThanks,\nSam",
     "Would one of you introduce me?"),
    ("Sam, if you need a hand with the move, just say what would help.\n\nBob",
     "Sam, if you need a hand with the move, just say what would help."),
    ("Happy to. I've written to Priya.\n\nJosé Núñez\n\n> Would you introduce me?",
     "Happy to. I've written to Priya."),
    ("Sure.\n\nYes", "Sure. Yes"),
])
def test_recap_drops_every_greeting_and_a_name_alone_at_the_end(text: str, expected: str) -> None:
    assert recap(text) == expected
