#!/usr/bin/env python3
"""bench-ingest's peer: an asyncio ingester, the design async ingesters use, with no third-party
package. N coroutines share one event loop, each with its own kept-alive HTTP/1.1 connection
(asyncio streams), fetch the listed documents, parse the JSON, cut the text into chunks of 1000
characters with 100 of overlap (hard cuts: simpler than loader's rule, so never slower), and
count them. Prints one JSON line: documents, chunks, seconds, threads (at the end).

Usage: bench-ingest-peer.py URL_FILE CONCURRENCY
"""

import asyncio
import json
import sys
import threading
import time
from urllib.parse import urlsplit

SIZE, OVERLAP = 1000, 100


def chunk_count(text):
    if not text.strip():
        return 0
    count, start = 0, 0
    while True:
        count += 1
        if len(text) - start <= SIZE:
            return count
        start += SIZE - OVERLAP


async def fetch(reader, writer, host, path):
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"{path}: {status!r}")
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return await reader.readexactly(length)


async def worker(urls, totals):
    first = urlsplit(urls[0]) if urls else None
    reader, writer = await asyncio.open_connection(first.hostname, first.port)
    while urls:
        parts = urlsplit(urls.pop())
        body = await fetch(reader, writer, parts.netloc, parts.path)
        document = json.loads(body)
        totals[0] += 1
        totals[1] += chunk_count(document["body"]["text"])
    writer.close()


async def main(path, concurrency):
    with open(path) as listing:
        urls = [line.strip() for line in listing if line.strip()]
    urls.reverse()
    totals = [0, 0]
    started = time.monotonic()
    await asyncio.gather(*(worker(urls, totals) for _ in range(concurrency)))
    seconds = time.monotonic() - started
    print(json.dumps({"documents": totals[0], "chunks": totals[1], "seconds": seconds,
                      "threads": threading.active_count()}))


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
