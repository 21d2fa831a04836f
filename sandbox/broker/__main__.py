"""`python -m sandbox.broker`: the broker's container entry program.

Everything it needs arrives as one JSON line on stdin (`BrokerPayload`), the way the Expert's secrets do:
the provider, its settings, the env values holding the credential, the run's placeholder token, and the CA
bundle to verify the provider with. Nothing is in argv, the environment or a file, so `docker inspect`,
`ps` and the image show none of it. Then it serves on `--port` (all addresses: the internal network is the
only one the Expert reaches it on), prints `READY_LINE` once it accepts connections, and one JSON line per
decision (`Decision.to_line`) for the host to turn into `proxyAccess` events. A bad payload is one line on
stderr and exit 2.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["READY_LINE", "BrokerPayload", "main"]

READY_LINE = "sandbox-broker: ready"


class BrokerPayload(BaseModel):
    """The broker's stdin line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    setting: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str]
    token: str = Field(min_length=16)
    ca_pem: str | None = Field(default=None, alias="caPem")


def _fail(message: str) -> int:
    print(f"sandbox broker: {message}", file=sys.stderr, flush=True)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.broker")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - the internal network's address
    args = parser.parse_args(argv)
    raw = sys.stdin.readline()
    try:
        payload = BrokerPayload.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the line"
        return _fail(f"expects one JSON line on stdin: {where}: {first['msg']}")

    from . import broker_app, missing_credentials, route_for

    try:
        route = route_for(payload.provider, payload.setting, payload.env)
    except ValueError as exc:
        return _fail(str(exc))
    missing = missing_credentials(route, payload.env)
    if missing:
        return _fail(f"no value for {', '.join(missing)}")
    verify: ssl.SSLContext | bool = True
    if payload.ca_pem:
        verify = ssl.create_default_context(cadata=payload.ca_pem)

    def log(decision: Any) -> None:
        print(decision.to_line(), flush=True)

    app = broker_app(route, payload.env, token=payload.token, log=log, verify=verify)
    import uvicorn

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            print(READY_LINE, flush=True)

    server = _Server(
        uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    )
    server.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
