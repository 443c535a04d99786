"""`python -m emulators.studio --config FILE`: serve the configured workspaces on loopback until stopped."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .errors import ConfigError

DESCRIPTION = """\
A local stand-in for Azure ML Studio (classic) web services, on one HTTP port:
  BES    POST/GET/DELETE /workspaces/{ws}/services/{svc}/jobs[/{id}[/start]]?api-version=2.0
  RRS    POST /workspaces/{ws}/services/{svc}/execute?api-version=2.0&details=true
         GET  /workspaces/{ws}/services/{svc}/swagger.json
  mgmt   /workspaces/{ws}/webservices/{svc}/endpoints[/{ep}[/refresh]]
  ARM    /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearning/webServices/{name}
         (scoring: POST /subscriptions/{sub}/services/{name}/execute?api-version=2.0)
  GET /healthz answers 200 once the server is ready; GET /_debug/jobs[/{id}] shows job measurements.
Training jobs really train (scikit-learn) on the CSV read from blob storage (e.g. Azurite).
State (endpoints, models, ARM definitions, jobs) persists under --data-dir.
See emulators/studio/README.md and emulators/studio/examples/workspace.yaml for the config format."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m emulators.studio", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, type=Path,
                   help="workspace config file (.json, .yaml or .yml); ${ENV_VAR} and ${ENV_VAR:-default} "
                        "in string values are replaced from the environment")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default: 8765)")
    p.add_argument("--data-dir", type=Path, default=Path(".emulator-data"),
                   help="where state lives: SQLite file and model copies (default: ./.emulator-data)")
    p.add_argument("--enable-faults", action="store_true",
                   help="serve the /_admin routes (fault injection, request log); without it they answer 404")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="how many training jobs run at once, each in its own process (default: one per core)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="server log level (default: info)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .config import load_config

    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"emulators.studio: {e}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("emulators.studio: --workers must be at least 1", file=sys.stderr)
        return 2
    import uvicorn

    from .app import create_app

    app = create_app(config, args.data_dir.resolve(), enable_faults=args.enable_faults, workers=args.workers)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
