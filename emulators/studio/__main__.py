"""`python -m emulators.studio --config FILE`: serve the configured workspaces on loopback until stopped."""

from __future__ import annotations

import argparse
import sys

from .. import launch
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
    p = launch.parser("python -m emulators.studio", DESCRIPTION, port=8765, data_dir=".emulator-data",
                      data_help="where state lives: SQLite file and model copies",
                      workers_help="how many training jobs run at once, each in its own process "
                                   "(default: one per core)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from .config import load_config

    config = launch.load("emulators.studio", args, load_config, ConfigError)
    if config is None:
        return 2
    import uvicorn

    from .app import create_app

    app = create_app(config, args.data_dir.resolve(), enable_faults=args.enable_faults, workers=args.workers)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
