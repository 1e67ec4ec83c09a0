"""The demo refuses a path holding an encoded control character with 400 (F5).

``/dashboard%1bx`` and friends reached the demo's routes (a 303 to the login page, or a
404) when only ``%00``, ``%0a`` and ``%0d`` were refused.
"""

from __future__ import annotations

import pytest

from demo.support import DemoUnderTest

REPORTED = ["%1b", "%07", "%08", "%09", "%0b", "%7f", "%c2%9b", "%c2%85", "%1B", "%C2%85", "%e2%80%a8", "%E2%80%A9"]


@pytest.mark.parametrize("encoded", REPORTED)
async def test_encoded_escape_character_in_path_is_refused_with_400(demo: DemoUnderTest, encoded: str) -> None:
    browser = await demo.signed_in()
    response = await browser.get(f"/dashboard{encoded}x")
    assert response.status_code == 400
    assert response.json() == {"error": "request_rejected", "reason": "encoded_control"}
    assert (await browser.get("/dashboard")).status_code == 200  # the session is untouched
