"""``dump_strings`` and ``load_strings`` (``asgi_sse_adapter._json``): many JSON strings encoded
or decoded in one call, exactly as one at a time; and ``frame_strings``, which writers write a
run's events with.

Their contracts, under both JSON backends (orjson, and the standard library's fallback):

* ``dump_strings(texts) == [dumps(t)[1:-1] for t in texts]``; where a text cannot be encoded
  alone (orjson and a lone surrogate), the same error as encoding it alone;
* ``load_strings(bodies)`` is either ``None`` or ``[loads('"' + b + '"') for b in bodies]``
  (each body read alone as the inside of one string literal); ``None`` whenever some body does
  not read alone. It may be conservative (``None`` though every body reads) only where a body
  ends with a backslash; everywhere else it must decode.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_sse_adapter import _json as json_backend
from asgi_sse_adapter._json import dump_strings, load_strings
from asgi_sse_adapter.formats.base import frame_strings

BACKENDS = ("orjson", "stdlib")

PROPERTY = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The backend ``_json``'s functions use: orjson as installed, or the stdlib's functions
    (the package without orjson) patched into ``_json``, which the helpers look up per call."""
    if request.param == "orjson":
        orjson = pytest.importorskip("orjson")
        assert json_backend.BACKEND == "orjson"
        assert json_backend.dumps is orjson.dumps
        assert json_backend.loads is orjson.loads
        if hasattr(json_backend, "_dumps_list"):  # the list encoder, where the helper has one
            assert json_backend._dumps_list is orjson.dumps
    else:
        installed = (json_backend.loads, json_backend.dumps)
        stdlib_loads: Callable[[str | bytes], Any] = json.loads
        monkeypatch.setattr(json_backend, "loads", stdlib_loads)
        monkeypatch.setattr(json_backend, "dumps", json_backend._dumps_stdlib)
        # A list encoder of the helpers' own, if ``_json`` has one, has its stdlib counterpart.
        stdlib_list = getattr(json_backend, "_dumps_list_stdlib", None)
        if stdlib_list is not None:
            monkeypatch.setattr(json_backend, "_dumps_list", stdlib_list)
        if json_backend.BACKEND == "orjson":
            left = [name for name, value in vars(json_backend).items() if value in installed]
            assert not left, f"_json still reaches orjson through {left}"
    return str(request.param)


# -- references: one string at a time ------------------------------------------------------------


def dump_one_by_one(texts: Sequence[str]) -> list[bytes] | Exception:
    """Each text's encoding without its quotes, by the backend's ``dumps``; or what it raised."""
    try:
        return [json_backend.dumps(text)[1:-1] for text in texts]
    except Exception as exc:
        return exc


def load_one_by_one(bodies: Sequence[str]) -> list[str] | None:
    """Each body read alone as the inside of a string literal by the backend's ``loads``;
    ``None`` if any fails (or, impossibly for a quoted literal, reads into no string)."""
    texts = []
    for body in bodies:
        try:
            text = json_backend.loads('"' + body + '"')
        except ValueError:  # json.JSONDecodeError, orjson.JSONDecodeError, UnicodeDecodeError
            return None
        if not isinstance(text, str):
            return None
        texts.append(text)
    return texts


def check_dump(texts: list[str]) -> None:
    """``dump_strings`` gives (or raises) what encoding each text alone gives (or raises)."""
    want = dump_one_by_one(texts)
    if isinstance(want, Exception):
        with pytest.raises(type(want)):
            dump_strings(texts)
        return
    got = dump_strings(texts)
    assert got == want
    assert all(type(piece) is bytes for piece in got)


def check_load(bodies: list[str]) -> list[str] | None:
    """``load_strings`` is the per-body reference, or ``None``: necessarily where the reference
    fails; allowed (conservative) only where a body ends with a backslash."""
    copy = list(bodies)
    got = load_strings(bodies)
    assert bodies == copy, "load_strings changed its argument"
    want = load_one_by_one(bodies)
    if want is None:
        assert got is None, f"{bodies!r}: a body does not read alone, yet it gave {got!r}"
    elif any(body.endswith("\\") for body in bodies):
        assert got is None or got == want, f"{bodies!r}: {got!r}, each alone: {want!r}"
    else:
        assert got == want, f"{bodies!r}: {got!r}, each alone: {want!r}"
    if got is not None:
        assert all(type(text) is str for text in got)
    return got


# -- dump_strings ---------------------------------------------------------------------------------

CONTROL = "".join(map(chr, range(0x20))) + "\x7f"
DUMP_CASES: list[list[str]] = [
    [],
    [""],
    ["", ""],
    ["", "a", ""],
    ["a"],
    ['"'],
    ['"', '"'],
    ["a,b", ",", ",,"],
    ['a","b', '","', '","', 'x"'],
    ['\\","', '\\",', ',"\\'],
    ["\\", "\\", "\\\\"],
    ["ends with a backslash\\", "next"],
    ['"', "\\", '\\"', '"\\'],
    [CONTROL],
    list(CONTROL),
    ["\u2028", "\u2029", "\u00a0", "\u2028\u2029\u00a0"],
    ["😀", "a😀b", "日本語", "漢字,かな"],
    ["/", "</script>", "\ufeff", "\ufffd", "\U0010ffff"],
    ['{"type":"text_delta","text":"x"}}', '"}}', "data: [DONE]\n\n"],
    ["[", "]", "[]", '["', '"]', '","'],
    ["a" * 10_000, "", "b" * 3],
    # NUL, its escape written out, and their neighbours (an encoder's cut mark, if it uses one).
    ["\x00"],
    ["a\x00b", "\x00", ""],
    ["\\u0000"],
    ["a\\u0000b", "c"],
    ["\\", "u0000"],
    ["\\\\u0000", "\\\x00", "\x00\\"],
    ["\\u000", "0"],
]


@pytest.mark.parametrize(
    "texts",
    [
        ['",', "x"],
        ['",', ""],
        ['a",', "b", "c"],
        ["x", '",', '",'],
        ['\\",', "x"],
        ['\\\\",', "x"],
        ['"', ",", "x"],
    ],
)
def test_dump_strings_text_ending_with_quote_comma(backend: str, texts: list[str]) -> None:
    """A text ending with a quote and a comma encodes as ``\\",``; a list holding it, followed
    by another text, as ``["\\",","x"]``, where ``","`` occurs first one character early (the
    escaped quote, the comma, the item's closing quote): a list's encoding cut at ``","`` would
    give ``\\`` and ``,"x``. The pieces must be the texts' own encodings (``\\",`` and ``x``)."""
    check_dump(texts)


@pytest.mark.parametrize("texts", DUMP_CASES)
def test_dump_strings_crafted(backend: str, texts: list[str]) -> None:
    """Quotes, ``","`` and backslashes inside texts, every control character, line and
    paragraph separators, non-breaking space, non-BMP and CJK text, empty texts, lists of
    none and one: each text's own encoding."""
    check_dump(texts)


def test_dump_strings_pieces_decode_back(backend: str) -> None:
    """The reference itself is right: each piece is the inside of a string literal reading back
    into its text (so the pieces are split at the right places)."""
    texts = [t for case in DUMP_CASES for t in case]
    pieces = dump_strings(texts)
    assert len(pieces) == len(texts)
    assert [json.loads(b'"' + piece + b'"') for piece in pieces] == texts


def test_dump_strings_writes_non_ascii_as_itself(backend: str) -> None:
    """Compact UTF-8 with non-ASCII characters as themselves, escapes only where JSON needs."""
    assert dump_strings(["é", "😀", 'a"b', "\\", "\n", "\u2028", ","]) == [
        "é".encode(),
        "😀".encode(),
        b'a\\"b',
        b"\\\\",
        b"\\n",
        "\u2028".encode(),
        b",",
    ]


def test_dump_strings_lone_surrogate(backend: str) -> None:
    """A lone surrogate: orjson refuses it as ``orjson.dumps`` alone does (a ``TypeError``,
    ``orjson.JSONEncodeError``); the stdlib writes that text, and only that one, with ASCII
    escapes, as ``dumps`` alone writes it."""
    texts = ["é", "\ud800", "a\udfffb", "😀", "\ud83d\ude00", "\ud83d", "\ude00"]
    if backend == "orjson":
        import orjson

        for bad in ("\ud800", "a\udfffb", "\ud83d", "\ude00", "\ud83d\ude00"):
            with pytest.raises(TypeError) as alone:
                orjson.dumps(bad)
            with pytest.raises(TypeError) as together:
                dump_strings(["ok", bad, "é"])
            assert type(together.value) is type(alone.value) is orjson.JSONEncodeError
        with pytest.raises(orjson.JSONEncodeError):
            dump_strings(texts)
        return
    assert dump_strings(texts) == [
        "é".encode(),
        b"\\ud800",
        b"a\\udfffb",
        "😀".encode(),
        b"\\ud83d\\ude00",  # in a str, two code points: each a lone surrogate
        b"\\ud83d",
        b"\\ude00",
    ]
    assert dump_strings(texts) == dump_one_by_one(texts)
    assert dump_strings(["é", "x"]) == ["é".encode(), b"x"]  # no surrogate: raw again


def any_texts() -> st.SearchStrategy[list[str]]:
    """Lists of any text, rich in the characters JSON escapes; with lone surrogates (category
    Cs) under both backends (orjson must then fail as it does alone)."""
    chars = st.one_of(
        st.characters(exclude_categories=()),  # surrogates included
        st.sampled_from(['"', "\\", ",", "\x00", "\x1f", "\x7f", "\u2028", "😀", "é", "\ud800"]),
    )
    fragments = st.one_of(
        chars, st.sampled_from(['","', '\\","', '\\"', '"\\', "\\\\", "\\u0000", "u0000"])
    )
    return st.lists(st.lists(fragments, max_size=10).map("".join), max_size=8)


@PROPERTY
@given(texts=any_texts())
def test_dump_strings_property(backend: str, texts: list[str]) -> None:
    """Hypothesis: any list of text encodes as one text at a time does (or fails as it does)."""
    check_dump(texts)


@PROPERTY
@given(texts=st.lists(st.text(), max_size=8))
def test_dump_strings_plain_text(backend: str, texts: list[str]) -> None:
    """Hypothesis, ``st.text()`` as it comes (no surrogates): the same."""
    check_dump(texts)


# ``frame_strings`` writes a run's events with ``dump_strings``, or, where no text holds anything
# JSON escapes, with the texts as they are: both must be the events written one by one.
FRAME_HEAD = b'data: {"choices":[{"delta":{"content":'
FRAME_TAIL = b"}}]}\n\n"


def check_frame(texts: list[str]) -> None:
    """``frame_strings`` gives (or raises) what framing each text alone gives (or raises)."""
    try:
        want = b"".join(FRAME_HEAD + json_backend.dumps(t) + FRAME_TAIL for t in texts)
    except Exception as exc:
        with pytest.raises(type(exc)):
            frame_strings(FRAME_HEAD, texts, FRAME_TAIL)
        return
    if not texts:
        return  # writers never write an empty run
    assert frame_strings(FRAME_HEAD, texts, FRAME_TAIL) == want


@PROPERTY
@given(texts=any_texts())
def test_frame_strings_property(backend: str, texts: list[str]) -> None:
    """Hypothesis: a run's events are the events of its texts one by one (or fail alike)."""
    check_frame(texts)


@PROPERTY
@given(texts=st.lists(st.text(st.characters(exclude_categories=["Cs"])), min_size=1, max_size=8))
def test_frame_strings_plain_text(backend: str, texts: list[str]) -> None:
    """Hypothesis, any text without surrogates: the same; most such runs take the as-they-are
    path."""
    check_frame(texts)


@pytest.mark.parametrize(
    "texts",
    [["a", "b c", "ünï 😀"], ["\x7f", "~"], ["\u2028"], ["a\x00b"], ['"'], ["\\"], ["\x85"]],
)
def test_frame_strings_crafted(backend: str, texts: list[str]) -> None:
    """Texts at the edge of what JSON escapes (DEL and NEL are written as themselves; NUL, a
    quote, a backslash are escaped; U+2028 is not printable, so it takes ``dump_strings``)."""
    check_frame(texts)


# -- load_strings ---------------------------------------------------------------------------------

# What bodies are made of: JSON's specials, escapes whole and broken, raw characters JSON
# refuses (controls) or accepts (U+2028, DEL, NBSP), and pieces of the joined array's syntax.
BODY_ALPHABET = '"\\,[]{}:au0 \n\t\x00\x1f\x7f/bfnrtU\u2028\u00a0é😀'
BODY_FRAGMENTS = (
    "\\u00e9",
    "\\u0022",
    "\\u005c",
    "\\u005C",
    "\\ud83d",
    "\\ude00",
    "\\ud800",
    "\\udfff",
    "\\u12",
    "\\uZZZZ",
    "\\U00e9",
    '\\"',
    "\\\\",
    '","',
    '\\","',
    '["',
    '"]',
    ',"',
    '",',
    '",["',
    '"],"',
    "\ud800",  # a raw lone surrogate
)
bodies_strategy = st.lists(
    st.lists(st.sampled_from(BODY_ALPHABET) | st.sampled_from(BODY_FRAGMENTS), max_size=10).map(
        "".join
    ),
    max_size=6,
)


@PROPERTY
@given(bodies=bodies_strategy)
def test_load_strings_sound(backend: str, bodies: list[str]) -> None:
    """Hypothesis, adversarial bodies: when any body fails alone, ``None``; a list, only the
    bodies read one at a time; ``None`` though all read, only for a trailing backslash."""
    check_load(bodies)


@st.composite
def resplit_arrays(draw: st.DrawFn) -> list[str]:
    """Bodies that ``load_strings`` joins into a valid JSON array: the inside of an array's
    encoding (strings, and lists of strings) cut at some of the places reading ``","``. Where the
    cuts are not the items' boundaries (a ``","`` inside an item, or between a nested list's
    strings), the bodies do not each read alone, though together they decode."""
    pieces = st.sampled_from(['"', "\\", ",", "[", "]", "a", '",', '\\",'])
    text = st.lists(pieces, max_size=4).map("".join)
    items = draw(st.lists(st.one_of(text, text, text, st.lists(text, max_size=3)), max_size=5))
    ascii_only = draw(st.booleans())
    inner = json.dumps(["a", *items, "z"], ensure_ascii=ascii_only, separators=(",", ":"))[2:-2]
    marks = [m.start() for m in re.finditer('(?=",")', inner)]
    cuts = [mark for mark in marks if draw(st.booleans())]
    bodies: list[str] = []
    last = 0
    for cut in cuts:
        if cut >= last:  # (marks may overlap: '",","')
            bodies.append(inner[last:cut])
            last = cut + 3
    bodies.append(inner[last:])
    assert '","'.join(bodies) == inner
    return bodies


@PROPERTY
@given(bodies=resplit_arrays())
def test_load_strings_sound_resplit(backend: str, bodies: list[str]) -> None:
    """Hypothesis, bodies cut from a valid array at places that may not be its items'
    boundaries (items merged through a trailing backslash or split at a quoted ``","``, nested
    lists): a list only where each body reads alone into it."""
    check_load(bodies)


@PROPERTY
@given(bodies=st.lists(st.text(st.characters(exclude_categories=())), max_size=6))
def test_load_strings_sound_any_text(backend: str, bodies: list[str]) -> None:
    """Hypothesis, bodies of any characters (surrogates included): the same."""
    check_load(bodies)


@PROPERTY
@given(data=st.data())
def test_load_strings_complete(backend: str, data: st.DataObject) -> None:
    """Hypothesis: the inside of a string literal as encoders write it (``json.dumps``, ASCII
    escapes or not), for text that does not end with a backslash, always decodes, together, into
    the texts. Lone surrogates only under the stdlib (orjson reads no lone surrogate, and the
    reference then fails)."""
    # (``st.characters()`` includes surrogates; utf-8 has none.)
    chars = (
        st.characters(exclude_categories=())
        if backend == "stdlib"
        else st.characters(codec="utf-8")
    )
    special = st.sampled_from(['"', "\\", ",", "\x00", "\n", "\u2028", "😀", '","', '\\"'])
    text = st.lists(chars | special, max_size=10).map("".join)
    texts = data.draw(st.lists(text.filter(lambda t: not t.endswith("\\")), max_size=8))
    ascii_only = data.draw(st.lists(st.booleans(), min_size=len(texts), max_size=len(texts)))
    bodies = [json.dumps(t, ensure_ascii=a)[1:-1] for t, a in zip(texts, ascii_only, strict=True)]
    assert load_strings(bodies) == texts
    check_load(bodies)


@PROPERTY
@given(data=st.data())
def test_round_trip(backend: str, data: st.DataObject) -> None:
    """Hypothesis: ``dump_strings`` then ``load_strings`` gives the texts back (orjson: no
    surrogates; a text ending with a backslash may make the loading give ``None``)."""
    chars = (
        st.characters(exclude_categories=())
        if backend == "stdlib"
        else st.characters(codec="utf-8")
    )
    texts = data.draw(st.lists(st.text(chars | st.sampled_from('"\\,')), max_size=8))
    got = load_strings([piece.decode() for piece in dump_strings(texts)])
    if any(t.endswith("\\") for t in texts):
        assert got is None or got == texts
    else:
        assert got == texts


LOAD_CASES: list[tuple[list[str], list[str] | None]] = [
    # (bodies, what each reads into alone; None: some body fails alone)
    ([], []),
    ([""], [""]),
    (["", ""], ["", ""]),
    (["a", "", "b"], ["a", "", "b"]),
    (["plain", "text 123"], ["plain", "text 123"]),
    # Items merged or split by their quotes.
    (['a","b', "c"], None),
    (["a", 'b","c'], None),
    (['","'], None),
    (['"'], None),
    (['"', '"'], None),
    (["a\\", '"b'], None),
    (["a\\", ',"'], None),  # joined: ["a\",",""], two strings
    (["a\\", '",'], None),
    (["\\", "x"], None),
    (['x",["', "y", '"],"z'], None),  # joined: ["x",["","y",""],"z"], three items
    (['x",1,"', "y"], None),
    (['a"]', "b"], None),
    (['"]+["'], None),
    (["\\\\", '"', "\\"], None),
    # Escapes.
    (['a\\"b'], ['a"b']),
    (['\\"'], ['"']),
    (['\\"', '\\"'], ['"', '"']),
    (['\\\\\\"'], ['\\"']),  # \\ then \"
    (['\\\\"'], None),  # \\ then a bare quote
    (["\\/", "\\b\\f\\n\\r\\t"], ["/", "\b\f\n\r\t"]),
    (["\\u00e9", "\\u00E9"], ["é", "é"]),
    (["\\u0022", "\\u005c", "\\u005C"], ['"', "\\", "\\"]),
    (["\\u005c", '"'], None),  # a backslash by its escape escapes nothing
    (["\\u12"], None),
    (["\\u12", "34"], None),  # no escape across items
    (["\\uZZZZ"], None),
    (["\\q"], None),
    (["\\U00e9"], None),
    (["\\ud83d\\ude00"], ["😀"]),
    # Raw characters: controls refused, others taken as they are.
    (["a\tb"], None),
    (["\x01"], None),
    (["\x00"], None),
    (["\n"], None),
    (["\x1f", "a"], None),
    (["ok", "\\n", "a\tb"], None),
    (["\x7f"], ["\x7f"]),
    (["\u2028", "\u2029", "\u00a0"], ["\u2028", "\u2029", "\u00a0"]),
    (["日本語", "😀", "é\\n"], ["日本語", "😀", "é\n"]),
    ([" ", "  a  "], [" ", "  a  "]),
    (["[", "]", "{", "}", ",", ":"], ["[", "]", "{", "}", ",", ":"]),
    (["]", "["], ["]", "["]),
]


@pytest.mark.parametrize(("bodies", "want"), LOAD_CASES)
def test_load_strings_crafted(backend: str, bodies: list[str], want: list[str] | None) -> None:
    """Attempts to merge or split items through quotes and backslashes, escapes whole and
    broken, raw characters: each gives what every body read alone gives."""
    assert load_one_by_one(bodies) == want, "the expectation is the reference's"
    assert load_strings(bodies) == want
    check_load(bodies)


@pytest.mark.parametrize(
    ("bodies", "alone"),
    [
        (["\\\\"], ["\\"]),
        (["a\\\\"], ["a\\"]),
        (["x", "\\\\", "y"], ["x", "\\", "y"]),
        (["\\\\\\\\"], ["\\\\"]),
        (['\\"\\\\'], ['"\\']),
    ],
)
def test_load_strings_trailing_backslash(backend: str, bodies: list[str], alone: list[str]) -> None:
    """A body ending with an escaped backslash reads alone, but may give ``None``: the one place
    the function is allowed to be conservative. Any list it gives is the reference."""
    assert load_one_by_one(bodies) == alone
    got = load_strings(bodies)
    assert got is None or got == alone


@pytest.mark.parametrize(
    ("bodies", "stdlib"),
    [
        (["\\ud800"], ["\ud800"]),
        (["\\udfff", "a"], ["\udfff", "a"]),
        (["a\\ud83d"], ["a\ud83d"]),
        (["\\ud83d", "\\ude00"], ["\ud83d", "\ude00"]),  # never paired across two items
        (["\\ud83d\\u0041"], ["\ud83dA"]),
        (["\ud800"], ["\ud800"]),  # a raw lone surrogate
        (["ok", "\\ud83d\\ude00", "\\ud800"], ["ok", "😀", "\ud800"]),
    ],
)
def test_load_strings_surrogates(backend: str, bodies: list[str], stdlib: list[str]) -> None:
    """Lone surrogates: the stdlib reads them (each body alone, two items never paired); orjson
    reads no lone surrogate, so any body holding one gives ``None``."""
    want = stdlib if backend == "stdlib" else None
    assert load_one_by_one(bodies) == want
    assert load_strings(bodies) == want


def test_load_strings_returns_the_texts_of_printable_bodies(backend: str) -> None:
    """Bodies without quote, backslash or unprintable character are their own texts (the fast
    path), including non-ASCII and the characters of the joined array's syntax."""
    bodies = ["a", "é😀", "[", ",", "]", "{}", " x ", "日本"]
    assert load_strings(bodies) == bodies
