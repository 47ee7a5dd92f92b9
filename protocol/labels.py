"""Every domain-separation label of the protocol, defined once.

Each signature, hash and key derivation uses its own label, so a signature made for one
purpose can never be replayed as another (SPEC.md section "Labels").
"""

from typing import Final

RECORD: Final = b"kok/v1/record"
MESSAGE: Final = b"kok/v1/message"
GRANT: Final = b"kok/v1/grant"
AUTH: Final = b"kok/v1/auth"
LOG: Final = b"kok/v1/log"
HEAD: Final = b"kok/v1/head"
REQUEST: Final = b"kok/v1/request"
SAFETY: Final = b"kok/v1/safety"
GRANT_UPLOAD: Final = b"kok/v1/grant-upload"
STORAGE: Final = b"kok/v1/storage"

ALL: Final = (RECORD, MESSAGE, GRANT, AUTH, LOG, HEAD, REQUEST, SAFETY, STORAGE, GRANT_UPLOAD)
