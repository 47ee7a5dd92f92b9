"""SPEC.md and the code cannot drift: error codes, labels and constants are checked."""

from __future__ import annotations

import re
from pathlib import Path

from protocol import (
    auth,
    devices,
    encoding,
    errors,
    events,
    keylog,
    labels,
    link,
    message,
    records,
    stream,
)

SPEC = (Path(__file__).resolve().parents[2] / "protocol" / "SPEC.md").read_text()


def _section(title: str) -> str:
    start = SPEC.index(f"\n## {title}\n")
    end = SPEC.find("\n## ", start + 1)
    return SPEC[start : end if end != -1 else len(SPEC)]


def _rows(section: str) -> list[list[str]]:
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not set(line) <= set("|- "):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header row


def _subsection(section: str, title: str) -> str:
    start = section.index(f"\n### {title}\n")
    end = section.find("\n### ", start + 1)
    return section[start : end if end != -1 else len(section)]


ROOT = Path(__file__).resolve().parents[2]


def test_error_code_table_matches_the_exception_tree() -> None:
    codes = _subsection(_section("16. Error codes"), "16.1 Protocol codes")
    table = [(row[0].strip("`"), row[1].strip("`")) for row in _rows(codes)]
    code = []
    for cls in errors.all_error_classes():
        parent = cls.__mro__[1]
        code.append((cls.code, parent.code if issubclass(parent, errors.ProtocolError) else "—"))
    assert table == code


def test_every_error_code_is_stable_and_unique() -> None:
    classes = errors.all_error_classes()
    assert len({cls.code for cls in classes}) == len(classes)
    assert all(re.fullmatch(r"[a-z_]+", cls.code) for cls in classes)
    assert all(cls.__doc__ for cls in classes)


def test_label_table_matches_the_code() -> None:
    table = {row[0]: row[1].strip("`") for row in _rows(_section("2. Labels"))}
    code = {name: value.decode() for name, value in vars(labels).items()
            if isinstance(value, bytes)}
    assert table == code
    assert set(labels.ALL) == {v.encode() for v in code.values()}


def test_constants_table_matches_the_code() -> None:
    table = {row[0].strip("`"): int(row[1]) for row in _rows(_section("19. Constants"))}
    code = {
        "MAX_SKEW": keylog.MAX_SKEW, "MAX_TTL": message.MAX_TTL,
        "MAX_RECIPIENTS": message.MAX_RECIPIENTS, "MAX_ATTACHMENTS": message.MAX_ATTACHMENTS,
        "MAX_SUBJECT": message.MAX_SUBJECT, "MAX_NAME": records.MAX_NAME,
        "MAX_REASON": records.MAX_REASON, "MAX_FILE_NAME": message.MAX_FILE_NAME,
        "MAX_MEDIA_TYPE": message.MAX_MEDIA_TYPE, "ID_SIZE": message.ID_SIZE,
        "NONCE_SIZE": auth.NONCE_SIZE, "MAX_CHALLENGE_TTL": auth.MAX_CHALLENGE_TTL,
        "MOVED_SEARCH_EPOCHS": message.MOVED_SEARCH_EPOCHS,
        "MAX_READ_REPORT": message.MAX_READ_REPORT,
        "RECEIPT_MARGIN": message.RECEIPT_MARGIN,
        "CHUNK_SIZE": stream.CHUNK_SIZE, "MAX_FILE_SIZE": stream.MAX_FILE_SIZE,
        "MAX_DEPTH": encoding.MAX_DEPTH, "CLOSE_SESSION_ENDED": events.CLOSE_SESSION_ENDED,
        "CLOSE_TOO_SLOW": events.CLOSE_TOO_SLOW,
        "MAX_DEVICES": keylog.MAX_DEVICES,
        "BOX_KEY_PERIOD": devices.BOX_KEY_PERIOD, "BOX_KEY_GRACE": devices.BOX_KEY_GRACE,
        "DEFAULT_RETENTION_DAYS": records.DEFAULT_RETENTION_DAYS,
        "MAX_RETENTION_DAYS": records.MAX_RETENTION_DAYS,
        "UNREAD_RETENTION_FACTOR": records.UNREAD_RETENTION_FACTOR,
        "MAX_LINK_MESSAGE": link.MAX_LINK_MESSAGE,
    }
    assert table == code


def test_record_field_table_names_every_field() -> None:
    table = {row[0].strip("`") for row in _rows(_section("6. The key log"))
             if row[0].startswith("`") and len(row) == 4}
    fields = {"v", "type", "created"} | {f for fs in records._FIELDS.values() for f in fs}
    assert fields <= table


def test_payload_table_names_every_field() -> None:
    section = _section("9. Messages")
    named = {row[0].strip("`") for row in _rows(section) if row[0].startswith("`")}
    assert set(message.PAYLOAD_FIELDS) | set(message.ATTACHMENT_FIELDS) <= named


# --- codes outside the exception tree: the client's, the relay's --------------------------

_CLIENT_RAISES = re.compile(
    r'(?:VerificationError|AccessError|KokError)\(\s*"([a-z_]+)"|_quarantine\([^"]*"([a-z_]+)"')


def test_client_code_table_lists_every_code_the_client_reports_for_the_protocol() -> None:
    """Derived from the client's source: every verification or quarantine code it raises that
    is not a protocol code is in SPEC 16.2 (and CLIENT_CODES), and every listed one is used."""
    section = _subsection(_section("16. Error codes"), "16.2 Client codes")
    table = {row[0].strip("`"): row[1] for row in _rows(section)}
    assert table == errors.CLIENT_CODES
    source = "\n".join(p.read_text() for p in sorted((ROOT / "client").glob("*.py")))
    raised = {a or b for a, b in _CLIENT_RAISES.findall(source)}
    verification = {code for code in raised if code in table or code.startswith("log_")
                    or code in {"identity_changed", "safety_code_mismatch", "replayed"}}
    assert verification - set(errors.error_codes()) <= set(table), "a client code SPEC lacks"
    for code in table:
        assert f'"{code}"' in source, f"{code} is listed but the client never reports it"


def _openapi() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "protocol" / "openapi.yaml").read_text())


def test_openapi_lists_every_protocol_code_the_relay_passes_on() -> None:
    """The relay answers a bad body or key-log record with the protocol's own code."""
    problem = _openapi()["components"]["schemas"]["Problem"]["properties"]["code"]
    passed_on = {cls.code for cls in errors.all_error_classes()
                 if issubclass(cls, errors.EncodingError | errors.LogError)
                 or cls in (errors.SignatureError, errors.WrongSigner)}
    assert passed_on - set(problem["enum"]) == set()
    described = set(re.findall(r"[a-z][a-z0-9_]+", problem["description"]))
    assert set(problem["enum"]) - described == set(), "the description lists every code"


def test_http_docs_cite_spec_sections_not_python_names() -> None:
    for path in (ROOT / "protocol" / "openapi.yaml", ROOT / "docs" / "http-api.md"):
        text = path.read_text()
        assert not re.findall(r"\bprotocol\.(?!yaml\b)[a-z_]+", text), path.name


def test_info_requires_origins() -> None:
    info = _openapi()["paths"]["/v1/info"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]
    assert "origins" in info["required"]
    assert info["properties"]["origins"]["minItems"] == 1
