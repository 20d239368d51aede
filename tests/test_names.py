"""The name to greet, read from display names and addresses as people write them."""

from __future__ import annotations

import pytest

from mailhelper.read.names import greeting, join_names, read_name

#: (display name, address, the name a sentence uses, the name "Hi …," takes)
NAMES = [
    ("José Núñez", "jose@example.org", "José Núñez", "José"),
    ("Okafor, Jane", "jane@example.org", "Jane Okafor", "Jane"),
    ("Dr. Priya Raman", "priya@uni.example", "Dr. Priya Raman", "Priya"),
    ("Dr. Raman", "raman@uni.example", "Dr. Raman", "Dr. Raman"),
    ("Dr Priya Raman", "priya@uni.example", "Dr Priya Raman", "Priya"),
    ("Prof. Dr. Hans Müller", "hm@uni.de", "Prof. Dr. Hans Müller", "Hans"),
    ("Prof Chen", "chen@uni.example", "Prof Chen", "Prof Chen"),
    ("Mr John Smith", "js@x.org", "Mr John Smith", "John"),
    ("Mrs. Smith", "ms@x.org", "Mrs. Smith", "Mrs. Smith"),
    ("Ms Anne-Marie Lefèvre", "am@x.fr", "Ms Anne-Marie Lefèvre", "Anne-Marie"),
    ("Mx. Sam Lee", "sam@x.org", "Mx. Sam Lee", "Sam"),
    ("Sir Ian McKellen", "ian@x.uk", "Sir Ian McKellen", "Ian"),
    ("Dame Judi Dench", "judi@x.uk", "Dame Judi Dench", "Judi"),
    ("Herr Müller", "m@x.de", "Herr Müller", "Herr Müller"),
    ("Frau Dr. Anna Schmidt", "as@x.de", "Frau Dr. Anna Schmidt", "Anna"),
    ("Mme Claire Dubois", "cd@x.fr", "Mme Claire Dubois", "Claire"),
    ("M. Dupont", "d@x.fr", "M. Dupont", "M. Dupont"),
    ("Sr. Juan Pérez", "jp@x.es", "Sr. Juan Pérez", "Juan"),
    ("Sra. García", "g@x.es", "Sra. García", "Sra. García"),
    ("Dra. Ana López", "al@x.es", "Dra. Ana López", "Ana"),
    ("JANE DOE", "jd@x.org", "Jane Doe", "Jane"),
    ("MARY-JANE O'NEIL", "mj@x.org", "Mary-Jane O'Neil", "Mary-Jane"),
    ("Okafor, Dr. Jane", "jane@x.org", "Dr. Jane Okafor", "Jane"),
    ("Doe, Jane, PhD", "jane@x.org", "Jane Doe", "Jane"),
    ("Jane Doe, PhD", "jane@x.org", "Jane Doe", "Jane"),
    ("John Smith Jr.", "js@x.org", "John Smith", "John"),
    ("D’Angelo, Maria", "md@x.it", "Maria D’Angelo", "Maria"),
    ("J. Robert Oppenheimer", "jro@x.org", "J. Robert Oppenheimer", "Robert"),
    ("J. Parker", "jp@x.org", "J. Parker", "J. Parker"),
    ("王小明", "wang@x.cn", "王小明", "王小明"),
    ("山田 太郎", "yamada@x.jp", "山田 太郎", "山田 太郎"),
    ("김민준", "kim@x.kr", "김민준", "김민준"),
    ("Иван Петров", "ivan@x.ru", "Иван Петров", "Иван"),
    ("Γιώργος Παπαδόπουλος", "g@x.gr", "Γιώργος Παπαδόπουλος", "Γιώργος"),
    ('"Jane Doe"', "jane@x.org", "Jane Doe", "Jane"),
    ("'Jane'", "jane@x.org", "Jane", "Jane"),
    ("Jane Doe 🎉", "jane@x.org", "Jane Doe", "Jane"),
    ("✨ Priya ✨", "priya@x.org", "Priya", "Priya"),
    ("Jane Doe (Acme)", "jane@acme.example", "Jane Doe", "Jane"),
    ("Dr.", "dr@x.org", "", ""),
    ("Acme Support", "help@acme.example", "", ""),
    ("The Acme Team", "team@acme.example", "", ""),
    ("jane@x.org", "jane@x.org", "", ""),
    ("", "jane.park@x.org", "Jane Park", "Jane"),
    ("", "jane_doe@x.org", "Jane Doe", "Jane"),
    ("", "mary-jane.watson+news@x.org", "Mary-Jane Watson", "Mary-Jane"),
    ("", "jparker@x.org", "", ""),
    ("", "j.park@x.org", "", ""),
    ("", "info@x.org", "", ""),
    ("", "noreply@x.org", "", ""),
    ("", "no-reply@x.org", "", ""),
    ("", "sales@x.org", "", ""),
    ("", "info.desk@x.org", "", ""),
    ("", "first.last123@x.org", "", ""),
]


@pytest.mark.parametrize(("display", "email", "full", "greet"), NAMES)
def test_the_name_to_greet(display: str, email: str, full: str, greet: str) -> None:
    name = read_name(display, email)
    assert (name.full, name.greeting) == (full, greet)


def test_the_table_is_broad() -> None:
    assert len(NAMES) >= 40


@pytest.mark.parametrize(("display", "email", "full", "greet"), NAMES)
def test_a_title_is_never_a_first_name(display: str, email: str, full: str, greet: str) -> None:
    given = read_name(display, email).given.lower().rstrip(".")
    assert given not in {"dr", "prof", "mr", "mrs", "ms", "mx", "sir", "dame", "herr", "frau",
                         "mme", "m", "sr", "sra", "dra"}


def test_lists_and_greetings_read_as_sentences() -> None:
    assert join_names(["José", "Jane", "Priya"]) == "José, Jane and Priya"
    assert join_names(["José", "Jane"]) == "José and Jane"
    assert greeting(["José", "Jane"]) == "Hi José and Jane,"
    assert greeting([""]) == "Hello,"
    assert greeting([]) == "Hello,"


def test_the_examples_in_the_docstrings_hold() -> None:
    import doctest

    import mailhelper.read.names

    result = doctest.testmod(mailhelper.read.names)
    assert result.attempted > 5 and result.failed == 0
