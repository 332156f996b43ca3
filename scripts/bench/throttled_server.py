#!/usr/bin/env python3
"""Serves a directory over HTTP/1.1 on 127.0.0.1 like a distant package index, for scripts/bench-create.sh.

    throttled_server.py --root DIR [--port 0] [--port-file FILE]
                        [--latency-ms 40] [--conn-mbps 48] [--total-mbps 480]

Every request (GET or HEAD) waits --latency-ms before its response starts: the round trip and
time to first byte of a CDN edge that is not next door. Each connection's body is then paced to
--conn-mbps, and all connections together to --total-mbps through one token bucket they share
(megabits per second; 0 turns a limit off). The defaults, 40 ms, 48 Mbit/s (6 MB/s) per
connection and 480 Mbit/s (60 MB/s) in all, are what a build machine typically sees from a
public index: one connection is slow enough that a serial client is network-bound, while ten
connections at once can go ten times as fast. A benchmark on loopback with no limits would
measure only CPU and show nothing of the network-bound behaviour the tools differ in.

Directories ending in `/` serve their index.html as text/html; Content-Length is always set and
connections are kept alive. GET /_stats (no latency, no pacing) returns what was served so far as
JSON (requests, body bytes, and of those the GETs of .whl files), so a benchmark can tell what each
contender fetched. The port
(useful with --port 0) is written to --port-file once the socket listens, and printed on stdout.
Request logs are off. Standard library only.
"""

import argparse
import functools
import http.server
import json
import os
import sys
import threading
import time

CHUNK = 16 * 1024  # small enough for smooth pacing at a few MB/s, large enough to be cheap


class Bucket:
    """A token bucket kept as virtual time (GCRA): each n bytes move the bucket's clock n / rate
    on; a caller sleeps while that clock is more than `burst` bytes' worth ahead of now."""

    def __init__(self, bytes_per_second, burst):
        self.rate = bytes_per_second
        self.burst_seconds = burst / bytes_per_second if bytes_per_second else 0
        self.next_free = 0.0
        self.lock = threading.Lock()

    def take(self, n):
        if not self.rate:
            return
        with self.lock:
            now = time.monotonic()
            self.next_free = max(self.next_free, now) + n / self.rate
            wait = self.next_free - now - self.burst_seconds
        if wait > 0:
            time.sleep(wait)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "bytes": 0, "wheel_gets": 0, "wheel_bytes": 0}

    def add(self, **counts):
        with self.lock:
            for key, value in counts.items():
                self.counts[key] += value


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections as with a real index
    # Set on the class by main():
    latency = 0.0
    conn_rate = 0
    total_bucket = None
    stats = None

    def setup(self):
        super().setup()
        self.conn_bucket = Bucket(self.conn_rate, 4 * CHUNK)

    def send_head(self):
        if self.path.split("?")[0] == "/_stats":
            return self.send_stats()
        self.stats.add(requests=1)
        self.is_wheel_get = self.command == "GET" and self.path.split("?")[0].endswith(".whl")
        if self.is_wheel_get:
            self.stats.add(wheel_gets=1)
        if self.latency:
            time.sleep(self.latency)
        return super().send_head()

    def send_stats(self):
        with self.stats.lock:
            body = json.dumps(self.stats.counts).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)
        return None

    def end_headers(self):
        # A real index lets clients cache; the benchmark empties each client's cache instead.
        self.send_header("Cache-Control", "max-age=600")
        super().end_headers()

    def guess_type(self, path):
        if path.endswith(".whl") or path.endswith(".metadata"):
            return "application/octet-stream"
        return super().guess_type(path)

    def copyfile(self, source, outputfile):
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                return
            self.conn_bucket.take(len(chunk))
            self.total_bucket.take(len(chunk))
            outputfile.write(chunk)
            self.stats.add(bytes=len(chunk), wheel_bytes=len(chunk) if self.is_wheel_get else 0)

    def log_message(self, format, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # curl --parallel and many pip processes connect at once

    def handle_error(self, request, client_address):
        # A client that hangs up mid-file (a killed run) is not worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the directory to serve")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (see --port-file)")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--latency-ms", type=float, default=40.0, help="wait before each response (default 40)")
    parser.add_argument("--conn-mbps", type=float, default=48.0, help="megabits/s per connection (default 48 = 6 MB/s; 0: no limit)")
    parser.add_argument("--total-mbps", type=float, default=480.0, help="megabits/s for all connections (default 480 = 60 MB/s; 0: no limit)")
    args = parser.parse_args()
    if not os.path.isdir(args.root):
        parser.error(f"--root {args.root}: not a directory")

    Handler.latency = args.latency_ms / 1000
    Handler.conn_rate = args.conn_mbps * 1e6 / 8
    Handler.total_bucket = Bucket(args.total_mbps * 1e6 / 8, 16 * CHUNK)
    Handler.stats = Stats()
    server = Server(("127.0.0.1", args.port), functools.partial(Handler, directory=args.root))
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as out:
            out.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)  # never seen half-written
    print(f"serving {args.root} on http://127.0.0.1:{port}/ ({args.latency_ms:g} ms per request, "
          f"{args.conn_mbps:g} Mbit/s per connection, {args.total_mbps:g} Mbit/s in all)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
