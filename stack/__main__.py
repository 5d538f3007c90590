"""``python -m stack up|down|status``: the local stack of real servers (no Docker).

``up`` installs what is missing (Debian packages when run as root; otherwise it prints the
command to run), then starts PostgreSQL, Redis, ClickHouse, Pushgateway, luigid, the alert
relay, Alertmanager, Prometheus and (when PIPELINE_ELASTICSEARCH_URL is set) the log shipper
under the stack folder on loopback ports and waits until each answers. It is idempotent.
``down`` stops exactly the processes ``up`` started. ``status`` prints each server, its port and
its health, and exits 1 if any is unhealthy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from config.settings import SettingsError, load_settings
from stack.servers import OFF, Server, StackError, all_servers, install_hint, is_root

POLICY_RC = Path("/usr/sbin/policy-rc.d")
# Command-line tools the project and its tests use beside the servers: command -> package.
TOOLS = {
    "psql": "postgresql-client",
    # Spark's driver runs in the Luigi worker (pipeline.systems.spark): a Java runtime.
    "java": "openjdk-17-jre-headless",
    "promtool": "prometheus",
    "docker-compose": "docker-compose",
    # A headless browser: the tests look at the luigid UI as a person would.
    "chromium": "chromium",
}


# Files the project uses beside the servers: path -> package.
FILES = {
    # Spark reads PostgreSQL through Debian's JDBC driver (PIPELINE_SPARK_JDBC_JAR).
    Path("/usr/share/java/postgresql.jar"): "libpostgresql-jdbc-java",
}


def missing_packages(servers: list[Server]) -> list[str]:
    missing = [package for tool, package in TOOLS.items() if shutil.which(tool) is None]
    missing.extend(package for path, package in FILES.items() if not path.is_file())
    for server in servers:
        if server.debian_packages and server.executable() is None:
            missing.extend(server.debian_packages)
    return missing


def install(packages: list[str]) -> None:
    """Install Debian packages without letting their init scripts start default services."""
    if not is_root():
        raise StackError(f"missing packages {', '.join(packages)}; {install_hint(tuple(packages))}")
    print(f"installing {' '.join(packages)} (apt-get) ...", flush=True)
    created_policy = False
    if not POLICY_RC.exists():
        # 101 = "action forbidden": the packages' own services stay stopped; ours run instead.
        POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC.chmod(0o755)
        created_policy = True
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        for cmd in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        ):
            result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise StackError(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    finally:
        if created_policy:
            POLICY_RC.unlink(missing_ok=True)


def up(servers: list[Server]) -> int:
    missing = missing_packages(servers)
    if missing:
        install(sorted(set(missing)))
    for server in servers:
        began = time.monotonic()
        outcome = server.start()
        print(
            f"{server.name:<12} :{server.port:<6} {outcome} ({time.monotonic() - began:.1f}s)",
            flush=True,
        )
    return 0


def down(servers: list[Server]) -> int:
    for server in reversed(servers):
        print(f"{server.name:<12} :{server.port:<6} {server.stop()}", flush=True)
    return 0


def status(servers: list[Server]) -> int:
    print(f"{'server':<12} {'port':<6} {'pid':<8} {'health':<9} detail")
    unhealthy = 0
    for server in servers:
        s = server.status()
        if s.detail == OFF:
            health = "off"
        elif s.healthy and s.running:
            health = "healthy"
        else:
            health = "DOWN" if not s.healthy else "foreign"
        unhealthy += health not in ("healthy", "off")
        print(f"{s.name:<12} {s.port:<6} {s.pid or '-':<8} {health:<9} {s.detail}")
    return 1 if unhealthy else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--only", nargs="*", default=None, help="limit to these servers (by name)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        servers = all_servers(settings)
        if args.only:
            unknown = set(args.only) - {s.name for s in servers}
            if unknown:
                parser.error(f"unknown server(s): {', '.join(sorted(unknown))}")
            servers = [s for s in servers if s.name in args.only]
        settings.paths.stack.mkdir(parents=True, exist_ok=True)
        return {"up": up, "down": down, "status": status}[args.action](servers)
    except (StackError, SettingsError) as exc:
        print(f"stack {args.action}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
