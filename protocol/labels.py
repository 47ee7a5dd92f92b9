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
LINK: Final = b"kok/v1/link"
LINK_CONFIRM_EXISTING: Final = b"kok/v1/link-confirm-existing"
LINK_CONFIRM_NEW: Final = b"kok/v1/link-confirm-new"
LINK_BOX_EXISTING: Final = b"kok/v1/link-box-existing"
LINK_BOX_NEW: Final = b"kok/v1/link-box-new"
LINK_BINDING: Final = b"kok/v1/link-binding"
LINK_DEVICE: Final = b"kok/v1/link-device"

ALL: Final = (RECORD, MESSAGE, GRANT, AUTH, LOG, HEAD, REQUEST, SAFETY, STORAGE, GRANT_UPLOAD,
              LINK, LINK_CONFIRM_EXISTING, LINK_CONFIRM_NEW, LINK_BOX_EXISTING, LINK_BOX_NEW,
              LINK_BINDING, LINK_DEVICE)
