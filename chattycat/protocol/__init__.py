"""Sans-IO protocol: framing, payload codec, typed frames, naming rules, flood control.

No sockets, no clocks: ``framing`` cuts the byte stream into payloads,
``codec`` turns payloads into JSON objects and back, ``messages`` (with
``requests`` and ``events``) is the catalogue of typed frames, each checked
when built from the field declarations of ``fields``, and ``names`` holds the
naming rules every layer quotes.
"""
