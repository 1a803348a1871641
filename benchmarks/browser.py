"""Drive a Streamlit page in Debian's Chromium with Playwright: time renders, or keep a viewer open.

`python -m benchmarks.browser measure URL [--pulse]` prints one JSON line of timings;
`python -m benchmarks.browser watch URL --seconds S` keeps the page open (a live viewer) for S seconds.
"""

from __future__ import annotations

import argparse
import json
import time

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHART = '[data-testid="stVegaLiteChart"]'
# The 24 h range is drawn and nothing is stale (the same settle test as tests/e2e/test_dashboard_browser.py).
SETTLED_ON_A_DAY = """() =>
    [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
        .some(e => /^Showing .* (\\d\\d:\\d\\d) to \\1 UTC/.test(e.innerText))
    && document.querySelectorAll('[data-stale="true"]').length === 0"""


def _chart_visible(page, timeout_ms: int = 120_000) -> None:
    page.locator(CHART).first.locator("canvas, svg").first.wait_for(state="visible", timeout=timeout_ms)


def _settled(page, timeout_ms: int = 120_000) -> None:
    page.wait_for_function(
        "() => document.querySelectorAll('[data-stale=\"true\"]').length === 0", timeout=timeout_ms
    )


def measure(url: str, pulse: bool, reloads: int) -> dict[str, float | list[float]]:
    """First render (new browser context, cold server session), reloads, and for Pulse the 24 h switch."""
    timings: dict[str, float | list[float]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            began = time.monotonic()
            page.goto(url, wait_until="domcontentloaded")
            _chart_visible(page)
            timings["first_render_s"] = time.monotonic() - began
            _settled(page)
            timings["first_settled_s"] = time.monotonic() - began
            reload_times = []
            for _ in range(reloads):
                began = time.monotonic()
                page.reload(wait_until="domcontentloaded")
                _chart_visible(page)
                reload_times.append(time.monotonic() - began)
                _settled(page)
            timings["reload_s"] = reload_times
            if pulse:
                began = time.monotonic()
                page.get_by_text("Last 24 h", exact=True).click()
                page.wait_for_function(SETTLED_ON_A_DAY, timeout=120_000)
                _chart_visible(page)
                timings["switch_to_24h_s"] = time.monotonic() - began
                timings["exceptions_on_page"] = page.locator('[data-testid="stException"]').count()
        finally:
            browser.close()
    return timings


def watch(url: str, seconds: float) -> None:
    """Keep the page open so the dashboard's auto-refresh keeps reading Gold."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                page.wait_for_timeout(1000)
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["measure", "watch"])
    parser.add_argument("url")
    parser.add_argument("--pulse", action="store_true", help="The page is the Pulse dashboard.")
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    if args.mode == "measure":
        print(json.dumps(measure(args.url, args.pulse, args.reloads)))
    else:
        watch(args.url, args.seconds)


if __name__ == "__main__":
    main()
