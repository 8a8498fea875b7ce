"""axe-core (npm, frontend/node_modules) in the page under test: no serious or critical
accessibility violation. The script is served to the page from its own origin through a
Playwright route, so the page's Content-Security-Policy (script-src 'self') lets it run
unchanged; an inline <script> would be blocked, as it should be."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
AXE_PATH = "/__test__/axe.min.js"


def _inject(page) -> None:  # type: ignore[no-untyped-def]
    if page.evaluate("() => typeof window.axe !== 'undefined'"):
        return
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
    page.route(
        origin + AXE_PATH,
        lambda route: route.fulfill(path=str(AXE), content_type="application/javascript"),
    )
    page.add_script_tag(url=origin + AXE_PATH)


def violations(page, include: str | None = None) -> list[dict]:  # type: ignore[no-untyped-def]
    """Serious and critical axe violations on the page as it is now."""
    _inject(page)
    found = page.evaluate(
        """async (include) => {
            const result = await axe.run(include ? { include: [include] } : document, {
                resultTypes: ["violations"],
            });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " :: " + n.failureSummary),
            }));
        }""",
        include,
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def assert_accessible(page, name: str, include: str | None = None) -> None:  # type: ignore[no-untyped-def]
    found = violations(page, include)
    assert not found, f"{name}: axe found serious/critical violations:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in found
    )
