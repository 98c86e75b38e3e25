"""``Client``'s methods for moving a container's files between daemons the cold way:
``docker export`` (a container's root filesystem as one tar) and ``docker import`` (a tar
as a one-layer image). A mixin, kept out of api.py to keep each module short; it speaks
HTTP through the ``request``/``stream``/``stream_bytes`` of :class:`teachdock.client.api.Client`.
"""

from __future__ import annotations

from teachdock.client.transport import APIError, quote


class TransferMethods:
    """``export_container`` and ``import_image``; mixed into ``Client``."""

    def export_container(self, container: str, out) -> int:
        """``GET /containers/ID/export``: the container's files as a tar written to the binary
        file ``out``; returns the number of bytes written."""
        written = 0
        for chunk in self.stream_bytes("GET", f"/containers/{quote(str(container), safe='')}/export"):
            out.write(chunk)
            written += len(chunk)
        return written

    def import_image(self, source=None, repository: str | None = None, tag: str | None = None, *,
                     url: str | None = None, changes=(), message: str | None = None,
                     platform: str | None = None, progress=None) -> str:
        """``POST /images/create?fromSrc=-``: the tar ``source`` (bytes or a binary file of known
        size, plain or gzip/bzip2/xz) becomes a one-layer image; or, with ``url``, the daemon
        downloads it (``fromSrc=URL``). ``changes`` are Dockerfile lines (``CMD ["sh"]``).
        Returns the new image's id; ``progress(message)`` sees each line of the stream."""
        if (source is None) == (url is None):
            raise ValueError("import_image: give either source (a tar) or url, not both")
        query = [("fromSrc", url or "-"), ("repo", repository), ("tag", tag), ("message", message),
                 ("platform", platform)] + [("changes", change) for change in changes]
        image_id = None
        for message_line in self.stream("POST", "/images/create", query=query, body=source,
                                        headers={"Content-Type": "application/x-tar"} if source is not None else None):
            if "errorDetail" in message_line or "error" in message_line:
                detail = message_line.get("errorDetail") or {}
                raise APIError(500, detail.get("message") or message_line.get("error"), "POST", "/images/create")
            if progress is not None:
                progress(message_line)
            status = message_line.get("status") or ""
            if status.startswith("sha256:"):
                image_id = status
        if image_id is None:
            raise APIError(500, "the daemon's answer to the import named no image", "POST", "/images/create")
        return image_id
