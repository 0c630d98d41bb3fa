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

The launcher (:class:`JupyterLabServer`, :func:`launch_chromium`,
:func:`open_and_run`) lives in ``tools/labserver.py``, shared with
``benchmarks/widget_latency.py``.
"""

from __future__ import annotations

import io
import os
import time

import pytest

from tools.labserver import (
    FIXTURE_NOTEBOOK,
    REPO,
    JupyterLabServer,
    browser_missing_reason,
    launch_chromium,
    open_and_run,
)

REAL_NOTEBOOK = REPO / "notebooks" / "06_latent_space.ipynb"
ARTIFACTS = REPO / "test-artifacts"


def require_browser() -> None:
    reason = browser_missing_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser test cannot run under CI=true: {reason}")
    pytest.skip(reason)


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
