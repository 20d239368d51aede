"""The digest and its ledger, re-planning on a config change, dry runs, and every template read
back from the sink and the Sent folder, end to end through Dovecot and the SMTP sink."""

from __future__ import annotations

import sqlite3

from mailhelper.model.values import ActionKind
from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.test_lifecycle import JANE_EMAIL, Walk, addresses, at, html_of, kinds, text_of

SAM = f"{OWNER_NAME} <{OWNER}>"
ZOE = "Zoë Åström <zoe@example.org>"
SUBJECT = "Привет — café"


def plus(walk: Walk, tag: str) -> str:
    return walk.assistant.replace("@", f"+{tag}@")


def flat(text: str) -> str:
    return " ".join(text.split())


# -- 10. the digest and the ledger -----------------------------------------------------------


def test_weekly_digest_with_the_ledger_agrees_with_status(rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"schedules": {"digest": {"rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8"}}})
    walk = Walk(rig_assistant)
    jane = walk.ask(at("2026-12-07 09:00"), subject="Intro to Acme?")
    walk.ask(at("2026-12-07 09:00"), to="Carlos Mendes <carlos@example.com>",
             subject="Read my abstract?")
    dana = walk.ask(at("2026-12-07 09:00"), to="Dana Ito <dana@example.net>",
                    subject="Flat viewing?")
    walk.deliver(SAM, "Bob Lee <bob@example.net>", "Re: Help with the move", "Thanks Bob!",
                 at("2026-12-07 09:00"), cc=plus(walk, "offer"))
    assert kinds(walk.poll(at("2026-12-07 09:00"))) == ["receipt"] * 4
    [offer_reminder] = walk.poll(at("2026-12-08 09:00"))
    walk.command(offer_reminder, "decline", at("2026-12-08 10:00"))
    walk.poll(at("2026-12-08 10:00"))
    assert kinds(walk.poll(at("2026-12-08 12:00"))) == ["thank_you_draft"]  # Bob, declined
    walk.reply(jane, at("2026-12-09 11:00"))  # 50 hours
    walk.poll(at("2026-12-09 11:00"))
    [thanks_jane] = walk.poll(at("2026-12-09 13:00"))
    walk.command(thanks_jane, "done", at("2026-12-09 14:00"))
    walk.poll(at("2026-12-09 14:00"))
    assert kinds(walk.poll(at("2026-12-10 09:00"))) == ["follow_up", "follow_up"]
    walk.quiet(at("2026-12-13 23:00"))
    walk.reply(dana, at("2026-12-14 07:00"), from_="Dana Ito <dana@example.net>",
               subject="Re: Flat viewing?")
    walk.quiet(at("2026-12-14 07:59"))  # read at 07:59: 167 hours after the ask
    [digest] = walk.poll(at("2026-12-14 08:00"))
    assert kinds([digest]) == ["digest"] and addresses(digest, "To") == [OWNER]
    # Carlos's reminder left a follow-up draft unsent, Sam's decline a thank-you draft to
    # Bob: they lead, numbered.
    assert digest["Subject"] == ("Your digest: 2 drafts to send, 1 thank-you due, "
                                 "1 favour to return")
    body = flat(text_of(digest))
    assert "DRAFTS READY TO SEND (2) 1. Carlos Mendes: “Read my abstract?”" in body
    assert "2. Bob Lee: “Help with the move”" in body
    assert "THANKS DUE (1) 3. Dana Ito: “Flat viewing?”, answered Mon 14 Dec" in body
    assert "FAVOURS TO RETURN (1) 4. Jane Doe: “Intro to Acme?”, helped Wed 9 Dec" in body
    assert "ALL TIME: 3 asks, 2 answered ▇▇░ 2/3" in body
    assert "Median time to an answer: 4.5 days" in body  # the median of 50 h and 167 h
    # Both thank-yous went to Sam as drafts: drafted, not sent.
    assert "Offers: taken up 0 · declined 1 · lapsed 0 · waiting 0" in body
    assert "Thank-yous: 2 drafted; favours returned: 0" in body
    # Monday 08:00: this calendar week has just begun, so it has no asks yet.
    assert ("Jane Doe: 1 ask, 1 answered (median 2.1 days); thank-yous: 1 drafted No asks "
            "this week. 2 of") in body
    assert "Bob Lee: 1 offer; thank-yous: 1 drafted -" in body
    assert "Carlos Mendes: 1 ask, 0 answered -" in body
    assert "Dana Ito: 1 ask, 1 answered (median 7 days) " in body
    assert "2 of your 3 asks were answered: " in body

    code, table, _ = rig_assistant.cli("status")
    assert code == 0
    assert ("Ledger: 3 asks, 2 answered (median 4.5 days); 1 offer; thank-yous: 2 drafted; "
            "0 favours returned") in table
    groups = {block.splitlines()[0]: block for block in table.split("\n\n")}
    assert "Flat viewing?" in groups["Thanks to say (1)"]
    assert "Intro to Acme?" in groups["Favours to return (1)"]
    # The same drafts as the digest's, Bob's declined offer's thank-you draft among them.
    drafts = groups["Drafts to send: reply send to the draft (2)"]
    assert "Read my abstract?" in drafts and "Help with the move" in drafts

    # Dana's draft goes at 09:59: then no thanks are due, and the ledger counts 3.
    assert sorted(kinds(walk.poll(at("2026-12-14 10:00")))) == ["follow_up", "thank_you_draft"]
    walk.quiet(at("2026-12-20 08:00"))
    [second] = walk.poll(at("2026-12-21 08:00"))
    # Dana's thank-you is drafted and her ask not done: it waits on Sam too.
    assert second["Subject"] == "Your digest: 3 drafts to send, 1 favour to return"
    assert "Thank-yous: 3 drafted" in flat(text_of(second))
    assert "thank-yous: 3 drafted" in rig_assistant.cli("status")[1]
    walk.check_sent_folder()


# -- 11. a new schedule re-plans what is pending ---------------------------------------------


def test_changing_the_schedule_replans_pending_actions_only(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    assert kinds(walk.poll(at("2026-12-10 09:00"))) == ["follow_up"]
    assert walk.status()["next_action"]["due"] == "2026-12-14T09:00:00+00:00"
    rig_assistant.configure({"schedules": {"ask": {"follow_up": ["3 days", "5 days"],
                                                   "give_up_after": "6 days"}}})
    walk.quiet(at("2026-12-11 09:00"))
    assert "schedules changed since the last run: re-planned 1 pending actions" in walk.log
    assert walk.status()["next_action"] == {"kind": "follow_up",
                                            "due": "2026-12-12T09:00:00+00:00"}
    [second] = walk.poll(at("2026-12-12 09:00"))
    assert "Still no reply" in str(second["Subject"])
    walk.quiet(at("2026-12-12 12:00"))
    assert kinds(walk.poll(at("2026-12-13 09:00"))) == ["closing_note"]
    walk.quiet(at("2026-12-14 09:00"), at("2026-12-21 09:00"))
    assert kinds(rig_assistant.sent()) == ["receipt", "follow_up", "follow_up", "closing_note"]
    assert "re-planned" not in walk.log, "an unchanged config re-plans nothing"


# -- 12. dry run -----------------------------------------------------------------------------


def test_dry_run_prints_what_would_be_sent_and_changes_nothing(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    walk.ask(at("2026-12-10 08:00"), to="Carlos Mendes <carlos@example.com>",
             subject="Read my abstract?")

    def snapshot() -> tuple[object, ...]:
        with sqlite3.connect(rig_assistant.state) as db:
            dump = list(db.iterdump())
        return (dump, rig_assistant.flags("INBOX"), len(rig_assistant.folder("Sent")),
                len(rig_assistant.sent()))

    before = snapshot()
    code, out, _ = rig_assistant.cli("poll", "--once", "--dry-run", "--now",
                                     at("2026-12-10 09:00"))
    assert code == 0
    assert "would send receipt to Sam Rivera <sam@example.com>: Tracking your ask to Carlos" in out
    assert "would send follow_up to Sam Rivera <sam@example.com>: Follow up with Jane?" in out
    assert snapshot() == before
    # The real poll then does exactly that.
    assert sorted(kinds(walk.poll(at("2026-12-10 09:00")))) == ["follow_up", "receipt"]


def test_dry_run_on_a_fresh_config_creates_nothing(rig_assistant: RigAssistant) -> None:
    """No state yet: the dry run reads the mailbox and says what it would send, and leaves no
    state, lock or remembered-templates file behind (before: all three were created)."""
    rig_assistant.ask()
    before = sorted(p.name for p in rig_assistant.state.parent.iterdir())
    flags = rig_assistant.flags("INBOX")
    code, out, _ = rig_assistant.cli("poll", "--once", "--dry-run", "--now",
                                     at("2026-12-07 09:00"))
    assert code == 0
    assert "would send receipt to Sam Rivera <sam@example.com>" in out
    assert sorted(p.name for p in rig_assistant.state.parent.iterdir()) == before
    assert not rig_assistant.state.exists()
    assert rig_assistant.flags("INBOX") == flags and rig_assistant.sent() == []


# -- 13. every template, through the servers -------------------------------------------------


def test_every_template_round_trips_through_sink_and_sent_folder(
    rig_assistant: RigAssistant,
) -> None:
    """Non-ASCII names and subjects, every kind of mail, read back from both ends."""
    rig_assistant.configure({
        "assistant": {"name": "Ассистент Sam"},
        "schedules": {"ask": {"follow_up": ["1 day"], "give_up_after": "2 days",
                              "nudge_counterpart": ["25 hours"]},
                      "return_favor": {"after": "1 day"}},
    })
    walk = Walk(rig_assistant)
    lonely = walk.ask(at("2026-12-07 09:00"), to=ZOE, subject=SUBJECT)
    answered = walk.ask(at("2026-12-07 09:00"), to=ZOE, subject="Второй вопрос — thé")
    walk.deliver(SAM, "Åsa Öberg <asa@example.se>", "Re: Flytthjälp", "Tack Åsa!",
                 at("2026-12-07 09:00"), cc=plus(walk, "offer"))
    walk.poll(at("2026-12-07 09:00"))
    walk.reply(answered, at("2026-12-07 10:00"), from_=ZOE, subject="Re: Второй вопрос — thé",
               body="Да, конечно! Happy to help.")
    walk.poll(at("2026-12-07 10:00"))
    [draft] = walk.poll(at("2026-12-07 12:00"))
    walk.command(draft, "send", at("2026-12-07 12:30"))
    walk.poll(at("2026-12-07 12:30"))
    walk.command(draft, "done", at("2026-12-07 13:00"))
    walk.deliver(SAM, walk.assistant, "help", "help", at("2026-12-07 13:00"))
    walk.deliver(SAM, walk.assistant, "status", "status", at("2026-12-07 13:00"))
    # A note to self, back the next day; an ask that repeats: a check-in every morning.
    walk.deliver(SAM, plus(walk, "1day"), "Заметка — passport", "Не забыть фото",
                 at("2026-12-07 13:00"))
    walk.deliver(SAM, "Åsa Öberg <asa@example.se>", "Håll kontakten",
                 "Keep in touch every day\n\nHej Åsa!", at("2026-12-07 13:00"),
                 cc=walk.assistant)
    walk.poll(at("2026-12-07 13:00"))
    reminders = walk.poll(at("2026-12-08 09:00"))  # the reminders: ask and offer
    rig_assistant.sink.fail_next(1, 550)  # the nudge to Zoë bounces: the owner is told
    walk.poll(at("2026-12-08 10:00"))
    [follow_up] = [m for m in reminders if m["X-Mailhelper-Action"] == "follow_up"]
    walk.command(follow_up, "send", at("2026-12-08 10:01"))  # so Sam sends the draft himself
    walk.poll(at("2026-12-08 10:01"))
    closing = walk.poll(at("2026-12-09 09:00"))  # the closing note; the favour to return
    [favour] = [m for m in closing if m["X-Mailhelper-Action"] == "return_favor"]
    walk.command(favour, "send", at("2026-12-09 10:00"))  # its draft, as a letter to Zoë
    walk.poll(at("2026-12-09 10:00"))
    walk.poll(at("2026-12-09 13:00"))

    sent = rig_assistant.sent()
    assert set(kinds(sent)) == {k.value for k in ActionKind}, sorted(kinds(sent))
    assert len(kinds(sent)) == len({str(m["Message-ID"]) for m in sent}), "nothing twice"
    by_kind = {str(m["X-Mailhelper-Action"]): m for m in sent}
    for kind in ("receipt", "follow_up", "closing_note"):
        [message] = [m for m in sent
                     if m["X-Mailhelper-Action"] == kind and SUBJECT in str(m["Subject"])]
        assert "Zoë Åström" in text_of(message) or "Zoë" in text_of(message), kind
        assert SUBJECT in html_of(message) or "Привет — café" in html_of(message), kind
    thanks = by_kind["thank_you"]
    assert thanks["Subject"] == "Re: Второй вопрос — thé"
    assert addresses(thanks, "To") == ["zoe@example.org"] and "Zoë" in text_of(thanks)
    assert "Åsa" in str(by_kind["offer_follow_up"]["Subject"])
    assert "Второй вопрос — thé" in str(by_kind["return_favor"]["Subject"])
    assert "zoe@example.org" in str(by_kind["error_notice"]["Subject"])
    assert by_kind["receipt"]["From"].addresses[0].display_name == "Ассистент Sam"
    for message in sent:
        for header in ("In-Reply-To", "References"):
            if message[header] is not None:
                assert str(message[header]).startswith("<"), (header, message[header])
        if message["X-Mailhelper-Action"] in ("nudge", "thank_you"):
            assert message["In-Reply-To"] is not None and message["References"] is not None
    assert any(lonely == m["In-Reply-To"] for m in sent if m["X-Mailhelper-Action"] == "receipt")
    assert JANE_EMAIL not in {a for m in sent for a in addresses(m, "To")}
    walk.check_sent_folder()


def test_a_digest_missed_while_nobody_polled_goes_out_late_not_never(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"schedules": {"digest": {"rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8"}}})
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"), subject="Intro to Acme?")
    assert kinds(walk.poll(at("2026-12-07 09:00"))) == ["receipt"]
    assert "digest" in kinds(walk.poll(at("2026-12-14 08:00")))
    # Nothing polls from Monday 14th 08:00 until Tuesday 22nd: the digest of Monday 21st
    # was planned when the one before went out, so it is found due, once.
    late = walk.poll(at("2026-12-22 09:00"))
    assert kinds(late).count("digest") == 1
    assert kinds(walk.poll(at("2026-12-22 09:05"))).count("digest") == 0
