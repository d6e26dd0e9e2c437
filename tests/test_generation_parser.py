"""The tolerant reply parser: usual deviations are read, garbage gives [] (never an exception)."""

import pytest

from clinassay.generation.parser import parse_mentions


@pytest.mark.parametrize(
    "reply, expected",
    [
        ('{"mentions": ["ITU", "infección urinaria"]}', ["ITU", "infección urinaria"]),
        ('["ITU", "infección urinaria"]', ["ITU", "infección urinaria"]),
        ('```json\n{"mentions": ["ITU"]}\n```\nHope this helps!', ["ITU"]),
        ('Sure! Here they are: {"mentions": ["a UTI", "cystitis?"]} Let me know.', ["a UTI", "cystitis?"]),
        ('{"mentions": [{"mention": "UTI"}, {"text": "urine infection"}]}', ["UTI", "urine infection"]),
        ("1. UTI\n2. urinary infection\n3) bladder infection", ["UTI", "urinary infection", "bladder infection"]),
        ("- UTI\n- UTI\n-  uti ", ["UTI"]),
        ('{"mentions": ["ok", "", "   ", "12.5", "ok"]}', ["ok"]),
        ('{"mentions": ["x"]}{"mentions": ["y"]}', ["x"]),
    ],
)
def test_usual_deviations_are_read(reply, expected):
    assert parse_mentions(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [None, "", "   ", "I cannot help with that.", "{not json", '{"answer": 42}', "[1, 2, 3]",
     '{"mentions": []}', '{"mentions": "UTI"}', "```\n```", "null", "\x00\x01garbage"],
)
def test_garbage_gives_nothing(reply):
    assert parse_mentions(reply) == []


def test_completion_prefill_is_joined_and_cut_lists_are_kept():
    assert parse_mentions('ITU", "cistitis"]\n\nCode: X', prefill='["') == ["ITU", "cistitis"]
    # stopped mid-list at max_tokens: the complete strings are kept, the cut one dropped
    assert parse_mentions('ITU", "cistitis", "infecci', prefill='["') == ["ITU", "cistitis"]


def test_very_long_items_are_dropped():
    assert parse_mentions('["' + "a" * 400 + '", "short"]') == ["short"]
