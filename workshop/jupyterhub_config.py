"""JupyterHub for a workshop room on one Linux machine: ``bash workshop/start``.

Learners open the hub's address, log in with any name and the room's shared
password, and get JupyterLab in their own folder with their own copy of the
lesson's notebooks, running in the lesson's Python environment (this one).
Everything is set through environment variables, read once below:

=========================  =================================================  =================
variable                   meaning                                            default
=========================  =================================================  =================
ALMAT_HUB_PASSWORD         the room's shared password (8 characters or more)  required
ALMAT_HUB_ADMIN_PASSWORD   password of the admin user ``instructor``          no admin
                           (32 characters or more)
ALMAT_HUB_PORT             port learners connect to; the hub and the proxy's  8000
                           API take the next two
ALMAT_HUB_IP               address to listen on (``127.0.0.1``: this          all addresses
                           machine only)
ALMAT_HUB_DIR              the hub's database and the learners' folders       ~/almat-workshop
                           (``learners/NAME``)
ALMAT_HUB_MEMORY           address space of each learner process (bytes, or   4G
                           with K, M, G, T)
ALMAT_HUB_THREADS          threads for torch, OpenMP, BLAS and numba in each  1
                           learner's kernels; ``off``: the libraries' default
                           (one per core)
ALMAT_HUB_IDLE_TIMEOUT     seconds without activity before a learner's        3600
                           server is stopped (labels and saved notebooks stay)
=========================  =================================================  =================

Learners' JupyterLab takes its settings from ``workshop/jupyter/``: no news
feed, update check or extension installs, which would reach the internet and
ask every learner a question. The proxy is JupyterHub's configurable-http-proxy
from npm, in this environment (``npm install --global --prefix "$VIRTUAL_ENV"
configurable-http-proxy@5.1``) or on the PATH.

Learners are not separated from each other: every server runs as the Unix user
that started the hub (JupyterHub's ``SimpleLocalProcessSpawner``), and the
shared password lets anyone log in under any name. That suits a room for a
day on a machine kept for the workshop, not private data.
"""

import os
import re
import resource
import shutil
import sys
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner

from almat.notebooks import copy_notebooks

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

HERE = Path(__file__).resolve().parent
#: Environment variables that cap the thread pools of torch (it reads OMP_NUM_THREADS),
#: OpenMP, OpenBLAS, MKL and numba in every learner process.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def refuse(message: str) -> None:
    """Stop before starting anything, with one line that says what to do."""
    print(f"workshop: {message}", file=sys.stderr)
    raise SystemExit(2)


def setting(name: str, default: str) -> str:
    """The environment variable ``name``, or ``default`` when it is unset or empty."""
    return os.environ.get(name) or default


def first_copy(folder: Path) -> None:
    """Give a learner their own copy of the lesson's notebooks (``almat notebooks``) at their first
    start; later starts leave the folder, and the learner's work in it, as it is."""
    if not any(folder.glob("*.ipynb")):
        copy_notebooks(folder)


class LearnerSpawner(SimpleLocalProcessSpawner):
    """A learner's JupyterLab in their own folder, with its address space capped at ``mem_limit``.

    Without systemd or cgroups to hand, the cap is the kernel's per-process
    resource limit ``RLIMIT_AS``, set in the new process before it starts; the
    learner's kernels inherit it. Each process gets the whole cap: an
    allocation beyond it fails with ``MemoryError`` in that process alone.
    """

    def make_preexec_fn(self, name):
        enter_home = super().make_preexec_fn(name)
        limit = self.mem_limit

        def preexec():
            enter_home()
            if limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        return preexec


password = os.environ.get("ALMAT_HUB_PASSWORD", "")
if len(password) < 8:
    refuse("set the room's password, 8 characters or more, in ALMAT_HUB_PASSWORD "
           "(e.g. ALMAT_HUB_PASSWORD=lithium-argyrodite bash workshop/start).")
port_text = setting("ALMAT_HUB_PORT", "8000")
if not port_text.isdigit() or not 0 < int(port_text) < 65534:
    refuse(f"ALMAT_HUB_PORT={port_text!r} is not a port number; use e.g. 8000 "
           "(the next two ports are taken too).")
port = int(port_text)
threads = setting("ALMAT_HUB_THREADS", "1")
if threads != "off" and not (threads.isdigit() and int(threads) > 0):
    refuse(f"ALMAT_HUB_THREADS={threads!r}: give a number of threads such as 1, or off.")
idle_timeout = setting("ALMAT_HUB_IDLE_TIMEOUT", "3600")
if not idle_timeout.isdigit() or int(idle_timeout) < 1:
    refuse(f"ALMAT_HUB_IDLE_TIMEOUT={idle_timeout!r}: give a number of seconds, e.g. 3600.")
memory = setting("ALMAT_HUB_MEMORY", "4G")
if not re.fullmatch(r"\d+(\.\d+)?[KMGT]?", memory):
    refuse(f"ALMAT_HUB_MEMORY={memory!r}: give bytes with a unit K, M, G or T, e.g. 4G.")
state = Path(setting("ALMAT_HUB_DIR", "~/almat-workshop")).expanduser().resolve()
state.mkdir(parents=True, exist_ok=True)
bin_dir = Path(sys.executable).parent  # the lesson's environment
proxy = shutil.which("configurable-http-proxy",
                     path=os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]))
if proxy is None:
    refuse("the proxy configurable-http-proxy is missing: install it with "
           "npm install --global --prefix \"$VIRTUAL_ENV\" configurable-http-proxy@5.1 "
           "(Node.js 18 or newer).")

# Where learners connect, and the two ports inside the machine.
c.JupyterHub.bind_url = f"http://{setting('ALMAT_HUB_IP', '')}:{port}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{port + 1}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{port + 2}"
c.ConfigurableHTTPProxy.command = [proxy]
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")

# One password for the room; any name a learner types becomes their account.
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = password
c.Authenticator.allow_all = True
c.Authenticator.username_pattern = r"^[a-z0-9][a-z0-9_-]{0,31}$"  # also a folder name
if os.environ.get("ALMAT_HUB_ADMIN_PASSWORD"):
    c.SharedPasswordAuthenticator.admin_password = os.environ["ALMAT_HUB_ADMIN_PASSWORD"]
    c.Authenticator.admin_users = {"instructor"}

# Each learner: JupyterLab from this environment, in their own folder, within limits.
c.JupyterHub.spawner_class = LearnerSpawner
c.LearnerSpawner.home_dir_template = str(state / "learners" / "{username}")
c.Spawner.cmd = [str(bin_dir / "jupyterhub-singleuser")]
if os.geteuid() == 0:  # Jupyter refuses root unless told; run the hub as an ordinary user
    c.Spawner.args = ["--ServerApp.allow_root=True"]
c.Spawner.default_url = "/lab"
c.Spawner.pre_spawn_hook = lambda spawner: first_copy(Path(spawner.home_dir))
c.Spawner.mem_limit = memory
c.Spawner.environment = {"JUPYTER_CONFIG_PATH": str(HERE / "jupyter"),
                         **({} if threads == "off" else dict.fromkeys(THREAD_VARIABLES, threads))}
c.Spawner.start_timeout = 180  # a room logging in at once on a busy machine
c.Spawner.http_timeout = 120

# Stop servers nobody has used for a while; their files stay.
c.JupyterHub.services = [{
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={idle_timeout}"],
}]
c.JupyterHub.load_roles = [{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}]
