"""One spelling of a blob's ETag, whichever API reported it, so one blob version is one run."""

from __future__ import annotations


def canonical(etag: str | None) -> str:
    """The quoted strong form (`"0x8DC..."`): what blob properties return, and what run ids have always hashed.

    The blob listing and Azurite report the bare value, some proxies a weak `W/"..."` one; all map here.
    """
    value = (etag or "").strip()
    if value[:2].upper() == "W/":
        value = value[2:]
    value = value.strip('"')
    return f'"{value}"' if value else ""

