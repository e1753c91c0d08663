"""A small atproto lexicon validator: string formats, lexicon documents and record data."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import regex

__all__ = [
    "BUNDLED_LEXICONS",
    "FORMAT_CHECKS",
    "LexiconDocumentError",
    "LexiconRegistry",
    "LexiconValidationError",
    "bundled_registry",
    "check_format",
    "is_valid_at_identifier",
    "is_valid_at_uri",
    "is_valid_cid",
    "is_valid_datetime",
    "is_valid_did",
    "is_valid_handle",
    "is_valid_language",
    "is_valid_nsid",
    "is_valid_record_key",
    "is_valid_tid",
    "is_valid_uri",
]

BUNDLED_LEXICONS = Path(__file__).parent / "lexicons"
"""Directory of the lexicon JSON files shipped with this package."""


class LexiconValidationError(ValueError):
    """A value does not match its lexicon.

    Attributes:
        path: Where in the value, e.g. ``record/facets/0/index/byteStart``.
        message: What is wrong there.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class LexiconDocumentError(ValueError):
    """A lexicon document is malformed, or clashes with one already loaded."""


# --------------------------------------------------------------------------------------------
# String formats (https://atproto.com/specs/lexicon#string-formats), checked against the
# bluesky-social/atproto-interop-tests syntax vectors.

_DID_RE = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$")
_HANDLE_RE = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)
_NSID_RE = re.compile(
    r"^[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+"
    r"\.[a-zA-Z][a-zA-Z0-9]{0,62}$"
)
_TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_RECORD_KEY_RE = re.compile(r"^[a-zA-Z0-9_~.:-]{1,512}$")
_CID_RE = re.compile(r"^[a-zA-Z0-9+=]{8,256}$")
_CIDV0_RE = re.compile(r"^Qm[1-9A-HJ-NP-Za-km-z]{44}$")
# Whitespace as JavaScript's \s, which the reference validator and Bluesky's link detection use.
_JS_WHITESPACE = "\t\n\x0b\x0c\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_URI_RE = regex.compile(rf"^[a-zA-Z][a-zA-Z0-9+.-]*:[^{_JS_WHITESPACE}]+$")
_AT_URI_ASCII_RE = re.compile(r"^[a-zA-Z0-9._~:@!$&')(*+,;=%/-]*$")
_AT_URI_FRAGMENT_RE = re.compile(r"^/[a-zA-Z0-9._~:@!$&')(*+,;=%\[\]/-]*$")
_DATETIME_RE = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,20})?"
    r"(Z|([+-])([0-9]{2}):([0-9]{2}))$"
)
_LANGUAGE_RE = re.compile(
    r"""^
    [a-z]{2,3}(?:-[A-Za-z]{3}){0,3}                       # primary language, extlangs
    (?:-[A-Za-z]{4})?                                     # script
    (?:-(?:[A-Za-z]{2}|[0-9]{3}))?                        # region
    (?P<variants>(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*)
    (?P<extensions>(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*)
    (?:-[xX](?:-[A-Za-z0-9]{1,8})+)?                      # private use
    $""",
    re.VERBOSE,
)
_PRIVATE_LANGUAGE_RE = re.compile(r"^[xX](?:-[A-Za-z0-9]{1,8})+$")
_GRANDFATHERED_LANGUAGES = frozenset(
    tag.lower()
    for tag in (
        "en-GB-oed i-ami i-bnn i-default i-enochian i-hak i-klingon i-lux i-mingo i-navajo i-pwn "
        "i-tao i-tay i-tsu sgn-BE-FR sgn-BE-NL sgn-CH-DE art-lojban cel-gaulish no-bok no-nyn "
        "zh-guoyu zh-hakka zh-min zh-min-nan zh-xiang"
    ).split()
)


def is_valid_did(value: str) -> bool:
    """DID syntax: ``did:<lower-case method>:<id>``, at most 2048 characters."""
    return len(value) <= 2048 and bool(_DID_RE.match(value))


def is_valid_handle(value: str) -> bool:
    """Handle syntax: a DNS name of two or more labels whose TLD starts with a letter."""
    return len(value) <= 253 and bool(_HANDLE_RE.match(value))


def is_valid_at_identifier(value: str) -> bool:
    """A DID or a handle."""
    return is_valid_did(value) if value.startswith("did:") else is_valid_handle(value)


def is_valid_nsid(value: str) -> bool:
    """NSID syntax: reversed domain authority plus a name of letters and digits."""
    return len(value) <= 317 and bool(_NSID_RE.match(value))


def is_valid_tid(value: str) -> bool:
    """TID syntax: 13 base32-sortable characters with the top bit clear."""
    return bool(_TID_RE.match(value))


def is_valid_record_key(value: str) -> bool:
    """Record-key syntax: 1-512 of ``A-Za-z0-9_~.:-``, and not ``.`` or ``..``."""
    return value not in (".", "..") and bool(_RECORD_KEY_RE.match(value))


def is_valid_cid(value: str) -> bool:
    """CID string syntax (not decoded): 8-256 multibase characters, no CIDv0."""
    return bool(_CID_RE.match(value)) and not _CIDV0_RE.match(value)


def is_valid_uri(value: str) -> bool:
    """Generic URI: a scheme, a colon and no whitespace, at most 8192 bytes."""
    return len(value.encode("utf-8")) <= 8192 and bool(_URI_RE.match(value))


def is_valid_at_uri(value: str) -> bool:
    """AT-URI syntax, the strict form used by lexicon validation (``at://authority/nsid/rkey``)."""
    if len(value) > 8 * 1024:
        return False
    uri, hashes, fragment = value.partition("#")
    if hashes and (not fragment or "#" in fragment or not _AT_URI_FRAGMENT_RE.match(fragment)):
        return False
    if not _AT_URI_ASCII_RE.match(uri):
        return False
    parts = uri.split("/")
    if len(parts) < 3 or parts[0] != "at:" or parts[1] != "":
        return False
    if not is_valid_at_identifier(parts[2]):
        return False
    if len(parts) >= 4 and not is_valid_nsid(parts[3]):
        return False
    if len(parts) >= 5 and not is_valid_record_key(parts[4]):
        return False
    return len(parts) <= 5


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def is_valid_datetime(value: str) -> bool:
    """Datetime: RFC 3339 with upper-case ``T``/``Z``, seconds and a timezone, no ``-00:00``.

    The date must also exist, and the instant may not fall before year 0 once the offset is applied.
    """
    if len(value) > 64 or value.endswith("-00:00"):
        return False
    match = _DATETIME_RE.match(value)
    if not match:
        return False
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        return False
    if hour > 23 or minute > 59 or second > 59:
        return False
    if match.group(8) != "Z":
        offset_hours, offset_minutes = int(match.group(10)), int(match.group(11))
        if offset_hours > 23 or offset_minutes > 59:
            return False
        if year == 0 and match.group(9) == "+":
            day_of_year = sum(_days_in_month(0, m) for m in range(1, month)) + day - 1
            if day_of_year * 1440 + hour * 60 + minute < offset_hours * 60 + offset_minutes:
                return False
    return True


def is_valid_language(value: str) -> bool:
    """BCP 47 language tag with a lower-case 2-3 letter primary language.

    Grandfathered and private-use-only tags are accepted; repeated variants or extension
    singletons are not (RFC 5646 section 2.2.9).
    """
    if value.lower() in _GRANDFATHERED_LANGUAGES or _PRIVATE_LANGUAGE_RE.match(value):
        return True
    match = _LANGUAGE_RE.match(value)
    if not match:
        return False
    variants = [v.lower() for v in match.group("variants").split("-") if v]
    singletons = [s.lower() for s in match.group("extensions").split("-") if len(s) == 1]
    return len(set(variants)) == len(variants) and len(set(singletons)) == len(singletons)


FORMAT_CHECKS: dict[str, Callable[[str], bool]] = {
    "at-identifier": is_valid_at_identifier,
    "at-uri": is_valid_at_uri,
    "cid": is_valid_cid,
    "datetime": is_valid_datetime,
    "did": is_valid_did,
    "handle": is_valid_handle,
    "language": is_valid_language,
    "nsid": is_valid_nsid,
    "record-key": is_valid_record_key,
    "tid": is_valid_tid,
    "uri": is_valid_uri,
}
"""Lexicon string format name to syntax check."""


def check_format(fmt: str, value: str) -> bool:
    """Whether ``value`` has lexicon string format ``fmt``; unknown formats always pass."""
    check = FORMAT_CHECKS.get(fmt)
    return check is None or check(value)


# --------------------------------------------------------------------------------------------
# Lexicon documents and record validation.

_PRIMARY_TYPES = frozenset({"record", "query", "procedure", "subscription", "permission-set"})
_NAMED_TYPES = frozenset(
    {"object", "string", "integer", "boolean", "array", "token", "blob", "bytes", "cid-link"}
)
_GRAPHEME_RE = regex.compile(r"\X")


def _grapheme_len(text: str) -> int:
    return len(_GRAPHEME_RE.findall(text))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_special_object(value: Mapping) -> bool:
    return "$bytes" in value or "$link" in value or value.get("$type") == "blob"


def _decode_bytes(text: str) -> bytes | None:
    if len(text) % 4 == 1:
        return None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _mime_accepted(mime: str, accept: Iterable[str]) -> bool:
    mime = mime.lower()
    for pattern in accept:
        pattern = pattern.lower()
        if pattern == "*/*" or pattern == mime:
            return True
        if pattern.endswith("/*") and mime.startswith(pattern[:-1]):
            return True
    return False


def _join(path: str, key: str | int) -> str:
    return f"{path}/{key}"


class LexiconRegistry:
    """A set of lexicon documents, and validation of records against them.

    Supports the field types ``object`` (``required``, ``nullable``), ``string`` (``maxLength`` and
    ``minLength`` in UTF-8 bytes, ``maxGraphemes``, ``minGraphemes``, ``const``, ``enum``,
    ``format``), ``integer``, ``boolean``, ``array``, ``ref``, ``union`` (open and closed),
    ``blob`` (``accept``, ``maxSize``), ``bytes``, ``cid-link``, ``unknown`` and token refs.
    A member of an open union whose schema is not loaded is accepted unchecked, so the bundled
    subset does not reject video or quote embeds it has no lexicon for.
    """

    def __init__(self, documents: Iterable[Mapping[str, Any]] = ()) -> None:
        self._documents: dict[str, Mapping[str, Any]] = {}
        for document in documents:
            self.add(document)

    @classmethod
    def from_directory(cls, path: str | Path) -> LexiconRegistry:
        """Load every ``*.json`` lexicon document under ``path``, recursively.

        Raises:
            LexiconDocumentError: If a file is not a well-formed lexicon document.
        """
        registry = cls()
        for file in sorted(Path(path).rglob("*.json")):
            try:
                document = json.loads(file.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise LexiconDocumentError(f"{file}: not JSON: {exc}") from exc
            try:
                registry.add(document)
            except LexiconDocumentError as exc:
                raise LexiconDocumentError(f"{file}: {exc}") from exc
        return registry

    def add(self, document: Mapping[str, Any]) -> None:
        """Add one lexicon document after a structural check.

        Raises:
            LexiconDocumentError: If it is malformed or its id is already loaded.
        """
        if not isinstance(document, Mapping):
            raise LexiconDocumentError("lexicon document must be an object")
        if not _is_int(document.get("lexicon")) or document["lexicon"] != 1:
            raise LexiconDocumentError("lexicon version must be the integer 1")
        nsid = document.get("id")
        if not isinstance(nsid, str) or not is_valid_nsid(nsid):
            raise LexiconDocumentError(f"id must be a valid NSID, got {nsid!r}")
        defs = document.get("defs")
        if not isinstance(defs, Mapping):
            raise LexiconDocumentError(f"{nsid}: defs must be an object")
        for name, definition in defs.items():
            kind = definition.get("type") if isinstance(definition, Mapping) else None
            if kind in _PRIMARY_TYPES:
                if name != "main":
                    raise LexiconDocumentError(f"{nsid}#{name}: a {kind} definition must be named main")
                if kind == "record":
                    record = definition.get("record")
                    if not isinstance(record, Mapping) or record.get("type") != "object":
                        raise LexiconDocumentError(f"{nsid}: record schema must be of type object")
            elif kind not in _NAMED_TYPES:
                raise LexiconDocumentError(f"{nsid}#{name}: type {kind!r} cannot be a named definition")
        if nsid in self._documents:
            raise LexiconDocumentError(f"{nsid} is already loaded")
        self._documents[nsid] = document

    def __contains__(self, nsid: object) -> bool:
        return nsid in self._documents

    @property
    def nsids(self) -> list[str]:
        """The ids of the loaded documents, sorted."""
        return sorted(self._documents)

    def get_def(self, ref: str) -> Mapping[str, Any]:
        """Return the definition ``nsid`` (its ``main``) or ``nsid#name``.

        Raises:
            KeyError: If the document or definition is not loaded.
        """
        nsid, _, name = ref.partition("#")
        document = self._documents.get(nsid)
        if document is None or (name or "main") not in document["defs"]:
            raise KeyError(ref)
        return document["defs"][name or "main"]

    def validate_record(self, nsid: str, value: Any, *, rkey: str | None = None) -> None:
        """Validate a record value (and optionally its record key) against collection ``nsid``.

        A ``$type`` in the value must equal ``nsid``; a missing one is tolerated, as the PDS
        fills it in.

        Args:
            nsid: The record collection, e.g. ``app.bsky.feed.post``.
            value: The record, as JSON-like Python data.
            rkey: The record key, checked against the lexicon's ``key`` when given.

        Raises:
            KeyError: If there is no lexicon for ``nsid``.
            LexiconValidationError: With the path from ``record`` to the first problem.
        """
        definition = self.get_def(nsid)
        if definition.get("type") != "record":
            raise LexiconValidationError("record", f"{nsid} is not a record type")
        if rkey is not None:
            self._check_record_key(definition.get("key", "any"), rkey)
        if not isinstance(value, Mapping):
            raise LexiconValidationError("record", "must be an object")
        if "$type" in value and value["$type"] != nsid:
            raise LexiconValidationError("record/$type", f"must be {nsid!r}, got {value['$type']!r}")
        self._validate(definition["record"], value, "record", nsid)

    def validate(self, ref: str, value: Any, *, path: str = "value") -> None:
        """Validate ``value`` against any definition, e.g. ``app.bsky.richtext.facet``.

        Raises:
            KeyError: If the definition is not loaded.
            LexiconValidationError: With ``path`` as the root of the error location.
        """
        nsid = ref.partition("#")[0]
        self._validate(self.get_def(ref), value, path, nsid)

    @staticmethod
    def _check_record_key(key: str, rkey: str) -> None:
        if key == "tid":
            ok = is_valid_tid(rkey)
        elif key == "nsid":
            ok = is_valid_nsid(rkey)
        elif key.startswith("literal:"):
            ok = rkey == key.removeprefix("literal:")
        else:
            ok = is_valid_record_key(rkey)
        if not ok:
            raise LexiconValidationError("rkey", f"{rkey!r} is not a valid record key of kind {key!r}")

    # Dispatch -------------------------------------------------------------------------------

    def _validate(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        kind: str = definition.get("type", "")
        validator = self._VALIDATORS.get(kind)
        if validator is None:
            raise LexiconValidationError(path, f"unsupported lexicon type {kind!r}")
        validator(self, definition, value, path, nsid)

    def _resolve(self, ref: str, nsid: str) -> str:
        if ref.startswith("#"):
            return f"{nsid}{ref}"
        return ref if "#" in ref else f"{ref}#main"

    def _validate_ref(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        target = self._resolve(definition["ref"], nsid)
        try:
            resolved = self.get_def(target)
        except KeyError:
            raise LexiconValidationError(path, f"no lexicon loaded for {target}") from None
        if resolved.get("type") == "token":
            if value != target.removesuffix("#main"):
                raise LexiconValidationError(path, f"must be the token {target}")
            return
        self._validate(resolved, value, path, target.partition("#")[0])

    def _validate_union(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        if not isinstance(value, Mapping) or not isinstance(value.get("$type"), str):
            raise LexiconValidationError(path, 'must be an object which includes the "$type" property')
        refs = [self._resolve(ref, nsid) for ref in definition.get("refs", [])]
        member = self._resolve(value["$type"], "")
        if member not in refs:
            if definition.get("closed"):
                raise LexiconValidationError(path, f"$type must be one of {', '.join(refs)}")
            return
        try:
            resolved = self.get_def(member)
        except KeyError:
            if definition.get("closed"):
                raise LexiconValidationError(path, f"no lexicon loaded for {member}") from None
            return
        self._validate(resolved, value, path, member.partition("#")[0])

    def _validate_object(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        if not isinstance(value, Mapping) or _is_special_object(value):
            raise LexiconValidationError(path, "must be an object")
        properties = definition.get("properties", {})
        nullable = set(definition.get("nullable", []))
        for key in definition.get("required", []):
            if key not in value:
                raise LexiconValidationError(path, f"must have the property {key!r}")
        for key, schema in properties.items():
            if key not in value:
                continue
            if value[key] is None and key in nullable:
                continue
            self._validate(schema, value[key], _join(path, key), nsid)

    def _validate_array(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        if not isinstance(value, list):
            raise LexiconValidationError(path, "must be an array")
        if "maxLength" in definition and len(value) > definition["maxLength"]:
            raise LexiconValidationError(path, f"must not have more than {definition['maxLength']} elements")
        if "minLength" in definition and len(value) < definition["minLength"]:
            raise LexiconValidationError(path, f"must not have fewer than {definition['minLength']} elements")
        for index, item in enumerate(value):
            self._validate(definition["items"], item, _join(path, index), nsid)

    def _validate_string(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        if not isinstance(value, str):
            raise LexiconValidationError(path, "must be a string")
        if "const" in definition and value != definition["const"]:
            raise LexiconValidationError(path, f"must be {definition['const']!r}")
        if "enum" in definition and value not in definition["enum"]:
            raise LexiconValidationError(path, f"must be one of {definition['enum']!r}")
        if "maxLength" in definition or "minLength" in definition:
            size = len(value.encode("utf-8"))
            if "maxLength" in definition and size > definition["maxLength"]:
                raise LexiconValidationError(
                    path, f"must not be longer than {definition['maxLength']} UTF-8 bytes (is {size})"
                )
            if "minLength" in definition and size < definition["minLength"]:
                raise LexiconValidationError(
                    path, f"must not be shorter than {definition['minLength']} UTF-8 bytes (is {size})"
                )
        if "maxGraphemes" in definition or "minGraphemes" in definition:
            count = _grapheme_len(value)
            if "maxGraphemes" in definition and count > definition["maxGraphemes"]:
                raise LexiconValidationError(
                    path, f"must not be longer than {definition['maxGraphemes']} graphemes (is {count})"
                )
            if "minGraphemes" in definition and count < definition["minGraphemes"]:
                raise LexiconValidationError(
                    path, f"must not be shorter than {definition['minGraphemes']} graphemes (is {count})"
                )
        fmt = definition.get("format")
        if fmt is not None and not check_format(fmt, value):
            raise LexiconValidationError(path, f"must be a valid {fmt}")

    def _validate_integer(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        if not _is_int(value):
            raise LexiconValidationError(path, "must be an integer")
        if "const" in definition and value != definition["const"]:
            raise LexiconValidationError(path, f"must be {definition['const']}")
        if "enum" in definition and value not in definition["enum"]:
            raise LexiconValidationError(path, f"must be one of {definition['enum']!r}")
        if "minimum" in definition and value < definition["minimum"]:
            raise LexiconValidationError(path, f"can not be less than {definition['minimum']}")
        if "maximum" in definition and value > definition["maximum"]:
            raise LexiconValidationError(path, f"can not be greater than {definition['maximum']}")

    def _validate_boolean(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        if not isinstance(value, bool):
            raise LexiconValidationError(path, "must be a boolean")
        if "const" in definition and value != definition["const"]:
            raise LexiconValidationError(path, f"must be {definition['const']}")

    def _validate_bytes(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        if not isinstance(value, Mapping) or set(value) != {"$bytes"} or not isinstance(value["$bytes"], str):
            raise LexiconValidationError(path, 'must be a bytes object {"$bytes": <base64>}')
        data = _decode_bytes(value["$bytes"])
        if data is None:
            raise LexiconValidationError(path, "$bytes must be valid base64")
        if "maxLength" in definition and len(data) > definition["maxLength"]:
            raise LexiconValidationError(path, f"must not be larger than {definition['maxLength']} bytes")
        if "minLength" in definition and len(data) < definition["minLength"]:
            raise LexiconValidationError(path, f"must not be smaller than {definition['minLength']} bytes")

    def _validate_cid_link(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        if (
            not isinstance(value, Mapping)
            or set(value) != {"$link"}
            or not isinstance(value["$link"], str)
            or not is_valid_cid(value["$link"])
        ):
            raise LexiconValidationError(path, 'must be a CID link {"$link": <cid>}')

    def _validate_blob(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        if not isinstance(value, Mapping) or value.get("$type") != "blob":
            raise LexiconValidationError(path, 'must be a blob ref {"$type": "blob", ...}')
        extra = set(value) - {"$type", "ref", "mimeType", "size"}
        if extra:
            raise LexiconValidationError(path, f"unexpected blob properties {sorted(extra)}")
        self._validate_cid_link({}, value.get("ref"), _join(path, "ref"), nsid)
        mime = value.get("mimeType")
        if not isinstance(mime, str) or not mime:
            raise LexiconValidationError(_join(path, "mimeType"), "must be a non-empty string")
        size = value.get("size")
        if not _is_int(size) or size < 0:  # type: ignore[operator]
            raise LexiconValidationError(_join(path, "size"), "must be a non-negative integer")
        if "maxSize" in definition and size > definition["maxSize"]:
            raise LexiconValidationError(
                _join(path, "size"), f"blob of {size} bytes is larger than maxSize {definition['maxSize']}"
            )
        accept = definition.get("accept")
        if accept is not None and not _mime_accepted(mime, accept):
            raise LexiconValidationError(
                _join(path, "mimeType"), f"{mime!r} is not accepted, must match {', '.join(accept)}"
            )

    def _validate_unknown(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        if not isinstance(value, Mapping) or _is_special_object(value):
            raise LexiconValidationError(path, "must be an object")

    def _validate_token(self, definition: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        raise LexiconValidationError(path, "a token can only be used through a ref")

    _VALIDATORS: dict[str, Callable[..., None]] = {
        "array": _validate_array,
        "blob": _validate_blob,
        "boolean": _validate_boolean,
        "bytes": _validate_bytes,
        "cid-link": _validate_cid_link,
        "integer": _validate_integer,
        "object": _validate_object,
        "ref": _validate_ref,
        "string": _validate_string,
        "token": _validate_token,
        "union": _validate_union,
        "unknown": _validate_unknown,
    }


@functools.cache
def bundled_registry() -> LexiconRegistry:
    """The registry of lexicons shipped in ``posts/lexicons`` (app.bsky.feed.post and what it uses).

    Loaded once and cached; treat it as read-only.
    """
    return LexiconRegistry.from_directory(BUNDLED_LEXICONS)
