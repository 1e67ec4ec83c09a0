"""A password change reaches the audit trail as ``authn_password_change``, once, beside the sessions it ended."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import EndReason, ManualClock
from sessionward.core.events import EventBus, EventName, vocabulary_name
from sessionward.starlette import get_session
from sessionward.stores import MemoryStore
from support.helpers import ROUTES, Recorder, client_for, make_app


async def _password(request: Request) -> Response:
    revoked = await get_session(request).revoke_others(EndReason.PASSWORD_CHANGED)
    return JSONResponse({"revoked": revoked})


async def _revoke(request: Request) -> Response:
    return JSONResponse({"revoked": await get_session(request).revoke_others()})


async def test_a_password_change_is_one_authn_password_change_event_beside_the_revocations() -> None:
    recorder = Recorder()
    events = EventBus(log=False)
    events.subscribe(recorder)
    routes = [*ROUTES, Route("/password", _password, methods=["POST"]), Route("/revoke", _revoke, methods=["POST"])]
    app, _ = make_app(MemoryStore(), clock=ManualClock(1_700_000_000.0), routes=routes, events=events)
    async with client_for(app) as other, client_for(app) as this:
        await other.post("/login")
        await this.post("/login")
        await this.post("/revoke")  # an ordinary revocation is not a password change
        await other.post("/login")
        assert EventName.PASSWORD_CHANGED not in {event.name for event in recorder.events}
        recorder.events.clear()

        assert (await this.post("/password")).json() == {"revoked": 1}

    changed = [event for event in recorder.events if event.name is EventName.PASSWORD_CHANGED]
    assert len(changed) == 1
    assert vocabulary_name(changed[0]) == "authn_password_change"
    assert changed[0].user is not None
    assert [event.reason for event in recorder.events if event.name is EventName.REVOKED] == ["password_changed"]
