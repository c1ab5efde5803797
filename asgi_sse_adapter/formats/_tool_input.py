"""A tool call's JSON arguments checked as they stream, for a client that parses every prefix.

The Anthropic SDK parses a ``tool_use`` block's ``input_json_delta`` fragments joined so far on
each one (anthropic-sdk-python ``lib/streaming/_messages.py``: jiter ``from_json(buf,
partial_mode=True)``), and raises a plain ``ValueError`` ("Unable to parse tool parameter JSON
from model") at the first prefix that can no longer become JSON; ``input`` is an object
(formats.md §2.4). Anthropic's own streams keep to that. An OpenAI-family upstream's arguments
are whatever its model wrote, and open models served by vLLM or Ollama write raw newlines inside
strings and commas before a closing bracket.

``ToolInputCheck`` passes the arguments on as long as they can still become one JSON object,
with the repairs whose intent is plain: a raw control character inside a string goes as its
escape, a comma right before a closing bracket is dropped (a comma is held back until the next
token says which), and arguments sent as a JSON string holding the object's text (double-encoded,
quarkiverse/quarkus-langchain4j#2569) are held until the string ends, then sent as that object.
Anything else raises ``ArgumentsError`` naming the character, and the writer ends the stream
with the error tail instead of a stream the SDK fails on by itself.
"""

from __future__ import annotations

import json
import re

__all__ = ["ArgumentsError", "ToolInputCheck", "repaired"]


class ArgumentsError(ValueError):
    """The arguments can no longer become a JSON object."""


# A string's characters that need no look (most of any argument's bytes).
_PLAIN = re.compile(r'[^"\\\x00-\x1f\ud800-\udfff]+')
# A JSON string's body, up to its closing quote (or a backslash its escape has yet to follow).
_STRING_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.DOTALL)
# The SDK's parser (jiter) refuses more nested containers than this (the object included) and
# an integer of more digits (the standard library too).
MAX_DEPTH = 201
MAX_DIGITS = 4300
# Whitespace held after a held comma, at most: more is not sent (it means nothing).
_HELD_SPACE = 64
_SPACE = frozenset(" \t\n\r")
_HEX = frozenset("0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = frozenset('"\\/bfnrt')
_WORDS = ("true", "false", "null")
_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}

# Where the check is: what may come next. Grouped (the loop tests a group at a time): the
# structure, then a literal or number, then inside a string.
_ROOT = 0  # the object's opening brace
_FIRST_KEY = 1  # after "{": a key or "}"
_KEY = 2  # after a comma in an object: a key
_COLON = 3
_VALUE = 4  # after ":" or a comma in an array
_FIRST_ITEM = 5  # after "[": a value or "]"
_AFTER = 6  # after a value: a comma or the closing bracket
_COMMA = 7  # after a held comma: what follows decides whether it stays
_END = 8  # the object closed: whitespace only
_EMPTY_END = 9  # a double-encoded string closed, holding nothing: whitespace only, none sent
_LITERAL = 10  # in true, false or null
_NUMBER = 11
_STRING = 12
_ESCAPE = 13  # after a backslash in a string
_UNICODE = 14  # in a \\u escape's four hex digits
_PAIR_SLASH = 15  # after a high surrogate's escape: the backslash of its low one
_PAIR_U = 16  # and its "u"
_ENCODED = 17  # in a JSON string that holds the object's text (``_encoded``, never the loop)

# A number's grammar (RFC 8259 §6) as steps between its states, named by what was read last:
# "-" sign, "0" a leading zero, "1" integer digits, "." the point, "f" fraction digits, "e" the
# exponent mark, "s" its sign, "x" exponent digits. A number may end in "0", "1", "f" or "x".
_NUMBER_STEPS: dict[tuple[str, str], str] = {}
for _d in "0123456789":
    _NUMBER_STEPS["-", _d] = "0" if _d == "0" else "1"
    for _state, _next in (("1", "1"), (".", "f"), ("f", "f"), ("e", "x"), ("s", "x"), ("x", "x")):
        _NUMBER_STEPS[_state, _d] = _next
for _state in "01":
    _NUMBER_STEPS[_state, "."] = "."
for _state in "01f":
    _NUMBER_STEPS[_state, "e"] = _NUMBER_STEPS[_state, "E"] = "e"
_NUMBER_STEPS["e", "+"] = _NUMBER_STEPS["e", "-"] = "s"
_NUMBER_ENDS = frozenset("01fx")


def _escaped(char: str) -> str:
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


class ToolInputCheck:
    """One call's arguments, fragment by fragment: ``feed`` returns what to send on."""

    __slots__ = (
        "_close",
        "_digits",
        "_encoded_parts",
        "_escaping",
        "_held",
        "_key",
        "_low",
        "_seen",
        "_state",
        "_surrogate",
        "_token",
    )

    def __init__(self) -> None:
        self._state = _ROOT
        self._close: list[str] = []  # the closing brackets the open containers wait for
        self._token = ""  # a literal's letters, a number's state, or a \\u escape's digits
        self._key = False  # the open string is an object key
        self._low = False  # the \\u escape read must be a low surrogate
        self._held = ""  # a comma (and whitespace after it) waiting for the next token
        self._digits = 0  # of the integer being read
        self._surrogate = ""  # a high surrogate that ended the last fragment
        # Double-encoded arguments so far, and whether they end in a backslash.
        self._encoded_parts: list[str] = []
        self._escaping = False
        self._seen = 0  # characters of earlier fragments: errors name a position

    def feed(self, text: str) -> str:
        """The part of ``text`` to send now, repaired (maybe ``""``: a comma held back);
        ``ArgumentsError`` once the arguments can no longer become a JSON object."""
        state = self._state
        if state == _ENCODED:
            return self._encoded(text)
        if self._surrogate:
            text, self._surrogate = self._surrogate + text, ""
            self._seen -= 1
        if state == _STRING and _PLAIN.fullmatch(text) is not None:
            # A fragment inside a string, the usual case: nothing to look at.
            self._seen += len(text)
            return text
        close = self._close
        pieces: list[str] = []
        start = 0  # ``text[start:i]`` is checked and not yet in ``pieces``
        i, n = 0, len(text)
        while i < n:
            if state >= _STRING:  # inside a string
                if state == _STRING:
                    match = _PLAIN.match(text, i)
                    if match is not None:
                        i = match.end()
                        if i == n:
                            break
                    char = text[i]
                    if char == '"':
                        state = _COLON if self._key else _AFTER
                    elif char == "\\":
                        state = _ESCAPE
                    elif char < " ":  # a raw control character
                        pieces.append(text[start:i])
                        pieces.append(_escaped(char))
                        start = i + 1
                    elif "\ud800" <= char < "\udc00" and i + 1 == n:
                        # A high surrogate ending the fragment: a server that cuts text in
                        # UTF-16 units (JavaScript's) sends its low one next. Sent with it: the
                        # SDK cannot encode a lone surrogate to UTF-8.
                        pieces.append(text[start:i])
                        self._surrogate = char
                        start = n
                    elif "\ud800" <= char < "\udc00" and "\udc00" <= text[i + 1] <= "\udfff":
                        i += 1  # a pair: as the character it stands for
                    else:
                        raise self._error(i, char, "(a lone surrogate) in a string")
                else:
                    state = self._escape(i, text[i], state)
                i += 1
                continue
            char = text[i]
            if state >= _LITERAL:  # in a literal or a number
                if state == _LITERAL:
                    word = self._token + char
                    if any(w.startswith(word) for w in _WORDS):
                        self._token = word
                        i += 1
                        continue
                    if self._token not in _WORDS:
                        raise self._error(i, char, f"after {self._token!r}")
                else:
                    step = _NUMBER_STEPS.get((self._token, char))
                    if step is not None:
                        self._token = step
                        if step == "1":
                            self._digits += 1
                            if self._digits > MAX_DIGITS:
                                raise self._error(
                                    i, char, f"in an integer over {MAX_DIGITS} digits"
                                )
                        i += 1
                        continue
                    if self._token not in _NUMBER_ENDS:
                        raise self._error(i, char, "in a number")
                state = _AFTER  # and ``char`` is read there
            if char in _SPACE:
                i += 1
                if state in (_ROOT, _EMPTY_END):
                    # Not sent: the SDK fails on a whitespace-only prefix (jiter reads no
                    # value in it, partial or not).
                    start = i
                continue
            if state == _COMMA:
                # The held comma and the whitespace after it go on, or the comma is dropped
                # before a closing bracket.
                held = self._held + text[start:i]
                self._held = ""
                start = i
                if char == close[-1]:
                    pieces.append(held[1:])
                    state = _AFTER
                else:
                    pieces.append(held)
                    state = _KEY if close[-1] == "}" else _VALUE
            if state == _AFTER:
                if char == ",":
                    pieces.append(text[start:i])
                    self._held = ","
                    start = i + 1
                    state = _COMMA
                elif char == close[-1]:
                    close.pop()
                    state = _AFTER if close else _END
                else:
                    raise self._error(i, char, "after a value")
            elif state == _COLON and char == ":":
                state = _VALUE
            elif state <= _KEY and char == '"' and state != _ROOT:
                state, self._key = _STRING, True
            elif state == _VALUE or (state == _FIRST_ITEM and char != "]"):
                state = self._value(i, char)
            elif (state == _FIRST_KEY and char == "}") or (state == _FIRST_ITEM and char == "]"):
                close.pop()
                state = _AFTER if close else _END
            elif state == _ROOT and char == "{":
                close.append("}")
                state = _FIRST_KEY
            elif state == _ROOT and char == '"':
                # The object's text as a JSON string, which some servers send (a double-encoded
                # object): held whole, then sent as the object it holds.
                self._state = _ENCODED
                self._seen += i
                return self._encoded(text[i:])
            elif state == _ROOT:
                raise self._error(i, char, "where the object should open")
            elif state in (_END, _EMPTY_END):
                raise self._error(i, char, "after the object")
            else:
                raise self._error(i, char, "where a key or a colon should be")
            i += 1
        self._state = state
        self._seen += n
        if state == _COMMA:
            if len(self._held) < _HELD_SPACE:
                self._held += text[start : start + _HELD_SPACE]
        else:
            pieces.append(text[start:])
        return pieces[0] if len(pieces) == 1 else "".join(pieces)

    @property
    def complete(self) -> bool:
        """Whether what was sent is a whole object, or nothing (no arguments: ``{}``)."""
        return self._state in (_END, _EMPTY_END, _ROOT)

    def _encoded(self, text: str) -> str:
        """Double-encoded arguments (``text`` opens with their quote the first time): ``""``
        until their string closes, then the object's text it holds (checked: it must be an
        object's)."""
        parts = self._encoded_parts
        begin = 1 if not parts else int(self._escaping)  # past the quote or an escaped char
        body = _STRING_BODY.match(text, min(begin, len(text)))
        assert body is not None  # (it matches the empty string)
        end = body.end()
        if end == len(text) or text[end] != '"':  # not closed (maybe a backslash at the end)
            self._escaping = end < len(text) or (begin > len(text) and self._escaping)
            parts.append(text)
            self._seen += len(text)
            return ""
        held = "".join(parts) + text[: end + 1]
        parts.clear()
        after = text[end + 1 :]  # whitespace: sent after an object, as in ``_END``
        rest = after.lstrip(" \t\n\r")
        if rest:
            raise self._error(len(text) - len(rest), rest[0], "after the string")
        try:
            inner = json.loads(held, strict=False)
        except ValueError:
            raise ArgumentsError("arguments are a string that is no JSON string") from None
        check = ToolInputCheck()
        try:
            sent = check.feed(inner)
        except ArgumentsError as exc:
            where = str(exc).removeprefix("arguments are not a JSON object: ")
            raise ArgumentsError(
                f"arguments are a string holding no JSON object: {where}"
            ) from None
        if not check.complete:  # (the string is whole: so must the object in it be)
            raise ArgumentsError("arguments are a string holding an object that stops short")
        self._seen += len(text)
        self._state = _END if sent else _EMPTY_END
        return sent + after if sent else ""

    def _escape(self, i: int, char: str, state: int) -> int:
        """The state after ``char`` in an escape (``state``: where in it)."""
        if state == _ESCAPE:
            if char == "u":
                self._token = ""
                return _UNICODE
            if char in _SIMPLE_ESCAPES:
                return _STRING
            raise self._error(i, char, "in an escape")
        if state == _UNICODE:
            if char not in _HEX:
                raise self._error(i, char, "in a \\u escape")
            self._token += char
            return self._escaped_unit(i, char) if len(self._token) == 4 else _UNICODE
        # After a high surrogate's escape: the SDK's parser refuses a lone surrogate (the
        # standard library reads it).
        if char != ("\\" if state == _PAIR_SLASH else "u"):
            raise self._error(i, char, "after a lone surrogate escape")
        if state == _PAIR_SLASH:
            return _PAIR_U
        self._token, self._low = "", True
        return _UNICODE

    def _escaped_unit(self, i: int, char: str) -> int:
        """The state after a \\u escape's last digit: a high surrogate wants its low one."""
        unit = int(self._token, 16)
        low = 0xDC00 <= unit <= 0xDFFF
        if low is not self._low:
            raise self._error(i, char, "ending a lone surrogate escape")
        self._low = False
        return _PAIR_SLASH if 0xD800 <= unit <= 0xDBFF else _STRING

    def _value(self, i: int, char: str) -> int:
        """The state a value opened by ``char`` starts in."""
        if char == '"':
            self._key = False
            return _STRING
        if char in "{[":
            if len(self._close) == MAX_DEPTH:
                raise self._error(i, char, f"nested deeper than {MAX_DEPTH}")
            self._close.append("}" if char == "{" else "]")
            return _FIRST_KEY if char == "{" else _FIRST_ITEM
        if char in "tfn":
            self._token = char
            return _LITERAL
        step = _NUMBER_STEPS.get(("-", char)) if char != "-" else "-"
        if step is None:
            raise self._error(i, char, "where a value should be")
        self._token = step
        self._digits = step != "-"
        return _NUMBER

    def _error(self, i: int, char: str, where: str) -> ArgumentsError:
        return ArgumentsError(
            f"arguments are not a JSON object: {char!r} {where} at character {self._seen + i + 1}"
        )


def repaired(text: str) -> str:
    """``text``, whole arguments, as ``ToolInputCheck`` passes them on (``ArgumentsError`` as it
    raises): what a client of the stream parsed, for the response that stream stands for."""
    return ToolInputCheck().feed(text)
