"""Image references, checked by the grammar container registries use
(github.com/distribution/reference: ``[domain[:port]/]path[:tag][@digest]``).

The pattern is written so that both Python's ``re`` and the browser's JSON-schema
validator in the trigger form accept it (no look-behind, no named groups).
"""

from __future__ import annotations

import re

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

IMAGE_PATTERN = rf"^{_NAME}(?::{_TAG})?(?:@{_DIGEST})?$"
_IMAGE = re.compile(IMAGE_PATTERN)


def check_image(value) -> str | None:
    """None when ``value`` is a valid image reference, else what is wrong with it."""
    if not isinstance(value, str) or not value:
        return "must be an image reference such as registry.example.com/team/app:1.4.2"
    if len(value.split("@")[0].rsplit(":", 1)[0]) > 255:
        return "the image name is longer than 255 characters"
    if not _IMAGE.match(value):
        return (
            "is not a valid image reference ([registry[:port]/]name[:tag][@digest]; "
            "lower-case name, tag of letters, digits, '_', '.', '-')"
        )
    return None
