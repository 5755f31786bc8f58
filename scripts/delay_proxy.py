"""A loopback TCP proxy that adds latency, for benchmarks where `tc netem` is unavailable.

Every chunk read from one side is written to the other `delay` seconds after it arrived, in
each direction, so a request/response round trip gains about twice `delay`. Chunks are
delayed, not the connection: a stream keeps its throughput (up to the buffer bound), as on a
long fat network, instead of paying the delay once per chunk.

Run it as its own process, so its event loop never competes with the measured code for a GIL:

    python scripts/delay_proxy.py --target 127.0.0.1:5000 --delay-ms 10

It prints `listening PORT` once it accepts connections, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

CHUNK = 256 * 1024
QUEUED_CHUNKS = 64
"""Chunks in flight per direction: memory stays under 16 MiB per connection and direction."""


async def _receive(
    reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes]], delay: float
) -> None:
    """Stamp each chunk with its due time; a full queue makes the sender wait (backpressure)."""
    loop = asyncio.get_running_loop()
    while data := await reader.read(CHUNK):
        await queue.put((loop.time() + delay, data))
    await queue.put((0.0, b""))


async def _deliver(writer: asyncio.StreamWriter, queue: asyncio.Queue[tuple[float, bytes]]) -> None:
    """Write each chunk once it is due; pass end-of-stream on as a half-close."""
    loop = asyncio.get_running_loop()
    while True:
        due, data = await queue.get()
        if not data:
            if writer.can_write_eof():
                writer.write_eof()
            return
        await asyncio.sleep(max(0.0, due - loop.time()))
        writer.write(data)
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUED_CHUNKS)
    async with asyncio.TaskGroup() as group:
        group.create_task(_receive(reader, queue, delay))
        group.create_task(_deliver(writer, queue))


class DelayProxy:
    """Accepts on 127.0.0.1 and forwards each connection to `target`, delayed both ways."""

    def __init__(self, target_host: str, target_port: int, delay: float) -> None:
        self.target = (target_host, target_port)
        self.delay = delay
        self.connections: set[asyncio.Task[None]] = set()

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            async with asyncio.TaskGroup() as group:
                group.create_task(_pipe(client_reader, upstream_writer, self.delay))
                group.create_task(_pipe(upstream_reader, client_writer, self.delay))
        except* (OSError, asyncio.IncompleteReadError):
            pass  # a reset on either side ends this connection only
        finally:
            self.connections.discard(task)
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    writer.close()

    async def serve(self, stop: asyncio.Event) -> None:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        async with server:
            await stop.wait()
        for task in list(self.connections):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self.connections, return_exceptions=True)


async def _main(target: str, delay_ms: float) -> None:
    host, _, port = target.rpartition(":")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await DelayProxy(host or "127.0.0.1", int(port), delay_ms / 1000.0).serve(stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--delay-ms", type=float, required=True, help="added one-way delay per chunk")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.target, args.delay_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
