"""``avmon serve --streams FILE [--port N]``: many live streams in one process, with HTTP."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from avmon.cli.common import port, seconds


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("serve", help="monitor many live streams in one process (HTTP metrics)")
    p.add_argument("--streams", type=Path, required=True,
                   help="JSON or YAML: {streams: [{id, source, detectors, sinks}]}; reloaded"
                        " when it changes")
    p.add_argument("--port", type=port, default=8080, help="HTTP port (0: any free port)")
    p.add_argument("--host", default="0.0.0.0", help="HTTP address (default all)")
    p.add_argument("--leases", metavar="TABLE",
                   help="DynamoDB lease table: share the streams with other serve processes")
    p.add_argument("--lease-seconds", type=seconds, default=30.0,
                   help="a dead process's streams are taken over within this (default 30)")
    p.add_argument("--spool-dir", type=Path, default=None,
                   help="where undelivered webhook/SNS events wait, per stream"
                        " (default ~/.local/state/avmon/spool)")
    p.add_argument("--poll", type=seconds, default=1.0,
                   help="seconds between checks of the streams file (default 1)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from avmon.monitor.leases import LeaseManager
    from avmon.monitor.service import Service, ServiceHttp

    leases = None
    if args.leases:
        from avmon.monitor.aws_leases import DynamoLeaseStore
        owner = f"{socket.gethostname()}-{os.getpid()}"
        from botocore.exceptions import BotoCoreError, ClientError

        from avmon.errors import ConfigError
        try:
            store = DynamoLeaseStore(args.leases)
            store.scan()  # a missing table or no permission: one line now, not an idle task
        except (BotoCoreError, ClientError) as exc:  # no region, no credentials, access denied
            raise ConfigError(f"lease table {args.leases}: {exc}") from None
        leases = LeaseManager(store, owner, lease_s=args.lease_seconds)
    from avmon.cli.watch import _default_spool
    service = Service(args.streams, leases=leases, poll_s=args.poll,
                      spool_dir=args.spool_dir or _default_spool())
    http = ServiceHttp(service, args.host, args.port)
    http.start()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sys.stderr.write(f"avmon serve: {len(service.status()['configured'])} streams from"
                     f" {args.streams}; http://{args.host}:{http.port}/metrics\n")
    sys.stderr.flush()
    try:
        service.run(stop)
    finally:
        http.close()
    # Every stream's threads have closed their inputs by now (Service.shutdown waits for them):
    # one still inside FFmpeg as the interpreter exits can crash it, so it is named.
    left = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    if left:
        sys.stderr.write(f"avmon serve: threads still running at exit: {', '.join(left)}\n")
    sys.stderr.write("avmon serve: stopped\n")
    return 0
