"""Whether a search should sort its matches rather than read a sort index in order.

With ``LIMIT``, PostgreSQL reads an index in sort order and stops at the first page of
matches when it expects matches spread evenly along it. Matches of a name search bunch along
a name sort instead (the Smiths sit together near the end of the family names), so that read
passes most of the table first. Finding the matches through their trigram index and sorting
them costs about as many rows as there are matches, which a value of three letters or more
keeps bounded; shorter values match too much to sort, and the index read finds them early.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from fhir_server.search.query import Clause
from fhir_server.search.values import StringValue

MIN_LETTERS = 3
"""Letters and digits a value needs before its matches are sorted (a trigram needs three)."""


def sort_follows_matches(clauses: Sequence[Clause], sort_columns: Iterable[str],
                         following: Mapping[str, frozenset[str]]) -> bool:
    """True when a plain or ``:contains`` string clause of ``following`` names a column the
    search sorts by, and each of its values has ``MIN_LETTERS`` letters or digits."""
    sorted_by = set(sort_columns)
    for clause in clauses:
        columns = following.get(clause.name)
        if columns is None or not columns & sorted_by or clause.modifier not in (None, "contains") \
                or clause.chain is not None or clause.reverse is not None or not clause.values:
            continue
        if all(isinstance(value, StringValue)
               and sum(character.isalnum() for character in value.text) >= MIN_LETTERS
               for value in clause.values):
            return True
    return False
