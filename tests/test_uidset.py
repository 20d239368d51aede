"""UID sets for the commands a settling sends (mailhelper/mail/uidset.py): every UID named
once, runs as ranges, no set longer than the bound."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailhelper.mail.uidset import MAX_SET_OCTETS, uid_sets


def _named(sets: list[str]) -> list[int]:
    """The UIDs the sets name, in order (what a server reads from them)."""
    named: list[int] = []
    for uid_set in sets:
        for part in uid_set.split(","):
            first, _, last = part.partition(":")
            named.extend(range(int(first), int(last or first) + 1))
    return named


def test_a_run_of_uids_is_one_range_whatever_its_length() -> None:
    assert uid_sets(range(201, 20_001)) == ["201:20000"]
    assert uid_sets([7]) == ["7"]
    assert uid_sets([]) == []


def test_gaps_split_the_runs_and_the_order_and_repeats_do_not_matter() -> None:
    assert uid_sets([12, 1, 2, 3, 10, 11, 5, 2]) == ["1:3,5,10:12"]


def test_a_long_list_of_lone_uids_is_cut_into_sets_within_the_bound() -> None:
    lone = list(range(100_000, 400_000, 2))  # 150,000 UIDs, none next to another
    sets = uid_sets(lone)
    assert len(sets) > 1 and all(len(s) <= MAX_SET_OCTETS for s in sets)
    assert _named(sets) == lone
    # As a comma list they would have made one line of over a megabyte.
    assert len(",".join(map(str, lone))) > 1_000_000


@given(st.lists(st.integers(min_value=1, max_value=2**32 - 1), max_size=300),
       st.integers(min_value=1, max_value=200))
def test_every_uid_is_named_once_in_order_and_each_set_keeps_the_bound(
    uids: list[int], limit: int,
) -> None:
    sets = uid_sets(uids, limit)
    assert _named(sets) == sorted(set(uids))
    for uid_set in sets:
        # Only a set of one range or number may pass the bound: it cannot be cut.
        assert len(uid_set) <= limit or "," not in uid_set
