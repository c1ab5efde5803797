"""``python -m example_app``: the demo.

Until the gateway exists this streams a sample LLM response, split at awkward byte positions,
through the codec and prints the whole events it recovers.
"""

from __future__ import annotations

from asgi_sse_adapter import SSEDecoder

SAMPLE = (
    '\ufeffevent: message_start\r\ndata: {"type":"message_start"}\r\n\r\n'
    ": keep-alive\n\n"
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","delta":{"text":"Grüße 👋"}}\n\n'
    'event: message_stop\rdata: {"type":"message_stop"}\r\r'
).encode()


def main() -> None:
    """Feed the sample in 7-byte pieces and print each event as it completes."""
    decoder = SSEDecoder()
    for start in range(0, len(SAMPLE), 7):
        for event in decoder.feed(SAMPLE[start : start + 7]):
            print(f"{event.event or 'message'}: {event.data}")
    decoder.close()


if __name__ == "__main__":
    main()
