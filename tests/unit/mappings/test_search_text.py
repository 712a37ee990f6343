"""String-search normalisation: the ASCII fast path of ``normalise`` gives exactly what the
character-by-character definition gives."""

from __future__ import annotations

import string

from hypothesis import example, given
from hypothesis import strategies as st

from mappings.search_text import _APOSTROPHE, fold, needle, normalise


def normalise_by_definition(text: str) -> str:
    """The definition: apostrophes dropped, every other non-alphanumeric a space, runs of
    spaces one space (the code before the fast path)."""
    folded = _APOSTROPHE.sub("", fold(text))
    spaced = "".join(char if char.isalnum() else " " for char in folded)
    return " ".join(spaced.split())


@given(st.text(alphabet=st.characters(max_codepoint=127)))
@example("O'Brien")
@example("a`b|c  d\x00e\x1c")
@example("Smith, Anna")
def test_ascii_text_is_normalised_as_defined(text: str) -> None:
    assert normalise(text) == normalise_by_definition(text)


@given(st.text(alphabet=st.sampled_from(string.printable + "éñüßİı’ʼ´ﬁ＇-·")))
@example("García-López")
@example("D\u2019Angelo")
def test_any_text_is_normalised_as_defined(text: str) -> None:
    assert normalise(text) == normalise_by_definition(text)


def test_names_normalise_to_their_search_words() -> None:
    assert normalise("O'Brien") == "obrien"
    assert normalise("Mary-Jane  O'Neil Jr.") == "mary jane oneil jr"
    assert needle("García-López") == "garcia |lopez"
    assert normalise("--") == ""
