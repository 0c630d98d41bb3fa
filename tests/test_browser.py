"""End-to-end: JupyterLab in headless Chromium drives a LatentExplorer.

Starts JupyterLab from this venv on 127.0.0.1 (free port, random token, a
temporary root holding a *copy* of the notebook, temporary settings and
workspaces), opens the latent-space notebook, runs all cells from the menu,
then moves one slider with the keyboard and drags another with the mouse, and
checks that the decoded image changed: its ``src`` (a blob URL) and the pixels of
element screenshots. Screenshots go to ``test-artifacts/`` (gitignored).

The notebook is ``notebooks/06_latent_space.ipynb`` when it exists (its first
``LatentExplorer`` is used), and always the small fixture
``tests/browser_fixture.ipynb``.

Skipped, with the reason, when ``/usr/bin/chromium`` or Playwright is missing,
except under ``CI=true``, where that is a failure.

The helpers :class:`JupyterLabServer` and :func:`open_and_run` are reused by
``benchmarks/widget_latency.py``.
"""

from __future__ import annotations

import io
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

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
REAL_NOTEBOOK = REPO / "notebooks" / "06_latent_space.ipynb"
FIXTURE_NOTEBOOK = REPO / "tests" / "browser_fixture.ipynb"
ARTIFACTS = REPO / "test-artifacts"
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


def require_browser() -> None:
    reason = browser_missing_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser test cannot run under CI=true: {reason}")
    pytest.skip(reason)


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


def notebook_params():
    real = pytest.param(
        REAL_NOTEBOOK,
        id="06_latent_space",
        marks=pytest.mark.skipif(
            not REAL_NOTEBOOK.exists(), reason="notebooks/06_latent_space.ipynb not written yet"
        ),
    )
    return [real, pytest.param(FIXTURE_NOTEBOOK, id="fixture")]


# -- the test --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab():
    require_browser()
    notebooks = [nb for nb in (REAL_NOTEBOOK, FIXTURE_NOTEBOOK) if nb.exists()]
    server = JupyterLabServer(notebooks)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


def _differs(png_a: bytes, png_b: bytes) -> int:
    """Number of pixels that differ between two screenshots of one element."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png_a)).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(io.BytesIO(png_b)).convert("RGB"), dtype=np.int16)
    assert a.shape == b.shape, "the image element changed size (layout jump)"
    return int((np.abs(a - b).sum(axis=-1) > 0).sum())


@pytest.mark.browser
@pytest.mark.timeout(90)
@pytest.mark.parametrize("notebook", notebook_params())
def test_latent_explorer_live_in_jupyterlab(lab, browser, notebook):
    ARTIFACTS.mkdir(exist_ok=True)
    tag = notebook.stem
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        open_and_run(page, lab, notebook.name)
        explorer = page.locator(".vi-latent-explorer").first
        explorer.wait_for(state="visible", timeout=20_000)
        explorer.scroll_into_view_if_needed()

        # The live widget is what JupyterLab shows, not the PNG fallback of the same
        # output: the widget-view mime type outranks image/png.
        # The output's bundle also holds image/png and text/plain; JupyterLab's text and
        # image renderers would mark the output with data-mime-type and a
        # jp-RenderedImage/jp-RenderedText node. The widget renderer sets neither.
        output = explorer.locator("xpath=parent::div[contains(@class,'jp-OutputArea-output')]")
        assert output.count() == 1
        assert output.get_attribute("data-mime-type") is None
        child = output.locator("xpath=parent::div[contains(@class,'jp-OutputArea-child')]")
        assert child.locator(".jp-RenderedImage, .jp-RenderedText").count() == 0

        sliders = explorer.locator(".widget-slider")
        assert sliders.count() >= 2
        image = explorer.locator("img.vi-decoded-image")
        info = explorer.locator(".widget-html-content").first
        src0 = image.get_attribute("src")
        assert src0 and src0.startswith("blob:")
        shot0 = image.screenshot(path=str(ARTIFACTS / f"{tag}-0-initial.png"))
        z_text0 = info.inner_text()

        # keyboard: focus the first slider's handle and press ArrowRight
        handle = sliders.nth(0).locator(".noUi-handle")
        handle.focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([img, src]) => img.getAttribute('src') !== src",
            arg=[image.element_handle(), src0],
            timeout=10_000,
        )
        page.wait_for_function(
            "([el, t]) => el.innerText !== t", arg=[info.element_handle(), z_text0], timeout=10_000
        )
        # the kernel ends up with the value the slider shows (updates sent while one
        # was in flight are coalesced, never lost)
        readout = sliders.nth(0).locator(".widget-readout")
        page.wait_for_function(
            "([el, r]) => el.innerText.includes('z = (' + (parseFloat(r.innerText) >= 0 ? '+' : '')"
            " + parseFloat(r.innerText).toFixed(2) + ',')",
            arg=[info.element_handle(), readout.element_handle()],
            timeout=10_000,
        )
        if notebook == FIXTURE_NOTEBOOK:  # starts at z = 0, step 0.05: ten steps right
            assert readout.inner_text().strip() == "0.50"
            assert "z = (+0.50, +0.00)" in info.inner_text()
        src1 = image.get_attribute("src")
        time.sleep(0.3)  # let the last queued update land before the screenshot
        shot1 = image.screenshot(path=str(ARTIFACTS / f"{tag}-1-keyboard.png"))
        assert src1 != src0
        assert _differs(shot0, shot1) > 0, "keyboard slider move did not change the image"

        # mouse: drag the second slider's handle to the right
        handle2 = sliders.nth(1).locator(".noUi-handle")
        box = handle2.bounding_box()
        assert box is not None
        x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + 80, y0, steps=8)
        page.mouse.up()
        page.wait_for_function(
            "([img, src]) => img.getAttribute('src') !== src",
            arg=[image.element_handle(), src1],
            timeout=10_000,
        )
        time.sleep(0.3)
        shot2 = image.screenshot(path=str(ARTIFACTS / f"{tag}-2-mouse.png"))
        assert _differs(shot1, shot2) > 0, "mouse drag did not change the image"
        z_text = info.inner_text()
        assert z_text != z_text0
        page.screenshot(path=str(ARTIFACTS / f"{tag}-page.png"), full_page=False)
        assert not errors, f"JavaScript errors in the page: {errors}"
    except BaseException:
        try:
            page.screenshot(path=str(ARTIFACTS / f"{tag}-failure.png"))
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
        print(lab.log_tail())
        raise
    finally:
        context.close()
