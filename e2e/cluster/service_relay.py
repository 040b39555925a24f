"""What kube-proxy does for the `kubernetes` Service, for this run only: listen on the
Service's address and port (on the run's `lo`) and relay each connection, bytes as they
are, to the API server. TLS stays end to end: the API server's certificate names the
Service's address. Pods reach the API through it as in a cluster, with the
KUBERNETES_SERVICE_HOST and _PORT that kubelet gives them.

    python -m e2e.cluster.service_relay LISTEN_HOST:PORT UPSTREAM_HOST:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

CHUNK = 65536


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


async def relay(
    upstream: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
    except OSError as error:
        print(f"service-relay: cannot reach {upstream[0]}:{upstream[1]}: {error}", flush=True)
        writer.close()
        return
    try:
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    finally:
        for each in (writer, up_writer):
            each.close()


async def serve(listen: tuple[str, int], upstream: tuple[str, int]) -> None:
    server = await asyncio.start_server(
        lambda r, w: relay(upstream, r, w), listen[0], listen[1], reuse_address=True
    )
    print(f"service-relay: {listen[0]}:{listen[1]} -> {upstream[0]}:{upstream[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m e2e.cluster.service_relay", description=__doc__
    )
    parser.add_argument("listen", type=host_port, help="HOST:PORT to listen on")
    parser.add_argument("upstream", type=host_port, help="HOST:PORT to relay to")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.listen, args.upstream))
    except OSError as error:
        print(f"service-relay: cannot listen on {args.listen[0]}:{args.listen[1]}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
