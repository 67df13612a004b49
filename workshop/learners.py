"""Simulated learners for the workshop hub, as hubtraf does it; for its test and its load test.

:class:`LocalHub` starts ``workshop/start`` on 127.0.0.1 on free ports, in a
folder of its own. :class:`Learner` does what a learner's browser does, through
the REST and websocket APIs: log in with the room's password, start a server,
open a kernel, run code in it. Each step's duration is kept in
:attr:`Learner.seconds`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from contextlib import asynccontextmanager, closing
from pathlib import Path

import aiohttp

START = Path(__file__).resolve().parent / "start"


class HubError(RuntimeError):
    """The hub, a learner's server or a kernel did not do what a learner asked."""


def free_port_block(n: int = 3) -> int:
    """A port ``p`` on 127.0.0.1 such that ``p`` to ``p + n - 1`` are all free now."""
    def free(port: int) -> bool:
        with closing(socket.socket()) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
            return True

    for _ in range(100):
        with closing(socket.socket()) as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n <= 65535 and all(free(base + i) for i in range(1, n)):
            return base
    raise HubError(f"found no {n} consecutive free ports on 127.0.0.1")


class LocalHub:
    """The workshop hub on 127.0.0.1, for tests and benchmarks; a context manager.

    Parameters
    ----------
    directory
        Becomes ``ALMAT_HUB_DIR``: the database, the log ``hub.log`` and ``learners/NAME``.
    password
        The room's password.
    timeout
        Seconds to wait for the hub to answer.
    **settings
        Other settings, e.g. ``threads="off"`` for ``ALMAT_HUB_THREADS=off``.
    """

    def __init__(self, directory: str | os.PathLike, password: str = "argyrodite-room",
                 timeout: float = 120, **settings: str):
        self.directory = Path(directory)
        self.password = password
        self.timeout = timeout
        self.settings = settings
        self.port = free_port_block()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.directory / "hub.log"
        self._process: subprocess.Popen | None = None

    def learner_folder(self, name: str) -> Path:
        """Where learner ``name`` works."""
        return self.directory / "learners" / name

    def __enter__(self) -> LocalHub:
        self.directory.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALMAT_HUB_")}
        env.update({f"ALMAT_HUB_{k.upper()}": str(v) for k, v in self.settings.items()})
        env.update(ALMAT_HUB_PASSWORD=self.password, ALMAT_HUB_DIR=str(self.directory),
                   ALMAT_HUB_PORT=str(self.port), ALMAT_HUB_IP="127.0.0.1")
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(["bash", str(START)], env=env, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise HubError(f"the hub exited with status {self._process.returncode}; "
                               f"its log {self.log} ends: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                if b"JupyterHub is now running" in self.log.read_bytes():
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise HubError(f"the hub did not start within {self.timeout} s; see {self.log}")

    def __exit__(self, *exc) -> None:
        """Stop the hub, which stops the learners' servers; kill what is left after 60 s."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def log_tail(self, n: int = 15) -> str:
        """The last ``n`` lines of the hub's log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


class Learner:
    """One learner at the hub, driven through its REST and websocket APIs.

    Use as ``async with Learner(url, name, password) as learner:``; the steps
    are :meth:`log_in`, :meth:`start_server`, :meth:`start_kernel` and
    :meth:`run`, each timed in :attr:`seconds` under its name.
    """

    def __init__(self, hub_url: str, name: str, password: str, timeout: float = 300):
        self.hub_url = hub_url
        self.name = name
        self.password = password
        self.timeout = timeout
        self.seconds: dict[str, float] = {}
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._kernel: str | None = None

    async def __aenter__(self) -> Learner:
        self._session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for 127.0.0.1
            timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self

    async def __aexit__(self, *exc) -> None:
        await self._session.close()

    @asynccontextmanager
    async def timed(self, step: str):
        """Record the wall time of the block as ``seconds[step]``."""
        start = time.perf_counter()
        yield
        self.seconds[step] = time.perf_counter() - start

    @property
    def _auth(self) -> dict:
        return {"Authorization": f"token {self._token}"}

    @property
    def server_url(self) -> str:
        return f"{self.hub_url}/user/{self.name}"

    async def log_in(self) -> None:
        """Log in through the hub's login form, then get an API token with the login's cookie."""
        async with self.timed("log in"):
            async with self._session.get(f"{self.hub_url}/hub/login") as r:
                r.raise_for_status()
            xsrf = self._cookie("_xsrf")
            form = {"username": self.name, "password": self.password, "_xsrf": xsrf}
            async with self._session.post(f"{self.hub_url}/hub/login", data=form,
                                          allow_redirects=False) as r:
                if r.status != 302:
                    raise HubError(f"{self.name} could not log in: HTTP {r.status}")
            async with self._session.post(
                    f"{self.hub_url}/hub/api/users/{self.name}/tokens",
                    json={"note": "simulated learner"},
                    headers={"X-XSRFToken": self._cookie("_xsrf")}) as r:
                r.raise_for_status()
                self._token = (await r.json())["token"]

    def _cookie(self, name: str) -> str:
        for cookie in self._session.cookie_jar:
            if cookie.key == name:
                return cookie.value
        raise HubError(f"the hub set no {name} cookie for {self.name}")

    async def hub_api(self, method: str, path: str, **kwargs) -> dict | None:
        """Call the hub's REST API as this learner; ``path`` below ``/hub/api``."""
        async with self._session.request(method, f"{self.hub_url}/hub/api{path}",
                                         headers=self._auth, **kwargs) as r:
            r.raise_for_status()
            return await r.json() if r.content_length != 0 and r.status != 204 else None

    async def server_api(self, method: str, path: str, **kwargs) -> dict | list | None:
        """Call the learner's own Jupyter server's REST API; ``path`` below ``/api``."""
        async with self._session.request(method, f"{self.server_url}/api{path}",
                                         headers=self._auth, **kwargs) as r:
            r.raise_for_status()
            return await r.json() if r.status != 204 else None

    async def start_server(self) -> None:
        """Ask the hub for this learner's server and wait until it is ready."""
        async with self.timed("start server"):
            await self.hub_api("POST", f"/users/{self.name}/server")
            while not await self.server_ready():
                await asyncio.sleep(0.5)

    async def server_ready(self) -> bool:
        """Whether the hub reports this learner's server as running and ready."""
        model = await self.hub_api("GET", f"/users/{self.name}")
        return bool(model["servers"].get("", {}).get("ready"))

    async def start_kernel(self) -> None:
        """Start a Python kernel in the learner's server and check that it answers."""
        async with self.timed("start kernel"):
            kernel = await self.server_api("POST", "/kernels", json={"name": "python3"})
            self._kernel = kernel["id"]
            await self.run("pass", step=None)

    async def run(self, code: str, step: str | None = "run") -> str:
        """Run ``code`` in the learner's kernel as a notebook cell does; returns what it printed.

        Its wall time goes to ``seconds[step]`` if it succeeds; if the code
        fails, :class:`HubError` says with which exception.
        """
        url = f"{self.server_url}/api/kernels/{self._kernel}/channels".replace("http", "ws", 1)
        msg_id = uuid.uuid4().hex
        request = {
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.name,
                       "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }
        printed, error, replied, idle = [], None, False, False
        start = time.perf_counter()
        async with self._session.ws_connect(url, headers=self._auth, max_msg_size=0) as ws:
            await ws.send_str(json.dumps(request))
            while not (replied and idle):
                message = await ws.receive_json(timeout=self.timeout)
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    printed.append(content["text"])
                elif kind == "error":
                    error = f"{content['ename']}: {content['evalue']}"
                elif kind == "execute_reply":
                    replied = True
                elif kind == "status" and content["execution_state"] == "idle":
                    idle = True
        if error is not None:
            raise HubError(f"{self.name}'s kernel raised {error}")
        if step is not None:
            self.seconds[step] = time.perf_counter() - start
        return "".join(printed)
