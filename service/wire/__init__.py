"""The scoring endpoint's wire format: request bodies in, replies out.

``media`` names the media types and negotiates the reply's; ``decode`` turns a body into a
:class:`~service.scoring.payload.ParsedRequest`; ``replies`` encodes a scored batch as
JSON (per reading or columnar) or ``.npz``. The scoring core never imports this package.
"""
