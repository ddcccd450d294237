"""``rnnforecast serve --ray``: the same Starlette app as a Ray Serve deployment, its replicas spread over a cluster.

Every replica builds the app of :mod:`rnnforecast.serve` (each run loaded once per replica), so answers, errors and
metrics are the ones of the plain server. The run directories must be readable at the same paths on every node.
"""

from __future__ import annotations

import signal
import time

from .errors import ConfigError
from .serve import Options, Runs, check_address, create_app


def _stop(signum, frame):
    raise KeyboardInterrupt


def application(options: Options, replicas: int = 1):
    """The bound Ray Serve application: ``replicas`` copies of the app, each loading the runs at start."""
    from ray import serve

    def build():
        return create_app(options)

    deployment = serve.deployment(serve.ingress(build)(), name="rnnforecast", num_replicas=replicas)
    return deployment.bind()


def run(options: Options, host: str, port: int, replicas: int = 1, address: str | None = None) -> None:
    """Check the runs here, start Ray Serve's HTTP proxy on ``host:port`` and serve until SIGTERM or Ctrl-C."""
    try:
        import ray
        from ray import serve
    except ImportError:
        raise ConfigError("Ray Serve is not installed", where="--ray", fix='pip install "ray[serve]>=2.9,<3"') from None
    check_address(host, port)
    Runs(options.runs).load_all()  # a damaged run is one clean error line before Ray starts
    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    signal.signal(signal.SIGTERM, _stop)  # Ray's own handler aborts the process
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(application(options, replicas), name="rnnforecast", route_prefix="/")
        while True:  # SIGTERM and Ctrl-C raise KeyboardInterrupt here
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
