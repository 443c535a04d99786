"""What both emulators' `python -m` entry points share: the common options, logging, the config and its errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable


def parser(prog: str, description: str, *, port: int, data_dir: str, data_help: str,
           workers_help: str) -> argparse.ArgumentParser:
    """The options every emulator takes (config, loopback address, port, data dir, workers, faults, log level)."""
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, type=Path,
                   help="workspace config file (.json, .yaml or .yml); ${ENV_VAR} and ${ENV_VAR:-default} "
                        "in string values are replaced from the environment")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=port, help=f"TCP port (default: {port})")
    p.add_argument("--data-dir", type=Path, default=Path(data_dir), help=f"{data_help} (default: ./{data_dir})")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help=workers_help)
    p.add_argument("--enable-faults", action="store_true",
                   help="serve the /_admin routes (fault injection, request log); without it they answer 404")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="server log level (default: info)")
    return p


def load(name: str, args: argparse.Namespace, load_config: Callable[[Path], Any],
         config_error: type[Exception]) -> Any | None:
    """Logging set up and the config read; None (after saying why on stderr) if the config or options are bad."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except config_error as e:
        return refuse(name, str(e))
    if args.workers < 1:
        return refuse(name, "--workers must be at least 1")
    return config


def refuse(name: str, why: str) -> None:
    print(f"{name}: {why}", file=sys.stderr)
    return None
