"""A local stand-in for the part of the Databricks REST API that ``delivery.databricks`` calls.

A real ``http.server`` on 127.0.0.1 and a free port: the Databricks SDK talks to it over HTTP exactly as it
would to a workspace, authenticated with a token made for each test (``DATABRICKS_TOKEN``), and every
request is logged so that a test can assert the calls, their payloads and their order.
"""

from __future__ import annotations

import copy
import http.server
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Call:
    """One request the workspace answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeWorkspace:
    """Jobs, runs and volume files, with scripted run outcomes.

    Attributes:
        jobs: ``job_id -> {"job_id": ..., "settings": {...}}`` as the Jobs API 2.2 returns them.
        files: Volume path -> bytes (what the Files API stored).
        submitted_runs: ``run_id -> `` the life-cycle states ``runs/get`` answers in turn (the last one
            repeats), as ``(life_cycle_state, result_state)``.
        run_script: The states each newly submitted run goes through.
        active_runs: ``job_id ->`` runs ``runs/list?active_only=true`` answers (``expand_tasks``).
        pause_history: ``job_id ->`` every pause status its continuous block had, in order; ``RESET`` marks
            the moment a submitted run reported SUCCESS.
        terminating_polls: How many ``runs/get`` polls a cancelled run answers ``TERMINATING`` before
            ``TERMINATED`` (a real run ends its micro-batch and stops its cluster first).
        timeline: What happened to the job's runs, in order: ``cancel <run_id>``, ``<run_id> <state>`` as
            each poll saw it, and ``start`` whenever Databricks would start a new run of a continuous job
            (cancelled while unpaused, or unpaused).
        scopes: The workspace's secret scopes, as ``secrets/scopes/list`` answers them.
        volumes: Full names (``catalog.schema.volume``) of the volumes that exist.
        calls: Every request, in order.
    """

    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    run_script: list[tuple[str, str | None]] = field(default_factory=lambda: [("TERMINATED", "SUCCESS")])
    submitted_runs: dict[int, list[tuple[str, str | None]]] = field(default_factory=dict)
    active_runs: dict[int, list[list[dict[str, Any]]]] = field(default_factory=dict)
    pause_history: dict[int, list[str]] = field(default_factory=dict)
    terminating_polls: int = 0
    cancelled_runs: dict[int, list[str]] = field(default_factory=dict)
    timeline: list[str] = field(default_factory=list)
    scopes: list[dict[str, Any]] = field(default_factory=list)
    volumes: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def add_job(self, job_id: int, settings: dict[str, Any], run_as: str | None = None) -> None:
        """Adds a job (``run_as``: what ``run_as_user_name`` answers); its pause history starts with its
        current status."""
        self.jobs[job_id] = {"job_id": job_id, "settings": copy.deepcopy(settings)}
        if run_as:
            self.jobs[job_id]["run_as_user_name"] = run_as
        self.pause_history[job_id] = [self._pause(job_id)]

    def _continuous(self, job_id: int) -> bool:
        return "continuous" in self.jobs[job_id]["settings"]

    def _pause(self, job_id: int) -> str:
        settings = self.jobs[job_id]["settings"]
        block = settings.get("continuous") or settings.get("schedule") or {}
        return block.get("pause_status", "UNPAUSED")

    def routes(self) -> list[str]:
        """``METHOD path`` of every call, in order."""
        return [f"{c.method} {c.path}" for c in self.calls]

    def bodies(self, route: str) -> list[Any]:
        """The bodies sent to one ``METHOD path``."""
        return [c.body for c in self.calls if f"{c.method} {c.path}" == route]

    # ------------------------------------------------------------------------------------ the endpoints

    def handle(self, call: Call) -> tuple[int, Any]:
        self.calls.append(call)
        route, query, body = f"{call.method} {call.path}", call.query, call.body
        if call.path.startswith("/api/2.0/fs/files/"):
            target = unquote(call.path.removeprefix("/api/2.0/fs/files"))
            if call.method == "PUT":
                self.files[target] = body
                return 204, None
            if call.method in ("GET", "HEAD"):
                return (200, self.files[target]) if target in self.files else _not_found(target)
        if route == "GET /api/2.2/jobs/list":
            wanted = query.get("name")
            found = [j for j in self.jobs.values() if wanted in (None, j["settings"].get("name"))]
            return 200, {"jobs": copy.deepcopy(found), "has_more": False} if found else {"has_more": False}
        if route == "GET /api/2.2/jobs/get":
            job_id = int(query["job_id"])
            return (200, copy.deepcopy(self.jobs[job_id])) if job_id in self.jobs else _not_found(job_id)
        if route == "POST /api/2.2/jobs/update":
            job_id = int(body["job_id"])
            before = self._pause(job_id)
            self.jobs[job_id]["settings"].update(copy.deepcopy(body.get("new_settings", {})))
            self.pause_history[job_id].append(self._pause(job_id))
            if self._continuous(job_id) and (before, self._pause(job_id)) == ("PAUSED", "UNPAUSED"):
                self.timeline.append("start")
            return 200, {}
        if route == "POST /api/2.2/jobs/runs/cancel-all":
            job_id = int(body["job_id"])
            script = self.active_runs.pop(job_id, [])
            for run in script[0] if script else []:
                self.timeline.append(f"cancel {run['run_id']}")
                self.cancelled_runs[run["run_id"]] = ["TERMINATING"] * self.terminating_polls + ["TERMINATED"]
            if self._continuous(job_id) and self._pause(job_id) == "UNPAUSED":
                self.timeline.append("start")
            return 200, {}
        if route == "GET /api/2.2/jobs/runs/list":
            script = self.active_runs.get(int(query["job_id"]), [])
            runs = script.pop(0) if len(script) > 1 else (script[0] if script else [])
            return 200, {"runs": copy.deepcopy(runs), "has_more": False} if runs else {"has_more": False}
        if route == "POST /api/2.2/jobs/runs/submit":
            run_id = 1000 + len(self.submitted_runs)
            self.submitted_runs[run_id] = list(self.run_script)
            return 200, {"run_id": run_id}
        if route == "GET /api/2.2/jobs/runs/get" and int(query["run_id"]) in self.cancelled_runs:
            run_id = int(query["run_id"])
            lives = self.cancelled_runs[run_id]
            life = lives.pop(0) if len(lives) > 1 else lives[0]
            self.timeline.append(f"{run_id} {life}")
            return 200, {"run_id": run_id, "state": {"life_cycle_state": life}}
        if route == "GET /api/2.0/secrets/scopes/list":
            return 200, {"scopes": copy.deepcopy(self.scopes)} if self.scopes else {}
        if call.path.startswith("/api/2.1/unity-catalog/volumes/") and call.method == "GET":
            name = unquote(call.path.removeprefix("/api/2.1/unity-catalog/volumes/"))
            return (200, {"full_name": name}) if name in self.volumes else _not_found(name)
        if route == "GET /api/2.2/jobs/runs/get":
            run_id = int(query["run_id"])
            states = self.submitted_runs[run_id]
            life, result = states.pop(0) if len(states) > 1 else states[0]
            if result == "SUCCESS":
                for history in self.pause_history.values():
                    if "RESET" not in history:
                        history.append("RESET")
            state = {"life_cycle_state": life, "state_message": f"run {life.lower()}"}
            if result:
                state["result_state"] = result
            return 200, {"run_id": run_id, "state": state, "run_page_url": f"https://workspace/run/{run_id}"}
        return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no fake for {route}"}

    def unpaused_before_the_reset(self, job_id: int) -> bool:
        """Whether the job could run (UNPAUSED) before a reset run succeeded."""
        history = self.pause_history[job_id]
        done = history.index("RESET") if "RESET" in history else len(history)
        return "UNPAUSED" in history[:done]


def api_settings(body: dict[str, Any], wheel_uri: str) -> dict[str, Any]:
    """A synthesized ``databricks_job`` (Terraform's shape) as the Jobs API returns its settings, once
    terraform applied it with ``pulse_wheel_uri = wheel_uri``."""
    text = json.dumps(body).replace("${var.pulse_wheel_uri}", wheel_uri)
    job = json.loads(text)
    settings: dict[str, Any] = {"name": job["name"]}
    for block in ("continuous", "schedule", "trigger"):
        if isinstance(job.get(block), dict):
            settings[block] = job[block]
    settings["job_clusters"] = job.get("job_cluster", [])
    settings["tasks"] = [
        {**{k: v for k, v in task.items() if k != "library"}, "libraries": task.get("library", [])}
        for task in job.get("task", [])
    ]
    return settings


def _not_found(what: object) -> tuple[int, Any]:
    return 404, {"error_code": "NOT_FOUND", "message": f"{what} does not exist"}


@contextmanager
def serve(workspace: FakeWorkspace) -> Iterator[dict[str, str]]:
    """Serves the workspace; yields the ``DATABRICKS_*`` variables that point the SDK at it."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            if self.path.startswith("/.well-known/"):  # the SDK's optional host-metadata discovery
                self._send(404, {"error_code": "NOT_FOUND", "message": "no host metadata"})
                return
            if self.headers.get("Authorization") != f"Bearer {workspace.token}":
                self._send(401, {"error_code": "UNAUTHENTICATED", "message": "bad token"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            is_json = "json" in (self.headers.get("Content-Type") or "")
            body = json.loads(raw) if raw and is_json else raw
            status, payload = workspace.handle(Call(self.command, parts.path, query, body))
            self._send(status, payload)

        def _send(self, status: int, payload: Any) -> None:
            data = (
                payload
                if isinstance(payload, bytes)
                else b""
                if payload is None
                else json.dumps(payload).encode()
            )
            self.send_response(status)
            kind = "application/octet-stream" if isinstance(payload, bytes) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            "DATABRICKS_HOST": f"http://127.0.0.1:{server.server_port}",
            "DATABRICKS_TOKEN": workspace.token,
            "DATABRICKS_AUTH_TYPE": "pat",
        }
    finally:
        server.shutdown()
        server.server_close()
