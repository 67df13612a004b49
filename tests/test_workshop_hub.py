"""The workshop server end to end: two learners log in to a real JupyterHub and label in kernels.

Everything runs on 127.0.0.1, on ports found free at run time. The hub needs
``pip install -e ".[workshop]"`` (README: Workshop server); without it these
tests fail in CI and are skipped elsewhere.
"""

import asyncio
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from traitlets.config import Config

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "workshop"), str(REPO / "tests" / "browser")]

try:
    import jupyterhub  # noqa: F401
    from learners import HubError, Learner, LocalHub
    from browser_util import launch_chromium, screenshot
except ImportError as missing:
    message = (f"the workshop server is not installed ({missing}); "
               "install it with pip install -e \".[workshop]\"")
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

pytestmark = pytest.mark.slow

PASSWORD = "argyrodite-room"
#: Each learner's seed; with random first picks (the default head start is the same for
#: everyone), different seeds pick different candidates.
SEEDS = {"ada": 1, "grace": 2}
N_LABELS = 5
MEMORY = "3G"
CAMPAIGN = """
import json, almat
pool = almat.load_pool()
path = almat.labels_file("06-labeling-loop")
campaign = almat.Campaign(pool, almat.TableOracle(), seed={seed}, initial="random",
                         ledger_path=path)
campaign.run({n})
print(json.dumps({{"file": str(path.resolve()), "ids": list(campaign.labelled["id"])}}))
"""
LIMITS = """
import json, os, resource, threadpoolctl, torch
print(json.dumps({"torch": torch.get_num_threads(),
                  "pools": [p["num_threads"] for p in threadpoolctl.threadpool_info()],
                  "address_space": resource.getrlimit(resource.RLIMIT_AS)[0]}))
"""
OVERSIZED = "import numpy; numpy.empty(3 * 2**30, dtype=numpy.uint8)"


async def learner_session(hub: LocalHub, name: str) -> dict:
    """What one learner sees: their folder, their labels, their limits."""
    async with Learner(hub.url, name, PASSWORD) as learner:
        await learner.log_in()
        await learner.start_server()
        folder = await learner.server_api("GET", "/contents")
        await learner.start_kernel()
        labels = json.loads(await learner.run(CAMPAIGN.format(seed=SEEDS[name], n=N_LABELS)))
        limits = json.loads(await learner.run(LIMITS))
        try:
            await learner.run(OVERSIZED)
            oversized = "allocated"
        except HubError as refused:
            oversized = str(refused)
        return {"files": sorted(item["name"] for item in folder["content"]),
                "labels": labels, "limits": limits, "oversized": oversized}


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    """Two learners at one hub at once; their sessions' results by name."""
    with LocalHub(tmp_path_factory.mktemp("hub"), PASSWORD, memory=MEMORY) as hub:
        async def both():
            return await asyncio.gather(*(learner_session(hub, name) for name in SEEDS))
        try:
            results = asyncio.run(both())
        except Exception as error:
            raise HubError(f"{error}; the hub's log ends:\n{hub.log_tail()}") from error
        yield hub, dict(zip(SEEDS, results))


def labelled_ids(path: Path) -> list[str]:
    """Candidate ids of the label events in a labels file, read as plain JSON Lines."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [event["id"] for event in events if event.get("type") == "label"]


def test_each_learner_starts_with_the_lesson_notebooks(room):
    _, results = room
    notebooks = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    assert notebooks, "the repository has no notebooks to hand out"
    for name, result in results.items():
        assert result["files"] == notebooks, name


def test_labels_go_to_the_learners_own_file_and_no_other(room):
    hub, results = room
    ada, grace = (results[name]["labels"] for name in SEEDS)
    assert len(ada["ids"]) == len(grace["ids"]) == N_LABELS
    assert not set(ada["ids"]) & set(grace["ids"]), "choose seeds whose picks differ"
    for name, own, other in (("ada", ada, grace), ("grace", grace, ada)):
        path = hub.learner_folder(name) / "labels" / "06-labeling-loop.jsonl"
        assert Path(own["file"]) == path.resolve()
        in_file = labelled_ids(path)
        assert in_file == own["ids"]
        assert not set(in_file) & set(other["ids"])


def test_one_thread_each_for_torch_openmp_and_blas(room):
    _, results = room
    for name, result in results.items():
        assert result["limits"]["torch"] == 1, name
        assert result["limits"]["pools"] and set(result["limits"]["pools"]) == {1}, name


def test_memory_limit_bites(room):
    _, results = room
    for name, result in results.items():
        assert result["limits"]["address_space"] == 3 * 1024**3, name
        assert "MemoryError" in result["oversized"], name


@pytest.mark.browser
def test_a_browser_logs_in_and_sees_the_notebooks_in_jupyterlab(room):
    hub, _ = room
    # Playwright's event loop ends with this block, so the other tests can still use asyncio.
    with launch_chromium() as browser:
        page = browser.new_page()
        page.goto(f"{hub.url}/hub/login")
        page.fill("#username_input", "linus")
        page.fill("#password_input", PASSWORD)
        page.click("#login_submit")
        page.wait_for_url(re.compile(r"/user/linus/lab"), timeout=240_000)
        files = page.locator(".jp-DirListing-content")
        for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
            files.get_by_text(notebook.name).wait_for(timeout=120_000)
        screenshot(page, "workshop-hub-jupyterlab")


def test_wrong_password_is_refused(room):
    hub, _ = room

    async def intruder():
        async with Learner(hub.url, "mallory", "not-the-password") as learner:
            await learner.log_in()

    with pytest.raises(HubError, match="could not log in: HTTP 403"):
        asyncio.run(intruder())


def test_idle_server_is_culled_and_its_files_stay(tmp_path):
    async def start_then_wait():
        async with Learner(hub.url, "ada", PASSWORD) as learner:
            await learner.log_in()
            await learner.start_server()
            for _ in range(240):
                if not await learner.server_ready():
                    return True
                await asyncio.sleep(0.5)
            return False

    with LocalHub(tmp_path, PASSWORD, idle_timeout="10") as hub:
        assert asyncio.run(start_then_wait()), f"not culled; the hub's log ends:\n{hub.log_tail()}"
    assert (hub.learner_folder("ada") / "06-labeling-loop.ipynb").exists()


def hub_environment(**settings: str) -> dict:
    """This process's environment without ALMAT_HUB_ settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALMAT_HUB_")}
    return {**env, **settings}


def test_start_without_a_password_says_how_to_give_one(tmp_path):
    done = subprocess.run(["bash", str(REPO / "workshop" / "start")],
                          env=hub_environment(ALMAT_HUB_DIR=str(tmp_path)),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "workshop: set the room's password, 8 characters or more, in ALMAT_HUB_PASSWORD "
        "(e.g. ALMAT_HUB_PASSWORD=lithium-argyrodite bash workshop/start)."]


@pytest.mark.parametrize("settings, says", [
    ({"ALMAT_HUB_PASSWORD": "lithium"}, "8 characters or more, in ALMAT_HUB_PASSWORD"),
    ({"ALMAT_HUB_PORT": "http"}, "ALMAT_HUB_PORT='http' is not a port number"),
    ({"ALMAT_HUB_MEMORY": "lots"}, "ALMAT_HUB_MEMORY='lots': give bytes with a unit"),
    ({"ALMAT_HUB_THREADS": "0"}, "ALMAT_HUB_THREADS='0': give a number of threads"),
    ({"ALMAT_HUB_IDLE_TIMEOUT": "1h"}, "ALMAT_HUB_IDLE_TIMEOUT='1h': give a number of seconds"),
])
def test_the_config_refuses_a_bad_setting_in_one_line(settings, says, tmp_path, monkeypatch,
                                                      capsys):
    settings = {"ALMAT_HUB_DIR": str(tmp_path), "ALMAT_HUB_PASSWORD": PASSWORD, **settings}
    monkeypatch.setattr(os, "environ", hub_environment(**settings))
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(REPO / "workshop" / "jupyterhub_config.py"),
                       init_globals={"get_config": Config})
    assert stopped.value.code == 2
    printed = capsys.readouterr().err
    assert printed.splitlines() == [printed.strip()] and says in printed
