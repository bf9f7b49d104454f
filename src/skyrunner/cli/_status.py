"""``skyrunner status``: what a running ``skyrunner run`` is doing, read from its listen address."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import httpx2 as httpx

from skyrunner.cli._app import config_option, skyrunner
from skyrunner.config import load_config
from skyrunner.errors import ConfigError, SkyrunnerError

__all__ = ["status"]


def _address(listen_address: str | None, config_path: Path) -> str:
    address = listen_address or (load_config(config_path).listen_address if config_path.exists() else None)
    if not address:
        raise ConfigError(f"{config_path}: no listen_address; give --listen-address host:port")
    host, _, port = address.rpartition(":")
    return f"{host.strip('[]') if host not in ('', '0.0.0.0', '::') else '127.0.0.1'}:{port}"


def _fetch(address: str) -> dict[str, Any]:
    try:
        response = httpx.get(f"http://{address}/status", timeout=5.0)
    except httpx.TransportError as exc:
        raise SkyrunnerError(f"no skyrunner answering on {address}: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise SkyrunnerError(f"{address}/status answered {response.status_code}")
    data = response.json()
    if not isinstance(data, dict):
        raise SkyrunnerError(f"{address}/status did not answer a status object")
    return data


@skyrunner.command()
@config_option
@click.option("--listen-address", help="host:port of the runner's metrics server (default: from config)")
def status(config_path: Path, listen_address: str | None) -> None:
    """Show the runners, their jobs in flight and the last errors of a running skyrunner."""
    data = _fetch(_address(listen_address, config_path))
    click.echo(f"concurrent: {data.get('concurrent')}")
    for runner in data.get("runners", []):
        jobs = runner.get("jobs", [])
        limit = runner.get("limit") or "none"
        click.echo(
            f"{runner['name']:<20} {runner['runner']:<10} {runner['executor']:<11} jobs={len(jobs)} limit={limit}"
        )
        for job in jobs:
            click.echo(f"    job {job['id']:<10} {job['stage']:<18} {job['elapsed_s']:.0f}s")
    errors = data.get("last_errors", [])
    click.echo(f"last errors: {len(errors)}")
    for entry in errors[-10:]:
        when = time.strftime("%H:%M:%S", time.localtime(entry["time"]))
        click.echo(f"    {when} {entry['level']:<7} {entry['message']}")
