"""`python -m devhost`: run the Functions app locally against Azurite, like `func start` where Core Tools is missing."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from .errors import DevHostError
from .host import DevHost


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    p.add_argument("--app", default="function_app", help="module holding the FunctionApp (default: function_app)")
    p.add_argument("--script-root", type=Path, default=Path("."),
                   help="folder with host.json, local.settings.json and the app module (default: .)")
    p.add_argument("--port", type=int, default=None,
                   help="HTTP port on 127.0.0.1 (default: Host.LocalHttpPort in local.settings.json, else 7071; "
                        "0 = any free port)")
    p.add_argument("--settings", type=Path, default=None,
                   help="settings file (default: <script-root>/local.settings.json, optional)")
    p.add_argument("--poll-interval", type=float, default=0.1,
                   help="seconds between polls while work is arriving (default 0.1)")
    p.add_argument("--max-polling-interval", type=float, default=None,
                   help="cap of the idle back-off in seconds (default: host.json maxPollingInterval, at most 2)")
    p.add_argument("--workers", type=int, default=None, help="invocation threads (default: min(32, cpus + 4))")
    p.add_argument("--queue-lease", type=float, default=30.0,
                   help="seconds a received queue message stays invisible, renewed while running (default 30)")
    p.add_argument("--shutdown-timeout", type=float, default=10.0,
                   help="seconds to wait for running invocations on SIGINT/SIGTERM (default 10)")
    p.add_argument("--no-timers", action="store_true",
                   help="do not run timer schedules (fire them with POST /admin/functions/{name})")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging (HTTP access lines too)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[%(asctime)s] %(message)s", stream=sys.stderr)
    for noisy in ("azure", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("devhost").info("devhost: %s received", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    host = DevHost(app_module=args.app, script_root=args.script_root, port=args.port, settings_file=args.settings,
                   poll_interval=args.poll_interval, max_polling_interval=args.max_polling_interval,
                   workers=args.workers, queue_lease=args.queue_lease, shutdown_timeout=args.shutdown_timeout,
                   run_timers=not args.no_timers)
    try:
        host.start()
    except DevHostError as e:
        print(f"devhost: error: {e}", file=sys.stderr)
        return 2
    logging.getLogger("devhost").info("devhost: listening on %s (Ctrl+C to stop)", host.url)
    while not stop.wait(0.5):
        pass
    host.stop()
    logging.getLogger("devhost").info("devhost: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
