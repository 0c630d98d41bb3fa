"""JupyterLab in headless Chromium, isolated in a temporary directory.

The launcher shared by the browser test (``tests/test_browser.py``) and the widget
latency benchmark (``benchmarks/widget_latency.py``): :class:`JupyterLabServer`
starts JupyterLab from this venv on 127.0.0.1 (free port, random token, a
temporary root holding *copies* of the notebooks, temporary settings and
workspaces); :func:`launch_chromium` starts Playwright's Chromium headless;
:func:`open_and_run` opens a notebook and runs all its cells from the menu.
Import it as ``from tools.labserver import ...`` from the repository root.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
#: the small notebook the browser test and the latency benchmark open
FIXTURE_NOTEBOOK = REPO / "tests" / "browser_fixture.ipynb"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
# JupyterLab user settings for the test session: no news or update checks (no
# network), no autosave (the copy is never written), every cell rendered even when
# off screen (JupyterLab 4 can virtualize long notebooks).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def browser_missing_reason() -> str | None:
    """Why the browser test cannot run here, or ``None``."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (install Debian's chromium package)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed in this environment"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLabServer:
    """JupyterLab from this venv, isolated in a temporary directory.

    ``root`` (the server's root_dir) receives copies of the notebooks; nothing
    in the repository is opened or written. :meth:`stop` ends the server's
    process group (the server and its kernels).
    """

    def __init__(self, notebooks: list[Path], *, startup_timeout: float = 45.0):
        self.tmp = Path(tempfile.mkdtemp(prefix="vi-lab-"))
        self.root = self.tmp / "root"
        (self.root / "notebooks").mkdir(parents=True)
        (self.root / "figures").mkdir()  # save_figure writes here, not into the repo
        for nb in notebooks:
            shutil.copy2(nb, self.root / "notebooks" / nb.name)
        settings = self.tmp / "settings"
        for rel, content in LAB_SETTINGS.items():
            path = settings / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content))
        workspaces = self.tmp / "workspaces"
        workspaces.mkdir()
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(workspaces),
            JUPYTER_CONFIG_DIR=str(self.tmp / "config"),
            JUPYTER_RUNTIME_DIR=str(self.tmp / "runtime"),
            JUPYTER_DATA_DIR=str(self.tmp / "data"),
            # the kernel imports this checkout's vi_helpers whatever the install state
            PYTHONPATH=os.pathsep.join(
                p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
            ),
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            PYTHONHASHSEED="0",
        )
        cmd = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--LabApp.workspaces_dir={workspaces}",
            f"--LabApp.user_settings_dir={settings}",
            "--ServerApp.open_browser=False",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log_path = self.tmp / "server.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            self._wait_ready(startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.base_url}/api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"JupyterLab did not start within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def notebook_url(self, name: str) -> str:
        # ?reset: start from an empty workspace, not the tabs of the previous test
        return f"{self.base_url}/lab/tree/notebooks/{name}?reset&token={self.token}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def launch_chromium(playwright):
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=30_000
    )


# Every code cell has run (a number in its prompt, none queued or running) and the
# kernel is idle.
_ALL_CELLS_DONE = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
  if (prompts.length === 0) return false;
  const done = prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
  const bar = document.querySelector('.jp-StatusBar-Widget');
  return done && bar !== null && /\\|\\s*Idle/.test(bar.innerText);
}"""


_KERNEL_IDLE = """() => {
  const bar = document.querySelector('.jp-StatusBar-Widget');
  return bar !== null && /\\|\\s*Idle/.test(bar.innerText)
    && document.querySelector('.jp-Dialog') === null;
}"""

_SOME_CELL_STARTED = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
  .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""


def open_and_run(page, server: JupyterLabServer, name: str, *, timeout_ms: int = 75_000):
    """Open notebook ``name``, wait for an idle kernel, Run All Cells, wait until done."""
    page.goto(server.notebook_url(name), wait_until="domcontentloaded")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=30_000)
    # The execution indicator reads "idle" before the kernel is connected; a Run All
    # issued while the status bar still says Initializing/Connecting asks for a kernel.
    page.wait_for_function(_KERNEL_IDLE, timeout=45_000, polling=100)
    for attempt in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(_SOME_CELL_STARTED, timeout=10_000, polling=100)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError
            if attempt == 2:
                raise
            dialog_select = page.locator(".jp-Dialog .jp-mod-accept")
            if dialog_select.count():  # "Select Kernel": take the notebook's kernel
                dialog_select.first.click()
    page.wait_for_function(_ALL_CELLS_DONE, timeout=timeout_ms, polling=250)
