"""`python -m emulators.azureml --config FILE`: serve the configured Azure ML workspaces over HTTPS on loopback."""

from __future__ import annotations

import argparse
import sys

from .. import launch
from .errors import ConfigError

DESCRIPTION = """\
A local stand-in for Azure Machine Learning (v2), over HTTPS on one port:
  ARM     /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}
          workspace GET; datastores, computes, environments, codes, components, models (+ /versions);
          jobs (PUT runs the command, GET, list, POST cancel, GET .../logs);
          onlineEndpoints and batchEndpoints (+ /deployments) as long-running operations; listKeys; token
  MLflow  {ws path under /mlflow/v1.0}/api/2.0/mlflow/... and /api/2.0/mlflow/... (runs, metrics, experiments)
  score   POST /inference/{endpoint}/score (key or token; header azureml-model-deployment)
  GET /healthz answers 200 once ready; GET /_debug/endpoints/{name} counts served and mirrored requests.
Bearer tokens must equal the config's `token`; any api-version is accepted. The server generates a
CA and a certificate for 127.0.0.1 under --data-dir/tls (reused on restart) and prints the CA path:
trust it with REQUESTS_CA_BUNDLE=<ca.pem>. Jobs run their command in a child process on this machine.
See emulators/azureml/README.md and examples/azureml/workspace.yaml for the config format."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = launch.parser("python -m emulators.azureml", DESCRIPTION, port=8766, data_dir=".azureml-data",
                      data_help="where state lives: SQLite file, job folders and logs, model copies, tls/",
                      workers_help="how many jobs run at once, each in its own process group "
                                   "(default: one per core)")
    p.add_argument("--provisioning-seconds", type=float, default=None,
                   help="how long endpoints and deployments stay Creating/Updating (default: the config's "
                        "provisioning_seconds, else 0.5)")
    p.add_argument("--no-tls", action="store_true",
                   help="serve plain http (Microsoft's SDK then refuses most calls; for debugging only)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from .config import load_config

    config = launch.load("emulators.azureml", args, load_config, ConfigError)
    if config is None:
        return 2
    if args.provisioning_seconds is not None:
        if args.provisioning_seconds < 0:
            launch.refuse("emulators.azureml", "--provisioning-seconds must be at least 0")
            return 2
        config = config.model_copy(update={"provisioning_seconds": args.provisioning_seconds})
    import uvicorn

    from .app import create_app
    from .tls import ensure_tls

    data_dir = args.data_dir.resolve()
    tls = None if args.no_tls else ensure_tls(data_dir / "tls")
    scheme = "http" if tls is None else "https"
    base_url = f"{scheme}://{args.host}:{args.port}"
    app = create_app(config, data_dir, base_url=base_url, tls=tls, enable_faults=args.enable_faults,
                     workers=args.workers)
    if tls is not None:
        print(f"emulators.azureml: serving {base_url}; CA certificate: {tls.ca}", flush=True)
    ssl = {} if tls is None else {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False, **ssl)
    return 0


if __name__ == "__main__":
    sys.exit(main())
