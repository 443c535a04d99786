"""A local CA and a server certificate for 127.0.0.1/localhost (trustme), kept under the data dir.

Azure's clients refuse to send bearer tokens over plain http, so the service speaks TLS;
clients trust `ca.pem` through `REQUESTS_CA_BUNDLE` or an explicit CA path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    """Where the CA (for clients) and the server's certificate chain and key (for uvicorn) are."""

    ca: Path
    cert: Path
    key: Path


def ensure_tls(folder: Path) -> TlsFiles:
    """Reuse the files from an earlier start (clients keep trusting the same CA), else generate them."""
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if files.ca.exists() and files.cert.exists() and files.key.exists():
        return files
    ca = trustme.CA(organization_name="emulators.azureml local CA")
    server = ca.issue_cert("127.0.0.1", "localhost", "::1")
    server.private_key_pem.write_to_path(str(files.key))
    files.key.chmod(0o600)
    server.cert_chain_pems[0].write_to_path(str(files.cert))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(files.cert), append=True)
    ca.cert_pem.write_to_path(str(files.ca))  # last: its presence says the set is complete
    return files
