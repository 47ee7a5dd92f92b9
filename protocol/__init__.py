"""kok protocol: pure, sans-I/O rules shared by relay and client.

Nothing here reads the clock, the OS random source, files or sockets: time and
randomness are parameters. See SPEC.md beside this file for the normative description.
"""

from . import errors, labels
from .auth import sign_auth, verify_auth
from .encoding import SignedItem, b64decode, b64encode, canonical_json, parse_canonical
from .grants import Grant, make_grant, open_grant
from .keylog import Head, KeyLog, LogEntry, sign_head, verify_head
from .keys import BoxKeyPair, SigningKeyPair, fingerprint, format_fingerprint, safety_code
from .message import Attachment, MessagePayload, OpenedMessage, open_message, seal_message
from .padding import padme
from .records import (
    BoxKey,
    DeviceAdd,
    DeviceRemove,
    Epoch,
    OrgAdmit,
    OrgRekey,
    OrgRevoke,
    OrgSettings,
    OrgVerify,
    StaffAdd,
    StaffRemove,
    countersign,
    sign_record,
)
from .stream import FileDecryptor, FileEncryptor, ciphertext_size

PROTOCOL_VERSION = 1

__all__ = [
    "PROTOCOL_VERSION",
    "Attachment",
    "BoxKey",
    "BoxKeyPair",
    "DeviceAdd",
    "DeviceRemove",
    "Epoch",
    "FileDecryptor",
    "FileEncryptor",
    "Grant",
    "Head",
    "KeyLog",
    "LogEntry",
    "MessagePayload",
    "OpenedMessage",
    "OrgAdmit",
    "OrgRekey",
    "OrgRevoke",
    "OrgSettings",
    "OrgVerify",
    "SignedItem",
    "SigningKeyPair",
    "StaffAdd",
    "StaffRemove",
    "b64decode",
    "b64encode",
    "canonical_json",
    "ciphertext_size",
    "countersign",
    "errors",
    "fingerprint",
    "format_fingerprint",
    "labels",
    "make_grant",
    "open_grant",
    "open_message",
    "padme",
    "parse_canonical",
    "safety_code",
    "seal_message",
    "sign_auth",
    "sign_head",
    "sign_record",
    "verify_auth",
    "verify_head",
]
